// Token revocations across API processes (PostgreSQL). Each process caches validated tokens
// (identity-service.ts); a revocation made through another process reaches this one as a NOTIFY
// sent in the revoking transaction (identity-repo.ts: DELETE /v3/auth/tokens, a password change
// or `skiff credentials --reset`), and the cached entry goes at once.
//
// A notification sent while the LISTEN connection is down is lost, and a connection cut without
// a reset looks alive for minutes. So each process pings its own channel every PING_MS and
// trusts the connection only while it heard something within HEARD_MS; otherwise the cache is
// emptied and keeps a validation at most NOT_LISTENING_MS, until it hears again. A revocation is
// then seen within about a second however the connection fails.
import type { Logger } from 'pino'
import type { Store } from '../store/db.ts'
import { pingRevocations, REVOCATIONS_CHANNEL } from '../store/identity-repo.ts'
import type { IdentityService } from './identity-service.ts'

/** The cache lifetime while this process cannot be sure to hear revocations. */
export const NOT_LISTENING_MS = 1000
const PING_MS = 250
const HEARD_MS = 750

/** Follow revocations made by other processes; returns the stop. Nothing to do on SQLite (one process). */
export async function followRevocations(store: Store, identity: IdentityService, logger: Logger): Promise<() => Promise<void>> {
  if (!store.listen) return async () => {}
  const normal = identity.cacheMs
  let connected = false
  let trusted = false
  let heardAt = 0
  identity.cacheMs = () => (trusted ? normal() : NOT_LISTENING_MS)
  const distrust = (why: string) => {
    if (!trusted) return
    trusted = false
    identity.forgetCached()
    logger.warn(`${why}: validated tokens are cached ${NOT_LISTENING_MS} ms until revocations are heard again`)
  }
  const onMessage = (payload: string) => {
    heardAt = performance.now()
    if (payload === 'p') {
      if (!trusted && connected) {
        trusted = true
        logger.info('hearing token revocations again')
      }
      return
    }
    // '' after a reconnect: what was sent meanwhile is lost, so nothing cached before is trusted.
    if (payload.startsWith('t:')) identity.forgetCached(payload.slice(2))
    else identity.forgetCached()
  }
  const onState = (up: boolean) => {
    connected = up
    if (!up) distrust('lost the connection that hears token revocations')
  }
  const stop = await store.listen(REVOCATIONS_CHANNEL, onMessage, onState)
  connected = true
  trusted = true
  heardAt = performance.now()
  const ping = setInterval(() => {
    if (trusted && performance.now() - heardAt > HEARD_MS) distrust('heard nothing on the token revocation channel')
    pingRevocations(store.db).catch(() => {})
  }, PING_MS)
  ping.unref()
  return async () => {
    clearInterval(ping)
    await stop()
    identity.cacheMs = normal
  }
}
