// GET /servers/{id}/os-instance-actions[/{request_id}]: what was done to a server, and the events
// of each action. Per microversion as nova/api/openstack/compute/instance_actions.py: deleted
// servers from 2.21; events for everyone from 2.51 (the traceback for admins only); from 2.58
// limit/marker/changes-since, updated_at and `links`; host (admins) and hostId in events from
// 2.62; changes-before from 2.66; details (admins) from 2.84.
import type { FastifyInstance } from 'fastify'
import { isoMicrosNoZone } from '../../../clock.ts'
import type { InstanceAction, InstanceActionEvent } from '../../../compute/server.ts'
import { BadRequest } from '../../../errors.ts'
import { has } from '../../microversion-changes.ts'
import type { Microversion } from '../../microversion.ts'
import type { ComputeRouteDeps } from './index.ts'
import { collectionLinks } from './collection-links.ts'
import { NON_NEGATIVE_INTEGER, validateQuery, type Query } from './query-schemas.ts'
import { hostId } from './views.ts'

const actionView = (a: InstanceAction, v: Microversion) => {
  const view: Record<string, unknown> = {
    action: a.action,
    instance_uuid: a.server_id,
    request_id: a.request_id,
    user_id: a.user_id,
    project_id: a.project_id,
    start_time: isoMicrosNoZone(a.start_time),
    message: a.message,
  }
  if (has(v, 'instanceActionsPagination')) view.updated_at = isoMicrosNoZone(a.updated_at)
  return view
}

function eventView(e: InstanceActionEvent, projectId: string, v: Microversion, admin: boolean) {
  const view: Record<string, unknown> = {
    event: e.event,
    start_time: isoMicrosNoZone(e.start_time),
    finish_time: e.finish_time ? isoMicrosNoZone(e.finish_time) : null,
    result: e.result,
  }
  if (admin) view.traceback = e.traceback
  if (admin && has(v, 'actionEventHost')) view.host = e.host
  if (has(v, 'actionEventHost')) view.hostId = hostId(projectId, e.host)
  // os-instance-actions:events:details: admin by default.
  if (admin && has(v, 'actionEventDetails')) view.details = e.details
  return view
}

/** parameter_types.single_param. */
const single = (schema: object) => ({ type: 'array', items: schema, maxItems: 1 })
const DATE_TIME = single({ type: 'string', format: 'date-time' })

/** list_query_params_v258 / _v266 (no unknown parameters, one value each). */
function listQuerySchema(v: Microversion): object {
  const properties: Record<string, object> = {
    limit: single(NON_NEGATIVE_INTEGER),
    marker: single({ type: 'string' }),
    'changes-since': DATE_TIME,
  }
  if (has(v, 'changesBefore')) properties['changes-before'] = DATE_TIME
  return { type: 'object', properties, additionalProperties: false }
}

const utc = (s: string) => new Date(/[zZ]|[+-]\d\d:?\d\d$/.test(s) ? s : `${s}Z`).toISOString()

export function instanceActionRoutes(app: FastifyInstance, deps: ComputeRouteDeps) {
  app.get<{ Params: { id: string }; Querystring: Query }>('/v2.1/servers/:id/os-instance-actions', async (req) => {
    const v = req.microversion
    const includeDeleted = has(v, 'instanceActionsOfDeletedServers')
    if (!has(v, 'instanceActionsPagination')) {
      const rows = await deps.instanceActions.list(req.auth, req.params.id, { includeDeleted })
      return { instanceActions: rows.map((a) => actionView(a, v)) }
    }
    const q = validateQuery(listQuerySchema(v), req.query)
    const since = q['changes-since']?.[0]
    const before = q['changes-before']?.[0]
    if (since !== undefined && before !== undefined && Date.parse(utc(before)) < Date.parse(utc(since))) {
      throw new BadRequest('The value of changes-since must be less than or equal to changes-before.')
    }
    const limit = q.limit?.[0]
    const rows = await deps.instanceActions.list(req.auth, req.params.id, {
      includeDeleted,
      page: {
        limit: Math.min(limit === undefined ? deps.maxLimit : Number(limit), deps.maxLimit),
        marker: q.marker?.[0],
        changesSince: since === undefined ? undefined : utc(since),
        changesBefore: before === undefined ? undefined : utc(before),
      },
    })
    const body: Record<string, unknown> = { instanceActions: rows.map((a) => actionView(a, v)) }
    const links = collectionLinks(
      req,
      deps.computeUrl,
      `servers/${req.params.id}/os-instance-actions`,
      rows.length,
      rows.at(-1)?.request_id,
      deps.maxLimit,
    )
    if (links.length) body.links = links
    return body
  })

  app.get<{ Params: { id: string; requestId: string } }>('/v2.1/servers/:id/os-instance-actions/:requestId', async (req) => {
    const v = req.microversion
    const { action, events, admin } = await deps.instanceActions.show(req.auth, req.params.id, req.params.requestId, {
      includeDeleted: has(v, 'instanceActionsOfDeletedServers'),
      eventsForAll: has(v, 'actionEventDetailsForAll'),
    })
    const view = actionView(action, v)
    if (events) view.events = events.map((e) => eventView(e, action.project_id, v, admin))
    return { instanceAction: view }
  })
}
