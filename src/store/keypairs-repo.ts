// Key pairs, per user: the primary key is (user_id, name).
import type { Kysely } from 'kysely'
import type { Database, KeypairRow } from './schema.ts'

export class KeypairsRepo {
  readonly #db: Kysely<Database>

  constructor(db: Kysely<Database>) {
    this.#db = db
  }

  /** By name, after `marker` (a name), at most `limit` (Nova's paginate_query on name). */
  async list(userId: string, page: { limit?: number; marker?: string } = {}): Promise<KeypairRow[]> {
    let q = this.#db.selectFrom('keypairs').selectAll().where('user_id', '=', userId)
    if (page.marker !== undefined) q = q.where('name', '>', page.marker)
    if (page.limit !== undefined) q = q.limit(page.limit)
    return q.orderBy('name').execute()
  }

  async count(userId: string): Promise<number> {
    const r = await this.#db
      .selectFrom('keypairs')
      .select((eb) => eb.fn.countAll<number | string>().as('n'))
      .where('user_id', '=', userId)
      .executeTakeFirstOrThrow()
    return Number(r.n)
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
