// Image data in the database: `image_chunks(image_id, seq, data)`, written by one transaction per
// upload (with the caller's status flip) and read one chunk at a time. On PostgreSQL a live
// upload holds an advisory lock until its commit, so that another process starting up can tell
// a running upload from one cut short.
import { PostgresAdapter, sql, type Kysely } from 'kysely'
import type { Database, Db } from './schema.ts'

/** Appends the next chunk of the upload in progress. */
export type AppendChunk = (chunk: Uint8Array) => Promise<void>

export class ImageChunksRepo {
  readonly #db: Kysely<Database>
  readonly postgres: boolean

  constructor(db: Kysely<Database>) {
    this.#db = db
    this.postgres = db.getExecutor().adapter instanceof PostgresAdapter
  }

  /**
   * One transaction: the upload lock, the chunks an earlier upload of this id left dropped, then
   * `write` appends the new ones (and flips the status on `trx`). A throw rolls it all back.
   */
  async write<T>(imageId: string, write: (append: AppendChunk, trx: Db) => Promise<T>): Promise<T> {
    return this.#db.transaction().execute(async (trx) => {
      await this.#lock(trx, imageId)
      await trx.deleteFrom('image_chunks').where('image_id', '=', imageId).execute()
      return write(this.#appender(trx, imageId), trx)
    })
  }

  /** As write, but only for an image that has no chunk yet (a copy another process may be making too). */
  async writeIfEmpty(imageId: string, write: (append: AppendChunk) => Promise<void>): Promise<void> {
    await this.#db.transaction().execute(async (trx) => {
      await this.#lock(trx, imageId)
      if (await trx.selectFrom('image_chunks').select('seq').where('image_id', '=', imageId).limit(1).executeTakeFirst()) return
      await write(this.#appender(trx, imageId))
    })
  }

  async chunk(imageId: string, seq: number): Promise<Buffer | undefined> {
    const row = await this.#db
      .selectFrom('image_chunks')
      .select('data')
      .where('image_id', '=', imageId)
      .where('seq', '=', seq)
      .executeTakeFirst()
    return row ? Buffer.from(row.data) : undefined
  }

  async deleteAll(imageId: string): Promise<void> {
    await this.#db.deleteFrom('image_chunks').where('image_id', '=', imageId).execute()
  }

  /** Size and checksums of an active image (what copied data must match). */
  async activeSums(imageId: string): Promise<{ size: number | null; checksum: string | null; os_hash_value: string | null } | undefined> {
    return this.#db
      .selectFrom('images')
      .select(['size', 'checksum', 'os_hash_value'])
      .where('id', '=', imageId)
      .where('status', '=', 'active')
      .executeTakeFirst()
  }

  #appender(trx: Db, imageId: string): AppendChunk {
    let seq = 0
    return async (chunk) => {
      await trx.insertInto('image_chunks').values({ image_id: imageId, seq: seq++, data: chunk }).execute()
    }
  }

  /** Held until the commit: another process starting up leaves this `saving` image alone. */
  async #lock(trx: Db, imageId: string): Promise<void> {
    if (this.postgres) await sql`select pg_advisory_xact_lock(hashtext(${uploadLockKey(imageId)}))`.execute(trx)
  }
}

/** The advisory lock a live upload of `id` holds on PostgreSQL. */
export function uploadLockKey(id: string): string {
  return `skiff-image-upload:${id}`
}
