// What the scheduler reads: each host's capacity and what its servers' flavors take, counted
// from the servers table itself (so nothing can drift), and the host row's lock for a claim.
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
    // What a server takes where it is, plus what a move of it holds on the other host (the new
    // flavor on the destination until it gets there, the old one on the source until confirmed).
    const servers = db
      .selectFrom('servers as s')
      .where('s.deleted', '=', 0)
      .where('s.host', 'is not', null)
      .select(['s.host as host', 's.flavor_id as flavor_id'])
    // A deleted server's moves hold nothing (its delete ended them wherever they stood).
    const moves = db
      .selectFrom('migrations as m')
      .innerJoin('servers as ms', 'ms.id', 'm.server_id')
      .where('ms.deleted', '=', 0)
      .where('m.alloc_host', 'is not', null)
      .where('m.alloc_flavor_id', 'is not', null)
      .select(['m.alloc_host as host', (eb) => eb.fn.coalesce('m.alloc_flavor_id', sql.lit('')).as('flavor_id')])
    const used = db
      .selectFrom(servers.unionAll(moves).as('a'))
      .innerJoin('flavors as f', 'f.id', 'a.flavor_id')
      .select([
        'a.host',
        (eb) => eb.fn.sum<number>('f.vcpus').as('vcpus'),
        (eb) => eb.fn.sum<number>('f.ram').as('ram'),
        (eb) => eb.fn.sum<number>('f.disk').as('disk'),
        (eb) => eb.fn.countAll<number>().as('n'),
      ])
      .groupBy('a.host')
    return db
      .selectFrom('hosts as h')
      .leftJoin(used.as('u'), 'u.host', 'h.name')
      .select([
        'h.name',
        'h.vcpus',
        'h.ram_mb',
        'h.disk_gb',
        'u.vcpus as used_vcpus',
        'u.ram as used_ram',
        'u.disk as used_disk',
        'u.n as used_count',
      ])
  }
}

// sum() is null for a host with no servers (and may come back as a string on PostgreSQL).
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
