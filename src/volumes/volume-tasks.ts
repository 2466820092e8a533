// The one contract between the API side that enqueues volume tasks and the agent that runs them:
// each kind (`volume.<verb>`) with its payload. Creation, deletion, extension and snapshots run
// on the agent of the volume's host (subject: the volume); attach and detach on the agent of the
// server's host (subject: the server, so that they take turns with its other tasks).
import type { TaskQueue } from '../tasks/queue.ts'

type NoPayload = Record<string, never>

export type VolumeTaskPayloads = {
  'volume.create': NoPayload
  'volume.delete': NoPayload
  /** `previousStatus` in-use: an attached volume (3.42), in-use again once grown. */
  'volume.extend': { newSize: number; previousStatus?: 'in-use' }
  'volume.snapshot_create': { snapshotId: string }
  'volume.snapshot_delete': { snapshotId: string }
  'volume.attach': { attachmentId: string }
  'volume.detach': { attachmentId: string }
}

export type VolumeTaskKind = keyof VolumeTaskPayloads
export type VolumeTaskQueue = TaskQueue<VolumeTaskPayloads>
