// GET /os-services and /os-availability-zone: the compute hosts (one nova-compute per agent
// host) and Skiff's one zone.
import type { FastifyInstance } from 'fastify'
import { isoMicrosNoZone } from '../../../clock.ts'
import { authorize } from '../../../compute/policy.ts'
import type { ComputeRouteDeps } from './index.ts'

export function serviceRoutes(app: FastifyInstance, deps: ComputeRouteDeps) {
  // One nova-compute service per agent host; `state` is down once its heartbeats stop (actions
  // on its servers then answer 503). Nova 2.1's shape: integer ids, here the rank by name.
  app.get('/v2.1/os-services', async (req) => {
    authorize(req.auth, 'os_compute_api:os-services:list', 'admin')
    const q = req.query as Record<string, string | undefined>
    const hosts = (await deps.hosts.list()).filter((h) => q.host === undefined || h.name === q.host)
    const services =
      q.binary !== undefined && q.binary !== 'nova-compute'
        ? []
        : hosts.map((h, i) => ({
            id: i + 1,
            binary: 'nova-compute',
            host: h.name,
            zone: 'nova',
            status: 'enabled',
            state: h.up ? 'up' : 'down',
            updated_at: isoMicrosNoZone(h.heartbeat_at),
            disabled_reason: null,
          }))
    return { services }
  })

  app.get('/v2.1/os-availability-zone', async () => ({
    availabilityZoneInfo: [{ zoneName: 'nova', zoneState: { available: true }, hosts: null }],
  }))
}
