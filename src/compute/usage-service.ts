// os-simple-tenant-usage: what each project's servers used over a period, as
// nova/api/openstack/compute/simple_tenant_usage.py computes it: hours from launched_at and
// terminated_at clipped to the period, times the flavor's vCPUs, RAM and disk (root + ephemeral).
import { BadRequest } from '../errors.ts'
import type { AuthContext } from '../identity/identity-service.ts'
import type { ServersRepo, UsageRow } from '../store/servers-repo.ts'
import { authorize, hasRole } from './policy.ts'
import { PolicyNotAuthorized } from '../errors.ts'

export interface ServerUsage {
  instance_id: string
  name: string
  tenant_id: string
  flavor: string
  hours: number
  memory_mb: number
  local_gb: number
  vcpus: number
  /** Dates (ms), formatted by the route. */
  started_at: Date
  ended_at: Date | null
  state: string
  uptime: number
}

export interface TenantUsage {
  tenant_id: string
  server_usages: ServerUsage[]
  total_local_gb_usage: number
  total_vcpus_usage: number
  total_memory_mb_usage: number
  total_hours: number
  start: Date
  stop: Date
}

export interface UsagePeriod {
  start: Date
  stop: Date
  limit?: number
  marker?: string
}

export class UsageService {
  readonly #repo: Pick<ServersRepo, 'activeInWindow'>
  readonly #now: () => Date

  constructor(repo: Pick<ServersRepo, 'activeInWindow'>, now: () => Date) {
    this.#repo = repo
    this.#now = now
  }

  /** The service's clock (the period's default end). */
  now(): Date {
    return this.#now()
  }

  /** Every project's usage (admins: os_compute_api:os-simple-tenant-usage:list). */
  async list(ctx: AuthContext, period: UsagePeriod): Promise<{ tenants: TenantUsage[]; servers: ServerUsage[] }> {
    authorize(ctx, 'os_compute_api:os-simple-tenant-usage:list', 'admin')
    return this.#usage(period)
  }

  /** One project's usage: its readers, or admins. */
  async show(ctx: AuthContext, projectId: string, period: UsagePeriod): Promise<{ tenants: TenantUsage[]; servers: ServerUsage[] }> {
    if (!ctx.isAdmin && (ctx.projectId !== projectId || !hasRole(ctx, 'reader')))
      throw new PolicyNotAuthorized('os_compute_api:os-simple-tenant-usage:show')
    return this.#usage(period, projectId)
  }

  async #usage(p: UsagePeriod, projectId?: string): Promise<{ tenants: TenantUsage[]; servers: ServerUsage[] }> {
    const now = this.#now()
    // The period ends now at the latest (Nova reads the clock again here).
    const stop = p.stop > now ? now : p.stop
    const rows = await this.#repo.activeInWindow(p.start.toISOString(), stop.toISOString(), {
      projectId,
      limit: p.limit,
      marker: p.marker,
    })
    if (!rows) throw new BadRequest(`Marker ${p.marker} could not be found.`)
    const tenants = new Map<string, TenantUsage>()
    const servers: ServerUsage[] = []
    for (const r of rows) {
      const info = serverUsage(r, p.start, stop, now)
      let t = tenants.get(r.project_id)
      if (!t) {
        t = {
          tenant_id: r.project_id,
          server_usages: [],
          total_local_gb_usage: 0,
          total_vcpus_usage: 0,
          total_memory_mb_usage: 0,
          total_hours: 0,
          start: p.start,
          stop,
        }
        tenants.set(r.project_id, t)
      }
      t.total_local_gb_usage += info.local_gb * info.hours
      t.total_vcpus_usage += info.vcpus * info.hours
      t.total_memory_mb_usage += info.memory_mb * info.hours
      t.total_hours += info.hours
      t.server_usages.push(info)
      servers.push(info)
    }
    return { tenants: [...tenants.values()], servers }
  }
}

/** _hours_for and the server's entry. */
function serverUsage(r: UsageRow, start: Date, stop: Date, now: Date): ServerUsage {
  const launched = r.launched_at ? new Date(r.launched_at) : null
  const terminated = r.terminated_at ? new Date(r.terminated_at) : null
  let hours = 0
  if (launched && !(terminated && terminated < start) && !(launched > stop)) {
    const from = launched > start ? launched : start
    const to = terminated && terminated < stop ? terminated : stop
    hours = (to.getTime() - from.getTime()) / 3_600_000
  }
  // Nova's started_at and uptime count from launched_at (the window only selects servers launched).
  const started = launched ?? now
  return {
    instance_id: r.id,
    name: r.name,
    tenant_id: r.project_id,
    flavor: r.flavor_name ?? '',
    hours,
    memory_mb: r.ram ?? 0,
    local_gb: (r.disk ?? 0) + (r.ephemeral ?? 0),
    vcpus: r.vcpus ?? 0,
    started_at: started,
    ended_at: terminated,
    state: terminated ? 'terminated' : r.vm_state,
    uptime: Math.trunc(((terminated ?? now).getTime() - started.getTime()) / 1000),
  }
}
