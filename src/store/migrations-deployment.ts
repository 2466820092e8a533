// Ninth migration: facts of the whole deployment, one row. `sealing_canary` is a value sealed
// with the deployment's key by the first process that started: a process whose key cannot open
// it has another key, and is refused at start (it could open none of the sealed passwords).
import type { Kysely, Migration } from 'kysely'

export const deploymentMigration: Migration = {
  async up(db: Kysely<any>) {
    await db.schema
      .createTable('deployment')
      .addColumn('id', 'integer', (c) => c.primaryKey())
      .addColumn('sealing_canary', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .execute()
  },
}
