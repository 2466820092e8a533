// The one contract between the API side that enqueues volume tasks and the agent that runs them:
// each kind (`volume.<verb>`) with its payload. Creation, deletion, extension and snapshots run
// on the agent of the volume's host (subject: the volume); attach and detach on the agent of the
// server's host (subject: the server, so that they take turns with its other tasks); an attach to a
// server of another host begins with a hand-over on the volume's host and ends with the copy it
// kept dropped there.
import type { TaskQueue } from '../tasks/queue.ts'

type NoPayload = Record<string, never>

export type VolumeTaskPayloads = {
  'volume.create': NoPayload
  'volume.delete': NoPayload
  /** `previousStatus` in-use: an attached volume (3.42), in-use again once grown. */
  'volume.extend': { newSize: number; previousStatus?: 'in-use' }
  'volume.snapshot_create': { snapshotId: string }
  'volume.snapshot_delete': { snapshotId: string }
  /**
   * An attach to a server of another host (on the volume's host): a copy of the volume's data
   * handed to the agent of the server's host `to`, which takes it in before it plugs it in.
   */
  'volume.hand_over': { attachmentId: string; to: string }
  /**
   * `handoff`: the volume comes from host `host` (a hand-over), its data copied to `path` (none:
   * the driver's volume data is not per host); once attached it is served from here.
   */
  'volume.attach': { attachmentId: string; handoff?: { host: string; path?: string } }
  /** The volume is served from another host now: the data this host kept goes (on the host it left). */
  'volume.drop_copy': NoPayload
  'volume.detach': { attachmentId: string }
}

export type VolumeTaskKind = keyof VolumeTaskPayloads
export type VolumeTaskQueue = TaskQueue<VolumeTaskPayloads>
