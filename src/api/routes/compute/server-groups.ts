// /os-server-groups at 2.1: create (200), list, show, delete (204). One policy per group,
// shown as a one-item `policies` list; `metadata` is always {} (Nova never used it).
import { Type, type Static } from '@sinclair/typebox'
import type { FastifyInstance } from 'fastify'
import { BadRequest } from '../../../errors.ts'
import type { GroupPolicy, ServerGroup, ServerGroupService } from '../../../compute/server-group-service.ts'
import { NAME } from './schemas.ts'

const CreateBody = Type.Object(
  {
    server_group: Type.Object(
      {
        name: NAME,
        // At 2.1 exactly one of the two hard policies (soft ones come with 2.15).
        policies: Type.Unsafe<string[]>({
          type: 'array',
          items: [{ type: 'string', enum: ['anti-affinity', 'affinity'] }],
          uniqueItems: true,
          minItems: 1,
          maxItems: 1,
          additionalItems: false,
        }),
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
)

type Query = Record<string, string | string[] | undefined>
const one = (v: string | string[] | undefined) => (Array.isArray(v) ? v[v.length - 1] : v)

/** Nova's query schema for limit/offset: non-negative integers. */
function nonNegative(q: Query, name: string): number | undefined {
  const v = one(q[name])
  if (v === undefined) return undefined
  if (v === '') throw new BadRequest(`Invalid input for query parameters ${name}. Value: . '' is too short`)
  if (!/^[0-9]+$/.test(v)) throw new BadRequest(`Invalid input for query parameters ${name}. Value: ${v}. '${v}' does not match '^[0-9]*$'`)
  return Number(v)
}

const view = (g: ServerGroup) => ({ id: g.id, name: g.name, policies: [g.policy], members: g.members, metadata: {} })

export function serverGroupRoutes(app: FastifyInstance, groups: ServerGroupService, maxLimit: number) {
  app.post<{ Body: Static<typeof CreateBody> }>('/v2.1/os-server-groups', { schema: { body: CreateBody } }, async (req) => {
    const b = req.body.server_group
    return { server_group: view(await groups.create(req.auth, b.name, b.policies[0] as GroupPolicy)) }
  })

  app.get<{ Querystring: Query }>('/v2.1/os-server-groups', async (req) => {
    // Nova's common.get_limit_and_offset: no limit, or 0, means max_limit.
    const limit = nonNegative(req.query, 'limit') || maxLimit
    const rows = await groups.list(req.auth, {
      // A non-admin asking for all projects gets its own groups, without an error (as Nova).
      allProjects: req.query.all_projects !== undefined && req.auth.isAdmin,
      limit: Math.min(limit, maxLimit),
      offset: nonNegative(req.query, 'offset'),
    })
    return { server_groups: rows.map(view) }
  })

  app.get<{ Params: { id: string } }>('/v2.1/os-server-groups/:id', async (req) => ({
    server_group: view(await groups.show(req.auth, req.params.id)),
  }))

  app.delete<{ Params: { id: string } }>('/v2.1/os-server-groups/:id', async (req, reply) => {
    await groups.delete(req.auth, req.params.id)
    return reply.code(204).send()
  })
}
