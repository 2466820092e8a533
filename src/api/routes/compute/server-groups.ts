// /os-server-groups: create (200), list, show, delete (204). Per microversion as
// nova/api/openstack/compute/server_groups.py: project_id and user_id from 2.13, the soft
// policies from 2.15, and from 2.64 one `policy` with `rules` instead of `policies` and `metadata`.
import type { FastifyInstance } from 'fastify'
import { BadRequest } from '../../../errors.ts'
import {
  groupRules,
  type GroupPolicy,
  type GroupRules,
  type ServerGroup,
  type ServerGroupService,
} from '../../../compute/server-group-service.ts'
import { atVersion, has } from '../../microversion-changes.ts'
import type { Microversion } from '../../microversion.ts'
import { multi, NON_NEGATIVE_INTEGER, querySchema, validateQuery, type Query } from './query-schemas.ts'
import { NAME, validateBody } from './schemas.ts'

const groupBody = (properties: Record<string, object>, required: string[]) => ({
  type: 'object',
  properties: { server_group: { type: 'object', properties, required, additionalProperties: false } },
  required: ['server_group'],
  additionalProperties: false,
})
// schemas/server_groups.py: a one-item `policies` list until 2.63 (the soft policies from
// 2.15); from 2.64 `policy` and optional `rules` (max_server_per_host, a positive integer).
const policiesOf = (values: string[]) => ({
  type: 'array',
  items: [{ type: 'string', enum: values }],
  uniqueItems: true,
  minItems: 1,
  maxItems: 1,
  additionalItems: false,
})
const HARD = ['anti-affinity', 'affinity']
const ALL = ['anti-affinity', 'affinity', 'soft-anti-affinity', 'soft-affinity']
const CREATE_21 = groupBody({ name: NAME, policies: policiesOf(HARD) }, ['name', 'policies'])
const CREATE_215 = groupBody({ name: NAME, policies: policiesOf(ALL) }, ['name', 'policies'])
const CREATE_264 = groupBody(
  {
    name: NAME,
    policy: { type: 'string', enum: ALL },
    rules: {
      type: 'object',
      properties: { max_server_per_host: { type: ['integer', 'string'], pattern: '^[0-9]*$', minimum: 1, minLength: 1 } },
      additionalProperties: false,
    },
  },
  ['name', 'policy'],
)
const createSchema = (v: Microversion) =>
  atVersion(v, CREATE_21, [
    ['softAffinity', CREATE_215],
    ['serverGroupPolicy', CREATE_264],
  ])

interface CreateBody {
  server_group: { name: string; policies?: string[]; policy?: string; rules?: { max_server_per_host?: number | string } }
}

const INDEX_QUERY = {
  all_projects: multi({ type: 'string' }),
  limit: multi(NON_NEGATIVE_INTEGER),
  offset: multi(NON_NEGATIVE_INTEGER),
}

function view(g: ServerGroup, v: Microversion): Record<string, unknown> {
  const out: Record<string, unknown> = { id: g.id, name: g.name }
  if (has(v, 'serverGroupPolicy')) {
    out.policy = g.policy
    out.rules = groupRules(g)
  } else {
    out.policies = [g.policy]
    // Before 2.64 an empty metadata is shown (Nova never used it).
    out.metadata = {}
  }
  out.members = g.members
  if (has(v, 'serverGroupOwner')) {
    out.project_id = g.project_id
    out.user_id = g.user_id
  }
  return out
}

export function serverGroupRoutes(app: FastifyInstance, groups: ServerGroupService, maxLimit: number) {
  app.post<{ Body: unknown }>('/v2.1/os-server-groups', async (req) => {
    const v = req.microversion
    validateBody(createSchema(v), req.body)
    const b = (req.body as CreateBody).server_group
    let policy: GroupPolicy
    let rules: GroupRules = {}
    if (has(v, 'serverGroupPolicy')) {
      policy = b.policy as GroupPolicy
      if (b.rules?.max_server_per_host !== undefined) rules = { max_server_per_host: Number(b.rules.max_server_per_host) }
      // Checked after the policy rule and the quota in Nova; the body is all that is needed here.
      if (policy !== 'anti-affinity' && b.rules && Object.keys(b.rules).length > 0) {
        throw new BadRequest('Only anti-affinity policy supports rules.')
      }
    } else {
      policy = b.policies![0] as GroupPolicy
    }
    return { server_group: view(await groups.create(req.auth, b.name, policy, rules), v) }
  })

  app.get<{ Querystring: Query }>('/v2.1/os-server-groups', async (req) => {
    const q = validateQuery(querySchema(INDEX_QUERY, req.microversion), req.query)
    // common.limited: no limit, or 0, means max_limit (webob's req.GET[name]: the last value).
    const limit = Number(q.limit?.at(-1) ?? 0) || maxLimit
    const rows = await groups.list(req.auth, {
      // A non-admin asking for all projects gets its own groups, without an error (as Nova).
      allProjects: q.all_projects !== undefined && req.auth.isAdmin,
      limit: Math.min(limit, maxLimit),
      offset: q.offset === undefined ? undefined : Number(q.offset.at(-1)),
    })
    return { server_groups: rows.map((g) => view(g, req.microversion)) }
  })

  app.get<{ Params: { id: string } }>('/v2.1/os-server-groups/:id', async (req) => ({
    server_group: view(await groups.show(req.auth, req.params.id), req.microversion),
  }))

  app.delete<{ Params: { id: string } }>('/v2.1/os-server-groups/:id', async (req, reply) => {
    await groups.delete(req.auth, req.params.id)
    return reply.code(204).send()
  })
}
