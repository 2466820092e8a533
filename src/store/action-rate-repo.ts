// The server-action rate limit counted in the database, so that N API processes on one
// PostgreSQL allow a project the limit once, not N times. The same token bucket as
// api/rate-limit.ts's in-memory one (a minute's worth of burst, refilled evenly), in one
// statement per action: an upsert that takes a token only if the bucket holds one. Time is the
// database's clock, the one clock every process (on any host) shares.
import { sql, type Kysely } from 'kysely'
import type { Database } from './schema.ts'

export class SharedTokenBuckets {
  readonly #db: Kysely<Database>
  readonly #capacity: number
  readonly #perMs: number

  constructor(db: Kysely<Database>, perMinute: number) {
    this.#db = db
    this.#capacity = perMinute
    this.#perMs = perMinute / 60_000
  }

  /** Take one token for `key`: 0 when granted, else the whole seconds to wait for the next one. */
  async take(key: string): Promise<number> {
    const cap = sql`${this.#capacity}::double precision`
    const perMs = sql`${this.#perMs}::double precision`
    const nowMs = sql`(extract(epoch from clock_timestamp()) * 1000)::double precision`
    // The row lock of the upsert serializes two processes taking from one project's bucket.
    const granted = await sql<{ tokens: number }>`
      insert into action_rate_buckets as b (scope, tokens, at_ms) values (${key}, ${cap} - 1, ${nowMs})
      on conflict (scope) do update set
        tokens = least(${cap}, b.tokens + (excluded.at_ms - b.at_ms) * ${perMs}) - 1,
        at_ms = excluded.at_ms
      where least(${cap}, b.tokens + (excluded.at_ms - b.at_ms) * ${perMs}) >= 1
      returning tokens`.execute(this.#db)
    if (granted.rows.length > 0) return 0
    const row = (
      await sql<{ have: number }>`
      select least(${cap}, tokens + (${nowMs} - at_ms) * ${perMs}) as have from action_rate_buckets where scope = ${key}`.execute(this.#db)
    ).rows[0]
    return Math.max(1, Math.ceil((1 - Number(row?.have ?? 0)) / this.#perMs / 1000))
  }
}
