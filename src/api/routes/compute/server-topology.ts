// GET /servers/{id}/topology (microversion 2.78). Skiff's guests have no NUMA topology, so the
// answer is Nova's for an instance without one.
import type { FastifyInstance } from 'fastify'
import type { ComputeRouteDeps } from './index.ts'
import { requireVersion } from './versioned.ts'

export function serverTopologyRoutes(app: FastifyInstance, deps: ComputeRouteDeps) {
  app.get<{ Params: { id: string } }>('/v2.1/servers/:id/topology', async (req) => {
    requireVersion(req.microversion, 'serverTopology')
    await deps.servers.topology(req.auth, req.params.id)
    return { nodes: [], pagesize_kb: null }
  })
}
