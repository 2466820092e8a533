// Token revocations across API processes (PostgreSQL). Each process caches validated tokens
// (identity-service.ts); a revocation made through another process reaches this one as a NOTIFY
// sent in the revoking transaction (identity-repo.ts: DELETE /v3/auth/tokens, a password change
// or `skiff credentials --reset`), and the cached entry goes at once.
//
// A notification sent while the LISTEN connection is down is lost. So while it is down (and
// until it listens again) the cache is emptied and keeps a validation at most NOT_LISTENING_MS:
// a revocation is then seen within that bound all the same, at the price of a lookup a second.
import type { Logger } from 'pino'
import type { Store } from '../store/db.ts'
import { REVOCATIONS_CHANNEL } from '../store/identity-repo.ts'
import type { IdentityService } from './identity-service.ts'

/** The bound on a revocation's reach while this process cannot hear NOTIFY. */
export const NOT_LISTENING_MS = 1000

/** Follow revocations made by other processes; returns the stop. Nothing to do on SQLite (one process). */
export async function followRevocations(store: Store, identity: IdentityService, logger: Logger): Promise<() => Promise<void>> {
  if (!store.listen) return async () => {}
  const normal = identity.cacheMs
  let listening = false
  identity.cacheMs = () => (listening ? normal() : NOT_LISTENING_MS)
  const onMessage = (payload: string) => {
    // '' after a reconnect: what was sent meanwhile is lost, so nothing cached before is trusted.
    if (payload.startsWith('t:')) identity.forgetCached(payload.slice(2))
    else identity.forgetCached()
  }
  const onState = (up: boolean) => {
    if (listening === up) return
    listening = up
    identity.forgetCached()
    if (up) logger.info('listening for token revocations again')
    else logger.warn(`lost the connection that hears token revocations: validated tokens are cached ${NOT_LISTENING_MS} ms until it is back`)
  }
  const stop = await store.listen(REVOCATIONS_CHANNEL, onMessage, onState)
  listening = true
  return async () => {
    await stop()
    identity.cacheMs = normal
  }
}
