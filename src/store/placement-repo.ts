// What the scheduler reads: each host's capacity and what its servers' flavors take (counters
// kept by the database's triggers, migration 0019, so that no write path can let them drift),
// and the host row's lock for a claim.
import { sql, type Kysely } from 'kysely'
import type { Dialect } from './db.ts'
import type { Database, Db, Tx } from './schema.ts'

/** A host's capacity (HostRow's) and the sums of its live servers' flavors. */
export interface HostUsage {
  name: string
  vcpus: number
  ram_mb: number
  disk_gb: number
  used_vcpus: number
  used_ram_mb: number
  used_disk_gb: number
  /** Servers (not deleted) on the host. */
  servers: number
}

export interface ProjectUsage {
  project_id: string
  vcpus: number
  ram_mb: number
  disk_gb: number
}

export class PlacementRepo {
  readonly #db: Kysely<Database>
  readonly #dialect: Dialect

  constructor(db: Kysely<Database>, dialect: Dialect) {
    this.#db = db
    this.#dialect = dialect
  }

  /**
   * Every host that heartbeat at or after `upSince` (ISO), with its usage; not one whose compute
   * service an admin disabled or forced down (os-services: Nova's ComputeFilter skips them).
   */
  async liveHosts(upSince: string): Promise<HostUsage[]> {
    const rows = await this.#usage(this.#db)
      .where('h.heartbeat_at', '>=', upSince)
      .where('h.service_disabled', '=', 0)
      .where('h.forced_down', '=', 0)
      .execute()
    return rows.map(toUsage)
  }

  /** Every host, up or down, with its usage (os-hypervisors). */
  async allHosts(): Promise<HostUsage[]> {
    return (await this.#usage(this.#db).orderBy('h.name').execute()).map(toUsage)
  }

  /** os-hosts show: the figures of a host's servers (their flavors), per project, by project id. */
  async projectsOnHost(host: string): Promise<ProjectUsage[]> {
    const rows = await this.#db
      .selectFrom('servers as s')
      .innerJoin('flavors as f', 'f.id', 's.flavor_id')
      .where('s.deleted', '=', 0)
      .where('s.host', '=', host)
      .select([
        's.project_id',
        (eb) => eb.fn.sum<number>('f.vcpus').as('vcpus'),
        (eb) => eb.fn.sum<number>('f.ram').as('ram'),
        (eb) => eb.fn.sum<number>('f.disk').as('disk'),
      ])
      .groupBy('s.project_id')
      .orderBy('s.project_id')
      .execute()
    return rows.map((r) => ({ project_id: r.project_id, vcpus: Number(r.vcpus), ram_mb: Number(r.ram), disk_gb: Number(r.disk) }))
  }

  /**
   * In the create transaction: the host's usage, counted under the host row's lock, so that two
   * API processes claiming room on one host at once count one after the other. PostgreSQL locks
   * the row (FOR UPDATE) until the transaction ends; SQLite has one writer, the transaction itself.
   */
  async lockedHost(trx: Tx, name: string): Promise<HostUsage | undefined> {
    if (this.#dialect === 'postgres') await sql`select name from hosts where name = ${name} for update`.execute(trx)
    const row = await this.#usage(trx).where('h.name', '=', name).executeTakeFirst()
    return row && toUsage(row)
  }

  #usage(db: Db) {
    // The counters migration 0019's triggers keep in every write's transaction (Nova's placement
    // allocations): one row per host, whatever the number of servers.
    return db
      .selectFrom('hosts as h')
      .leftJoin('host_usage as u', 'u.host', 'h.name')
      .select([
        'h.name',
        'h.vcpus',
        'h.ram_mb',
        'h.disk_gb',
        'u.vcpus as used_vcpus',
        'u.ram_mb as used_ram',
        'u.disk_gb as used_disk',
        'u.allocations as used_count',
      ])
  }
}

// Null for a host that never had a server (and a bigint comes back as a string on PostgreSQL).
function toUsage(r: {
  name: string
  vcpus: number
  ram_mb: number
  disk_gb: number
  used_vcpus: number | string | null
  used_ram: number | string | null
  used_disk: number | string | null
  used_count: number | string | null
}): HostUsage {
  return {
    name: r.name,
    vcpus: r.vcpus,
    ram_mb: r.ram_mb,
    disk_gb: r.disk_gb,
    used_vcpus: Number(r.used_vcpus ?? 0),
    used_ram_mb: Number(r.used_ram ?? 0),
    used_disk_gb: Number(r.used_disk ?? 0),
    servers: Number(r.used_count ?? 0),
  }
}
