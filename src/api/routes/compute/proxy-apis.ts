// The proxy APIs Nova removed at 2.36 (proxyApisRemoved: os-security-groups, os-networks,
// os-tenant-networks, os-volumes, os-snapshots, os-floating-ips, os-floating-ip-pools,
// os-baremetal-nodes, the /images proxy and its metadata, os-quota-sets' network keys; fping and
// os-virtual-interfaces' nova-network remnants are 410 Gone: gone-apis.ts). Skiff has no Neutron,
// Cinder or Ironic behind the compute API: of these it serves, up to 2.35, the lists Nova answers
// empty from a Neutron without security groups or floating IPs (anchors os-security-groups-2.1):
// security groups, floating IP pools (Neutron's external networks: none) and floating IPs (an
// unknown one is Nova's 404). From 2.36 they are 404 "The resource could not be found."
// (os-security-groups-2.36), as every other of them is at every version here.
import type { FastifyInstance } from 'fastify'
import { authorize } from '../../../compute/policy.ts'
import { NotFound } from '../../../errors.ts'
import { has } from '../../microversion-changes.ts'

export function proxyApiRoutes(app: FastifyInstance) {
  app.get('/v2.1/os-security-groups', async (req, reply) => {
    if (has(req.microversion, 'proxyApisRemoved')) return reply.callNotFound()
    authorize(req.auth, 'os_compute_api:os-security-groups:get', 'reader')
    return { security_groups: [] }
  })
  // RULE_ANY: any token.
  app.get('/v2.1/os-floating-ip-pools', async (req, reply) => {
    if (has(req.microversion, 'proxyApisRemoved')) return reply.callNotFound()
    return { floating_ip_pools: [] }
  })
  app.get('/v2.1/os-floating-ips', async (req, reply) => {
    if (has(req.microversion, 'proxyApisRemoved')) return reply.callNotFound()
    authorize(req.auth, 'os_compute_api:os-floating-ips:list', 'reader')
    return { floating_ips: [] }
  })
  app.get<{ Params: { id: string } }>('/v2.1/os-floating-ips/:id', async (req, reply) => {
    if (has(req.microversion, 'proxyApisRemoved')) return reply.callNotFound()
    authorize(req.auth, 'os_compute_api:os-floating-ips:show', 'reader')
    throw new NotFound(`Floating IP not found for ID ${req.params.id}`)
  })
}
