// Sixth migration: only agents hold drivers, so what the API used to ask its own driver goes
// through the database. Fault rules of the simulated hypervisor (created through any API
// process, read by every agent) with a version that moves when a rule is added or removed, and
// the answers agents give to tasks the API waits for (console output).
import type { Kysely, Migration } from 'kysely'

export const agentsOwnDriversMigration: Migration = {
  async up(db: Kysely<any>) {
    await db.schema
      .createTable('simulator_faults')
      .addColumn('id', 'text', (c) => c.primaryKey())
      // Creation order (the version the rule's creation moved to): the order rules are listed in.
      .addColumn('seq', 'bigint', (c) => c.notNull())
      .addColumn('operation', 'text', (c) => c.notNull())
      .addColumn('server_id', 'text')
      .addColumn('error', 'text')
      .addColumn('delay_ms', 'integer')
      .addColumn('hang', 'integer', (c) => c.notNull().defaultTo(0))
      // Uses left; null: forever.
      .addColumn('remaining', 'integer')
      .addColumn('created_at', 'text', (c) => c.notNull())
      .execute()
    await db.schema
      .createTable('simulator_faults_version')
      .addColumn('id', 'integer', (c) => c.primaryKey())
      .addColumn('version', 'bigint', (c) => c.notNull())
      .execute()
    await db.insertInto('simulator_faults_version').values({ id: 1, version: 0 }).execute()

    await db.schema
      .createTable('task_replies')
      .addColumn('task_id', 'text', (c) => c.primaryKey())
      // Null until the agent answered; then the value (JSON) or the error message.
      .addColumn('answered_at', 'text')
      .addColumn('value', 'text')
      .addColumn('error', 'text')
      .addColumn('created_at', 'text', (c) => c.notNull())
      .execute()
  },
}
