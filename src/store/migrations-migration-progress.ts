// Migration 0032: a live migration's progress as its copy last reported it (Nova's migration
// memory_total/processed/remaining and disk_total/processed/remaining, saved by the libvirt
// driver's monitor): a JSON object of those six byte counts; null until the copy reported any.
import type { Kysely, Migration } from 'kysely'

export const migrationProgressMigration: Migration = {
  async up(db: Kysely<any>) {
    await db.schema.alterTable('migrations').addColumn('progress', 'text').execute()
  },
}
