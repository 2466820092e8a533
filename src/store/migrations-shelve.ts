// Migration 0015: what Nova keeps in a shelved server's system_metadata (shelved_image_id,
// shelved_at, shelved_host), one row per shelved server, gone at unshelve.
import type { Kysely, Migration } from 'kysely'

export const shelveMigration: Migration = {
  async up(db: Kysely<any>) {
    await db.schema
      .createTable('server_shelves')
      .addColumn('server_id', 'text', (c) => c.primaryKey())
      .addColumn('image_id', 'text', (c) => c.notNull())
      .addColumn('shelved_at', 'text', (c) => c.notNull())
      .addColumn('shelved_host', 'text', (c) => c.notNull())
      .execute()
  },
}
