// Keystone's default roles and what they imply (admin implies member, member implies reader), as
// the services' default policies read a token: "role:member" holds for an admin too. Tokens here
// carry only the roles assigned, so the implication is applied when a policy asks.
export type Role = 'reader' | 'member' | 'admin'

const RANK: Record<Role, number> = { reader: 1, member: 2, admin: 3 }

/** True when one of `roleNames` is `needed` or a role that implies it. */
export function holdsRole(roleNames: readonly string[], needed: Role): boolean {
  return roleNames.some((name) => (RANK[name as Role] ?? 0) >= RANK[needed])
}
