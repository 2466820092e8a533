// GET /servers/{id}/os-instance-actions[/{request_id}]: what was done to a server, and (admins)
// the events of each action.
import type { FastifyInstance } from 'fastify'
import { isoMicrosNoZone } from '../../../clock.ts'
import type { InstanceAction } from '../../../compute/server.ts'
import type { ComputeRouteDeps } from './index.ts'

const actionView = (a: InstanceAction) => ({
  action: a.action,
  instance_uuid: a.server_id,
  request_id: a.request_id,
  user_id: a.user_id,
  project_id: a.project_id,
  start_time: isoMicrosNoZone(a.start_time),
  message: a.message,
})

export function instanceActionRoutes(app: FastifyInstance, deps: ComputeRouteDeps) {
  app.get<{ Params: { id: string } }>('/v2.1/servers/:id/os-instance-actions', async (req) => {
    const rows = await deps.instanceActions.list(req.auth, req.params.id)
    return { instanceActions: rows.map(actionView) }
  })

  app.get<{ Params: { id: string; requestId: string } }>('/v2.1/servers/:id/os-instance-actions/:requestId', async (req) => {
    const { action, events } = await deps.instanceActions.show(req.auth, req.params.id, req.params.requestId)
    const view: Record<string, unknown> = actionView(action)
    if (events) {
      view.events = events.map((e) => ({
        event: e.event,
        start_time: isoMicrosNoZone(e.start_time),
        finish_time: e.finish_time ? isoMicrosNoZone(e.finish_time) : null,
        result: e.result,
        traceback: e.traceback,
      }))
    }
    return { instanceAction: view }
  })
}
