// Agent hosts: each agent registers its host and heartbeats; a host whose last heartbeat is
// older than `downAfterMs` is down, and the API refuses (503) to start work on its servers.
//
// One agent per host name: registering takes a lease on the host row (compare-and-set on
// `agent_id`), renewed by every heartbeat for `downAfterMs` and released on a clean stop. Another
// agent is refused while the lease runs, unless its holder is a process of this same machine
// that no longer exists (an agent killed with -9 and started again takes its host back at once);
// on another machine nobody can tell a dead holder from a cut network, so the lease must run out
// (the host is down by then too).
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { hostname } from 'node:os'
import type { Kysely } from 'kysely'
import type { Clock } from '../clock.ts'
import { prepared } from '../store/prepared.ts'
import type { Database, HostRow } from '../store/schema.ts'

/** Another live agent holds the host. */
export class HostHeld extends Error {
  constructor(
    readonly host: string,
    readonly holder: string,
    readonly until: string,
  ) {
    const h = parseAgentId(holder)
    super(
      `host ${host} is held by another agent (${h ? `pid ${h.pid} on ${h.machine}` : holder}) until ${until}` +
        ' (stop it first; a holder that died frees the host when its lease runs out)',
    )
  }
}

/** This machine, as agent ids name it: the host name and the boot (a pid means nothing across reboots). */
function machine(): string {
  let boot = ''
  try {
    boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim().slice(0, 8)
  } catch {
    /* not Linux */
  }
  return boot ? `${hostname()}/${boot}` : hostname()
}

/** A new agent identity: `<pid>@<machine>#<random>` (two agents in one process differ by the random part). */
export function newAgentId(): string {
  return `${process.pid}@${machine()}#${randomBytes(4).toString('hex')}`
}

function parseAgentId(id: string): { pid: number; machine: string } | undefined {
  const m = /^(\d+)@(.+)#[0-9a-f]+$/.exec(id)
  return m ? { pid: Number(m[1]), machine: m[2]! } : undefined
}

/** False only when the holder is surely gone: a process of this machine that no longer exists. */
function holderMayLive(id: string): boolean {
  const h = parseAgentId(id)
  if (!h || h.machine !== machine() || h.pid === process.pid) return true
  try {
    process.kill(h.pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ESRCH'
  }
}

export interface HostCapacity {
  vcpus: number
  ramMb: number
  diskGb: number
}

export class HostRegistry {
  readonly #db: Kysely<Database>
  readonly #clock: Clock
  readonly downAfterMs: number

  /** Read before every action on a server (is its host up?): compiled once (store/prepared.ts). */
  readonly #byName

  constructor(db: Kysely<Database>, clock: Clock, downAfterMs: number) {
    this.#db = db
    this.#clock = clock
    this.downAfterMs = downAfterMs
    this.#byName = prepared(db, ([name]) => db.selectFrom('hosts').selectAll().where('name', '=', name!))
  }

  /**
   * Register the host for agent `agentId` and take its lease (until now + downAfterMs).
   * Throws HostHeld while another agent, possibly alive, holds it.
   */
  async register(
    name: string,
    driver: string,
    capacity: HostCapacity,
    agentId: string = newAgentId(),
    address: string | null = null,
  ): Promise<void> {
    const now = this.#clock.now()
    const nowIso = now.toISOString()
    const current = await this.#lease(name)
    if (
      current?.agent_id &&
      current.agent_id !== agentId &&
      current.lease_until &&
      current.lease_until > nowIso &&
      holderMayLive(current.agent_id)
    ) {
      throw new HostHeld(name, current.agent_id, current.lease_until)
    }
    const row = {
      started_at: nowIso,
      heartbeat_at: nowIso,
      driver,
      vcpus: capacity.vcpus,
      ram_mb: capacity.ramMb,
      disk_gb: capacity.diskGb,
      agent_id: agentId,
      lease_until: new Date(now.getTime() + this.downAfterMs).toISOString(),
      address,
    }
    // Compare-and-set: take the row only from the holder seen above (or a free or lapsed lease);
    // of two agents starting at once, one wins and the other reads the winner below.
    await this.#db
      .insertInto('hosts')
      .values({ name, ...row })
      .onConflict((oc) =>
        oc
          .column('name')
          .doUpdateSet(row)
          .where((eb) =>
            eb.or([
              eb('hosts.agent_id', 'is', null),
              eb('hosts.lease_until', '<=', nowIso),
              eb('hosts.agent_id', '=', current?.agent_id ?? agentId),
            ]),
          ),
      )
      .execute()
    const after = await this.#lease(name)
    if (after?.agent_id !== agentId) throw new HostHeld(name, after?.agent_id ?? '?', after?.lease_until ?? '?')
  }

  async #lease(name: string) {
    return this.#db.selectFrom('hosts').select(['agent_id', 'lease_until']).where('name', '=', name).executeTakeFirst()
  }

  /**
   * One statement for all the hosts of a process (a simulator runs thousands), renewing the
   * leases `agentId` holds. Returns the hosts it holds: one missing was taken over after a silence.
   */
  async heartbeat(agentId: string): Promise<Set<string>> {
    const now = this.#clock.now()
    const rows = await this.#db
      .updateTable('hosts')
      .set({ heartbeat_at: now.toISOString(), lease_until: new Date(now.getTime() + this.downAfterMs).toISOString() })
      .where('agent_id', '=', agentId)
      .returning('name')
      .execute()
    return new Set(rows.map((r) => r.name))
  }

  /** A clean stop: the hosts are free for another agent at once (they go down when their heartbeat is old). */
  async release(names: string[], agentId: string): Promise<void> {
    if (names.length === 0) return
    await this.#db
      .updateTable('hosts')
      .set({ agent_id: null, lease_until: null })
      .where('name', 'in', names)
      .where('agent_id', '=', agentId)
      .execute()
  }

  /** Oldest heartbeat of a live host: hosts that beat since then are up. */
  upSince(): string {
    return new Date(this.#clock.now().getTime() - this.downAfterMs).toISOString()
  }

  isUpRow(row: HostRow | undefined): boolean {
    return !!row && this.#clock.now().getTime() - new Date(row.heartbeat_at).getTime() <= this.downAfterMs
  }

  async isUp(name: string): Promise<boolean> {
    return this.isUpRow((await this.#byName([name]))[0])
  }

  /** os-services: disable or enable a host's compute service, force it down or up. False if there is no such host. */
  async setServiceState(name: string, change: { disabled?: boolean; reason?: string | null; forcedDown?: boolean }): Promise<boolean> {
    const set: { service_disabled?: number; disabled_reason?: string | null; forced_down?: number } = {}
    if (change.disabled !== undefined) set.service_disabled = change.disabled ? 1 : 0
    if (change.reason !== undefined) set.disabled_reason = change.reason
    if (change.forcedDown !== undefined) set.forced_down = change.forcedDown ? 1 : 0
    if (Object.keys(set).length === 0)
      return (await this.#db.selectFrom('hosts').select('name').where('name', '=', name).executeTakeFirst()) !== undefined
    const r = await this.#db.updateTable('hosts').set(set).where('name', '=', name).executeTakeFirst()
    return r.numUpdatedRows !== 0n
  }

  /**
   * os-services DELETE: forget a host, unless servers (not deleted) are on it. Its agent, if it
   * runs, registers it again at its next start (as a nova-compute service re-creates its record).
   */
  async remove(name: string): Promise<'removed' | 'busy' | 'missing'> {
    return this.#db.transaction().execute(async (trx) => {
      const busy = await trx
        .selectFrom('servers')
        .select('id')
        .where('host', '=', name)
        .where('deleted', '=', 0)
        .limit(1)
        .executeTakeFirst()
      if (busy) return 'busy'
      const r = await trx.deleteFrom('hosts').where('name', '=', name).executeTakeFirst()
      return r.numDeletedRows === 0n ? 'missing' : 'removed'
    })
  }

  async list(): Promise<(HostRow & { up: boolean })[]> {
    const rows = await this.#db.selectFrom('hosts').selectAll().orderBy('name').execute()
    return rows.map((r) => ({ ...r, up: this.isUpRow(r) }))
  }
}
