// Nova's default policy with the new defaults (project reader / member / admin): a reader
// can look, a member can act on its project's servers, an admin can do everything.
import { PolicyNotAuthorized } from '../errors.ts'
import type { AuthContext } from '../identity/identity-service.ts'

export type Role = 'reader' | 'member' | 'admin'

const rank: Record<Role, number> = { reader: 1, member: 2, admin: 3 }

export function hasRole(ctx: AuthContext, needed: Role): boolean {
  if (ctx.isAdmin) return true
  const have = Math.max(0, ...ctx.roles.map((r) => rank[r.name as Role] ?? 0))
  return have >= rank[needed]
}

/** Throws Nova's 403 unless the caller holds `needed` (checked after the 404, as Nova does). */
export function authorize(ctx: AuthContext, rule: string, needed: Role): void {
  if (!hasRole(ctx, needed)) throw new PolicyNotAuthorized(rule)
}
