// /os-services: the compute hosts (one nova-compute per agent host); their zones are in
// availability-zones.ts. Per microversion as nova/api/openstack/compute/services.py: forced_down
// and PUT /os-services/force-down from 2.11; from 2.53 uuid ids and PUT /os-services/{id}
// instead of the action names (2.69's down-cell answers need cells: none here).
import { createHash } from 'node:crypto'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { isoMicrosNoZone } from '../../../clock.ts'
import { authorize } from '../../../compute/policy.ts'
import { BadRequest, Conflict, NotFound } from '../../../errors.ts'
import { isUuidLike } from '../../formats.ts'
import { has } from '../../microversion-changes.ts'
import type { Microversion } from '../../microversion.ts'
import type { ComputeRouteDeps } from './index.ts'
import { COMMON, querySchema, validateQuery, type Query } from './query-schemas.ts'
import { validateBody } from './schemas.ts'
import { BOOLEAN } from './parameter-types.ts'

type Host = Awaited<ReturnType<ComputeRouteDeps['hosts']['list']>>[number]

/** A service's uuid (2.53): stable, derived from its host name (a name-based, version 5 style UUID). */
export function serviceUuid(host: string): string {
  const h = createHash('sha1').update(`skiff nova-compute ${host}`).digest('hex')
  const variant = ((parseInt(h[16]!, 16) & 0x3) | 0x8).toString(16)
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-${variant}${h.slice(17, 20)}-${h.slice(20, 32)}`
}

const REASON = { type: 'string', minLength: 1, maxLength: 255 }
const HOST_AND_BINARY = { host: { type: 'string', minLength: 1, maxLength: 255 }, binary: { type: 'string', minLength: 1, maxLength: 255 } }
const UPDATE_21 = {
  type: 'object',
  properties: { ...HOST_AND_BINARY, disabled_reason: REASON },
  required: ['host', 'binary'],
  additionalProperties: false,
}
const UPDATE_211 = { ...UPDATE_21, properties: { ...UPDATE_21.properties, forced_down: BOOLEAN } }
const UPDATE_253 = {
  type: 'object',
  properties: { status: { type: 'string', enum: ['enabled', 'disabled'] }, disabled_reason: REASON, forced_down: BOOLEAN },
  additionalProperties: false,
}

/** oslo's bool_from_string (strict: anything else is an error). */
function boolFrom(v: boolean | string, strict: boolean): boolean {
  if (typeof v === 'boolean') return v
  const s = v.trim().toLowerCase()
  if (['1', 't', 'true', 'on', 'y', 'yes'].includes(s)) return true
  if (!strict || ['0', 'f', 'false', 'off', 'n', 'no'].includes(s)) return false
  throw new BadRequest(
    `Unrecognized value '${v}', acceptable values are: '0', '1', 'f', 'false', 'n', 'no', 'off', 'on', 't', 'true', 'y', 'yes'`,
  )
}

function serviceView(h: Host, id: number | string, v: Microversion, zone = 'nova'): Record<string, unknown> {
  const view: Record<string, unknown> = {
    id,
    binary: 'nova-compute',
    host: h.name,
    zone,
    status: h.service_disabled ? 'disabled' : 'enabled',
    // servicegroup's service_is_up: a forced-down service is down.
    state: h.up && !h.forced_down ? 'up' : 'down',
    updated_at: isoMicrosNoZone(h.heartbeat_at),
    disabled_reason: h.disabled_reason,
  }
  if (has(v, 'serviceForcedDown')) view.forced_down = !!h.forced_down
  return view
}

export function serviceRoutes(app: FastifyInstance, deps: ComputeRouteDeps) {
  /** Every host with its id at this version: the rank by name below 2.53, the uuid from it. */
  const services = async (v: Microversion) =>
    (await deps.hosts.list()).map((h, i) => ({ host: h, id: has(v, 'serviceUuids') ? serviceUuid(h.name) : i + 1 }))

  // One nova-compute service per agent host; `state` is down once its heartbeats stop (actions
  // on its servers then answer 503) or an admin forced it down.
  app.get<{ Querystring: Query }>('/v2.1/os-services', async (req) => {
    const v = req.microversion
    const q = validateQuery(querySchema({ host: COMMON, binary: COMMON }, v), req.query)
    authorize(req.auth, 'os_compute_api:os-services:list', 'admin')
    // webob's req.GET[name]: the last value; an empty one filters nothing.
    const host = q.host?.at(-1)
    const binary = q.binary?.at(-1)
    const list = (await services(v)).filter(({ host: h }) => !host || h.name === host).filter(() => !binary || binary === 'nova-compute')
    const zones = await deps.aggregates.hostZones()
    return { services: list.map(({ host: h, id }) => serviceView(h, id, v, zones.get(h.name))) }
  })

  // Before 2.53: PUT /os-services/{enable|disable|disable-log-reason|force-down} with host and binary.
  const updateByAction = async (req: FastifyRequest<{ Params: { id: string } }>) => {
    const v = req.microversion
    validateBody(has(v, 'serviceForcedDown') ? UPDATE_211 : UPDATE_21, req.body)
    authorize(req.auth, 'os_compute_api:os-services:update', 'admin')
    const body = req.body as { host: string; binary: string; disabled_reason?: string; forced_down?: boolean | string }
    const action = req.params.id
    const known = ['enable', 'disable', 'disable-log-reason', ...(has(v, 'serviceForcedDown') ? ['force-down'] : [])]
    if (!known.includes(action)) throw new NotFound('Unknown action')
    let change: { disabled?: boolean; reason?: string | null; forcedDown?: boolean }
    let answer: Record<string, unknown>
    if (action === 'force-down') {
      if (body.forced_down === undefined) throw new BadRequest('Missing forced_down field')
      const forcedDown = boolFrom(body.forced_down, false)
      change = { forcedDown }
      answer = { host: body.host, binary: body.binary, forced_down: forcedDown }
    } else if (action === 'enable') {
      change = { disabled: false, reason: null }
      answer = { host: body.host, binary: body.binary, status: 'enabled' }
    } else {
      if (action === 'disable-log-reason' && body.disabled_reason === undefined) throw new BadRequest('Missing disabled reason field')
      const reason = action === 'disable-log-reason' ? body.disabled_reason! : null
      change = { disabled: true, reason }
      answer = { host: body.host, binary: body.binary, status: 'disabled', ...(reason ? { disabled_reason: reason } : {}) }
    }
    if (body.binary !== 'nova-compute') {
      throw new BadRequest(`Updating a ${body.binary} service is not supported. Only nova-compute services can be updated.`)
    }
    if (!(await deps.hosts.setServiceState(body.host, change))) throw new NotFound(`Host '${body.host}' is not mapped to any cell`)
    return { service: answer }
  }

  // From 2.53: PUT /os-services/{uuid} with status, disabled_reason, forced_down.
  const updateByUuid = async (req: FastifyRequest<{ Params: { id: string } }>) => {
    const v = req.microversion
    validateBody(UPDATE_253, req.body)
    const id = req.params.id
    if (!isUuidLike(id)) throw new BadRequest(`Invalid uuid ${id}`)
    authorize(req.auth, 'os_compute_api:os-services:update', 'admin')
    const found = (await services(v)).find((s) => s.id === id.toLowerCase())
    if (!found) throw new NotFound(`Service ${id} could not be found.`)
    const body = req.body as { status?: 'enabled' | 'disabled'; disabled_reason?: string; forced_down?: boolean | string }
    const change: { disabled?: boolean; reason?: string | null; forcedDown?: boolean } = {}
    if (body.status === 'enabled') {
      if (body.disabled_reason) throw new BadRequest("Specifying 'disabled_reason' with status 'enabled' is invalid.")
      change.disabled = false
      change.reason = null
    } else if (body.status === 'disabled') {
      change.disabled = true
      change.reason = body.disabled_reason ?? null
    }
    if (body.forced_down !== undefined) change.forcedDown = boolFrom(body.forced_down, true)
    // Nova's obj_what_changed(): setting a field to the value it has is still a change.
    if (Object.keys(change).length === 0) {
      throw new BadRequest("No updates were requested. Fields 'status' or 'forced_down' should be specified.")
    }
    await deps.hosts.setServiceState(found.host.name, change)
    const after = (await services(v)).find((s) => s.id === found.id)
    return { service: serviceView(after?.host ?? found.host, found.id, v, (await deps.aggregates.hostZones()).get(found.host.name)) }
  }

  app.put<{ Params: { id: string } }>('/v2.1/os-services/:id', async (req) =>
    has(req.microversion, 'serviceUuids') ? updateByUuid(req) : updateByAction(req),
  )

  app.delete<{ Params: { id: string } }>('/v2.1/os-services/:id', async (req, reply: FastifyReply) => {
    const v = req.microversion
    authorize(req.auth, 'os_compute_api:os-services:delete', 'admin')
    const id = req.params.id
    if (has(v, 'serviceUuids')) {
      if (!isUuidLike(id)) throw new BadRequest(`Invalid uuid ${id}`)
    } else if (!/^\s*[+-]?\d+\s*$/.test(id)) {
      throw new BadRequest('Invalid input received: id must be an integer')
    }
    const found = (await services(v)).find((s) => String(s.id) === (has(v, 'serviceUuids') ? id.toLowerCase() : String(Number(id))))
    if (!found) throw new NotFound(`Service ${id} not found.`)
    const r = await deps.hosts.remove(found.host.name)
    if (r === 'busy') {
      throw new Conflict('Unable to delete compute service that is hosting instances. Migrate or delete the instances first.')
    }
    if (r === 'missing') throw new NotFound(`Service ${id} not found.`)
    return reply.code(204).send()
  })
}
