// Eighth migration: image data in the database, for deployments whose API processes and agents
// share one PostgreSQL (the `database` image store): ~1 MiB of an image per row, in order.
import { PostgresAdapter, type Kysely, type Migration } from 'kysely'

export const imageChunksMigration: Migration = {
  async up(db: Kysely<any>) {
    // The one column type that differs by dialect: bytes are bytea on PostgreSQL, blob on SQLite.
    const bytes = db.getExecutor().adapter instanceof PostgresAdapter ? 'bytea' : 'blob'
    await db.schema
      .createTable('image_chunks')
      .addColumn('image_id', 'text', (c) => c.notNull())
      .addColumn('seq', 'integer', (c) => c.notNull())
      .addColumn('data', bytes, (c) => c.notNull())
      .addPrimaryKeyConstraint('image_chunks_pk', ['image_id', 'seq'])
      .execute()
  },
}
