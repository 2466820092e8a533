// A small scheduler: a new server goes to a live host with room for its flavor (vCPUs, RAM,
// disk), the one with the most free RAM first (spread). No room anywhere: Nova's "No valid host".
// Room is what a host offers less what its servers' flavors take, counted from the servers
// table itself, so nothing can drift. Two API processes may choose the same host at once: the
// claim, in the create transaction, locks the host row (PostgreSQL; SQLite has one writer) and
// counts again, so the last room is never given twice.
import type { HostUsage, PlacementRepo } from '../store/placement-repo.ts'
import type { Tx } from '../store/schema.ts'
import type { HostRegistry } from '../tasks/hosts.ts'

export interface Demand {
  vcpus: number
  ramMb: number
  diskGb: number
}

export interface Candidate {
  name: string
  free: Demand
}

export class Scheduler {
  readonly #placement: PlacementRepo
  readonly #hosts: HostRegistry

  constructor(placement: PlacementRepo, hosts: HostRegistry) {
    this.#placement = placement
    this.#hosts = hosts
  }

  /** Live hosts with room for `demand`, best first. Read outside the create transaction. */
  async candidates(demand: Demand): Promise<Candidate[]> {
    const rows = await this.#placement.liveHosts(this.#hosts.upSince())
    return rows
      .map(toCandidate)
      .filter((c) => fits(c.free, demand))
      .sort((a, b) => b.free.ramMb - a.free.ramMb || b.free.vcpus - a.free.vcpus || (a.name < b.name ? -1 : 1))
  }

  /**
   * In the create transaction: the first candidate `allowed` (a server group's policy) that still has room, counted again under the
   * host row's lock. The candidate's free room shrinks, so the next server of the same request
   * sees what this one took. Null: no valid host.
   */
  async claim(trx: Tx, candidates: Candidate[], demand: Demand, allowed: (host: string) => boolean = () => true): Promise<string | null> {
    for (const c of candidates) {
      if (!fits(c.free, demand) || !allowed(c.name)) continue
      const row = await this.#placement.lockedHost(trx, c.name)
      if (!row) continue
      const fresh = toCandidate(row)
      if (!fits(fresh.free, demand)) {
        c.free = fresh.free
        continue
      }
      c.free = { vcpus: fresh.free.vcpus - demand.vcpus, ramMb: fresh.free.ramMb - demand.ramMb, diskGb: fresh.free.diskGb - demand.diskGb }
      return c.name
    }
    return null
  }
}

function toCandidate(r: HostUsage): Candidate {
  return { name: r.name, free: { vcpus: r.vcpus - r.used_vcpus, ramMb: r.ram_mb - r.used_ram_mb, diskGb: r.disk_gb - r.used_disk_gb } }
}

function fits(free: Demand, d: Demand): boolean {
  return free.vcpus >= d.vcpus && free.ramMb >= d.ramMb && free.diskGb >= d.diskGb
}
