// Keystone v3 subset: version discovery, tokens, and the read-only admin lists that
// `openstack project list`, `user list` and `role assignment list` need.
import type { Catalog } from '../../identity/catalog.ts'
import { Type, type Static } from '@sinclair/typebox'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { Forbidden, NotFound } from '../../errors.ts'
import { DEFAULT_DOMAIN, tokenBody, type AuthRequest, type IdentityService } from '../../identity/identity-service.ts'
import { headerValue } from '../listener.ts'

const NameOrId = Type.Object({ id: Type.Optional(Type.String({ maxLength: 255 })), name: Type.Optional(Type.String({ maxLength: 255 })) })

const AuthBody = Type.Object({
  auth: Type.Object({
    identity: Type.Object({
      methods: Type.Array(Type.String(), { minItems: 1 }),
      password: Type.Optional(
        Type.Object({
          user: Type.Object({
            id: Type.Optional(Type.String({ maxLength: 255 })),
            name: Type.Optional(Type.String({ maxLength: 255 })),
            password: Type.String({ maxLength: 4096 }),
            domain: Type.Optional(NameOrId),
          }),
        }),
      ),
      token: Type.Optional(Type.Object({ id: Type.String({ maxLength: 1024 }) })),
    }),
    scope: Type.Optional(
      Type.Union([
        Type.Literal('unscoped'),
        Type.Object({
          project: Type.Optional(
            Type.Object({
              id: Type.Optional(Type.String({ maxLength: 255 })),
              name: Type.Optional(Type.String({ maxLength: 255 })),
              domain: Type.Optional(NameOrId),
            }),
          ),
          domain: Type.Optional(NameOrId),
          system: Type.Optional(Type.Unknown()),
          'OS-TRUST:trust': Type.Optional(Type.Unknown()),
        }),
      ]),
    ),
  }),
})

export interface IdentityRouteDeps {
  identity: IdentityService
  identityUrl: string
  catalog: Catalog
}

const V3 = (base: string) => ({
  id: 'v3.14',
  status: 'stable',
  updated: '2020-04-07T00:00:00Z',
  links: [{ rel: 'self', href: `${base}/v3/` }],
  'media-types': [{ base: 'application/json', type: 'application/vnd.openstack.identity-v3+json' }],
})

/** Keystone names the policy rule that refused: "...the requested action: identity:list_users." */
function requireAdmin(req: FastifyRequest, rule: string) {
  if (!req.auth.isAdmin) throw new Forbidden(`You are not authorized to perform the requested action: ${rule}.`)
}

const link = (base: string, kind: string, id: string) => ({ self: `${base}/v3/${kind}/${id}` })

export function identityRoutes(app: FastifyInstance, deps: IdentityRouteDeps) {
  const base = deps.identityUrl
  app.get('/', { config: { public: true } }, async (_req, reply) => reply.code(300).send({ versions: { values: [V3(base)] } }))
  app.get('/v3', { config: { public: true } }, async () => ({ version: V3(base) }))

  app.post<{ Body: Static<typeof AuthBody>; Querystring: { nocatalog?: string } }>(
    '/v3/auth/tokens',
    {
      config: { public: true },
      schema: { body: AuthBody },
    },
    async (req, reply) => {
      const { token, context } = await deps.identity.issueToken(req.body.auth as AuthRequest)
      const withCatalog = req.query.nocatalog === undefined
      reply.code(201).header('x-subject-token', token)
      return { token: tokenBody(context, withCatalog ? deps.catalog(context.projectId) : undefined) }
    },
  )

  // Validation of another token (services do this); the caller's token authenticates the call.
  const subject = async (req: FastifyRequest) => {
    const subjectToken = headerValue(req, 'x-subject-token')
    const ctx = await deps.identity.validate(subjectToken)
    if (!ctx) throw new NotFound(`Could not find token: ${subjectToken ?? ''}`.trim())
    if (ctx.userId !== req.auth.userId && !req.auth.isAdmin) throw new Forbidden('You are not authorized to perform the requested action.')
    return { token: subjectToken!, ctx }
  }
  // HEAD comes with GET (fastify answers it with the same headers and no body).
  app.get<{ Querystring: { nocatalog?: string } }>('/v3/auth/tokens', async (req, reply) => {
    const { token, ctx } = await subject(req)
    reply.header('x-subject-token', token)
    return { token: tokenBody(ctx, req.query.nocatalog === undefined ? deps.catalog(ctx.projectId) : undefined) }
  })
  app.delete('/v3/auth/tokens', async (req, reply) => {
    const { token } = await subject(req)
    await deps.identity.revoke(token)
    return reply.code(204).send()
  })

  app.get('/v3/auth/catalog', async (req) => ({ catalog: deps.catalog(req.auth.projectId), links: { self: `${base}/v3/auth/catalog` } }))
  app.get('/v3/auth/projects', async (req) => {
    const projects = await deps.identity.projectsOfUser(req.auth.userId)
    return { projects: projects.map((p) => projectView(base, p)), links: { self: `${base}/v3/auth/projects`, previous: null, next: null } }
  })
  app.get('/v3/auth/domains', async () => ({
    domains: [domainView(base)],
    links: { self: `${base}/v3/auth/domains`, previous: null, next: null },
  }))

  app.get('/v3/domains', async () => ({ domains: [domainView(base)], links: { self: `${base}/v3/domains`, previous: null, next: null } }))
  app.get<{ Params: { id: string } }>('/v3/domains/:id', async (req) => {
    if (req.params.id !== DEFAULT_DOMAIN.id) throw new NotFound(`Could not find domain: ${req.params.id}.`)
    return { domain: domainView(base) }
  })

  app.get<{ Querystring: { name?: string; domain_id?: string } }>('/v3/projects', async (req) => {
    if (!req.auth.isAdmin) {
      // Keystone lets a user list only through /users/{id}/projects; keep it simple and honest.
      throw new Forbidden('You are not authorized to perform the requested action: identity:list_projects.')
    }
    const rows = await deps.identity.listProjects({ name: req.query.name, domainId: req.query.domain_id })
    return { projects: rows.map((p) => projectView(base, p)), links: { self: `${base}/v3/projects`, previous: null, next: null } }
  })
  app.get<{ Params: { id: string } }>('/v3/projects/:id', async (req) => {
    if (!req.auth.isAdmin && req.auth.projectId !== req.params.id)
      throw new Forbidden('You are not authorized to perform the requested action: identity:get_project.')
    return { project: projectView(base, await deps.identity.getProject(req.params.id)) }
  })

  app.get<{ Querystring: { name?: string; domain_id?: string } }>('/v3/users', async (req) => {
    requireAdmin(req, 'identity:list_users')
    const rows = await deps.identity.listUsers({ name: req.query.name, domainId: req.query.domain_id })
    return { users: rows.map((u) => userView(base, u)), links: { self: `${base}/v3/users`, previous: null, next: null } }
  })
  app.get<{ Params: { id: string } }>('/v3/users/:id', async (req) => {
    if (!req.auth.isAdmin && req.auth.userId !== req.params.id)
      throw new Forbidden('You are not authorized to perform the requested action: identity:get_user.')
    return { user: userView(base, await deps.identity.getUser(req.params.id)) }
  })
  app.get<{ Params: { id: string } }>('/v3/users/:id/projects', async (req) => {
    if (!req.auth.isAdmin && req.auth.userId !== req.params.id)
      throw new Forbidden('You are not authorized to perform the requested action: identity:list_user_projects.')
    const projects = await deps.identity.projectsOfUser(req.params.id)
    return {
      projects: projects.map((p) => projectView(base, p)),
      links: { self: `${base}/v3/users/${req.params.id}/projects`, previous: null, next: null },
    }
  })

  app.get<{ Querystring: { name?: string } }>('/v3/roles', async (req) => {
    requireAdmin(req, 'identity:list_roles')
    const rows = await deps.identity.listRoles({ name: req.query.name })
    return { roles: rows.map((r) => roleView(base, r)), links: { self: `${base}/v3/roles`, previous: null, next: null } }
  })
  app.get<{ Params: { id: string } }>('/v3/roles/:id', async (req) => {
    requireAdmin(req, 'identity:get_role')
    return { role: roleView(base, await deps.identity.getRole(req.params.id)) }
  })

  app.get<{ Querystring: Record<string, string | undefined> }>('/v3/role_assignments', async (req) => {
    const q = req.query
    const userId = q['user.id']
    if (!req.auth.isAdmin && userId !== req.auth.userId)
      throw new Forbidden('You are not authorized to perform the requested action: identity:list_role_assignments.')
    const rows = await deps.identity.listRoleAssignments({ userId, projectId: q['scope.project.id'], roleId: q['role.id'] })
    const include = q.include_names !== undefined && q.include_names !== '0' && q.include_names.toLowerCase() !== 'false'
    return {
      role_assignments: rows.map((r) => ({
        role: include ? { id: r.role_id, name: r.role_name } : { id: r.role_id },
        user: include ? { id: r.user_id, name: r.user_name, domain: { ...DEFAULT_DOMAIN } } : { id: r.user_id },
        scope: { project: include ? { id: r.project_id, name: r.project_name, domain: { ...DEFAULT_DOMAIN } } : { id: r.project_id } },
        links: { assignment: `${base}/v3/projects/${r.project_id}/users/${r.user_id}/roles/${r.role_id}` },
      })),
      links: { self: `${base}/v3/role_assignments`, previous: null, next: null },
    }
  })
}

function domainView(base: string) {
  return {
    id: DEFAULT_DOMAIN.id,
    name: DEFAULT_DOMAIN.name,
    description: 'The default domain',
    enabled: true,
    tags: [],
    options: {},
    links: link(base, 'domains', DEFAULT_DOMAIN.id),
  }
}
function projectView(base: string, p: { id: string; name: string; domain_id: string; description: string; enabled: number }) {
  return {
    id: p.id,
    name: p.name,
    domain_id: p.domain_id,
    description: p.description,
    enabled: !!p.enabled,
    is_domain: false,
    parent_id: p.domain_id,
    tags: [],
    options: {},
    links: link(base, 'projects', p.id),
  }
}
function userView(base: string, u: { id: string; name: string; domain_id: string; default_project_id: string | null; enabled: number }) {
  const v: Record<string, unknown> = {
    id: u.id,
    name: u.name,
    domain_id: u.domain_id,
    enabled: !!u.enabled,
    password_expires_at: null,
    options: {},
    links: link(base, 'users', u.id),
  }
  if (u.default_project_id) v.default_project_id = u.default_project_id
  return v
}
function roleView(base: string, r: { id: string; name: string }) {
  return { id: r.id, name: r.name, domain_id: null, description: null, options: {}, links: link(base, 'roles', r.id) }
}
