// Cinder's default policy (the project reader / member / admin personas): a reader of the project
// may look, a member may create, change and delete its project's volumes and snapshots, an admin
// anything; quotas are changed by admins. Another project's volume is not found (404), as
// Cinder's database query is scoped to the caller's project.
import type { AuthContext } from '../identity/identity-service.ts'
import { holdsRole, type Role } from '../identity/roles.ts'
import { VolumePolicyNotAuthorized } from './errors.ts'

export function authorize(ctx: AuthContext, rule: string, needed: Role): void {
  if (ctx.isAdmin) return
  if (
    !holdsRole(
      ctx.roles.map((r) => r.name),
      needed,
    )
  )
    throw new VolumePolicyNotAuthorized(rule)
}

/** May the caller see a resource of `projectId` at all (else: 404)? */
export const sees = (ctx: AuthContext, projectId: string) => ctx.isAdmin || ctx.projectId === projectId
