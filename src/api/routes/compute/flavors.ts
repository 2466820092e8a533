// /flavors: list, detail, show, extra specs; create and delete for admins.
import { Type, type Static } from '@sinclair/typebox'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { BadRequest, NotFound } from '../../../errors.ts'
import { pyRepr, pyStr } from '../../py-repr.ts'
import { authorize } from '../../../compute/policy.ts'
import type { FlavorQuery } from '../../../compute/flavor-service.ts'
import type { ComputeRouteDeps } from './index.ts'
import { parseLimit } from './servers.ts'
import { flavorView } from './views.ts'

type Query = Record<string, string | string[] | undefined>
const one = (v: string | string[] | undefined) => (Array.isArray(v) ? v[v.length - 1] : v)

/** nova.db.constants.MAX_INT: the columns are 32-bit (PostgreSQL refuses more: it was a 500). */
const MAX_INT = 2_147_483_647

const CreateFlavorBody = Type.Object(
  {
    flavor: Type.Object(
      {
        name: Type.String({ minLength: 1, maxLength: 255, format: 'name' }),
        id: Type.Optional(
          Type.Union([Type.String({ minLength: 1, maxLength: 255, pattern: '^(?! )[a-zA-Z0-9. _-]+(?<! )$' }), Type.Null()]),
        ),
        ram: Type.Union([Type.Integer({ minimum: 1, maximum: MAX_INT }), Type.String({ pattern: '^[0-9]+$' })]),
        vcpus: Type.Union([Type.Integer({ minimum: 1, maximum: MAX_INT }), Type.String({ pattern: '^[0-9]+$' })]),
        disk: Type.Union([Type.Integer({ minimum: 0, maximum: MAX_INT }), Type.String({ pattern: '^[0-9]+$' })]),
        'OS-FLV-EXT-DATA:ephemeral': Type.Optional(
          Type.Union([Type.Integer({ minimum: 0, maximum: MAX_INT }), Type.String({ pattern: '^[0-9]+$' })]),
        ),
        swap: Type.Optional(Type.Union([Type.Integer({ minimum: 0, maximum: MAX_INT }), Type.String({ pattern: '^[0-9]*$' })])),
        // Nova's pattern for the string form: `Number('x')` was NaN, which the NOT NULL column refused (a 500).
        rxtx_factor: Type.Optional(
          Type.Union([Type.Number({ exclusiveMinimum: 0, maximum: 3.40282e38 }), Type.String({ pattern: '^[0-9]+(\\.[0-9]+)?$' })]),
        ),
        'os-flavor-access:is_public': Type.Optional(Type.Boolean()),
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
)

const ExtraSpecsBody = Type.Object(
  {
    // As Nova's metadata schema: keys outside the pattern are refused. (TypeBox's Record only
    // says `patternProperties`; a key like "" went through unchecked, its value too.)
    extra_specs: Type.Record(
      Type.String({ pattern: '^[a-zA-Z0-9-_:. ]{1,255}$' }),
      Type.Union([Type.String({ maxLength: 255 }), Type.Number(), Type.Boolean()]),
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
)

/** Nova's validate_integer, for the values the schema let through as digit strings. */
function flavorInteger(v: number | string, name: string, min: number): number {
  const n = Number(v)
  if (n < min) throw new BadRequest(`Invalid input received: ${name} must be >= ${min}`)
  if (n > MAX_INT) throw new BadRequest(`Invalid input received: ${name} must be <= ${MAX_INT}`)
  return n
}

function flavorQuery(req: FastifyRequest, q: Query, maxLimit: number): FlavorQuery {
  // Non-admins see public flavors; admins choose with is_public (None = all).
  const raw = one(q.is_public)
  let isPublic: boolean | null = true
  if (req.auth.isAdmin && raw !== undefined) {
    isPublic = raw.toLowerCase() === 'none' ? null : ['true', '1', 'yes', 't', 'y', 'on'].includes(raw.toLowerCase())
  }
  const num = (name: string) => {
    const v = one(q[name])
    if (v === undefined) return undefined
    if (!/^\d+$/.test(v)) throw new BadRequest(`Invalid ${name} filter [${v}]`)
    return Number(v)
  }
  const sortDir = (one(q.sort_dir) ?? 'asc').toLowerCase()
  if (sortDir !== 'asc' && sortDir !== 'desc') throw new BadRequest(`Invalid input for query parameters sort_dir. Value: ${sortDir}.`)
  return {
    isPublic,
    minRam: num('minRam'),
    minDisk: num('minDisk'),
    limit: parseLimit(one(q.limit), maxLimit),
    marker: one(q.marker),
    sortKey: one(q.sort_key) ?? 'flavorid',
    sortDir,
  }
}

export function flavorRoutes(app: FastifyInstance, deps: ComputeRouteDeps) {
  const base = deps.computeUrl
  const { flavors } = deps
  const links = (req: FastifyRequest, path: string, rows: { id: string }[], limit: number | undefined) => {
    const last = rows[rows.length - 1]
    if (!last || !((limit !== undefined && rows.length === limit) || rows.length === deps.maxLimit)) return {}
    const params = new URLSearchParams(Object.entries(req.query as Record<string, string>).filter(([k]) => k !== 'marker'))
    params.set('marker', last.id)
    return { flavors_links: [{ rel: 'next', href: `${base}/v2.1/${path}?${params.toString()}` }] }
  }

  app.get<{ Querystring: Query }>('/v2.1/flavors', async (req) => {
    const q = flavorQuery(req, req.query, deps.maxLimit)
    const rows = await flavors.list(q)
    return { flavors: rows.map((f) => flavorView(f, base, false)), ...links(req, 'flavors', rows, q.limit) }
  })
  app.get<{ Querystring: Query }>('/v2.1/flavors/detail', async (req) => {
    const q = flavorQuery(req, req.query, deps.maxLimit)
    const rows = await flavors.list(q)
    return { flavors: rows.map((f) => flavorView(f, base, true)), ...links(req, 'flavors/detail', rows, q.limit) }
  })
  app.get<{ Params: { id: string } }>('/v2.1/flavors/:id', async (req) => ({
    flavor: flavorView(await flavors.get(req.params.id), base, true),
  }))

  app.post<{ Body: Static<typeof CreateFlavorBody> }>('/v2.1/flavors', { schema: { body: CreateFlavorBody } }, async (req) => {
    authorize(req.auth, 'os_compute_api:os-flavor-manage:create', 'admin')
    const f = req.body.flavor
    const row = await flavors.create({
      id: f.id ?? undefined,
      name: f.name,
      ram: flavorInteger(f.ram, 'memory_mb', 1),
      vcpus: flavorInteger(f.vcpus, 'vcpus', 1),
      disk: flavorInteger(f.disk, 'root_gb', 0),
      ephemeral: flavorInteger(f['OS-FLV-EXT-DATA:ephemeral'] ?? 0, 'ephemeral_gb', 0),
      swap: flavorInteger(f.swap || 0, 'swap', 0),
      rxtxFactor: Number(f.rxtx_factor ?? 1),
      isPublic: f['os-flavor-access:is_public'],
    })
    return { flavor: flavorView(row, base, true) }
  })
  app.delete<{ Params: { id: string } }>('/v2.1/flavors/:id', async (req, reply) => {
    authorize(req.auth, 'os_compute_api:os-flavor-manage:delete', 'admin')
    await flavors.delete(req.params.id)
    return reply.code(202).send()
  })

  app.get<{ Params: { id: string } }>('/v2.1/flavors/:id/os-extra_specs', async (req) => ({
    extra_specs: await flavors.extraSpecs(req.params.id),
  }))
  app.get<{ Params: { id: string; key: string } }>('/v2.1/flavors/:id/os-extra_specs/:key', async (req) => {
    const specs = await flavors.extraSpecs(req.params.id)
    if (!Object.hasOwn(specs, req.params.key)) throw new NotFound(`Flavor ${req.params.id} has no extra specs with key ${req.params.key}.`)
    return { [req.params.key]: specs[req.params.key] }
  })
  app.post<{ Params: { id: string }; Body: Static<typeof ExtraSpecsBody> }>(
    '/v2.1/flavors/:id/os-extra_specs',
    { schema: { body: ExtraSpecsBody } },
    async (req) => {
      authorize(req.auth, 'os_compute_api:os-flavor-extra-specs:create', 'admin')
      const specs = Object.fromEntries(Object.entries(req.body.extra_specs).map(([k, v]) => [k, String(v)]))
      await flavors.setExtraSpecs(req.params.id, specs)
      return { extra_specs: specs }
    },
  )
  app.put<{ Params: { id: string; key: string }; Body: Record<string, unknown> }>('/v2.1/flavors/:id/os-extra_specs/:key', async (req) => {
    authorize(req.auth, 'os_compute_api:os-flavor-extra-specs:update', 'admin')
    const body = req.body
    if (!body || typeof body !== 'object' || Object.keys(body).length !== 1) throw new BadRequest('Request body contains too many items')
    const [key, value] = Object.entries(body)[0]!
    if (key !== req.params.key) throw new BadRequest('Request body and URI mismatch')
    // As the POST's schema: a string, number or boolean (String() of `{"toString": null}` throws).
    if (value === null || typeof value === 'object') {
      throw new BadRequest(
        `Invalid input for field/attribute ${key}. Value: ${pyStr(value)}. ${pyRepr(value)} is not of type 'string', 'number', 'boolean'`,
      )
    }
    await flavors.setExtraSpecs(req.params.id, { [key]: String(value) })
    return { [key]: String(value) }
  })
  app.delete<{ Params: { id: string; key: string } }>('/v2.1/flavors/:id/os-extra_specs/:key', async (req, reply) => {
    authorize(req.auth, 'os_compute_api:os-flavor-extra-specs:delete', 'admin')
    await flavors.deleteExtraSpec(req.params.id, req.params.key)
    return reply.code(202).send()
  })
}
