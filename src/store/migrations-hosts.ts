// Third migration: host capacity for the scheduler, and the index its usage query reads.
import type { Kysely, Migration } from 'kysely'

export const hostCapacityMigration: Migration = {
  async up(db: Kysely<any>) {
    await db.schema
      .alterTable('hosts')
      .addColumn('vcpus', 'integer', (c) => c.notNull().defaultTo(0))
      .execute()
    await db.schema
      .alterTable('hosts')
      .addColumn('ram_mb', 'integer', (c) => c.notNull().defaultTo(0))
      .execute()
    await db.schema
      .alterTable('hosts')
      .addColumn('disk_gb', 'integer', (c) => c.notNull().defaultTo(0))
      .execute()
    await db.schema.createIndex('servers_host').on('servers').columns(['host', 'deleted']).execute()
  },
}
