// Agent hosts: each agent registers its host and heartbeats; a host whose last heartbeat is
// older than `downAfterMs` is down, and the API refuses (503) to start work on its servers.
import type { Kysely } from 'kysely'
import type { Clock } from '../clock.ts'
import type { Database, HostRow } from '../store/schema.ts'

export interface HostCapacity {
  vcpus: number
  ramMb: number
  diskGb: number
}

export class HostRegistry {
  readonly #db: Kysely<Database>
  readonly #clock: Clock
  readonly downAfterMs: number

  constructor(db: Kysely<Database>, clock: Clock, downAfterMs: number) {
    this.#db = db
    this.#clock = clock
    this.downAfterMs = downAfterMs
  }

  async register(name: string, driver: string, capacity: HostCapacity): Promise<void> {
    const now = this.#clock.now().toISOString()
    const row = { started_at: now, heartbeat_at: now, driver, vcpus: capacity.vcpus, ram_mb: capacity.ramMb, disk_gb: capacity.diskGb }
    await this.#db.insertInto('hosts').values({ name, ...row })
      .onConflict((oc) => oc.column('name').doUpdateSet(row))
      .execute()
  }

  /** One statement for all the hosts of a process (a simulator runs a thousand). */
  async heartbeat(names: string | string[]): Promise<void> {
    const list = typeof names === 'string' ? [names] : names
    if (list.length === 0) return
    await this.#db.updateTable('hosts').set({ heartbeat_at: this.#clock.now().toISOString() }).where('name', 'in', list).execute()
  }

  /** Oldest heartbeat of a live host: hosts that beat since then are up. */
  upSince(): string {
    return new Date(this.#clock.now().getTime() - this.downAfterMs).toISOString()
  }

  isUpRow(row: HostRow | undefined): boolean {
    return !!row && this.#clock.now().getTime() - new Date(row.heartbeat_at).getTime() <= this.downAfterMs
  }

  async isUp(name: string): Promise<boolean> {
    return this.isUpRow(await this.#db.selectFrom('hosts').selectAll().where('name', '=', name).executeTakeFirst())
  }

  async list(): Promise<(HostRow & { up: boolean })[]> {
    const rows = await this.#db.selectFrom('hosts').selectAll().orderBy('name').execute()
    return rows.map((r) => ({ ...r, up: this.isUpRow(r) }))
  }
}
