// The proxy APIs Nova removed at 2.36 (proxyApisRemoved: os-security-groups, os-networks,
// os-tenant-networks, os-volumes, os-snapshots, os-floating-ips, os-floating-ip-pools,
// os-baremetal-nodes, the /images proxy and its metadata, os-quota-sets' network keys; fping and
// os-virtual-interfaces' nova-network remnants were gone before). Skiff has no Neutron, Cinder or
// Glance proxy behind the compute API: of these it serves only the list of security groups,
// empty as Nova answers without Neutron security groups (anchors os-security-groups-2.1), up to
// 2.35. From 2.36 it is 404 "The resource could not be found." (os-security-groups-2.36), as every
// other of them is at every version here.
import type { FastifyInstance } from 'fastify'
import { authorize } from '../../../compute/policy.ts'
import { has } from '../../microversion-changes.ts'

export function proxyApiRoutes(app: FastifyInstance) {
  app.get('/v2.1/os-security-groups', async (req, reply) => {
    if (has(req.microversion, 'proxyApisRemoved')) return reply.callNotFound()
    authorize(req.auth, 'os_compute_api:os-security-groups:get', 'reader')
    return { security_groups: [] }
  })
}
