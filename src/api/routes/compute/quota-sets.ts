// /os-quota-sets/{project_id}[/detail|/defaults] and /os-quota-class-sets/{class}, per
// microversion as nova/api/openstack/compute/quota_sets.py and quota_classes.py: no network
// quotas from 2.36 (quota sets) or 2.50 (classes, which gain server_groups and
// server_group_members there), no injected files from 2.57; `?user_id=` for a user's limits.
import type { FastifyInstance } from 'fastify'
import { QUOTA_RESOURCES, type QuotaLimits, type QuotaResource } from '../../../compute/quota-service.ts'
import { has } from '../../microversion-changes.ts'
import type { Microversion } from '../../microversion.ts'
import type { ComputeRouteDeps } from './index.ts'
import { COMMON, validateQuery, type Query } from './query-schemas.ts'
import { validateBody } from './schemas.ts'
import { BOOLEAN } from './parameter-types.ts'

const NETWORK = ['fixed_ips', 'floating_ips', 'security_group_rules', 'security_groups']
const INJECTED = ['injected_files', 'injected_file_content_bytes', 'injected_file_path_bytes']
const GROUPS = ['server_groups', 'server_group_members']

/** FILTERED_QUOTAS_v236 / v257 of quota_sets.py. */
function filteredSets(v: Microversion): string[] {
  if (has(v, 'personalityRemoved')) return [...NETWORK, ...INJECTED]
  return has(v, 'proxyApisRemoved') ? NETWORK : []
}
/** quota_classes.py: FILTERED_QUOTAS_v250 / v257, and the server group quotas only from 2.50. */
function filteredClasses(v: Microversion): string[] {
  if (has(v, 'personalityRemoved')) return [...NETWORK, ...INJECTED]
  return has(v, 'quotaClassServerGroups') ? NETWORK : GROUPS
}

const COMMON_QUOTA = { type: ['integer', 'string'], pattern: '^-?[0-9]+$', minimum: -1, maximum: 0x7fffffff }
const updateSchema = (key: string, resources: readonly string[], extra: Record<string, object> = {}) => ({
  type: 'object',
  properties: {
    [key]: {
      type: 'object',
      properties: { ...Object.fromEntries(resources.map((r) => [r, COMMON_QUOTA])), ...extra },
      additionalProperties: false,
    },
  },
  required: [key],
  additionalProperties: false,
})
const setSchemas = new Map<string, object>()
const classSchemas = new Map<string, object>()
function schemaFor(cache: Map<string, object>, key: string, filtered: string[], extra?: Record<string, object>) {
  const k = filtered.join(',')
  let s = cache.get(k)
  if (!s) {
    s = updateSchema(
      key,
      QUOTA_RESOURCES.filter((r) => !filtered.includes(r)),
      extra,
    )
    cache.set(k, s)
  }
  return s
}

function format(limits: Record<string, unknown>, filtered: string[], id?: string): Record<string, unknown> {
  const out: Record<string, unknown> = id === undefined ? {} : { id }
  for (const r of QUOTA_RESOURCES) if (!filtered.includes(r)) out[r] = limits[r]
  return out
}

/** The quota values of a body: integers or integer strings (int(value) in Nova). */
function values(body: Record<string, unknown>): Partial<Record<QuotaResource, number>> {
  const out: Partial<Record<QuotaResource, number>> = {}
  for (const [k, v] of Object.entries(body)) if (k !== 'force') out[k as QuotaResource] = Number(v)
  return out
}

const isTrue = (v: unknown) => v === true || (typeof v === 'string' && ['1', 't', 'true', 'on', 'y', 'yes'].includes(v.toLowerCase()))

export function quotaRoutes(app: FastifyInstance, deps: ComputeRouteDeps) {
  const { quotas } = deps
  // show/detail/update/delete take ?user_id (the first value, as parse_qs); unknown ones 400 from 2.75.
  const userQuery = (v: Microversion, q: Query) => {
    const lists = validateQuery(
      { type: 'object', properties: { user_id: COMMON }, additionalProperties: !has(v, 'consistentServerViews') },
      q,
    )
    return lists.user_id?.[0] || undefined
  }

  app.get<{ Params: { id: string }; Querystring: Query }>('/v2.1/os-quota-sets/:id', async (req) => {
    const userId = userQuery(req.microversion, req.query)
    const limits = await quotas.show(req.auth, req.params.id, userId)
    return { quota_set: format(limits, filteredSets(req.microversion), req.params.id) }
  })

  app.get<{ Params: { id: string }; Querystring: Query }>('/v2.1/os-quota-sets/:id/detail', async (req) => {
    const userId = userQuery(req.microversion, req.query)
    const detail = await quotas.detail(req.auth, req.params.id, userId)
    return { quota_set: format(detail, filteredSets(req.microversion), req.params.id) }
  })

  app.get<{ Params: { id: string }; Querystring: Query }>('/v2.1/os-quota-sets/:id/defaults', async (req) => {
    validateQuery({ type: 'object', properties: {}, additionalProperties: true }, req.query)
    const limits: QuotaLimits = await quotas.defaults(req.params.id)
    return { quota_set: format(limits, filteredSets(req.microversion), req.params.id) }
  })

  app.put<{ Params: { id: string }; Querystring: Query }>('/v2.1/os-quota-sets/:id', async (req) => {
    const v = req.microversion
    validateBody(schemaFor(setSchemas, 'quota_set', filteredSets(v), { force: BOOLEAN }), req.body)
    const userId = userQuery(v, req.query)
    const body = (req.body as { quota_set: Record<string, unknown> }).quota_set
    const limits = await quotas.update(req.auth, req.params.id, userId, values(body), isTrue(body.force))
    // Nova's update answer has no id.
    return { quota_set: format(limits, filteredSets(v)) }
  })

  app.delete<{ Params: { id: string }; Querystring: Query }>('/v2.1/os-quota-sets/:id', async (req, reply) => {
    const userId = userQuery(req.microversion, req.query)
    await quotas.reset(req.auth, req.params.id, userId)
    return reply.code(202).type('application/json').send()
  })

  app.get<{ Params: { id: string } }>('/v2.1/os-quota-class-sets/:id', async (req) => {
    const limits = await quotas.showClass(req.auth, req.params.id)
    return { quota_class_set: format(limits, filteredClasses(req.microversion), req.params.id) }
  })

  app.put<{ Params: { id: string } }>('/v2.1/os-quota-class-sets/:id', async (req) => {
    const v = req.microversion
    validateBody(
      schemaFor(
        classSchemas,
        'quota_class_set',
        filteredClasses(v).filter((r) => !GROUPS.includes(r)),
      ),
      req.body,
    )
    const body = (req.body as { quota_class_set: Record<string, unknown> }).quota_class_set
    const limits = await quotas.updateClass(req.auth, req.params.id, values(body))
    return { quota_class_set: format(limits, filteredClasses(v)) }
  })
}
