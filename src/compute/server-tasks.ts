// The one contract between the API side that enqueues server tasks and the agent that runs
// them: each kind (`server.<verb>`) with its payload. Passwords travel sealed (secrets.ts).
import type { TaskQueue } from '../tasks/queue.ts'
import type { LiveMigrationSource, LiveMigrationTarget, MigratedDisk } from '../drivers/driver.ts'
import type { StableRescue } from './rescue-layout.ts'
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
  /**
   * Where a failed rescue puts the server back; the stable-device layout (absent: legacy) and
   * whether to keep a checkpoint of the server's disk.
   */
  'server.rescue': {
    rescueImageId: string
    previousVmState: VmState
    previousPowerState: number
    sealed: string
    stable?: StableRescue | null
    checkpoint?: boolean
  }
  /** With a checkpoint: keep what the rescue changed on the server's disk, or discard it. */
  'server.unrescue': { discardChanges?: boolean }
  'server.delete': NoPayload
  // Moves (compute/migration-service.ts → worker-migrate.ts): Nova's prep_resize (destination) →
  // resize_instance (source) → finish_resize (destination); confirm on the source; revert_resize
  // (destination) → finish_revert_resize (source); live: check_live_migration_source (source) →
  // pre_live_migration (destination) → live_migration (source) → post_live_migration
  // (destination) → confirm_resize (source), or on a failure of the copy
  // rollback_live_migration_at_destination → finish_revert_resize; evacuate: a rebuild on the
  // destination.
  'server.prep_resize': MoveTask
  'server.resize_instance': MoveTask
  'server.finish_resize': MoveTask & { disk: MigratedDisk }
  'server.confirm_resize': MoveTask
  'server.revert_resize': MoveTask
  /** `rollback`: a move that failed on the destination puts the server back on its source. */
  'server.finish_revert_resize': MoveTask & { rollback?: string }
  'server.check_live_migration_source': MoveTask
  'server.pre_live_migration': MoveTask & { source: LiveMigrationSource }
  'server.live_migration': MoveTask & { target: LiveMigrationTarget }
  /** `rollback`: why the copy failed (the server runs on its source); `cancelled`: an admin aborted it. */
  'server.rollback_live_migration_at_destination': MoveTask & { rollback: string; cancelled?: boolean }
  'server.post_live_migration': MoveTask & { disk: MigratedDisk }
  'server.evacuate': MoveTask & { sealed: string }
  'server.suspend': NoPayload
  'server.resume': NoPayload
  /** createImage and createBackup: the image the API created (queued), which the agent fills. */
  'server.snapshot': { imageId: string; backup?: { type: string; rotation: number } }
  /** Where a failed shelve puts the server back; the image the API created for it. */
  /** imageId null: a volume-backed server, offloaded at once without an image (its root stays its volume). */
  'server.shelve': { imageId: string | null; previousVmState: VmState; previousPowerState: number }
  'server.shelveOffload': NoPayload
  /** Offloaded: boot on the host the API scheduled, from the shelve image; else power on where it is. */
  'server.unshelve': { offloaded: boolean }
  /** A call (TaskQueue.call): the last `length` lines of the console, answered to the API. */
  'server.console': ConsolePayload
}

/** A task of a move names its migration record (Nova's Migration, by integer id). */
export interface MoveTask {
  migrationId: number
}

export interface ConsolePayload {
  serverId: string
  length: number
}

export type ServerTaskKind = keyof ServerTaskPayloads

/** The kinds of a move's steps (compute/worker-migrate.ts runs them). */
export type MoveTaskKind =
  | 'server.prep_resize'
  | 'server.resize_instance'
  | 'server.finish_resize'
  | 'server.confirm_resize'
  | 'server.revert_resize'
  | 'server.finish_revert_resize'
  | 'server.check_live_migration_source'
  | 'server.pre_live_migration'
  | 'server.live_migration'
  | 'server.rollback_live_migration_at_destination'
  | 'server.post_live_migration'
  | 'server.evacuate'

/** What the sealed part of a payload holds, once opened by the agent. */
export interface SealedSecrets {
  adminPass?: string
  authorizedKeys?: string[]
}

export type ServerTaskQueue = TaskQueue<ServerTaskPayloads>
