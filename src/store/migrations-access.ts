// Fourth migration: where a server's SSH is reached (the hypervisor host's forwarded port and the
// booted system's host key), recorded by the agent that runs it, so that every API process can
// answer GET /servers/{id}/access whichever host the server lives on.
import type { Kysely, Migration } from 'kysely'

export const serverAccessMigration: Migration = {
  async up(db: Kysely<any>) {
    await db.schema
      .createTable('server_access')
      .addColumn('server_id', 'text', (c) => c.primaryKey())
      .addColumn('ssh_host', 'text', (c) => c.notNull())
      .addColumn('ssh_port', 'integer', (c) => c.notNull())
      .addColumn('host_key_fingerprint', 'text')
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .execute()
  },
}
