// What a server gained across Nova's microversions: its description (2.19), hostname (2.90),
// launch index (2.3),
// trusted image certificates (2.63), and its tags (2.26) in their own table (a server holds at
// most 50; the tag filters read them by tag).
import type { Kysely, Migration } from 'kysely'

export const serverMicroversionFieldsMigration: Migration = {
  async up(db: Kysely<any>) {
    await db.schema.alterTable('servers').addColumn('description', 'text').execute()
    await db.schema
      .alterTable('servers')
      .addColumn('hostname', 'text', (c) => c.notNull().defaultTo(''))
      .execute()
    // The server's place among those of its create request (OS-EXT-SRV-ATTR:launch_index).
    await db.schema
      .alterTable('servers')
      .addColumn('launch_index', 'integer', (c) => c.notNull().defaultTo(0))
      .execute()
    // JSON list of certificate ids, or null.
    await db.schema.alterTable('servers').addColumn('trusted_certs', 'text').execute()
    await db.schema
      .createTable('server_tags')
      .addColumn('server_id', 'text', (c) => c.notNull())
      .addColumn('tag', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint('server_tags_pk', ['server_id', 'tag'])
      .execute()
    await db.schema.createIndex('server_tags_tag').on('server_tags').column('tag').execute()
  },
}
