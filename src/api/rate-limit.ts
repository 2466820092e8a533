// Rate limit on server actions: one token bucket per project, `perMinute` tokens refilled evenly,
// holding at most a minute's worth (so a quiet project may burst that many at once).
//
// On SQLite (one process) the buckets live in memory. On PostgreSQL every API process takes from
// the same buckets, rows in the database (store/action-rate-repo.ts, one statement per action),
// so N processes allow the limit once. Over the limit the answer is Nova's legacy rate-limit fault, 413 with `retryAfter` and a
// `Retry-After` header, and the request goes no further (nothing changes on the server).
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { OverLimit } from '../errors.ts'
import { holdsRole } from '../identity/roles.ts'
import { scopeOf } from './idempotency.ts'
import { addRouteHooks } from './route-hooks.ts'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Routes that take a token from the project's bucket (server actions). */
    rateLimited?: boolean
  }
}

interface Bucket {
  tokens: number
  at: number
}

/** Per-key token buckets; `now` in milliseconds, injectable for tests. */
export class TokenBuckets {
  readonly #capacity: number
  readonly #perMs: number
  readonly #now: () => number
  readonly #buckets = new Map<string, Bucket>()
  #lastSweep: number

  constructor(perMinute: number, now: () => number = () => performance.now()) {
    this.#capacity = perMinute
    this.#perMs = perMinute / 60_000
    this.#now = now
    this.#lastSweep = now()
  }

  /** Take one token for `key`: 0 when granted, else the whole seconds to wait for the next one. */
  take(key: string): number {
    const now = this.#now()
    this.#sweep(now)
    const b = this.#buckets.get(key) ?? { tokens: this.#capacity, at: now }
    b.tokens = Math.min(this.#capacity, b.tokens + (now - b.at) * this.#perMs)
    b.at = now
    this.#buckets.set(key, b)
    if (b.tokens >= 1) {
      b.tokens -= 1
      return 0
    }
    return Math.max(1, Math.ceil((1 - b.tokens) / this.#perMs / 1000))
  }

  /** Once a minute, forget buckets that have refilled: a new bucket starts full anyway. */
  #sweep(now: number) {
    if (now - this.#lastSweep < 60_000) return
    this.#lastSweep = now
    for (const [key, b] of this.#buckets) {
      if (b.tokens + (now - b.at) * this.#perMs >= this.#capacity) this.#buckets.delete(key)
    }
  }
}

/** Where the tokens are taken: 0 when granted, else the whole seconds to wait. */
export interface ActionBuckets {
  take(key: string): number | Promise<number>
}

/**
 * Limit routes with `config.rateLimited` to `perMinute` requests per project; 0 turns it off.
 * `buckets`: shared ones (PostgreSQL); by default this process's, in memory.
 */
export function installActionRateLimit(
  app: FastifyInstance,
  opts: { perMinute: number; now?: () => number; buckets?: ActionBuckets | undefined },
) {
  if (opts.perMinute <= 0) return
  const buckets = opts.buckets ?? new TokenBuckets(opts.perMinute, opts.now)
  // Only on the routes that set `rateLimited: true` (route-hooks.ts). preValidation: after every
  // onRequest hook (authentication, microversion), before the idempotency check and the handler.
  // A replayed retry takes a token too: it is still a request.
  const preValidation = async (req: FastifyRequest) => {
    // Every server action needs member: a reader's request is refused by policy anyway, and must
    // not spend the project's budget (a reader could otherwise lock its members out).
    if (
      !holdsRole(
        req.auth.roles.map((r) => r.name),
        'member',
      )
    )
      return
    const wait = await buckets.take(scopeOf(req))
    // Nova's legacy limits middleware: 413 overLimit, "This request was rate-limited."
    if (wait > 0) throw new OverLimit('This request was rate-limited.', wait)
  }
  addRouteHooks(app, 'rateLimited', { preValidation })
}
