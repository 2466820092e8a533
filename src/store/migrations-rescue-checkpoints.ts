// Migration 0024: stable-device rescue and rescue checkpoints, on the rescue record. The rescue
// disk's device type and bus when the rescue image asks for a stable-device rescue (null: the
// legacy layout); the checkpoint of the server's disk, when asked: its state (pending, held,
// keeping, discarding, kept, discarded) and when it was taken.
import type { Kysely, Migration } from 'kysely'

export const rescueCheckpointsMigration: Migration = {
  async up(db: Kysely<any>) {
    await db.schema.alterTable('rescues').addColumn('rescue_device', 'text').execute()
    await db.schema.alterTable('rescues').addColumn('rescue_bus', 'text').execute()
    await db.schema.alterTable('rescues').addColumn('checkpoint', 'text').execute()
    await db.schema.alterTable('rescues').addColumn('checkpoint_at', 'text').execute()
  },
}
