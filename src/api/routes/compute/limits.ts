// GET /limits: the project's quotas and what its servers and server groups take of them, per
// microversion as nova/api/openstack/compute/limits.py: no network or security-group limits from
// 2.36 (proxyApisRemoved), no maxImageMeta from 2.39, no personality limits from 2.57.
import type { FastifyInstance } from 'fastify'
import { authorize } from '../../../compute/policy.ts'
import { has } from '../../microversion-changes.ts'
import type { ComputeRouteDeps } from './index.ts'
import { COMMON, querySchema, validateQuery, type Query } from './query-schemas.ts'

export function limitRoutes(app: FastifyInstance, deps: ComputeRouteDeps) {
  app.get<{ Querystring: Query }>('/v2.1/limits', async (req) => {
    const v = req.microversion
    // limits_query_schema: tenant_id (unknown parameters refused from 2.75).
    const query = validateQuery(querySchema({ tenant_id: COMMON }, v), req.query)
    let projectId = req.auth.projectId ?? ''
    // Another project's limits: admins only (os_compute_api:limits:other_project).
    const tenant = query.tenant_id?.at(-1)
    if (tenant !== undefined) {
      authorize(req.auth, 'os_compute_api:limits:other_project', 'admin')
      projectId = tenant
    }
    // The quota tables (os-quota-sets), as Nova's limits view reads QUOTAS.get_project_quotas.
    const [used, groups, q] = await Promise.all([
      deps.servers.usage(projectId),
      deps.groups.count(projectId),
      deps.quotas.limits(projectId),
    ])
    const absolute: Record<string, number> = {
      maxImageMeta: q.metadata_items,
      maxPersonality: q.injected_files,
      maxPersonalitySize: q.injected_file_content_bytes,
      maxSecurityGroupRules: q.security_group_rules,
      maxSecurityGroups: q.security_groups,
      maxServerGroupMembers: q.server_group_members,
      maxServerGroups: q.server_groups,
      maxServerMeta: q.metadata_items,
      maxTotalCores: q.cores,
      maxTotalFloatingIps: q.floating_ips,
      maxTotalInstances: q.instances,
      maxTotalKeypairs: q.key_pairs,
      maxTotalRAMSize: q.ram,
      totalCoresUsed: used.cores,
      totalFloatingIpsUsed: 0,
      totalInstancesUsed: used.instances,
      totalRAMUsed: used.ram,
      totalSecurityGroupsUsed: 0,
      totalServerGroupsUsed: groups,
    }
    // FILTERED_LIMITS_2_36: floating_ips, security_groups, security_group_rules.
    if (has(v, 'proxyApisRemoved')) {
      for (const k of [
        'maxTotalFloatingIps',
        'totalFloatingIpsUsed',
        'maxSecurityGroups',
        'totalSecurityGroupsUsed',
        'maxSecurityGroupRules',
      ])
        delete absolute[k]
    }
    if (has(v, 'imageMetadataProxyRemoved')) delete absolute.maxImageMeta
    // FILTERED_LIMITS_2_57: injected_files, injected_file_content_bytes.
    if (has(v, 'personalityRemoved')) {
      delete absolute.maxPersonality
      delete absolute.maxPersonalitySize
    }
    return { limits: { rate: [], absolute } }
  })
}
