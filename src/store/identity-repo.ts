// Keystone's tables: users, projects, roles, role assignments and tokens (stored as hashes).
// The identity service decides (scoping, expiry, the cache of validated tokens); this file holds
// its SQL, and the bootstrap's.
import { sql, type Kysely } from 'kysely'
import type { Dialect } from './db.ts'
import type { Database, Db, ProjectRow, RoleRow, TokenRow, UserRow } from './schema.ts'

/**
 * PostgreSQL channel of token revocations: `t:<token hash>` (one token) or `u:<user id>` (all of
 * a user's), sent in the revoking transaction, so every API process drops what it cached.
 */
export const REVOCATIONS_CHANNEL = 'skiff_revocations'

/** A ping on the revocation channel: each process hears its own, and so knows its LISTEN is alive. */
export async function pingRevocations(db: Kysely<Database>): Promise<void> {
  await sql`select pg_notify(${REVOCATIONS_CHANNEL}, 'p')`.execute(db)
}

/** A user as the admin views show it: everything but the password hash. */
export type UserSummary = Omit<UserRow, 'password_hash'>

/** A role assignment with the names of its user, project and role. */
export interface RoleAssignmentView {
  user_id: string
  project_id: string
  role_id: string
  role_name: string
  user_name: string
  user_domain_id: string
  project_name: string
  project_domain_id: string
}

const USER_SUMMARY = ['id', 'name', 'domain_id', 'default_project_id', 'enabled'] as const

export class IdentityRepo {
  readonly #db: Kysely<Database>
  readonly #dialect: Dialect

  constructor(db: Kysely<Database>, dialect: Dialect = 'sqlite') {
    this.#db = db
    this.#dialect = dialect
  }

  /** Tell the other API processes (delivered when `trx` commits; SQLite has no others). */
  async #notifyRevoked(trx: Db, payload: string): Promise<void> {
    if (this.#dialect === 'postgres') await sql`select pg_notify(${REVOCATIONS_CHANNEL}, ${payload})`.execute(trx)
  }

  // Users

  async user(id: string): Promise<UserRow | undefined> {
    return this.#db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst()
  }

  async userByName(name: string, domainId: string): Promise<UserRow | undefined> {
    return this.#db.selectFrom('users').selectAll().where('name', '=', name).where('domain_id', '=', domainId).executeTakeFirst()
  }

  async userSummary(id: string): Promise<UserSummary | undefined> {
    return this.#db.selectFrom('users').select(USER_SUMMARY).where('id', '=', id).executeTakeFirst()
  }

  async listUsers(filter: { name?: string; domainId?: string }): Promise<UserSummary[]> {
    let q = this.#db.selectFrom('users').select(USER_SUMMARY).orderBy('name')
    if (filter.name !== undefined) q = q.where('name', '=', filter.name)
    if (filter.domainId !== undefined) q = q.where('domain_id', '=', filter.domainId)
    return q.execute()
  }

  /** Which of `names` are users (in any domain). */
  async userNamesIn(names: readonly string[]): Promise<string[]> {
    if (names.length === 0) return []
    return (await this.#db.selectFrom('users').select('name').where('name', 'in', names).execute()).map((r) => r.name)
  }

  async insertUser(row: UserRow): Promise<void> {
    await this.#db.insertInto('users').values(row).execute()
  }

  /** A new password hash, and every token of the user revoked (as Keystone does), in one transaction. */
  async setPassword(userId: string, passwordHash: string): Promise<void> {
    await this.#db.transaction().execute(async (trx) => {
      await trx.updateTable('users').set({ password_hash: passwordHash }).where('id', '=', userId).execute()
      await trx.updateTable('tokens').set({ revoked: 1 }).where('user_id', '=', userId).execute()
      await this.#notifyRevoked(trx, `u:${userId}`)
    })
  }

  // Projects

  async project(id: string): Promise<ProjectRow | undefined> {
    return this.#db.selectFrom('projects').selectAll().where('id', '=', id).executeTakeFirst()
  }

  /** Only what a token's validation needs of its project. */
  async projectNameAndEnabled(id: string): Promise<Pick<ProjectRow, 'name' | 'enabled'> | undefined> {
    return this.#db.selectFrom('projects').select(['name', 'enabled']).where('id', '=', id).executeTakeFirst()
  }

  async projectByName(name: string, domainId: string): Promise<ProjectRow | undefined> {
    return this.#db.selectFrom('projects').selectAll().where('name', '=', name).where('domain_id', '=', domainId).executeTakeFirst()
  }

  async listProjects(filter: { name?: string; domainId?: string }): Promise<ProjectRow[]> {
    let q = this.#db.selectFrom('projects').selectAll().orderBy('name')
    if (filter.name !== undefined) q = q.where('name', '=', filter.name)
    if (filter.domainId !== undefined) q = q.where('domain_id', '=', filter.domainId)
    return q.execute()
  }

  /** The projects the user has a role on, by name. */
  async projectsOfUser(userId: string): Promise<ProjectRow[]> {
    return this.#db
      .selectFrom('projects')
      .selectAll()
      .where('id', 'in', this.#db.selectFrom('role_assignments').select('project_id').where('user_id', '=', userId))
      .orderBy('name')
      .execute()
  }

  async insertProject(row: ProjectRow): Promise<void> {
    await this.#db.insertInto('projects').values(row).execute()
  }

  // Roles and role assignments

  async role(id: string): Promise<RoleRow | undefined> {
    return this.#db.selectFrom('roles').selectAll().where('id', '=', id).executeTakeFirst()
  }

  async roleByName(name: string): Promise<RoleRow | undefined> {
    return this.#db.selectFrom('roles').selectAll().where('name', '=', name).executeTakeFirst()
  }

  async listRoles(filter: { name?: string }): Promise<RoleRow[]> {
    let q = this.#db.selectFrom('roles').selectAll().orderBy('name')
    if (filter.name !== undefined) q = q.where('name', '=', filter.name)
    return q.execute()
  }

  async insertRole(row: RoleRow): Promise<void> {
    await this.#db.insertInto('roles').values(row).execute()
  }

  /** The user's roles on the project (null: on any project), by name; a role held twice comes twice. */
  async rolesOn(userId: string, projectId: string | null): Promise<{ id: string; name: string }[]> {
    let q = this.#db
      .selectFrom('role_assignments')
      .innerJoin('roles', 'roles.id', 'role_assignments.role_id')
      .select(['roles.id', 'roles.name'])
      .where('role_assignments.user_id', '=', userId)
      .orderBy('roles.name')
    if (projectId !== null) q = q.where('role_assignments.project_id', '=', projectId)
    return q.execute()
  }

  /** Whether the user has any role on anything. */
  async hasAnyRole(userId: string): Promise<boolean> {
    return (await this.#db.selectFrom('role_assignments').select('role_id').where('user_id', '=', userId).executeTakeFirst()) !== undefined
  }

  async listRoleAssignments(filter: { userId?: string; projectId?: string; roleId?: string }): Promise<RoleAssignmentView[]> {
    let q = this.#db
      .selectFrom('role_assignments')
      .innerJoin('roles', 'roles.id', 'role_assignments.role_id')
      .innerJoin('users', 'users.id', 'role_assignments.user_id')
      .innerJoin('projects', 'projects.id', 'role_assignments.project_id')
      .select([
        'role_assignments.user_id',
        'role_assignments.project_id',
        'role_assignments.role_id',
        'roles.name as role_name',
        'users.name as user_name',
        'users.domain_id as user_domain_id',
        'projects.name as project_name',
        'projects.domain_id as project_domain_id',
      ])
      .orderBy('users.name')
      .orderBy('projects.name')
      .orderBy('roles.name')
    if (filter.userId !== undefined) q = q.where('role_assignments.user_id', '=', filter.userId)
    if (filter.projectId !== undefined) q = q.where('role_assignments.project_id', '=', filter.projectId)
    if (filter.roleId !== undefined) q = q.where('role_assignments.role_id', '=', filter.roleId)
    return q.execute()
  }

  /** Give the user the role on the project, unless it has it already. */
  async assignRole(userId: string, projectId: string, roleId: string): Promise<void> {
    const has = await this.#db
      .selectFrom('role_assignments')
      .select('user_id')
      .where('user_id', '=', userId)
      .where('project_id', '=', projectId)
      .where('role_id', '=', roleId)
      .executeTakeFirst()
    if (!has) await this.#db.insertInto('role_assignments').values({ user_id: userId, project_id: projectId, role_id: roleId }).execute()
  }

  // Tokens (by the sha256 of the token: the token itself is never stored)

  async insertToken(row: TokenRow): Promise<void> {
    await this.#db.insertInto('tokens').values(row).execute()
  }

  async tokenByHash(tokenHash: string): Promise<TokenRow | undefined> {
    return this.#db.selectFrom('tokens').selectAll().where('token_hash', '=', tokenHash).executeTakeFirst()
  }

  /** Revoke the token; false if it is unknown or was revoked already. */
  async revokeToken(tokenHash: string): Promise<boolean> {
    return this.#db.transaction().execute(async (trx) => {
      const r = await trx
        .updateTable('tokens')
        .set({ revoked: 1 })
        .where('token_hash', '=', tokenHash)
        .where('revoked', '=', 0)
        .executeTakeFirst()
      if (r.numUpdatedRows === 0n) return false
      await this.#notifyRevoked(trx, `t:${tokenHash}`)
      return true
    })
  }

  /** Drop tokens that expired before `before` (ISO). */
  async deleteTokensExpiredBefore(before: string): Promise<void> {
    await this.#db.deleteFrom('tokens').where('expires_at', '<', before).execute()
  }
}
