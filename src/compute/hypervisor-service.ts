// os-hypervisors: one hypervisor (Nova's compute node) per agent host, its figures from the
// host's capacity (--host-vcpus/--host-ram/--host-disk) and the flavors of its servers, counted
// from the servers table (store/placement-repo.ts), so they never drift. Admins only.
import type { AuthContext } from '../identity/identity-service.ts'
import type { HostUsage, ProjectUsage } from '../store/placement-repo.ts'
import type { ServerRow } from '../store/schema.ts'
import type { HostRegistry } from '../tasks/hosts.ts'
import { authorize } from './policy.ts'

export interface Hypervisor {
  name: string
  /** Rank by name, from 1 (the integer ids below 2.53, as os-services'). */
  rank: number
  up: boolean
  disabled: boolean
  disabledReason: string | null
  driver: string
  /** The address its agent registered (Nova's host_ip); null: none of its own. */
  address: string | null
  usage: HostUsage
  /** Servers with a task running (Nova's current_workload). */
  workload: number
}

export interface HypervisorServiceDeps {
  hosts: Pick<HostRegistry, 'list'>
  usage(): Promise<HostUsage[]>
  serversOn(host: string): Promise<Pick<ServerRow, 'id' | 'name' | 'task_state'>[]>
  /** The flavor figures of a host's servers per project (os-hosts show). */
  projectsOnHost(host: string): Promise<ProjectUsage[]>
}

export type HypervisorRule = 'list' | 'list-detail' | 'show' | 'statistics' | 'search' | 'servers' | 'uptime'

export class HypervisorService {
  readonly #d: HypervisorServiceDeps

  constructor(deps: HypervisorServiceDeps) {
    this.#d = deps
  }

  /** Every hypervisor, by host name. */
  async list(ctx: AuthContext, rule: HypervisorRule): Promise<Hypervisor[]> {
    authorize(ctx, `os_compute_api:os-hypervisors:${rule}`, 'admin')
    const [hosts, usage] = await Promise.all([this.#d.hosts.list(), this.#d.usage()])
    const out: Hypervisor[] = []
    for (const [i, h] of hosts.entries()) {
      const u = usage.find((x) => x.name === h.name)
      if (!u) continue
      const servers = u.servers ? await this.#d.serversOn(h.name) : []
      out.push({
        name: h.name,
        rank: i + 1,
        up: h.up && !h.forced_down,
        disabled: !!h.service_disabled,
        disabledReason: h.disabled_reason,
        driver: h.driver,
        address: h.address,
        usage: u,
        workload: servers.filter((s) => s.task_state !== null).length,
      })
    }
    return out
  }

  /** What a host's servers use, per project (os-hosts show; callers authorize through list). */
  async usageByProject(host: string): Promise<ProjectUsage[]> {
    return this.#d.projectsOnHost(host)
  }

  /** The servers of a host (name and id), for `with_servers` and /{pattern}/servers. */
  async servers(host: string): Promise<{ name: string; uuid: string }[]> {
    return (await this.#d.serversOn(host)).map((s) => ({ name: s.name, uuid: s.id }))
  }
}
