// /flavors: list, detail, show, extra specs; create and delete for admins.
import { Type, type Static, type TSchema } from '@sinclair/typebox'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { BadRequest, NotFound } from '../../../errors.ts'
import { pyRepr, pyStr } from '../../py-repr.ts'
import { authorize, hasRole } from '../../../compute/policy.ts'
import type { Flavor, FlavorQuery } from '../../../compute/flavor-service.ts'
import { atVersion, has } from '../../microversion-changes.ts'
import type { Microversion } from '../../microversion.ts'
import type { ComputeRouteDeps } from './index.ts'
import { collectionLinks } from './collection-links.ts'
import { flavorBasicView, flavorView } from './flavor-views.ts'
import { multi, NON_NEGATIVE_INTEGER, querySchema, validateQuery, type Query } from './query-schemas.ts'
import { validateBody } from './schemas.ts'

const one = (v: string[] | undefined) => v?.[v.length - 1]

/** nova.db.constants.MAX_INT: the columns are 32-bit (PostgreSQL refuses more: it was a 500). */
const MAX_INT = 2_147_483_647

const TRUE_STRINGS = ['True', 'TRUE', 'true', '1', 'ON', 'On', 'on', 'YES', 'Yes', 'yes']
const FALSE_STRINGS = ['False', 'FALSE', 'false', '0', 'OFF', 'Off', 'off', 'NO', 'No', 'no']

const flavorCreateBody = (extra: Record<string, TSchema>) =>
  Type.Object(
    {
      flavor: Type.Object(
        {
          name: Type.String({ minLength: 1, maxLength: 255, format: 'name' }),
          id: Type.Optional(
            // Nova's ['string', 'number', 'null']: a number's id is its string form.
            Type.Union([
              Type.String({ minLength: 1, maxLength: 255, pattern: '^(?! )[a-zA-Z0-9. _-]+(?<! )$' }),
              Type.Number(),
              Type.Null(),
            ]),
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
          // parameter_types.boolean: true/false or one of Nova's spellings of them.
          'os-flavor-access:is_public': Type.Optional(
            Type.Union([Type.Boolean(), Type.String({ enum: [...TRUE_STRINGS, ...FALSE_STRINGS] })]),
          ),
          ...extra,
        },
        { additionalProperties: false },
      ),
    },
    { additionalProperties: false },
  )

/**
 * schemas/flavor_manage.py flavor_description: a string or null of printable characters
 * (parameter_types._is_printable: no category C, no line or paragraph separator).
 */
const DESCRIPTION_SCHEMA = { type: ['string', 'null'], minLength: 0, maxLength: 65535, pattern: '^[^\\p{C}\\p{Zl}\\p{Zp}]*$' }
const DESCRIPTION = Type.Optional(Type.Unsafe<string | null>(DESCRIPTION_SCHEMA))
const CREATE_21 = flavorCreateBody({})
const CREATE_255 = flavorCreateBody({ description: DESCRIPTION })
type CreateFlavorBody = { flavor: Static<typeof CREATE_21>['flavor'] & { description?: string | null } }
const createSchema = (v: Microversion) => atVersion(v, CREATE_21, [['flavorDescription', CREATE_255]])
/** update_v2_55: the description only, required. PUT /flavors/{id} exists from 2.55. */
const UPDATE_255 = Type.Object(
  { flavor: Type.Object({ description: Type.Unsafe<string | null>(DESCRIPTION_SCHEMA) }, { additionalProperties: false }) },
  { additionalProperties: false },
)

/** schemas/flavor_access.py: {"addTenantAccess": {"tenant": ...}} and the same for remove. */
const TENANT = Type.Object({ tenant: Type.String({ minLength: 1, maxLength: 255 }) }, { additionalProperties: false })
const ADD_ACCESS = Type.Object({ addTenantAccess: TENANT }, { additionalProperties: false })
const REMOVE_ACCESS = Type.Object({ removeTenantAccess: TENANT }, { additionalProperties: false })

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

function publicFlag(v: boolean | string | undefined): boolean | undefined {
  return typeof v === 'string' ? TRUE_STRINGS.includes(v) : v
}

/** Nova's validate_integer, for the values the schema let through as digit strings. */
function flavorInteger(v: number | string, name: string, min: number): number {
  const n = Number(v)
  if (n < min) throw new BadRequest(`Invalid input received: ${name} must be >= ${min}`)
  if (n > MAX_INT) throw new BadRequest(`Invalid input received: ${name} must be <= ${MAX_INT}`)
  return n
}

// schemas/flavors.py VALID_SORT_KEYS, VALID_SORT_DIR.
const SORT_KEYS = [
  'created_at',
  'description',
  'disabled',
  'ephemeral_gb',
  'flavorid',
  'id',
  'is_public',
  'memory_mb',
  'name',
  'root_gb',
  'rxtx_factor',
  'swap',
  'updated_at',
  'vcpu_weight',
  'vcpus',
]
const INDEX_QUERY = {
  limit: multi(NON_NEGATIVE_INTEGER),
  marker: multi({ type: 'string' }),
  is_public: multi({ type: 'string' }),
  minRam: multi({ type: 'string' }),
  minDisk: multi({ type: 'string' }),
  sort_key: multi({ type: 'string', enum: SORT_KEYS }),
  sort_dir: multi({ type: 'string', enum: ['asc', 'desc'] }),
}

function flavorQuery(req: FastifyRequest, raw: Query, maxLimit: number): FlavorQuery {
  const q = validateQuery(querySchema(INDEX_QUERY, req.microversion), raw)
  // Non-admins see public flavors; admins choose with is_public (None = all).
  const isPublicRaw = one(q.is_public)
  let isPublic: boolean | null = true
  if (req.auth.isAdmin && isPublicRaw !== undefined) {
    isPublic = isPublicRaw.toLowerCase() === 'none' ? null : ['true', '1', 'yes', 't', 'y', 'on'].includes(isPublicRaw.toLowerCase())
  }
  const num = (name: string) => {
    const v = one(q[name])
    if (v === undefined) return undefined
    if (!/^\d+$/.test(v)) throw new BadRequest(`Invalid ${name} filter [${v}]`)
    return Number(v)
  }
  // common.get_limit_and_marker: max_limit at most (and when absent).
  const limit = one(q.limit)
  return {
    isPublic,
    ...(req.auth.isAdmin ? {} : { accessProject: req.auth.projectId ?? '' }),
    minRam: num('minRam'),
    minDisk: num('minDisk'),
    limit: Math.min(limit === undefined ? maxLimit : Number(limit), maxLimit),
    marker: one(q.marker),
    sortKey: one(q.sort_key) || 'flavorid',
    sortDir: (one(q.sort_dir) || 'asc') as 'asc' | 'desc',
  }
}

export function flavorRoutes(app: FastifyInstance, deps: ComputeRouteDeps) {
  const base = deps.computeUrl
  const { flavors } = deps
  // From 2.61 the views carry extra_specs for whoever os-flavor-extra-specs:index allows
  // (PROJECT_READER_OR_ADMIN), without refusing anyone else.
  const options = (req: FastifyRequest) => ({ base, v: req.microversion, extraSpecs: hasRole(req.auth, 'reader') })
  const list = async (req: FastifyRequest<{ Querystring: Query }>, path: string, view: (f: Flavor) => Record<string, unknown>) => {
    const rows = await flavors.list(flavorQuery(req, req.query, deps.maxLimit))
    const links = collectionLinks(req, base, path, rows.length, rows.at(-1)?.id, deps.maxLimit)
    return { flavors: rows.map(view), ...(links.length ? { flavors_links: links } : {}) }
  }

  app.get<{ Querystring: Query }>('/v2.1/flavors', async (req) => list(req, 'flavors', (f) => flavorBasicView(f, options(req))))
  app.get<{ Querystring: Query }>('/v2.1/flavors/detail', async (req) => list(req, 'flavors/detail', (f) => flavorView(f, options(req))))
  app.get<{ Params: { id: string } }>('/v2.1/flavors/:id', async (req) => ({
    flavor: flavorView(await flavors.get(req.params.id, req.auth), options(req)),
  }))

  app.post<{ Body: unknown }>('/v2.1/flavors', async (req) => {
    validateBody(createSchema(req.microversion), req.body)
    authorize(req.auth, 'os_compute_api:os-flavor-manage:create', 'admin')
    const f = (req.body as CreateFlavorBody).flavor
    const row = await flavors.create({
      id: f.id === null || f.id === undefined ? undefined : String(f.id),
      name: f.name,
      ram: flavorInteger(f.ram, 'memory_mb', 1),
      vcpus: flavorInteger(f.vcpus, 'vcpus', 1),
      disk: flavorInteger(f.disk, 'root_gb', 0),
      ephemeral: flavorInteger(f['OS-FLV-EXT-DATA:ephemeral'] ?? 0, 'ephemeral_gb', 0),
      swap: flavorInteger(f.swap || 0, 'swap', 0),
      rxtxFactor: Number(f.rxtx_factor ?? 1),
      isPublic: publicFlag(f['os-flavor-access:is_public']),
      description: f.description ?? null,
    })
    return { flavor: flavorView(row, options(req)) }
  })
  // From 2.55 (flavorDescription): only the description changes. Below, no such method (404).
  app.put<{ Params: { id: string }; Body: unknown }>('/v2.1/flavors/:id', async (req, reply) => {
    if (!has(req.microversion, 'flavorDescription')) return reply.callNotFound()
    validateBody(UPDATE_255, req.body)
    authorize(req.auth, 'os_compute_api:os-flavor-manage:update', 'admin')
    const row = await flavors.updateDescription(req.params.id, (req.body as Static<typeof UPDATE_255>).flavor.description)
    return { flavor: flavorView(row, options(req)) }
  })
  app.delete<{ Params: { id: string } }>('/v2.1/flavors/:id', async (req, reply) => {
    authorize(req.auth, 'os_compute_api:os-flavor-manage:delete', 'admin')
    await flavors.delete(req.params.id)
    return reply.code(202).send()
  })

  app.get<{ Params: { id: string } }>('/v2.1/flavors/:id/os-flavor-access', async (req) => {
    authorize(req.auth, 'os_compute_api:os-flavor-access', 'admin')
    return { flavor_access: await flavors.accessList(req.params.id) }
  })
  // addTenantAccess / removeTenantAccess, the only actions on a flavor.
  app.post<{ Params: { id: string }; Body: unknown }>('/v2.1/flavors/:id/action', async (req) => {
    const body = req.body as Record<string, unknown> | null
    if (body && typeof body === 'object' && 'addTenantAccess' in body) {
      validateBody(ADD_ACCESS, body)
      authorize(req.auth, 'os_compute_api:os-flavor-access:add_tenant_access', 'admin')
      const tenant = (body as Static<typeof ADD_ACCESS>).addTenantAccess.tenant
      return { flavor_access: await flavors.addAccess(req.params.id, tenant, has(req.microversion, 'flavorAccessChecksPublic')) }
    }
    if (body && typeof body === 'object' && 'removeTenantAccess' in body) {
      validateBody(REMOVE_ACCESS, body)
      authorize(req.auth, 'os_compute_api:os-flavor-access:remove_tenant_access', 'admin')
      const tenant = (body as Static<typeof REMOVE_ACCESS>).removeTenantAccess.tenant
      return { flavor_access: await flavors.removeAccess(req.params.id, tenant) }
    }
    throw new BadRequest(`There is no such action: ${Object.keys(body ?? {})[0] ?? ''}`)
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
    // Nova's delete has no response decorator: 200, empty.
    return reply.code(200).send()
  })
}
