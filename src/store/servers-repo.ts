// Server rows: reads, the compare-and-set that every state change goes through, and the
// bookkeeping around them (fixed IPs, instance actions and events, faults).
import { randomBytes, randomUUID } from 'node:crypto'
import type { Kysely, Transaction } from 'kysely'
import type { Clock } from '../clock.ts'
import type { Database, InstanceActionRow, ServerRow } from './schema.ts'

type Db = Kysely<Database> | Transaction<Database>

export interface CasFrom {
  vmStates?: string[]
  taskStates: (string | null)[]
  /** Only if the metadata is still this JSON text (read-modify-write of server metadata). */
  metadata?: string
  /** Only if the server is not locked. */
  unlocked?: boolean
}

export class ServersRepo {
  readonly db: Kysely<Database>
  readonly #clock: Clock

  constructor(db: Kysely<Database>, clock: Clock) {
    this.db = db
    this.#clock = clock
  }

  now(): string {
    return this.#clock.now().toISOString()
  }

  async get(id: string, db: Db = this.db): Promise<ServerRow | undefined> {
    return db.selectFrom('servers').selectAll().where('id', '=', id).where('deleted', '=', 0).executeTakeFirst()
  }

  async getAny(id: string): Promise<ServerRow | undefined> {
    return this.db.selectFrom('servers').selectAll().where('id', '=', id).executeTakeFirst()
  }

  /**
   * Change a server only if it is still where the caller saw it (Nova's
   * save(expected_task_state=...)). False when someone else changed it first.
   */
  async cas(id: string, from: CasFrom, to: Partial<ServerRow>, db: Db = this.db): Promise<boolean> {
    let q = db.updateTable('servers').set({ ...to, updated_at: this.now() }).where('id', '=', id).where('deleted', '=', 0)
    if (from.vmStates) q = q.where('vm_state', 'in', from.vmStates)
    if (from.metadata !== undefined) q = q.where('metadata', '=', from.metadata)
    if (from.unlocked) q = q.where('locked', '=', 0)
    const tasks = from.taskStates.filter((t): t is string => t !== null)
    const allowsNull = from.taskStates.includes(null)
    q = q.where((eb) => {
      const ors = []
      if (allowsNull) ors.push(eb('task_state', 'is', null))
      if (tasks.length) ors.push(eb('task_state', 'in', tasks))
      return eb.or(ors)
    })
    const r = await q.executeTakeFirst()
    return r.numUpdatedRows === 1n
  }

  async insert(row: ServerRow, db: Db): Promise<void> {
    await db.insertInto('servers').values(row).execute()
  }

  /** Lowest free address of the built-in private network 10.0.0.0/16 (.1 is the gateway). */
  async allocateFixedIp(serverId: string, db: Db): Promise<string> {
    const used = new Set((await db.selectFrom('fixed_ips').select('address').execute()).map((r) => r.address))
    for (let n = 3; n < 65534; n++) {
      const address = `10.0.${n >> 8}.${n & 255}`
      if ((n & 255) === 0 || (n & 255) === 255 || used.has(address)) continue
      const mac = 'fa:16:3e:' + [...randomBytes(3)].map((b) => b.toString(16).padStart(2, '0')).join(':')
      // Another API process may take the same address at the same moment: the loser moves on.
      const r = await db.insertInto('fixed_ips').values({ address, server_id: serverId, mac, allocated_at: this.now() })
        .onConflict((oc) => oc.column('address').doNothing()).executeTakeFirst()
      if (Number(r.numInsertedOrUpdatedRows ?? 0n) === 1) return address
    }
    throw new Error('the private network is full')
  }

  async releaseFixedIps(serverId: string, db: Db = this.db): Promise<void> {
    await db.deleteFrom('fixed_ips').where('server_id', '=', serverId).execute()
  }

  async fixedIps(serverIds: string[]): Promise<Map<string, { address: string; mac: string }[]>> {
    const out = new Map<string, { address: string; mac: string }[]>()
    if (serverIds.length === 0) return out
    const rows = await this.db.selectFrom('fixed_ips').select(['server_id', 'address', 'mac']).where('server_id', 'in', serverIds).orderBy('allocated_at').execute()
    for (const r of rows) {
      const list = out.get(r.server_id) ?? []
      list.push({ address: r.address, mac: r.mac })
      out.set(r.server_id, list)
    }
    return out
  }

  async recordAction(a: Omit<InstanceActionRow, 'id' | 'start_time' | 'updated_at' | 'message'>, db: Db): Promise<void> {
    const now = this.now()
    await db.insertInto('instance_actions').values({ id: randomUUID(), ...a, start_time: now, updated_at: now, message: null }).execute()
  }

  async actionByRequest(serverId: string, requestId: string): Promise<InstanceActionRow | undefined> {
    return this.db.selectFrom('instance_actions').selectAll().where('server_id', '=', serverId).where('request_id', '=', requestId).executeTakeFirst()
  }

  /** The event of the action that `requestId` started, in one statement; undefined without one. */
  async startEvent(serverId: string, requestId: string, event: string, host: string | null): Promise<string | undefined> {
    const id = randomUUID()
    const r = await this.db.insertInto('instance_action_events')
      .columns(['id', 'action_id', 'event', 'start_time', 'host'])
      .expression((eb) => eb.selectFrom('instance_actions')
        .select([eb.val(id).as('id'), 'instance_actions.id as action_id', eb.val(event).as('event'), eb.val(this.now()).as('start_time'), eb.val(host).as('host')])
        .where('server_id', '=', serverId).where('request_id', '=', requestId).limit(1))
      .executeTakeFirst()
    return Number(r.numInsertedOrUpdatedRows ?? 0n) > 0 ? id : undefined
  }

  /** `onlyIfOpen`: leave an event that is already finished (a later attempt closed it) as it is. */
  async finishEvent(eventId: string | undefined, result: 'Success' | 'Error', error?: string, db: Db = this.db, opts: { onlyIfOpen?: boolean } = {}): Promise<void> {
    if (!eventId) return
    const now = this.now()
    let q = db.updateTable('instance_action_events')
      .set({ finish_time: now, result, traceback: error ?? null, details: error ?? null })
      .where('id', '=', eventId)
    if (opts.onlyIfOpen) q = q.where('finish_time', 'is', null)
    const ev = await q.returning('action_id').executeTakeFirst()
    if (ev) {
      await db.updateTable('instance_actions').set({ updated_at: now, ...(result === 'Error' ? { message: 'Error' } : {}) })
        .where('id', '=', ev.action_id).execute()
    }
  }

  /**
   * Finish, with Error and `reason`, the events of an action that an earlier attempt of its task
   * started and never finished (its agent was killed, or lost its lease). Returns how many.
   */
  async finishAbandonedEvents(serverId: string, requestId: string, reason: string, db: Db = this.db): Promise<number> {
    const action = await db.selectFrom('instance_actions').select('id').where('server_id', '=', serverId).where('request_id', '=', requestId).executeTakeFirst()
    if (!action) return 0
    const now = this.now()
    const r = await db.updateTable('instance_action_events').set({ finish_time: now, result: 'Error', traceback: reason, details: reason })
      .where('action_id', '=', action.id).where('finish_time', 'is', null).executeTakeFirst()
    const n = Number(r.numUpdatedRows)
    if (n > 0) await db.updateTable('instance_actions').set({ updated_at: now }).where('id', '=', action.id).execute()
    return n
  }

  /** An event that failed as it began (no host for a new server: Nova's conductor event), and its action marked Error. */
  async recordFailedEvent(serverId: string, requestId: string, event: string, error: string, db: Db = this.db): Promise<void> {
    const action = await db.selectFrom('instance_actions').select('id').where('server_id', '=', serverId).where('request_id', '=', requestId).executeTakeFirst()
    if (!action) return
    const now = this.now()
    await db.insertInto('instance_action_events').values({
      id: randomUUID(), action_id: action.id, event, start_time: now, finish_time: now, result: 'Error', traceback: error, host: null, details: error,
    }).execute()
    await db.updateTable('instance_actions').set({ message: 'Error', updated_at: now }).where('id', '=', action.id).execute()
  }

  /** An action that will not complete (its task was abandoned, then found stale): message Error, as Nova marks a failed one. */
  async markActionFailed(serverId: string, requestId: string, db: Db = this.db): Promise<void> {
    await db.updateTable('instance_actions').set({ message: 'Error', updated_at: this.now() })
      .where('server_id', '=', serverId).where('request_id', '=', requestId).execute()
  }

  async recordFault(serverId: string, code: number, message: string, details: string, db: Db = this.db): Promise<void> {
    await db.insertInto('instance_faults').values({
      id: randomUUID(), server_id: serverId, code, message, details, created_at: this.now(),
    }).execute()
  }

  /** Where the server's SSH is reached now (null: nowhere, e.g. deleted). */
  async recordAccess(serverId: string, ssh: { host: string; port: number; hostKeyFingerprint: string | null } | null, db: Db = this.db): Promise<void> {
    if (!ssh) {
      await db.deleteFrom('server_access').where('server_id', '=', serverId).execute()
      return
    }
    const row = { ssh_host: ssh.host, ssh_port: ssh.port, host_key_fingerprint: ssh.hostKeyFingerprint, updated_at: this.now() }
    await db.insertInto('server_access').values({ server_id: serverId, ...row })
      .onConflict((oc) => oc.column('server_id').doUpdateSet(row)).execute()
  }

  /** The key pair's key and the user data a server's first boot is given (see ServerBootDataRow). */
  async bootData(serverId: string): Promise<{ key_data: string | null; user_data: string | null } | undefined> {
    return this.db.selectFrom('server_boot_data').select(['key_data', 'user_data']).where('server_id', '=', serverId).executeTakeFirst()
  }

  async access(serverId: string): Promise<{ ssh_host: string; ssh_port: number; host_key_fingerprint: string | null } | undefined> {
    return this.db.selectFrom('server_access').select(['ssh_host', 'ssh_port', 'host_key_fingerprint']).where('server_id', '=', serverId).executeTakeFirst()
  }

  /**
   * Each server's latest fault, and whether it came at or after the start of the server's latest
   * instance action (that action failed, or the VM died since): a fault that a later action
   * has made history of is not.
   */
  async latestFaults(serverIds: string[]): Promise<Map<string, { code: number; message: string; details: string; created_at: string; ofLastAction: boolean }>> {
    const out = new Map<string, { code: number; message: string; details: string; created_at: string; ofLastAction: boolean }>()
    if (serverIds.length === 0) return out
    const [rows, actions] = await Promise.all([
      this.db.selectFrom('instance_faults').selectAll().where('server_id', 'in', serverIds).orderBy('created_at', 'desc').execute(),
      this.db.selectFrom('instance_actions').select((eb) => ['server_id', eb.fn.max('start_time').as('last')]).where('server_id', 'in', serverIds).groupBy('server_id').execute(),
    ])
    const lastAction = new Map(actions.map((a) => [a.server_id, String(a.last)]))
    for (const r of rows) {
      if (out.has(r.server_id)) continue
      const last = lastAction.get(r.server_id)
      out.set(r.server_id, { ...r, ofLastAction: last === undefined || r.created_at >= last })
    }
    return out
  }

  /** Of these ids, the servers that exist and are not deleted (any host, any state). */
  async liveIds(ids: string[]): Promise<Set<string>> {
    const live = new Set<string>()
    // In slices: a host may hold many VMs, a statement only so many parameters.
    for (let i = 0; i < ids.length; i += 1000) {
      const rows = await this.db.selectFrom('servers').select('id').where('id', 'in', ids.slice(i, i + 1000)).where('deleted', '=', 0).execute()
      for (const r of rows) live.add(r.id)
    }
    return live
  }
}
