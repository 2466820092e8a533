// Limits, instance actions and availability zones.
import type { FastifyInstance } from 'fastify'
import { isoMicrosNoZone } from '../../../clock.ts'
import { NotFound } from '../../../errors.ts'
import { authorize } from '../../../compute/policy.ts'
import { SERVER_GROUP_QUOTAS } from '../../../compute/server-group-service.ts'
import { METADATA_ITEMS_QUOTA } from '../../../compute/server-metadata.ts'
import type { ComputeRouteDeps } from './index.ts'

export function miscRoutes(app: FastifyInstance, deps: ComputeRouteDeps) {
  const { servers } = deps
  const db = servers.repo.db

  app.get('/v2.1/limits', async (req) => {
    const used = await db.selectFrom('servers').innerJoin('flavors', 'flavors.id', 'servers.flavor_id')
      .select((eb) => [eb.fn.countAll<number>().as('n'), eb.fn.sum<number>('flavors.vcpus').as('cores'), eb.fn.sum<number>('flavors.ram').as('ram')])
      .where('servers.project_id', '=', req.auth.projectId ?? '').where('servers.deleted', '=', 0).executeTakeFirstOrThrow()
    const q = deps.quotas
    const groups = await db.selectFrom('server_groups').select((eb) => eb.fn.countAll<number>().as('n'))
      .where('project_id', '=', req.auth.projectId ?? '').executeTakeFirstOrThrow()
    return {
      limits: {
        rate: [],
        absolute: {
          maxImageMeta: 128, maxPersonality: 5, maxPersonalitySize: 10240, maxSecurityGroupRules: -1, maxSecurityGroups: -1,
          maxServerGroupMembers: SERVER_GROUP_QUOTAS.members, maxServerGroups: SERVER_GROUP_QUOTAS.groups, maxServerMeta: METADATA_ITEMS_QUOTA,
          maxTotalCores: q.cores, maxTotalFloatingIps: -1,
          maxTotalInstances: q.instances, maxTotalKeypairs: 100, maxTotalRAMSize: q.ram,
          totalCoresUsed: Number(used.cores ?? 0), totalFloatingIpsUsed: 0, totalInstancesUsed: Number(used.n),
          totalRAMUsed: Number(used.ram ?? 0), totalSecurityGroupsUsed: 0, totalServerGroupsUsed: Number(groups.n),
        },
      },
    }
  })

  // One nova-compute service per agent host; `state` is down once its heartbeats stop (actions
  // on its servers then answer 503). Nova 2.1's shape: integer ids, here the rank by name.
  app.get('/v2.1/os-services', async (req) => {
    authorize(req.auth, 'os_compute_api:os-services:list', 'admin')
    const q = req.query as Record<string, string | undefined>
    const hosts = (await deps.hosts.list())
      .filter((h) => q.host === undefined || h.name === q.host)
    const services = q.binary !== undefined && q.binary !== 'nova-compute' ? [] : hosts.map((h, i) => ({
      id: i + 1, binary: 'nova-compute', host: h.name, zone: 'nova', status: 'enabled', state: h.up ? 'up' : 'down',
      updated_at: isoMicrosNoZone(h.heartbeat_at), disabled_reason: null,
    }))
    return { services }
  })

  const actionView = (a: { action: string; server_id: string; request_id: string; user_id: string; project_id: string; start_time: string; message: string | null }) => ({
    action: a.action, instance_uuid: a.server_id, request_id: a.request_id, user_id: a.user_id, project_id: a.project_id,
    start_time: isoMicrosNoZone(a.start_time), message: a.message,
  })

  app.get<{ Params: { id: string } }>('/v2.1/servers/:id/os-instance-actions', async (req) => {
    const s = await servers.get(req.auth, req.params.id)
    authorize(req.auth, 'os_compute_api:os-instance-actions:list', 'reader')
    const rows = await db.selectFrom('instance_actions').selectAll().where('server_id', '=', s.id)
      .orderBy('start_time', 'desc').orderBy('id', 'desc').execute()
    return { instanceActions: rows.map(actionView) }
  })

  app.get<{ Params: { id: string; requestId: string } }>('/v2.1/servers/:id/os-instance-actions/:requestId', async (req) => {
    const s = await servers.get(req.auth, req.params.id)
    authorize(req.auth, 'os_compute_api:os-instance-actions:show', 'reader')
    const a = await db.selectFrom('instance_actions').selectAll().where('server_id', '=', s.id).where('request_id', '=', req.params.requestId).executeTakeFirst()
    if (!a) throw new NotFound(`Action for request_id ${req.params.requestId} on instance ${s.id} not found`)
    const view: Record<string, unknown> = actionView(a)
    // At 2.1 only admins see the events (os-instance-actions:events policy).
    if (req.auth.isAdmin) {
      const events = await db.selectFrom('instance_action_events').selectAll().where('action_id', '=', a.id).orderBy('start_time').execute()
      view.events = events.map((e) => ({
        event: e.event, start_time: isoMicrosNoZone(e.start_time), finish_time: e.finish_time ? isoMicrosNoZone(e.finish_time) : null,
        result: e.result, traceback: e.traceback,
      }))
    }
    return { instanceAction: view }
  })

  app.get('/v2.1/os-availability-zone', async () => ({
    availabilityZoneInfo: [{ zoneName: 'nova', zoneState: { available: true }, hosts: null }],
  }))
}
