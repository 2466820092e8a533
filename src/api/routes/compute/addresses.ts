// A server's addresses: /servers/{id}/ips[/{network}] (Nova's ips controller) and the
// nova-network era /servers/{id}/os-virtual-interfaces (Skiff's built-in network has real
// interfaces, so it answers as nova-network did below 2.44, without the 2.12 net_id).
import { createHash } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import { NotFound } from '../../../errors.ts'
import { authorize } from '../../../compute/policy.ts'
import type { ComputeRouteDeps } from './index.ts'
import { addressesView } from './views.ts'

/** A stable id for an interface: Skiff keeps no row per interface, only the address and MAC. */
const vifId = (serverId: string, mac: string) => {
  const h = createHash('sha1').update(`${serverId}/${mac}`).digest('hex')
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`
}

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

  app.get<{ Params: { id: string } }>('/v2.1/servers/:id/os-virtual-interfaces', async (req) => {
    const s = await servers.get(req.auth, req.params.id)
    authorize(req.auth, 'os_compute_api:os-virtual-interfaces', 'reader')
    const ips = (await servers.fixedIps([s.id])).get(s.id) ?? []
    return { virtual_interfaces: ips.map((ip) => ({ id: vifId(s.id, ip.mac), mac_address: ip.mac })) }
  })
}
