// Migration 0031: the address a host's agent registered (its --migration-address, where other
// hosts reach it: Nova's compute node host_ip, my_ip), null where it has none of its own (the
// simulated driver's hosts).
import type { Kysely, Migration } from 'kysely'

export const hostAddressMigration: Migration = {
  async up(db: Kysely<any>) {
    await db.schema.alterTable('hosts').addColumn('address', 'text').execute()
  },
}
