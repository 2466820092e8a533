// The accounts the image API tests log in as: alice (member of p1), bob (member of p2) and admin
// (admin in p1), each with a project-scoped token, written straight into a fresh store.
import type { IdentityService } from '../../src/identity/identity-service.ts'
import { hashPassword } from '../../src/identity/password-hashing.ts'
import type { Store } from '../../src/store/db.ts'

export const projects = { p1: 'p1'.padEnd(32, '0'), p2: 'p2'.padEnd(32, '0') }
export type ImageUser = 'alice' | 'bob' | 'admin'

/** Creates the two projects, the roles and the three users; their tokens. */
export async function seedImageAccounts(db: Store['db'], identity: IdentityService): Promise<Record<ImageUser, string>> {
  await db
    .insertInto('projects')
    .values([
      { id: projects.p1, name: 'p1', domain_id: 'default', description: '', enabled: 1 },
      { id: projects.p2, name: 'p2', domain_id: 'default', description: '', enabled: 1 },
    ])
    .execute()
  await db
    .insertInto('roles')
    .values([
      { id: 'r-member', name: 'member' },
      { id: 'r-admin', name: 'admin' },
    ])
    .execute()
  const pw = await hashPassword('secret')
  const users = [
    { name: 'alice', project: projects.p1, role: 'r-member' },
    { name: 'bob', project: projects.p2, role: 'r-member' },
    { name: 'admin', project: projects.p1, role: 'r-admin' },
  ] as const
  const tokens = { alice: '', bob: '', admin: '' }
  for (const u of users) {
    await db
      .insertInto('users')
      .values({ id: `u-${u.name}`, name: u.name, domain_id: 'default', password_hash: pw, default_project_id: u.project, enabled: 1 })
      .execute()
    await db
      .insertInto('role_assignments')
      .values({ user_id: `u-${u.name}`, project_id: u.project, role_id: u.role })
      .execute()
    const { token } = await identity.issueToken({
      identity: { methods: ['password'], password: { user: { id: `u-${u.name}`, password: 'secret' } } },
      scope: { project: { id: u.project } },
    })
    tokens[u.name] = token
  }
  return tokens
}
