// Migrations 0020, 0021 and 0026: Cinder's volumes, their snapshots, the volume quotas of projects, and
// the attachments of volumes to servers (Nova's block device mappings and Cinder's attachments in
// one table). An attachment belongs to a server and its view shows it (volumes_attached), so its
// rows bump the server's version as the tables of 0017 do.
import { PostgresAdapter, sql, type Kysely, type Migration } from 'kysely'

/** Tables added after 0017 whose rows belong to a server (server_id) and change its views. */
export const VOLUME_SERVER_VIEW_TABLES = ['volume_attachments'] as const

export const volumesMigration: Migration = {
  async up(db: Kysely<any>) {
    await db.schema
      .createTable('volumes')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('project_id', 'text', (c) => c.notNull())
      .addColumn('user_id', 'text', (c) => c.notNull())
      .addColumn('name', 'text')
      .addColumn('description', 'text')
      .addColumn('size', 'integer', (c) => c.notNull())
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('availability_zone', 'text', (c) => c.notNull())
      .addColumn('volume_type_id', 'text', (c) => c.notNull())
      .addColumn('snapshot_id', 'text')
      .addColumn('source_volid', 'text')
      .addColumn('image_id', 'text')
      .addColumn('image_metadata', 'text')
      .addColumn('bootable', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('metadata', 'text', (c) => c.notNull().defaultTo('{}'))
      .addColumn('host', 'text')
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('updated_at', 'text')
      .execute()
    await db.schema.createIndex('volumes_project').on('volumes').columns(['project_id', 'created_at', 'id']).execute()

    await db.schema
      .createTable('volume_snapshots')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('project_id', 'text', (c) => c.notNull())
      .addColumn('user_id', 'text', (c) => c.notNull())
      .addColumn('volume_id', 'text', (c) => c.notNull())
      .addColumn('name', 'text')
      .addColumn('description', 'text')
      .addColumn('size', 'integer', (c) => c.notNull())
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('metadata', 'text', (c) => c.notNull().defaultTo('{}'))
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('updated_at', 'text')
      .execute()
    await db.schema.createIndex('volume_snapshots_volume').on('volume_snapshots').column('volume_id').execute()
    await db.schema.createIndex('volume_snapshots_project').on('volume_snapshots').columns(['project_id', 'created_at']).execute()

    await db.schema
      .createTable('volume_quotas')
      .addColumn('project_id', 'text', (c) => c.notNull())
      .addColumn('resource', 'text', (c) => c.notNull())
      .addColumn('hard_limit', 'integer', (c) => c.notNull())
      .addPrimaryKeyConstraint('volume_quotas_pk', ['project_id', 'resource'])
      .execute()
  },
}

export const volumeAttachmentsMigration: Migration = {
  async up(db: Kysely<any>) {
    await db.schema
      .createTable('volume_attachments')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('bdm_uuid', 'text', (c) => c.notNull())
      .addColumn('volume_id', 'text', (c) => c.notNull())
      .addColumn('server_id', 'text', (c) => c.notNull())
      .addColumn('device', 'text', (c) => c.notNull())
      .addColumn('tag', 'text')
      .addColumn('delete_on_termination', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('boot_index', 'integer')
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('attached_at', 'text')
      .addColumn('created_at', 'text', (c) => c.notNull())
      .execute()
    // A volume is attached to one server at most (no multiattach): the database says so too.
    await db.schema.createIndex('volume_attachments_volume').on('volume_attachments').column('volume_id').unique().execute()
    await db.schema.createIndex('volume_attachments_server').on('volume_attachments').columns(['server_id', 'created_at']).execute()
    // The server's view shows its attachments: every change bumps its version (0017's triggers;
    // PostgreSQL's function skiff_server_row_changed was created there).
    const t = 'volume_attachments'
    if (db.getExecutor().adapter instanceof PostgresAdapter) {
      await sql
        .raw(
          `CREATE TRIGGER ${t}_server_version AFTER INSERT OR DELETE OR UPDATE ON ${t} FOR EACH ROW EXECUTE FUNCTION skiff_server_row_changed()`,
        )
        .execute(db)
    } else {
      const bump = (row: 'NEW' | 'OLD') => `UPDATE servers SET version = version + 1 WHERE id = ${row}.server_id;`
      await sql.raw(`CREATE TRIGGER ${t}_server_version_i AFTER INSERT ON ${t} FOR EACH ROW BEGIN ${bump('NEW')} END`).execute(db)
      await sql.raw(`CREATE TRIGGER ${t}_server_version_d AFTER DELETE ON ${t} FOR EACH ROW BEGIN ${bump('OLD')} END`).execute(db)
      await sql
        .raw(`CREATE TRIGGER ${t}_server_version_u AFTER UPDATE ON ${t} FOR EACH ROW BEGIN ${bump('OLD')} ${bump('NEW')} END`)
        .execute(db)
    }
  },
}

/**
 * 0026: the host whose agent holds a snapshot's data. Volumes follow their servers between hosts
 * (moves, an attach across hosts); a snapshot's copy stays where it was taken, and the tasks that
 * read or delete it (a volume made from it, its delete) go there. Backfilled from the volume's host.
 */
export const volumeSnapshotHostMigration: Migration = {
  async up(db: Kysely<any>) {
    await db.schema.alterTable('volume_snapshots').addColumn('host', 'text').execute()
    await sql`update volume_snapshots set host = (select host from volumes where volumes.id = volume_snapshots.volume_id)`.execute(db)
  },
}
