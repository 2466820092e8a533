// GET /limits: the project's quotas and what its servers and server groups take of them.
import type { FastifyInstance } from 'fastify'
import { SERVER_GROUP_QUOTAS } from '../../../compute/server-group-service.ts'
import { METADATA_ITEMS_QUOTA } from '../../../compute/server-metadata.ts'
import type { ComputeRouteDeps } from './index.ts'

export function limitRoutes(app: FastifyInstance, deps: ComputeRouteDeps) {
  app.get('/v2.1/limits', async (req) => {
    const projectId = req.auth.projectId ?? ''
    const [used, groups] = await Promise.all([deps.servers.usage(projectId), deps.groups.count(projectId)])
    const q = deps.quotas
    return {
      limits: {
        rate: [],
        absolute: {
          maxImageMeta: 128,
          maxPersonality: 5,
          maxPersonalitySize: 10240,
          maxSecurityGroupRules: -1,
          maxSecurityGroups: -1,
          maxServerGroupMembers: SERVER_GROUP_QUOTAS.members,
          maxServerGroups: SERVER_GROUP_QUOTAS.groups,
          maxServerMeta: METADATA_ITEMS_QUOTA,
          maxTotalCores: q.cores,
          maxTotalFloatingIps: -1,
          maxTotalInstances: q.instances,
          maxTotalKeypairs: 100,
          maxTotalRAMSize: q.ram,
          totalCoresUsed: used.cores,
          totalFloatingIpsUsed: 0,
          totalInstancesUsed: used.instances,
          totalRAMUsed: used.ram,
          totalSecurityGroupsUsed: 0,
          totalServerGroupsUsed: groups,
        },
      },
    }
  })
}
