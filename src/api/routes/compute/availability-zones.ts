// /os-availability-zone and /os-availability-zone/detail, as
// nova/api/openstack/compute/availability_zone.py: the zones of the compute hosts (an
// aggregate's availability_zone, else 'nova'), available while one of its services is enabled;
// the detail (admins) names each host's services, and the 'internal' zone of the services that
// are not nova-compute (Skiff's API process does the conductor's and the scheduler's work).
import { hostname } from 'node:os'
import type { FastifyInstance } from 'fastify'
import { isoMicrosNoZone } from '../../../clock.ts'
import { authorize } from '../../../compute/policy.ts'
import type { ComputeRouteDeps } from './index.ts'

export function availabilityZoneRoutes(app: FastifyInstance, deps: ComputeRouteDeps) {
  /** Zone → its hosts, and whether any of its compute services is enabled. */
  async function zones() {
    const [byZone, hosts] = await Promise.all([deps.aggregates.zones(), deps.hosts.list()])
    return [...byZone]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([name, names]) => {
        const rows = hosts.filter((h) => names.includes(h.name))
        return { name, rows, available: rows.some((h) => !h.service_disabled) }
      })
  }

  // Anyone may list the zones (Nova's RULE_ANY), without their hosts.
  app.get('/v2.1/os-availability-zone', async () => ({
    availabilityZoneInfo: (await zones()).map((z) => ({ zoneName: z.name, zoneState: { available: z.available }, hosts: null })),
  }))

  app.get('/v2.1/os-availability-zone/detail', async (req) => {
    authorize(req.auth, 'os_compute_api:os-availability-zone:detail', 'admin')
    const now = isoMicrosNoZone(new Date().toISOString())
    const internal = {
      zoneName: 'internal',
      zoneState: { available: true },
      hosts: {
        [hostname()]: {
          'nova-conductor': { active: true, available: true, updated_at: now },
          'nova-scheduler': { active: true, available: true, updated_at: now },
        },
      },
    }
    const computes = (await zones()).map((z) => ({
      zoneName: z.name,
      zoneState: { available: z.available },
      hosts: Object.fromEntries(
        z.rows.map((h) => [
          h.name,
          {
            'nova-compute': {
              active: !h.service_disabled,
              available: h.up && !h.forced_down,
              updated_at: isoMicrosNoZone(h.heartbeat_at),
            },
          },
        ]),
      ),
    }))
    return { availabilityZoneInfo: [internal, ...computes] }
  })
}
