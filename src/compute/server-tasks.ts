// The one contract between the API side that enqueues server tasks and the agent that runs
// them: each kind (`server.<verb>`) with its payload. Passwords travel sealed (secrets.ts).
import type { TaskQueue } from '../tasks/queue.ts'
import type { VmState } from './states.ts'

type NoPayload = Record<string, never>

export type ServerTaskPayloads = {
  'server.create': { sealed: string }
  'server.stop': NoPayload
  'server.start': NoPayload
  'server.pause': NoPayload
  'server.unpause': NoPayload
  'server.reboot': { type: 'SOFT' | 'HARD' }
  /** A stopped server stays stopped after its rebuild. */
  'server.rebuild': { previousVmState: VmState; sealed: string }
  /** Where a failed rescue puts the server back. */
  'server.rescue': { rescueImageId: string; previousVmState: VmState; previousPowerState: number; sealed: string }
  'server.unrescue': NoPayload
  'server.delete': NoPayload
  'server.suspend': NoPayload
  'server.resume': NoPayload
  /** createImage and createBackup: the image the API created (queued), which the agent fills. */
  'server.snapshot': { imageId: string; backup?: { type: string; rotation: number } }
  /** Where a failed shelve puts the server back; the image the API created for it. */
  'server.shelve': { imageId: string; previousVmState: VmState; previousPowerState: number }
  'server.shelveOffload': NoPayload
  /** Offloaded: boot on the host the API scheduled, from the shelve image; else power on where it is. */
  'server.unshelve': { offloaded: boolean }
  /** A call (TaskQueue.call): the last `length` lines of the console, answered to the API. */
  'server.console': ConsolePayload
}

export interface ConsolePayload {
  serverId: string
  length: number
}

export type ServerTaskKind = keyof ServerTaskPayloads

/** What the sealed part of a payload holds, once opened by the agent. */
export interface SealedSecrets {
  adminPass?: string
  authorizedKeys?: string[]
}

export type ServerTaskQueue = TaskQueue<ServerTaskPayloads>
