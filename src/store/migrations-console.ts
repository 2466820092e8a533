// Migration 0023: the serial console (Nova's console_auth_tokens and the port the agent records).
// A console URL's token is kept only as its sha256 (as Nova keeps token_hash), with the server,
// its host and an expiry, so whichever process serves the serial proxy can check it; the serial
// port's endpoint (qemu: the VM's unix socket chardev) is recorded beside the server's SSH.
import type { Kysely, Migration } from 'kysely'

export const consoleMigration: Migration = {
  async up(db: Kysely<any>) {
    await db.schema
      .createTable('console_auth_tokens')
      .addColumn('token_hash', 'text', (c) => c.primaryKey())
      .addColumn('server_id', 'text', (c) => c.notNull())
      .addColumn('host', 'text', (c) => c.notNull())
      .addColumn('console_type', 'text', (c) => c.notNull())
      .addColumn('expires_at', 'text', (c) => c.notNull())
      .execute()
    await db.schema.createIndex('console_auth_tokens_expires').on('console_auth_tokens').column('expires_at').execute()
    await db.schema.alterTable('server_access').addColumn('serial_endpoint', 'text').execute()
  },
}
