// The nova-network, cells v1 and other APIs Nova removed and answers with 410 Gone at every
// microversion (Zed: each controller's method only `raise exc.HTTPGone()`, before any policy or
// lookup): os-agents, os-cells, os-certificates, os-cloudpipe, os-fixed-ips, os-floating-ip-dns,
// os-floating-ips-bulk, os-fping, os-security-group-default-rules, /servers/{id}/consoles and
// os-virtual-interfaces, the write methods of os-networks and os-tenant-networks (their reads were
// proxies to Neutron up to 2.35: 404 in Skiff, which has no Neutron), and the server action
// resetNetwork (actions.ts). The body is webob's HTTPGone text in Nova's fault, which names no
// fault for 410: computeFault.
import type { FastifyInstance, FastifyReply, HTTPMethods } from 'fastify'
import { novaFault } from '../../errors.ts'

export const GONE_MESSAGE = 'This resource is no longer available.  No forwarding address is given.'

/** Nova's 410 Gone. */
export const gone = (reply: FastifyReply) => reply.code(410).type('application/json; charset=UTF-8').send(novaFault(410, GONE_MESSAGE))

/** [path under /v2.1, methods]: nova/api/openstack/compute/routes.py, the controllers that only raise HTTPGone. */
export const GONE_ROUTES: [string, HTTPMethods[]][] = [
  ['/os-agents', ['GET', 'POST']],
  ['/os-agents/:id', ['PUT', 'DELETE']],
  ['/os-cells', ['GET', 'POST']],
  ['/os-cells/capacities', ['GET']],
  ['/os-cells/detail', ['GET']],
  ['/os-cells/info', ['GET']],
  ['/os-cells/sync_instances', ['POST']],
  ['/os-cells/:id', ['GET', 'PUT', 'DELETE']],
  ['/os-cells/:id/capacities', ['GET']],
  ['/os-certificates', ['POST']],
  ['/os-certificates/:id', ['GET']],
  ['/os-cloudpipe', ['GET', 'POST']],
  ['/os-cloudpipe/:id', ['PUT']],
  ['/os-fixed-ips/:id', ['GET']],
  ['/os-fixed-ips/:id/action', ['POST']],
  ['/os-floating-ip-dns', ['GET']],
  ['/os-floating-ip-dns/:id', ['PUT', 'DELETE']],
  ['/os-floating-ip-dns/:id/entries/:entry', ['GET', 'PUT', 'DELETE']],
  ['/os-floating-ips-bulk', ['GET', 'POST']],
  ['/os-floating-ips-bulk/:id', ['GET', 'PUT']],
  ['/os-fping', ['GET']],
  ['/os-fping/:id', ['GET']],
  ['/os-networks', ['POST']],
  ['/os-networks/add', ['POST']],
  ['/os-networks/:id', ['DELETE']],
  ['/os-networks/:id/action', ['POST']],
  ['/os-security-group-default-rules', ['GET', 'POST']],
  ['/os-security-group-default-rules/:id', ['GET', 'DELETE']],
  ['/os-tenant-networks', ['POST']],
  ['/os-tenant-networks/:id', ['DELETE']],
  ['/servers/:id/consoles', ['GET', 'POST']],
  ['/servers/:id/consoles/:console', ['GET', 'DELETE']],
  ['/servers/:id/os-virtual-interfaces', ['GET']],
]

export function goneApiRoutes(app: FastifyInstance) {
  for (const [path, methods] of GONE_ROUTES) {
    app.route({ method: methods, url: `/v2.1${path}`, handler: async (_req, reply) => gone(reply) })
  }
}
