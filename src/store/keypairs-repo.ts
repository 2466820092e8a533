// Key pairs, per user: the primary key is (user_id, name).
import type { Kysely } from 'kysely'
import type { Database, KeypairRow } from './schema.ts'

export class KeypairsRepo {
  readonly #db: Kysely<Database>

  constructor(db: Kysely<Database>) {
    this.#db = db
  }

  async list(userId: string): Promise<KeypairRow[]> {
    return this.#db.selectFrom('keypairs').selectAll().where('user_id', '=', userId).orderBy('name').execute()
  }

  async find(userId: string, name: string): Promise<KeypairRow | undefined> {
    return this.#db.selectFrom('keypairs').selectAll().where('user_id', '=', userId).where('name', '=', name).executeTakeFirst()
  }

  /** Throws if the user has a key pair of that name (the primary key). */
  async insert(row: KeypairRow): Promise<void> {
    await this.#db.insertInto('keypairs').values(row).execute()
  }

  /** False if there was no such key pair. */
  async delete(userId: string, name: string): Promise<boolean> {
    const r = await this.#db.deleteFrom('keypairs').where('user_id', '=', userId).where('name', '=', name).executeTakeFirst()
    return r.numDeletedRows !== 0n
  }
}
