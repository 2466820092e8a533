// Migration 0012 (compute microversions 2.11–2.64, the resources beside servers): a server
// group's rules (2.64: anti-affinity's max_server_per_host) and a compute service's
// administrative state (os-services: disabled with a reason, forced_down from 2.11).
import type { Kysely, Migration } from 'kysely'

export const computeMicroversionsMigration: Migration = {
  async up(db: Kysely<any>) {
    // JSON text of the rules ({} for none), as Nova's instance_groups.rules column.
    await db.schema
      .alterTable('server_groups')
      .addColumn('rules', 'text', (c) => c.notNull().defaultTo('{}'))
      .execute()
    await db.schema
      .alterTable('hosts')
      .addColumn('service_disabled', 'integer', (c) => c.notNull().defaultTo(0))
      .execute()
    await db.schema.alterTable('hosts').addColumn('disabled_reason', 'text').execute()
    await db.schema
      .alterTable('hosts')
      .addColumn('forced_down', 'integer', (c) => c.notNull().defaultTo(0))
      .execute()
  },
}
