// console_auth_tokens (migration 0023): a serial console URL's token, kept only as its sha256
// with the server, its host and the expiry (as Nova's console_auth_tokens keep token_hash), so
// any process on the database can check a token another one issued.
import { createHash, randomBytes } from 'node:crypto'
import type { Kysely } from 'kysely'
import type { Clock } from '../clock.ts'
import type { Database } from './schema.ts'

/** Nova's [consoleauth] token_ttl default: 600 seconds. */
export const CONSOLE_TOKEN_TTL_SECONDS = 600

const sha256 = (token: string) => createHash('sha256').update(token).digest('hex')

export interface ConsoleTokenRow {
  serverId: string
  host: string
  consoleType: string
}

/** console_auth_tokens: issue, check, purge. */
export class ConsoleTokens {
  readonly #db: Kysely<Database>
  readonly #clock: Clock
  readonly #ttlSeconds: number

  constructor(db: Kysely<Database>, clock: Clock, ttlSeconds = CONSOLE_TOKEN_TTL_SECONDS) {
    this.#db = db
    this.#clock = clock
    this.#ttlSeconds = ttlSeconds
  }

  /** A new token for one server's console on its host (a UUID-sized random string, as Nova's). */
  async issue(t: ConsoleTokenRow): Promise<string> {
    const token = randomBytes(24).toString('base64url')
    const now = this.#clock.now()
    await this.#db
      .insertInto('console_auth_tokens')
      .values({
        token_hash: sha256(token),
        server_id: t.serverId,
        host: t.host,
        console_type: t.consoleType,
        expires_at: new Date(now.getTime() + this.#ttlSeconds * 1000).toISOString(),
      })
      .execute()
    // Expired tokens go as new ones come (no timer: the table holds only minutes of tokens).
    await this.#db.deleteFrom('console_auth_tokens').where('expires_at', '<', now.toISOString()).execute()
    return token
  }

  /** The token's server and host while it is valid (it stays valid until it expires, as Nova's). */
  async check(token: string): Promise<ConsoleTokenRow | undefined> {
    if (!token || token.length > 200) return undefined
    const row = await this.#db
      .selectFrom('console_auth_tokens')
      .selectAll()
      .where('token_hash', '=', sha256(token))
      .where('expires_at', '>', this.#clock.now().toISOString())
      .executeTakeFirst()
    return row && { serverId: row.server_id, host: row.host, consoleType: row.console_type }
  }
}
