// Eighth migration: one agent per host name. The agent that holds a host writes its identity
// (`agent_id`, `<machine>:<pid>:<random>`) and a lease it renews with every heartbeat; another
// agent may take the host only once the lease ran out (or its holder released it on a clean stop).
import type { Kysely, Migration } from 'kysely'

export const hostLeasesMigration: Migration = {
  async up(db: Kysely<any>) {
    await db.schema.alterTable('hosts').addColumn('agent_id', 'text').execute()
    await db.schema.alterTable('hosts').addColumn('lease_until', 'text').execute()
  },
}
