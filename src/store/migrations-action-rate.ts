// Tenth migration: the server-action rate limit's token buckets, one row per project, shared by
// every API process on PostgreSQL (SQLite's one process counts in memory and never writes here).
import type { Kysely, Migration } from 'kysely'

export const actionRateMigration: Migration = {
  async up(db: Kysely<any>) {
    await db.schema
      .createTable('action_rate_buckets')
      .addColumn('scope', 'text', (c) => c.primaryKey())
      .addColumn('tokens', 'double precision', (c) => c.notNull())
      // Milliseconds since the epoch, by the database's clock: every API process reads the same one.
      .addColumn('at_ms', 'double precision', (c) => c.notNull())
      .execute()
  },
}
