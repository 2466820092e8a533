// Keystone v3 semantics: authentication (password, token), scoping, tokens, and the
// read-only admin views (projects, users, roles, role assignments).
import * as crypto from 'node:crypto'
import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto'
import type { Clock } from '../clock.ts'
import { isoMicrosZ } from '../clock.ts'
import { BadRequest, NotFound, Unauthorized } from '../errors.ts'
import type { IdentityRepo } from '../store/identity-repo.ts'
import type { UserRow } from '../store/schema.ts'
import { verifyPassword } from './password-hashing.ts'

export const DEFAULT_DOMAIN = { id: 'default', name: 'Default' } as const

export interface AuthContext {
  userId: string
  userName: string
  projectId: string | null
  projectName: string | null
  domainScopeId: string | null
  roles: { id: string; name: string }[]
  isAdmin: boolean
  methods: string[]
  auditId: string
  issuedAt: string
  expiresAt: string
}

/** What the client sent in `auth` (already schema-checked). */
export interface AuthRequest {
  identity: {
    methods: string[]
    password?: { user: { id?: string; name?: string; password: string; domain?: { id?: string; name?: string } } }
    token?: { id: string }
  }
  scope?:
    | {
        project?: { id?: string; name?: string; domain?: { id?: string; name?: string } }
        domain?: { id?: string; name?: string }
      }
    | 'unscoped'
}

// crypto.hash (Node 20.12; read off the namespace, as older 20.x lack it) is the one-shot form:
// no Hash object per request, a third of the CPU.
const oneShot = (crypto as Partial<typeof crypto>).hash
const hashToken: (token: string) => string =
  typeof oneShot === 'function' ? (token) => oneShot('sha256', token, 'hex') : (token) => createHash('sha256').update(token).digest('hex')

/**
 * Validated tokens are remembered for a short while, as keystonemiddleware does (it keeps them
 * 300 s): four queries per request otherwise. A revocation through this process takes effect at
 * once; one through another API process when its NOTIFY arrives (token-revocations.ts), which
 * also shortens `cacheMs` while it cannot hear them.
 */
const CACHE_MS = 30_000
const CACHE_MAX = 10_000

export class IdentityService {
  readonly #repo: IdentityRepo
  readonly #clock: Clock
  readonly #ttlSeconds: number
  readonly #cache = new Map<string, { ctx: AuthContext; until: number }>()
  /** Counts forgetCached calls: a lookup that overlapped one does not cache its answer. */
  #forgets = 0

  constructor(repo: IdentityRepo, clock: Clock, ttlSeconds: number) {
    this.#repo = repo
    this.#clock = clock
    this.#ttlSeconds = ttlSeconds
  }

  /** POST /v3/auth/tokens: returns the new token and its context. */
  async issueToken(auth: AuthRequest): Promise<{ token: string; context: AuthContext }> {
    const methods = auth.identity.methods
    let user: UserRow
    let expiresAt: string | undefined
    let auditMethods = methods
    if (methods.includes('password')) {
      const pw = auth.identity.password
      if (!pw) throw new BadRequest('Invalid input for field identity/password: required')
      user = await this.#findUserForPassword(pw.user)
      if (!(await verifyPassword(pw.user.password, user.password_hash))) throw new Unauthorized()
    } else if (methods.includes('token')) {
      const tok = auth.identity.token
      if (!tok) throw new BadRequest('Invalid input for field identity/token: required')
      const ctx = await this.validate(tok.id)
      if (!ctx) throw new Unauthorized()
      const row = await this.#repo.user(ctx.userId)
      if (!row) throw new Unauthorized()
      user = row
      // A token obtained from a token keeps the original expiry (Keystone does the same).
      expiresAt = ctx.expiresAt
      auditMethods = [...new Set([...ctx.methods, 'token'])]
    } else {
      throw new Unauthorized(`The request you have made requires authentication.`)
    }
    if (!user.enabled) throw new Unauthorized()

    const scope = await this.#resolveScope(user, auth.scope)
    const now = this.#clock.now()
    const issuedAt = now.toISOString()
    expiresAt ??= new Date(now.getTime() + this.#ttlSeconds * 1000).toISOString()
    const token = 'sk' + randomBytes(32).toString('base64url')
    const auditId = randomBytes(16).toString('base64url').slice(0, 22)
    await this.#repo.insertToken({
      token_hash: hashToken(token),
      user_id: user.id,
      project_id: scope.projectId,
      domain_id: scope.domainScopeId,
      methods: JSON.stringify(auditMethods),
      audit_id: auditId,
      issued_at: issuedAt,
      expires_at: expiresAt,
      revoked: 0,
    })
    const context = await this.#context(user, scope, auditMethods, auditId, issuedAt, expiresAt)
    return { token, context }
  }

  /**
   * The context of a token validated a moment ago (the cache below), without waiting: the
   * authentication hook answers most requests from it synchronously. undefined: ask validate().
   */
  cachedContext(token: string | undefined): AuthContext | undefined {
    if (!token || token.length > 512) return undefined
    const cached = this.#cache.get(hashToken(token))
    return cached && cached.until > this.#clock.now().getTime() ? cached.ctx : undefined
  }

  /** The context of a valid, unexpired, unrevoked token; null otherwise. */
  async validate(token: string | undefined): Promise<AuthContext | null> {
    if (!token || token.length > 512) return null
    const h = hashToken(token)
    const now = this.#clock.now().getTime()
    const cached = this.#cache.get(h)
    if (cached && cached.until > now) return cached.ctx
    if (cached) this.#cache.delete(h)
    const forgets = this.#forgets
    const ctx = await this.#lookup(h)
    // A revocation heard while the lookup ran may be newer than what it read: not cached.
    if (ctx && forgets === this.#forgets) {
      if (this.#cache.size >= CACHE_MAX) this.#cache.delete(this.#cache.keys().next().value!)
      this.#cache.set(h, { ctx, until: Math.min(now + this.cacheMs(), new Date(ctx.expiresAt).getTime()) })
    }
    return ctx
  }

  async #lookup(h: string): Promise<AuthContext | null> {
    const row = await this.#repo.tokenByHash(h)
    // The lookup is by hash; the compare keeps the check constant-time all the same.
    if (!row || !timingSafeEqual(Buffer.from(row.token_hash), Buffer.from(h))) return null
    if (row.revoked || new Date(row.expires_at).getTime() <= this.#clock.now().getTime()) return null
    const user = await this.#repo.user(row.user_id)
    if (!user || !user.enabled) return null
    let projectName: string | null = null
    if (row.project_id) {
      const p = await this.#repo.projectNameAndEnabled(row.project_id)
      if (!p || !p.enabled) return null
      projectName = p.name
    }
    return this.#context(
      user,
      { projectId: row.project_id, projectName, domainScopeId: row.domain_id },
      JSON.parse(row.methods) as string[],
      row.audit_id,
      row.issued_at,
      row.expires_at,
    )
  }

  /** How long a validation may be cached, ms (token-revocations.ts lowers it while revocations go unheard). */
  cacheMs: () => number = () => CACHE_MS

  /** Drop cached validations: one token's (by its hash), or every one (a user-wide revocation). */
  forgetCached(tokenHash?: string): void {
    this.#forgets++
    if (tokenHash === undefined) this.#cache.clear()
    else this.#cache.delete(tokenHash)
  }

  async revoke(token: string): Promise<boolean> {
    this.#cache.delete(hashToken(token))
    return this.#repo.revokeToken(hashToken(token))
  }

  /** Drop expired tokens; called now and then so the table does not grow without bound. */
  async purgeExpiredTokens(): Promise<void> {
    await this.#repo.deleteTokensExpiredBefore(this.#clock.now().toISOString())
  }

  async listProjects(filter: { name?: string; domainId?: string }) {
    return this.#repo.listProjects(filter)
  }

  async getProject(id: string) {
    const p = await this.#repo.project(id)
    if (!p) throw new NotFound(`Could not find project: ${id}.`)
    return p
  }

  async projectsOfUser(userId: string) {
    return this.#repo.projectsOfUser(userId)
  }

  async listUsers(filter: { name?: string; domainId?: string }) {
    return this.#repo.listUsers(filter)
  }

  async getUser(id: string) {
    const u = await this.#repo.userSummary(id)
    if (!u) throw new NotFound(`Could not find user: ${id}.`)
    return u
  }

  async listRoles(filter: { name?: string }) {
    return this.#repo.listRoles(filter)
  }

  async getRole(id: string) {
    const r = await this.#repo.role(id)
    if (!r) throw new NotFound(`Could not find role: ${id}.`)
    return r
  }

  async listRoleAssignments(filter: { userId?: string; projectId?: string; roleId?: string }) {
    return this.#repo.listRoleAssignments(filter)
  }

  async #findUserForPassword(u: { id?: string; name?: string; domain?: { id?: string; name?: string } }): Promise<UserRow> {
    let row: UserRow | undefined
    if (u.id) {
      row = await this.#repo.user(u.id)
    } else if (u.name) {
      if (!u.domain || (!u.domain.id && !u.domain.name))
        throw new BadRequest(
          'Expecting to find domain in user. The server could not comply with the request since it is either malformed or otherwise incorrect. The client is assumed to be in error.',
        )
      const domainId = this.#domainId(u.domain)
      row = domainId ? await this.#repo.userByName(u.name, domainId) : undefined
    } else {
      throw new BadRequest(
        'Expecting to find id or name in user. The server could not comply with the request since it is either malformed or otherwise incorrect. The client is assumed to be in error.',
      )
    }
    // The same answer for an unknown user as for a wrong password: no account probing.
    if (!row) throw new Unauthorized()
    return row
  }

  #domainId(d: { id?: string; name?: string }): string | undefined {
    if (d.id !== undefined) return d.id === DEFAULT_DOMAIN.id ? d.id : undefined
    return d.name === DEFAULT_DOMAIN.name ? DEFAULT_DOMAIN.id : undefined
  }

  async #resolveScope(user: UserRow, scope: AuthRequest['scope']) {
    const none = { projectId: null, projectName: null, domainScopeId: null }
    if (scope === 'unscoped') return none
    if (!scope || (!scope.project && !scope.domain)) {
      if (!user.default_project_id) return none
      scope = { project: { id: user.default_project_id } }
    }
    if (scope.project) {
      const sp = scope.project
      let project
      if (sp.id) {
        project = await this.#repo.project(sp.id)
      } else if (sp.name) {
        if (!sp.domain)
          throw new BadRequest(
            'Expecting to find domain in project. The server could not comply with the request since it is either malformed or otherwise incorrect. The client is assumed to be in error.',
          )
        const domainId = this.#domainId(sp.domain)
        project = domainId ? await this.#repo.projectByName(sp.name, domainId) : undefined
      } else {
        throw new BadRequest(
          'Expecting to find id or name in project. The server could not comply with the request since it is either malformed or otherwise incorrect. The client is assumed to be in error.',
        )
      }
      if (!project || !project.enabled) throw new Unauthorized(`The request you have made requires authentication.`)
      const roles = await this.#rolesOn(user.id, project.id)
      if (roles.length === 0) throw new Unauthorized(`User ${user.id} has no access to project ${project.id}`)
      return { projectId: project.id, projectName: project.name, domainScopeId: null }
    }
    const domainId = scope.domain ? this.#domainId(scope.domain) : undefined
    if (!domainId) throw new Unauthorized()
    if (!(await this.#repo.hasAnyRole(user.id))) throw new Unauthorized(`User ${user.id} has no access to domain ${domainId}`)
    return { projectId: null, projectName: null, domainScopeId: domainId }
  }

  async #rolesOn(userId: string, projectId: string | null): Promise<{ id: string; name: string }[]> {
    const rows = await this.#repo.rolesOn(userId, projectId)
    const seen = new Map(rows.map((r) => [r.id, r]))
    return [...seen.values()]
  }

  async #context(
    user: UserRow,
    scope: { projectId: string | null; projectName: string | null; domainScopeId: string | null },
    methods: string[],
    auditId: string,
    issuedAt: string,
    expiresAt: string,
  ): Promise<AuthContext> {
    const roles = scope.projectId || scope.domainScopeId ? await this.#rolesOn(user.id, scope.projectId) : []
    return {
      userId: user.id,
      userName: user.name,
      projectId: scope.projectId,
      projectName: scope.projectName,
      domainScopeId: scope.domainScopeId,
      roles,
      isAdmin: roles.some((r) => r.name === 'admin'),
      methods,
      auditId,
      issuedAt,
      expiresAt,
    }
  }
}

/** The `token` object of Keystone's answers. */
export function tokenBody(ctx: AuthContext, catalog: unknown[] | undefined) {
  const body: Record<string, unknown> = {
    methods: ctx.methods,
    user: { id: ctx.userId, name: ctx.userName, domain: { ...DEFAULT_DOMAIN }, password_expires_at: null },
    audit_ids: [ctx.auditId],
    expires_at: isoMicrosZ(ctx.expiresAt),
    issued_at: isoMicrosZ(ctx.issuedAt),
  }
  if (ctx.projectId) {
    body.project = { id: ctx.projectId, name: ctx.projectName, domain: { ...DEFAULT_DOMAIN } }
    body.is_domain = false
  } else if (ctx.domainScopeId) {
    body.domain = { ...DEFAULT_DOMAIN }
  }
  if (ctx.projectId || ctx.domainScopeId) {
    body.roles = ctx.roles
    if (catalog) body.catalog = catalog
  }
  return body
}

export const newId = () => randomUUID().replace(/-/g, '')
