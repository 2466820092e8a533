// Migration 0030: on a migration, what an admin asked of it while it runs (`requested`: abort or
// force-complete; the agent copying the guest polls it, see compute/worker-migrate.ts), and the
// destination host's address (`dest_host`: Nova's, the destination's live_migration_inbound_addr,
// recorded by the destination when it takes the move on; null until then, or where its agent has
// no address of its own).
import type { Kysely, Migration } from 'kysely'

export const migrationRequestsMigration: Migration = {
  async up(db: Kysely<any>) {
    await db.schema.alterTable('migrations').addColumn('requested', 'text').execute()
    await db.schema.alterTable('migrations').addColumn('dest_host', 'text').execute()
  },
}
