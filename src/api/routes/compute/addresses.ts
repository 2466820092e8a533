// A server's addresses: /servers/{id}/ips[/{network}] (Nova's ips controller). The nova-network
// era /servers/{id}/os-virtual-interfaces is 410 Gone in Zed at every version (gone-apis.ts).
import type { FastifyInstance } from 'fastify'
import { NotFound } from '../../../errors.ts'
import { authorize } from '../../../compute/policy.ts'
import type { ComputeRouteDeps } from './index.ts'
import { addressesView } from './views.ts'

export function addressRoutes(app: FastifyInstance, deps: ComputeRouteDeps) {
  const { servers } = deps

  const addressesOf = async (req: { auth: Parameters<typeof servers.get>[0] }, id: string, rule: string) => {
    const s = await servers.get(req.auth, id)
    authorize(req.auth, rule, 'reader')
    // As in the server view: nothing while the server builds.
    if (s.vm_state === 'building') return { server: s, addresses: {} as Record<string, unknown[]> }
    const ips = (await servers.fixedIps([s.id])).get(s.id) ?? []
    return { server: s, addresses: addressesView(ips, false) }
  }

  app.get<{ Params: { id: string } }>('/v2.1/servers/:id/ips', async (req) => {
    const { addresses } = await addressesOf(req, req.params.id, 'os_compute_api:ips:index')
    return { addresses }
  })

  app.get<{ Params: { id: string; network: string } }>('/v2.1/servers/:id/ips/:network', async (req) => {
    const { addresses } = await addressesOf(req, req.params.id, 'os_compute_api:ips:show')
    const list = addresses[req.params.network]
    if (!list) throw new NotFound('Instance is not a member of specified network')
    return { [req.params.network]: list }
  })
}
