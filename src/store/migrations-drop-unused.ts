// Seventh migration: two tables nothing ever read or wrote are dropped. `settings` (from the
// initial migration) held nothing; `server_passwords` was for the encrypted password a guest
// would leave for os-server-password, which Skiff (no metadata service) never receives: that
// API reads the server's metadata instead (compute/server-password-metadata.ts).
import type { Kysely, Migration } from 'kysely'

export const dropUnusedTablesMigration: Migration = {
  async up(db: Kysely<any>) {
    await db.schema.dropTable('server_passwords').ifExists().execute()
    await db.schema.dropTable('settings').ifExists().execute()
  },
}
