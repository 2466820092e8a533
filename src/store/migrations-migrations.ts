// Migration 0016: Nova's migrations table, one row per move of a server (resize, cold and live
// migration, evacuation), with Nova's integer id and uuid. `alloc_host`/`alloc_flavor_id` are the
// room the move holds on the host the server is not on (placement-repo counts it): the new
// flavor on the destination until the server is there, then the old flavor on the source until
// the resize is confirmed or reverted (Nova's migration allocation).
import type { Kysely, Migration } from 'kysely'

export const migrationsMigration: Migration = {
  async up(db: Kysely<any>) {
    await db.schema
      .createTable('migrations')
      .addColumn('id', 'integer', (c) => c.primaryKey())
      .addColumn('uuid', 'text', (c) => c.notNull().unique())
      .addColumn('server_id', 'text', (c) => c.notNull())
      .addColumn('project_id', 'text', (c) => c.notNull())
      .addColumn('user_id', 'text', (c) => c.notNull())
      .addColumn('migration_type', 'text', (c) => c.notNull())
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('source_compute', 'text')
      .addColumn('dest_compute', 'text')
      .addColumn('old_flavor_id', 'text', (c) => c.notNull())
      .addColumn('new_flavor_id', 'text', (c) => c.notNull())
      .addColumn('old_vm_state', 'text', (c) => c.notNull())
      .addColumn('alloc_host', 'text')
      .addColumn('alloc_flavor_id', 'text')
      .addColumn('request_id', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .execute()
    await db.schema.createIndex('migrations_server').on('migrations').columns(['server_id', 'status']).execute()
    await db.schema.createIndex('migrations_alloc').on('migrations').column('alloc_host').execute()
  },
}
