// /os-keypairs: create (generated or imported), list, show, delete — per user; from 2.10 an
// admin names the user (?user_id= or the body's user_id). Request schemas and views per
// microversion range, as nova/api/openstack/compute/keypairs.py (Zed).
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { authorize } from '../../../compute/policy.ts'
import { PolicyNotAuthorized } from '../../../errors.ts'
import { atVersion, has } from '../../microversion-changes.ts'
import type { Microversion } from '../../microversion.ts'
import type { ComputeRouteDeps } from './index.ts'
import { collectionLinks } from './collection-links.ts'
import { keypairCreateView, keypairIndexView, keypairShowView } from './keypair-views.ts'
import { validateBody } from './schemas.ts'
import { COMMON, first, PAGINATION, querySchema, validateQuery, type Query } from './query-schemas.ts'

const keypairBody = (properties: Record<string, object>, required: string[]) => ({
  type: 'object',
  properties: { keypair: { type: 'object', properties, required, additionalProperties: false } },
  required: ['keypair'],
  additionalProperties: false,
})
const NAME_20 = { type: 'string', minLength: 1, maxLength: 255, format: 'keypair_name_20' }
const NAME_292 = { type: 'string', minLength: 1, maxLength: 255, format: 'keypair_name_292' }
const TYPE = { type: 'string', enum: ['ssh', 'x509'] }
const PUBLIC_KEY = { type: 'string' }

// schemas/keypairs.py: create (2.1), create_v22 (2.2–2.9), create_v210 (2.10–2.91), create_v292.
const CREATE_21 = keypairBody({ name: NAME_20, public_key: PUBLIC_KEY }, ['name'])
const CREATE_22 = keypairBody({ name: NAME_20, type: TYPE, public_key: PUBLIC_KEY }, ['name'])
const CREATE_210 = keypairBody({ name: NAME_20, type: TYPE, public_key: PUBLIC_KEY, user_id: { type: 'string' } }, ['name'])
const CREATE_292 = keypairBody({ name: NAME_292, type: TYPE, public_key: PUBLIC_KEY, user_id: { type: 'string' } }, ['name', 'public_key'])
const createSchema = (v: Microversion) =>
  atVersion(v, CREATE_21, [
    ['keypairType', CREATE_22],
    ['keypairsOfAnyUser', CREATE_210],
    ['keypairImportOnly', CREATE_292],
  ])

/** index/show/delete query schemas: user_id from 2.10, limit/marker on the index from 2.35. */
function querySchemaFor(v: Microversion, index: boolean): object {
  const props: Record<string, object> = {}
  if (has(v, 'keypairsOfAnyUser')) props.user_id = COMMON
  if (index && has(v, 'keypairsPagination')) Object.assign(props, PAGINATION)
  return querySchema(props, v)
}

interface CreateBody {
  keypair: { name: string; public_key?: string; type?: 'ssh' | 'x509'; user_id?: string }
}

export function keypairRoutes(app: FastifyInstance, deps: ComputeRouteDeps) {
  const { keypairs } = deps

  /** The user whose key pairs are meant: ?user_id= (2.10+, first value) or the caller; Nova's admin_or_owner rule. */
  const owner = (req: FastifyRequest, rule: string, named: string | undefined): string => {
    const userId = (has(req.microversion, 'keypairsOfAnyUser') ? named : undefined) || req.auth.userId
    if (userId !== req.auth.userId && !req.auth.isAdmin) throw new PolicyNotAuthorized(`os_compute_api:os-keypairs:${rule}`)
    return userId
  }

  app.get<{ Querystring: Query }>('/v2.1/os-keypairs', async (req) => {
    const v = req.microversion
    const q = validateQuery(querySchemaFor(v, true), req.query)
    authorize(req.auth, 'os_compute_api:os-keypairs:index', 'reader')
    const userId = owner(req, 'index', first(q, 'user_id'))
    let page: { limit?: number; marker?: string } = {}
    if (has(v, 'keypairsPagination')) {
      // common.get_limit_and_marker: the last value of each (webob's req.GET[name]); at most max_limit.
      const limit = q.limit?.at(-1)
      page = { limit: Math.min(limit === undefined ? deps.maxLimit : Number(limit), deps.maxLimit), marker: q.marker?.at(-1) }
    }
    const rows = await keypairs.list(userId, page)
    const body: Record<string, unknown> = { keypairs: rows.map((k) => ({ keypair: keypairIndexView(k, v) })) }
    if (has(v, 'keypairsPagination')) {
      const links = collectionLinks(req, deps.computeUrl, 'os-keypairs', rows.length, rows.at(-1)?.name, deps.maxLimit)
      if (links.length) body.keypairs_links = links
    }
    return body
  })

  app.get<{ Params: { name: string }; Querystring: Query }>('/v2.1/os-keypairs/:name', async (req) => {
    const q = validateQuery(querySchemaFor(req.microversion, false), req.query)
    authorize(req.auth, 'os_compute_api:os-keypairs:show', 'reader')
    const userId = owner(req, 'show', first(q, 'user_id'))
    return { keypair: keypairShowView(await keypairs.get(userId, req.params.name), req.microversion) }
  })

  app.post<{ Body: unknown }>('/v2.1/os-keypairs', async (req, reply) => {
    const v = req.microversion
    validateBody(createSchema(v), req.body)
    const kp = (req.body as CreateBody).keypair
    authorize(req.auth, 'os_compute_api:os-keypairs:create', 'member')
    const userId = owner(req, 'create', kp.user_id)
    const type = kp.type ?? 'ssh'
    const { row, privateKey } = await keypairs.create(userId, kp.name, kp.public_key, type, req.auth.projectId ?? '')
    // 200 at 2.1, 201 from 2.2 (keypairType).
    return reply.code(has(v, 'keypairType') ? 201 : 200).send({ keypair: keypairCreateView(row, v, privateKey) })
  })

  app.delete<{ Params: { name: string }; Querystring: Query }>('/v2.1/os-keypairs/:name', async (req, reply) => {
    const q = validateQuery(querySchemaFor(req.microversion, false), req.query)
    authorize(req.auth, 'os_compute_api:os-keypairs:delete', 'member')
    const userId = owner(req, 'delete', first(q, 'user_id'))
    await keypairs.delete(userId, req.params.name)
    // 202 at 2.1, 204 from 2.2.
    return reply.code(has(req.microversion, 'keypairType') ? 204 : 202).send()
  })
}
