// /os-simple-tenant-usage (admins: every project) and /os-simple-tenant-usage/{project_id}
// (its readers), as nova/api/openstack/compute/simple_tenant_usage.py: ?start and ?end (now by
// default), ?detailed=1 for the list's server_usages; from 2.40 ?limit and ?marker (a server id)
// with tenant_usages_links / tenant_usage_links.
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { isoMicrosNoZone } from '../../../clock.ts'
import type { ServerUsage, TenantUsage, UsagePeriod } from '../../../compute/usage-service.ts'
import { BadRequest } from '../../../errors.ts'
import { has } from '../../microversion-changes.ts'
import type { Microversion } from '../../microversion.ts'
import { collectionLinks } from './collection-links.ts'
import type { ComputeRouteDeps } from './index.ts'
import { COMMON, PAGINATION, querySchema, validateQuery, type Query } from './query-schemas.ts'

/** _parse_datetime: three strptime formats, naive times being UTC; empty or absent: now. */
function parseTime(s: string | undefined, now: Date): Date {
  if (!s) return now
  const m = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?| (\d{2}):(\d{2}):(\d{2})\.(\d{1,6}))$/.exec(s)
  if (!m) throw new BadRequest('Invalid datetime string: Datetime is in invalid format')
  const [, y, mo, d] = m
  const [h, mi, se, frac] = m[4] !== undefined ? [m[4], m[5], m[6], m[7]] : [m[8], m[9], m[10], m[11]]
  const ms = Date.UTC(
    Number(y),
    Number(mo) - 1,
    Number(d),
    Number(h),
    Number(mi),
    Number(se),
    Math.floor(Number((frac ?? '0').padEnd(6, '0')) / 1000),
  )
  const t = new Date(ms)
  // strptime refuses impossible dates (2026-02-30) where Date rolls over.
  if (
    Number.isNaN(ms) ||
    t.getUTCMonth() !== Number(mo) - 1 ||
    t.getUTCDate() !== Number(d) ||
    Number(h) > 23 ||
    Number(mi) > 59 ||
    Number(se) > 59
  )
    throw new BadRequest('Invalid datetime string: Datetime is in invalid format')
  return t
}

const time = (d: Date) => isoMicrosNoZone(d.toISOString())

function serverView(s: ServerUsage) {
  return {
    ended_at: s.ended_at ? time(s.ended_at) : null,
    flavor: s.flavor,
    hours: s.hours,
    instance_id: s.instance_id,
    local_gb: s.local_gb,
    memory_mb: s.memory_mb,
    name: s.name,
    started_at: time(s.started_at),
    state: s.state,
    tenant_id: s.tenant_id,
    uptime: s.uptime,
    vcpus: s.vcpus,
  }
}

function tenantView(t: TenantUsage, detailed: boolean) {
  const out: Record<string, unknown> = {
    start: time(t.start),
    stop: time(t.stop),
    tenant_id: t.tenant_id,
    total_hours: t.total_hours,
    total_local_gb_usage: t.total_local_gb_usage,
    total_memory_mb_usage: t.total_memory_mb_usage,
    total_vcpus_usage: t.total_vcpus_usage,
  }
  if (detailed) out.server_usages = t.server_usages.map(serverView)
  return out
}

export function tenantUsageRoutes(app: FastifyInstance, deps: ComputeRouteDeps) {
  const base = deps.computeUrl

  function period(req: FastifyRequest<{ Querystring: Query }>, v: Microversion, extra: Record<string, object>) {
    const props: Record<string, object> = { start: COMMON, end: COMMON, ...extra, ...(has(v, 'usagePagination') ? PAGINATION : {}) }
    const q = validateQuery(querySchema(props, v), req.query)
    // parse_qs: the first value of each.
    const now = deps.usage.now()
    const start = parseTime(q.start?.[0], now)
    // Nova reads the clock once for each: an end left out is a moment after a start left out.
    const stop = parseTime(q.end?.[0], new Date(now.getTime() + 1))
    if (!(start < stop)) throw new BadRequest('Invalid start time. The start time cannot occur after the end time.')
    const p: UsagePeriod = { start, stop, limit: deps.maxLimit }
    if (has(v, 'usagePagination')) {
      // common.get_limit_and_marker: the last value of each, at most max_limit.
      const limit = q.limit?.at(-1)
      if (limit !== undefined) p.limit = Math.min(Number(limit), deps.maxLimit)
      p.marker = q.marker?.at(-1)
    }
    return { p, q }
  }

  app.get<{ Querystring: Query }>('/v2.1/os-simple-tenant-usage', async (req, reply) => {
    // `/os-simple-tenant-usage/` is Nova's show route with an empty id, which its router does
    // not match (404); Skiff's router ignores the trailing slash and would answer the index.
    if (req.url.split('?')[0]!.endsWith('/')) return reply.callNotFound()
    const v = req.microversion
    const { p, q } = period(req, v, { detailed: COMMON })
    const detailed = q.detailed?.[0] === '1'
    const { tenants, servers } = await deps.usage.list(req.auth, p)
    const out: Record<string, unknown> = { tenant_usages: tenants.map((t) => tenantView(t, detailed)) }
    if (has(v, 'usagePagination')) {
      const links = collectionLinks(req, base, 'os-simple-tenant-usage', servers.length, servers.at(-1)?.instance_id, deps.maxLimit)
      if (links.length) out.tenant_usages_links = links
    }
    return out
  })

  app.get<{ Params: { id: string }; Querystring: Query }>('/v2.1/os-simple-tenant-usage/:id', async (req) => {
    const v = req.microversion
    const { p } = period(req, v, {})
    const { tenants, servers } = await deps.usage.show(req.auth, req.params.id, p)
    const out: Record<string, unknown> = { tenant_usage: tenants[0] ? tenantView(tenants[0], true) : {} }
    if (has(v, 'usagePagination')) {
      const links = collectionLinks(
        req,
        base,
        `os-simple-tenant-usage/${req.params.id}`,
        servers.length,
        servers.at(-1)?.instance_id,
        deps.maxLimit,
      )
      if (links.length) out.tenant_usage_links = links
    }
    return out
  })
}
