// Second migration: rescue records, idempotency keys and agent hosts.
import type { Kysely, Migration } from 'kysely'

export const rescueMigration: Migration = {
  async up(db: Kysely<any>) {
    // One row per rescue of a server (kept after unrescue, with ended_at, as history).
    await db.schema
      .createTable('rescues')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('server_id', 'text', (c) => c.notNull())
      .addColumn('image_id', 'text', (c) => c.notNull())
      .addColumn('request_id', 'text', (c) => c.notNull())
      .addColumn('user_id', 'text', (c) => c.notNull())
      .addColumn('public_keys', 'text', (c) => c.notNull().defaultTo('[]'))
      .addColumn('auto_unrescue_seconds', 'integer')
      .addColumn('requested_at', 'text', (c) => c.notNull())
      .addColumn('rescued_at', 'text')
      .addColumn('expires_at', 'text')
      .addColumn('host_key_fingerprint', 'text')
      .addColumn('ended_at', 'text')
      .execute()
    await db.schema.createIndex('rescues_server').on('rescues').columns(['server_id', 'requested_at']).execute()
    await db.schema.createIndex('rescues_expiry').on('rescues').columns(['ended_at', 'expires_at']).execute()

    // Replies to requests sent with an Idempotency-Key; secrets in them are sealed with a key
    // derived from the client's Idempotency-Key, which is itself stored only as a hash.
    await db.schema
      .createTable('idempotency_keys')
      .addColumn('key_hash', 'text', (c) => c.primaryKey())
      .addColumn('project_id', 'text', (c) => c.notNull())
      .addColumn('body_hash', 'text', (c) => c.notNull())
      .addColumn('status', 'integer', (c) => c.notNull())
      .addColumn('response', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('expires_at', 'text', (c) => c.notNull())
      .execute()
    await db.schema.createIndex('idempotency_expiry').on('idempotency_keys').column('expires_at').execute()

    // Agents register their host and heartbeat; a silent host makes actions on its servers 503.
    await db.schema
      .createTable('hosts')
      .addColumn('name', 'text', (c) => c.primaryKey())
      .addColumn('started_at', 'text', (c) => c.notNull())
      .addColumn('heartbeat_at', 'text', (c) => c.notNull())
      .addColumn('driver', 'text', (c) => c.notNull())
      .execute()
  },
}
