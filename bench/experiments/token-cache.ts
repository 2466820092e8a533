// Experiment, not a fix: what a short-lived cache of validated tokens would gain (keystonemiddleware
// caches a validated token for token_cache_time = 300 s; here 30 s, and never past its expiry).
// Validation is 4 queries + a sha256 on every request; revoke() drops the entry, so in one
// process a revoked token stops working at once. Preloaded into the Skiff child:
// `api-read.ts --preload bench/experiments/token-cache.ts`.
import { IdentityService, type AuthContext } from '../../src/identity/identity-service.ts'

const TTL_MS = 30_000
const cache = new Map<string, { ctx: AuthContext; until: number }>()
const proto = IdentityService.prototype as unknown as {
  validate(token: string | undefined): Promise<AuthContext | null>
  revoke(token: string): Promise<boolean>
}
const validate = proto.validate
const revoke = proto.revoke

proto.validate = async function (this: IdentityService, token: string | undefined) {
  const now = Date.now()
  const hit = token ? cache.get(token) : undefined
  if (hit && hit.until > now) return hit.ctx
  const ctx = await validate.call(this, token)
  if (ctx && token) {
    if (cache.size > 10_000) cache.clear()
    cache.set(token, { ctx, until: Math.min(now + TTL_MS, new Date(ctx.expiresAt).getTime()) })
  }
  return ctx
}
proto.revoke = async function (this: IdentityService, token: string) {
  cache.delete(token)
  return revoke.call(this, token)
}
