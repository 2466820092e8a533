// Part of the initial migration: compute's tables beside the servers (server groups and
// their members; server_passwords, never written nor read, is dropped by 0007).
import type { Kysely } from 'kysely'

export async function createComputeExtraTables(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('server_groups')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('policy', 'text', (c) => c.notNull())
    .addColumn('project_id', 'text', (c) => c.notNull())
    .addColumn('user_id', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute()
  await db.schema.createIndex('server_groups_project').on('server_groups').columns(['project_id', 'created_at']).execute()

  await db.schema
    .createTable('server_group_members')
    .addColumn('group_id', 'text', (c) => c.notNull())
    .addColumn('server_id', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('server_group_members_pk', ['group_id', 'server_id'])
    .execute()
  await db.schema.createIndex('server_group_members_server').on('server_group_members').column('server_id').execute()

  await db.schema
    .createTable('server_passwords')
    .addColumn('server_id', 'text', (c) => c.primaryKey())
    .addColumn('password', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute()
}
