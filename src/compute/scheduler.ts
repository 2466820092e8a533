// A small scheduler: a new server goes to a live host with room for its flavor (vCPUs, RAM,
// disk), the one with the most free RAM first (spread). No room anywhere: Nova's "No valid host".
// Room is what a host offers less what its servers' flavors take, counted from the servers
// table itself, so nothing can drift. Two API processes may choose the same host at once: the
// claim, in the create transaction, locks the host row (PostgreSQL; SQLite has one writer) and
// counts again, so the last room is never given twice.
import { sql, type Kysely, type Transaction } from 'kysely'
import type { Dialect } from '../store/db.ts'
import type { Database } from '../store/schema.ts'
import type { HostRegistry } from '../tasks/hosts.ts'

export interface Demand { vcpus: number; ramMb: number; diskGb: number }

export interface Candidate { name: string; free: Demand }

type Db = Kysely<Database> | Transaction<Database>

export class Scheduler {
  readonly #db: Kysely<Database>
  readonly #hosts: HostRegistry
  readonly #dialect: Dialect

  constructor(db: Kysely<Database>, hosts: HostRegistry, dialect: Dialect) {
    this.#db = db
    this.#hosts = hosts
    this.#dialect = dialect
  }

  /** Live hosts with room for `demand`, best first. Read outside the create transaction. */
  async candidates(demand: Demand): Promise<Candidate[]> {
    const rows = await this.#usage(this.#db).where('h.heartbeat_at', '>=', this.#hosts.upSince()).execute()
    return rows.map(toCandidate).filter((c) => fits(c.free, demand))
      .sort((a, b) => b.free.ramMb - a.free.ramMb || b.free.vcpus - a.free.vcpus || (a.name < b.name ? -1 : 1))
  }

  /**
   * In the create transaction: the first candidate `allowed` (a server group's policy) that still has room, counted again under the
   * host row's lock. The candidate's free room shrinks, so the next server of the same request
   * sees what this one took. Null: no valid host.
   */
  async claim(trx: Transaction<Database>, candidates: Candidate[], demand: Demand, allowed: (host: string) => boolean = () => true): Promise<string | null> {
    for (const c of candidates) {
      if (!fits(c.free, demand) || !allowed(c.name)) continue
      if (this.#dialect === 'postgres') await sql`select name from hosts where name = ${c.name} for update`.execute(trx)
      const row = await this.#usage(trx).where('h.name', '=', c.name).executeTakeFirst()
      if (!row) continue
      const fresh = toCandidate(row)
      if (!fits(fresh.free, demand)) { c.free = fresh.free; continue }
      c.free = { vcpus: fresh.free.vcpus - demand.vcpus, ramMb: fresh.free.ramMb - demand.ramMb, diskGb: fresh.free.diskGb - demand.diskGb }
      return c.name
    }
    return null
  }

  #usage(db: Db) {
    const used = db.selectFrom('servers as s').innerJoin('flavors as f', 'f.id', 's.flavor_id')
      .where('s.deleted', '=', 0).where('s.host', 'is not', null)
      .select(['s.host',
        (eb) => eb.fn.sum<number>('f.vcpus').as('vcpus'), (eb) => eb.fn.sum<number>('f.ram').as('ram'), (eb) => eb.fn.sum<number>('f.disk').as('disk')])
      .groupBy('s.host')
    return db.selectFrom('hosts as h').leftJoin(used.as('u'), 'u.host', 'h.name')
      .select(['h.name', 'h.vcpus', 'h.ram_mb', 'h.disk_gb', 'u.vcpus as used_vcpus', 'u.ram as used_ram', 'u.disk as used_disk'])
  }
}

function toCandidate(r: { name: string; vcpus: number; ram_mb: number; disk_gb: number; used_vcpus: number | string | null; used_ram: number | string | null; used_disk: number | string | null }): Candidate {
  return { name: r.name, free: { vcpus: r.vcpus - Number(r.used_vcpus ?? 0), ramMb: r.ram_mb - Number(r.used_ram ?? 0), diskGb: r.disk_gb - Number(r.used_disk ?? 0) } }
}

function fits(free: Demand, d: Demand): boolean {
  return free.vcpus >= d.vcpus && free.ramMb >= d.ramMb && free.diskGb >= d.diskGb
}
