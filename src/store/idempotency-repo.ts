// Rows of `idempotency_keys`: a pending claim while a request runs, then its stored answer.
// The key itself never reaches this table, only its hash; sealing secrets is the caller's job.
import type { Kysely } from 'kysely'
import type { Clock } from '../clock.ts'
import type { Database, IdempotencyKeyRow } from './schema.ts'

/** `status` of a row whose request is still running (no HTTP answer is 0). */
export const PENDING_STATUS = 0

export class IdempotencyRepo {
  readonly #db: Kysely<Database>
  readonly #clock: Clock

  constructor(db: Kysely<Database>, clock: Clock) {
    this.#db = db
    this.#clock = clock
  }

  now(): Date {
    return this.#clock.now()
  }

  /**
   * Insert a pending row for `keyHash`, only if there is none: the primary key decides which
   * of two concurrent requests runs (on SQLite and PostgreSQL alike). `owner` marks the row so
   * that only the request that claimed it completes or releases it.
   */
  async claim(c: { keyHash: string; projectId: string; bodyHash: string; owner: string; leaseSeconds: number }): Promise<boolean> {
    const now = this.#clock.now()
    const r = await this.#db
      .insertInto('idempotency_keys')
      .values({
        key_hash: c.keyHash,
        project_id: c.projectId,
        body_hash: c.bodyHash,
        status: PENDING_STATUS,
        response: pendingMarker(c.owner),
        created_at: now.toISOString(),
        expires_at: new Date(now.getTime() + c.leaseSeconds * 1000).toISOString(),
      })
      .onConflict((oc) => oc.column('key_hash').doNothing())
      .executeTakeFirst()
    return r.numInsertedOrUpdatedRows === 1n
  }

  find(keyHash: string): Promise<IdempotencyKeyRow | undefined> {
    return this.#db.selectFrom('idempotency_keys').selectAll().where('key_hash', '=', keyHash).executeTakeFirst()
  }

  /** Replace our pending row by the answer. False if the row is no longer ours (its lease ran out). */
  async complete(keyHash: string, owner: string, status: number, response: string, ttlSeconds: number): Promise<boolean> {
    const now = this.#clock.now()
    const r = await this.#db
      .updateTable('idempotency_keys')
      .set({ status, response, created_at: now.toISOString(), expires_at: new Date(now.getTime() + ttlSeconds * 1000).toISOString() })
      .where('key_hash', '=', keyHash)
      .where('status', '=', PENDING_STATUS)
      .where('response', '=', pendingMarker(owner))
      .executeTakeFirst()
    return r.numUpdatedRows === 1n
  }

  /** Drop our pending row (the request failed): a retry with the same key runs again. */
  async release(keyHash: string, owner: string): Promise<void> {
    await this.#db
      .deleteFrom('idempotency_keys')
      .where('key_hash', '=', keyHash)
      .where('status', '=', PENDING_STATUS)
      .where('response', '=', pendingMarker(owner))
      .execute()
  }

  /** Drop one expired row, only if it is still the one the caller saw expire. */
  async dropExpired(keyHash: string, expiresAt: string): Promise<void> {
    await this.#db.deleteFrom('idempotency_keys').where('key_hash', '=', keyHash).where('expires_at', '=', expiresAt).execute()
  }

  /** Delete every expired row (ISO-8601 UTC strings compare in time order). */
  async purgeExpired(): Promise<number> {
    const r = await this.#db.deleteFrom('idempotency_keys').where('expires_at', '<=', this.#clock.now().toISOString()).executeTakeFirst()
    return Number(r.numDeletedRows)
  }
}

const pendingMarker = (owner: string) => JSON.stringify({ pending: owner })
