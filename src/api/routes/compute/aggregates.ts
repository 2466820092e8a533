// /os-aggregates (admins): list, create, show, update, delete, and the actions add_host,
// remove_host and set_metadata, as nova/api/openstack/compute/aggregates.py; the uuid from 2.41.
import type { FastifyInstance } from 'fastify'
import { isoMicrosNoZone } from '../../../clock.ts'
import type { AggregateView } from '../../../compute/aggregate-service.ts'
import { BadRequest } from '../../../errors.ts'
import { has } from '../../microversion-changes.ts'
import type { Microversion } from '../../microversion.ts'
import type { ComputeRouteDeps } from './index.ts'
import { validateBody } from './schemas.ts'

const NAME = { type: 'string', format: 'name', minLength: 1, maxLength: 255 }
const NAME_SPACES = { type: 'string', format: 'name_with_leading_trailing_spaces', minLength: 1, maxLength: 255 }
const AZ = { oneOf: [{ type: 'string', format: 'az_name', minLength: 1, maxLength: 255 }, { type: 'null' }] }
const AZ_SPACES = {
  oneOf: [{ type: 'string', format: 'az_name_with_leading_trailing_spaces', minLength: 1, maxLength: 255 }, { type: 'null' }],
}
const wrap = (key: string, inner: object) => ({
  type: 'object',
  properties: { [key]: inner },
  required: [key],
  additionalProperties: false,
})
const CREATE = wrap('aggregate', {
  type: 'object',
  properties: { name: NAME, availability_zone: AZ },
  required: ['name'],
  additionalProperties: false,
})
const CREATE_V20 = wrap('aggregate', {
  type: 'object',
  properties: { name: NAME_SPACES, availability_zone: AZ_SPACES },
  required: ['name'],
  additionalProperties: false,
})
const UPDATE = wrap('aggregate', {
  type: 'object',
  properties: { name: NAME_SPACES, availability_zone: AZ },
  additionalProperties: false,
  anyOf: [{ required: ['name'] }, { required: ['availability_zone'] }],
})
const FQDN = { type: 'string', pattern: '^[a-zA-Z0-9-._]*$', minLength: 1, maxLength: 255 }
const HOST_ACTION = (key: string) =>
  wrap(key, { type: 'object', properties: { host: FQDN }, required: ['host'], additionalProperties: false })
const SET_METADATA = wrap('set_metadata', {
  type: 'object',
  properties: {
    metadata: {
      type: 'object',
      patternProperties: { '^[a-zA-Z0-9-_:. ]{1,255}$': { type: ['string', 'null'], maxLength: 255 } },
      additionalProperties: false,
    },
  },
  required: ['metadata'],
  additionalProperties: false,
})

/** common.normalize_name: surrounding whitespace dropped (the 2.0 schemas allow it). */
const normalize = (s: string) => s.trim()

function aggregateView(a: AggregateView, v: Microversion): Record<string, unknown> {
  const out: Record<string, unknown> = {
    availability_zone: a.availability_zone,
    created_at: isoMicrosNoZone(a.created_at),
    deleted: !!a.deleted,
    deleted_at: a.deleted_at ? isoMicrosNoZone(a.deleted_at) : null,
    hosts: a.hosts,
    id: a.id,
    metadata: a.metadata,
    name: a.name,
    updated_at: a.updated_at ? isoMicrosNoZone(a.updated_at) : null,
  }
  if (has(v, 'aggregateUuid')) out.uuid = a.uuid
  return out
}

export function aggregateRoutes(app: FastifyInstance, deps: ComputeRouteDeps) {
  const { aggregates } = deps

  app.get('/v2.1/os-aggregates', async (req) => ({
    aggregates: (await aggregates.list(req.auth)).map((a) => aggregateView(a, req.microversion)),
  }))

  app.post('/v2.1/os-aggregates', async (req) => {
    validateBody(req.legacyV2 ? CREATE_V20 : CREATE, req.body)
    const b = (req.body as { aggregate: { name: string; availability_zone?: string | null } }).aggregate
    const a = await aggregates.create(req.auth, normalize(b.name), b.availability_zone ? normalize(b.availability_zone) : null)
    // Nova's create answer leaves out hosts and metadata.
    const view = aggregateView(a, req.microversion)
    delete view.hosts
    delete view.metadata
    return { aggregate: view }
  })

  app.get<{ Params: { id: string } }>('/v2.1/os-aggregates/:id', async (req) => ({
    aggregate: aggregateView(await aggregates.show(req.auth, req.params.id), req.microversion),
  }))

  app.put<{ Params: { id: string } }>('/v2.1/os-aggregates/:id', async (req) => {
    validateBody(UPDATE, req.body)
    const b = (req.body as { aggregate: { name?: string; availability_zone?: string | null } }).aggregate
    const change = { ...b, ...(b.name !== undefined ? { name: normalize(b.name) } : {}) }
    return { aggregate: aggregateView(await aggregates.update(req.auth, req.params.id, change), req.microversion) }
  })

  app.delete<{ Params: { id: string } }>('/v2.1/os-aggregates/:id', async (req, reply) => {
    await aggregates.delete(req.auth, req.params.id)
    return reply.code(200).type('application/json').send()
  })

  app.post<{ Params: { id: string } }>('/v2.1/os-aggregates/:id/action', async (req) => {
    const body = req.body
    if (body === null || typeof body !== 'object' || Array.isArray(body) || Object.keys(body).length !== 1) {
      throw new BadRequest('Malformed request body')
    }
    const action = Object.keys(body)[0]!
    const v = req.microversion
    let a: AggregateView
    if (action === 'add_host') {
      validateBody(HOST_ACTION('add_host'), body)
      a = await aggregates.addHost(req.auth, req.params.id, (body as { add_host: { host: string } }).add_host.host)
    } else if (action === 'remove_host') {
      validateBody(HOST_ACTION('remove_host'), body)
      a = await aggregates.removeHost(req.auth, req.params.id, (body as { remove_host: { host: string } }).remove_host.host)
    } else if (action === 'set_metadata') {
      validateBody(SET_METADATA, body)
      const metadata = (body as { set_metadata: { metadata: Record<string, string | null> } }).set_metadata.metadata
      a = await aggregates.setMetadata(req.auth, req.params.id, metadata)
    } else {
      throw new BadRequest(`There is no such action: ${action}`)
    }
    return { aggregate: aggregateView(a, v) }
  })
}
