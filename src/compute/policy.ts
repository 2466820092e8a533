// Nova's default policy with the new defaults (project reader / member / admin): a reader
// can look, a member can act on its project's servers, an admin can do everything.
import { PolicyNotAuthorized } from '../errors.ts'
import type { AuthContext } from '../identity/identity-service.ts'
import { holdsRole, type Role } from '../identity/roles.ts'

export type { Role }

export function hasRole(ctx: AuthContext, needed: Role): boolean {
  return (
    ctx.isAdmin ||
    holdsRole(
      ctx.roles.map((r) => r.name),
      needed,
    )
  )
}

/** Throws Nova's 403 unless the caller holds `needed` (checked after the 404, as Nova does). */
export function authorize(ctx: AuthContext, rule: string, needed: Role): void {
  if (!hasRole(ctx, needed)) throw new PolicyNotAuthorized(rule)
}

/**
 * Skiff acting on its own (a rescue's auto-exit, a shelved server's offload): an admin of the
 * server's project, whose user id names what acted in the instance actions.
 */
export function systemContext(projectId: string, actor: string): AuthContext {
  const now = new Date().toISOString()
  return {
    userId: actor,
    userName: 'skiff',
    projectId,
    projectName: null,
    domainScopeId: null,
    roles: [{ id: 'admin', name: 'admin' }],
    isAdmin: true,
    methods: [],
    auditId: '',
    issuedAt: now,
    expiresAt: now,
  }
}
