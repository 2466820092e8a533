// Host aggregates (os-aggregates): rows, their hosts and metadata. An aggregate's
// `availability_zone` metadata key makes its hosts that zone (read by compute/aggregate-service.ts).
import { randomUUID } from 'node:crypto'
import { sql, type Kysely } from 'kysely'
import type { Dialect } from './db.ts'
import type { AggregateRow, Database, Db, Tx } from './schema.ts'

export interface Aggregate extends AggregateRow {
  hosts: string[]
  metadata: Record<string, string>
}

export class AggregatesRepo {
  readonly #db: Kysely<Database>
  readonly #dialect: Dialect

  constructor(db: Kysely<Database>, dialect: Dialect) {
    this.#db = db
    this.#dialect = dialect
  }

  /** Changes to aggregates one at a time (names unique, ids in order): PostgreSQL's advisory lock; SQLite's one writer. */
  async transaction<T>(fn: (trx: Tx) => Promise<T>): Promise<T> {
    return this.#db.transaction().execute(async (trx) => {
      if (this.#dialect === 'postgres') await sql`select pg_advisory_xact_lock(hashtext('skiff-aggregates'))`.execute(trx)
      return fn(trx)
    })
  }

  /** Every aggregate that is not deleted, by id, with its hosts and metadata. */
  async list(db: Db = this.#db): Promise<Aggregate[]> {
    const rows = await db.selectFrom('aggregates').selectAll().where('deleted', '=', 0).orderBy('id').execute()
    return this.#complete(rows, db)
  }

  async get(id: number, db: Db = this.#db): Promise<Aggregate | undefined> {
    const row = await db.selectFrom('aggregates').selectAll().where('id', '=', id).where('deleted', '=', 0).executeTakeFirst()
    return row ? (await this.#complete([row], db))[0] : undefined
  }

  async byName(name: string, db: Db = this.#db): Promise<AggregateRow | undefined> {
    return db.selectFrom('aggregates').selectAll().where('name', '=', name).where('deleted', '=', 0).executeTakeFirst()
  }

  /**
   * A new aggregate: its id the next integer (as Nova's autoincrement; a deleted aggregate's id is
   * not given again). In the caller's transaction, with the name checked there.
   */
  async insert(name: string, metadata: Record<string, string>, now: string, db: Db): Promise<number> {
    const max = await db
      .selectFrom('aggregates')
      .select((eb) => eb.fn.max<number | string | null>('id').as('m'))
      .executeTakeFirstOrThrow()
    const id = Number(max.m ?? 0) + 1
    await db
      .insertInto('aggregates')
      .values({ id, uuid: randomUUID(), name, created_at: now, updated_at: null, deleted_at: null, deleted: 0 })
      .execute()
    for (const [key, value] of Object.entries(metadata))
      await db.insertInto('aggregate_metadata').values({ aggregate_id: id, key, value }).execute()
    return id
  }

  async rename(id: number, name: string, now: string, db: Db = this.#db): Promise<void> {
    await db.updateTable('aggregates').set({ name, updated_at: now }).where('id', '=', id).execute()
  }

  async touch(id: number, now: string, db: Db = this.#db): Promise<void> {
    await db.updateTable('aggregates').set({ updated_at: now }).where('id', '=', id).execute()
  }

  /** Set keys; a null value removes its key (Nova's update_metadata). */
  async setMetadata(id: number, metadata: Record<string, string | null>, db: Db = this.#db): Promise<void> {
    for (const [key, value] of Object.entries(metadata)) {
      await db.deleteFrom('aggregate_metadata').where('aggregate_id', '=', id).where('key', '=', key).execute()
      if (value !== null) await db.insertInto('aggregate_metadata').values({ aggregate_id: id, key, value }).execute()
    }
  }

  async addHost(id: number, host: string, db: Db = this.#db): Promise<void> {
    await db.insertInto('aggregate_hosts').values({ aggregate_id: id, host }).execute()
  }

  /** False if the host was not in the aggregate. */
  async removeHost(id: number, host: string, db: Db = this.#db): Promise<boolean> {
    const r = await db.deleteFrom('aggregate_hosts').where('aggregate_id', '=', id).where('host', '=', host).executeTakeFirst()
    return r.numDeletedRows !== 0n
  }

  /** Soft delete (Nova keeps the row, deleted = id); its metadata goes. */
  async delete(id: number, now: string, db: Db = this.#db): Promise<void> {
    await db.updateTable('aggregates').set({ deleted: 1, deleted_at: now }).where('id', '=', id).execute()
    await db.deleteFrom('aggregate_metadata').where('aggregate_id', '=', id).execute()
  }

  async #complete(rows: AggregateRow[], db: Db): Promise<Aggregate[]> {
    if (rows.length === 0) return []
    const ids = rows.map((r) => r.id)
    const [hosts, meta] = await Promise.all([
      db.selectFrom('aggregate_hosts').selectAll().where('aggregate_id', 'in', ids).orderBy('host').execute(),
      db.selectFrom('aggregate_metadata').selectAll().where('aggregate_id', 'in', ids).orderBy('key').execute(),
    ])
    return rows.map((r) => ({
      ...r,
      id: Number(r.id),
      deleted: Number(r.deleted),
      hosts: hosts.filter((h) => Number(h.aggregate_id) === Number(r.id)).map((h) => h.host),
      metadata: Object.fromEntries(meta.filter((m) => Number(m.aggregate_id) === Number(r.id)).map((m) => [m.key, m.value])),
    }))
  }
}
