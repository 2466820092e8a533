// Fifth migration: what a server's first boot is given besides its password: the public key of
// its key pair (kept as at create, as Nova keeps key_data, so a rebuild injects it even after the
// key pair is deleted) and its user data. Apart from the servers table, whose rows every list reads.
import type { Kysely, Migration } from 'kysely'

export const serverBootDataMigration: Migration = {
  async up(db: Kysely<any>) {
    await db.schema
      .createTable('server_boot_data')
      .addColumn('server_id', 'text', (c) => c.primaryKey())
      .addColumn('key_data', 'text')
      .addColumn('user_data', 'text')
      .execute()
  },
}
