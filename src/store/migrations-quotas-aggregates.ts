// Fourteenth migration: quotas set by admins (os-quota-sets, per project and per user; the
// 'default' class of os-quota-class-sets) and host aggregates (os-aggregates: hosts, metadata; an
// `availability_zone` key makes its hosts that zone).
import type { Kysely, Migration } from 'kysely'

export const quotasAggregatesMigration: Migration = {
  async up(db: Kysely<any>) {
    // user_id '' is the project's own limit (Nova's quotas table); a user's limit names the user.
    await db.schema
      .createTable('quotas')
      .addColumn('project_id', 'text', (c) => c.notNull())
      .addColumn('user_id', 'text', (c) => c.notNull())
      .addColumn('resource', 'text', (c) => c.notNull())
      .addColumn('hard_limit', 'integer', (c) => c.notNull())
      .addPrimaryKeyConstraint('quotas_pk', ['project_id', 'user_id', 'resource'])
      .execute()
    await db.schema
      .createTable('quota_classes')
      .addColumn('class_name', 'text', (c) => c.notNull())
      .addColumn('resource', 'text', (c) => c.notNull())
      .addColumn('hard_limit', 'integer', (c) => c.notNull())
      .addPrimaryKeyConstraint('quota_classes_pk', ['class_name', 'resource'])
      .execute()
    // Nova's aggregate ids are integers (and a uuid from 2.41); a deleted aggregate keeps its row.
    await db.schema
      .createTable('aggregates')
      .addColumn('id', 'integer', (c) => c.primaryKey())
      .addColumn('uuid', 'text', (c) => c.notNull().unique())
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('updated_at', 'text')
      .addColumn('deleted_at', 'text')
      .addColumn('deleted', 'integer', (c) => c.notNull().defaultTo(0))
      .execute()
    await db.schema
      .createTable('aggregate_hosts')
      .addColumn('aggregate_id', 'integer', (c) => c.notNull())
      .addColumn('host', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint('aggregate_hosts_pk', ['aggregate_id', 'host'])
      .execute()
    await db.schema
      .createTable('aggregate_metadata')
      .addColumn('aggregate_id', 'integer', (c) => c.notNull())
      .addColumn('key', 'text', (c) => c.notNull())
      .addColumn('value', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint('aggregate_metadata_pk', ['aggregate_id', 'key'])
      .execute()
  },
}
