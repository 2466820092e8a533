// Server rows: reads, the compare-and-set that every state change goes through, the one
// soft-delete, and the rows that belong to a server (fixed IPs, faults, access, boot data).
import { randomBytes, randomUUID } from 'node:crypto'
import type { Kysely, SelectQueryBuilder } from 'kysely'
import type { Clock } from '../clock.ts'
import { prepared, preparedWrite } from './prepared.ts'
import { endOpenRescues } from './rescues-repo.ts'
import { releaseServerVolumes } from './volumes-repo.ts'
import type { Database, Db, ServerRow, TaskState, Tx, VmState } from './schema.ts'

export interface CasFrom {
  vmStates?: VmState[]
  taskStates: TaskState[]
  /** Only if the metadata is still this JSON text (read-modify-write of server metadata). */
  metadata?: string
  /** Only if the server is not locked. */
  unlocked?: boolean
}

/** What a server list filters on, all in SQL (name and IP filters are regular expressions: compute applies them). */
export interface ServerFilter {
  /** undefined: every project. */
  projectId?: string
  /** Servers changed since (deleted ones included); otherwise only servers that exist. */
  changesSince?: string
  vmStates?: VmState[]
  /** Task states besides any (null never matches here, as in Nova's status filter). */
  taskStates?: TaskState[]
  imageId?: string
  flavorId?: string
  reservationId?: string
  /** Servers changed before (deleted ones included): 2.66's changes-before. */
  changesBefore?: string
  locked?: boolean
  userId?: string
  powerState?: number
  /** Admins: the compute host (Nova's `host` and `node`: a host is its one node here), exactly. */
  host?: string
  /** Tag filters (2.26): all of `tags`, any of `tagsAny`, not all of `notTags`, none of `notTagsAny`. */
  tags?: string[]
  tagsAny?: string[]
  notTags?: string[]
  notTagsAny?: string[]
  /** Deleted servers (true) or the others (false); unset: the others, but with changes-since/before. */
  deleted?: boolean
  /** The server of this id (Nova's exact `uuid` filter). */
  id?: string
}

/** The filters a prepared list query takes (ServersRepo.list); the others are built each time. */
const PREPARED_FILTERS = new Set<keyof ServerFilter>([
  'projectId',
  'changesSince',
  'vmStates',
  'taskStates',
  'imageId',
  'flavorId',
  'reservationId',
])

/**
 * What a list reads of each server before its view: enough to find a view built before (its
 * version, bumped by the database at every change its views show) and what the views show that
 * the version does not cover (its flavor's record, its host's liveness).
 */
export type ServerRef = Pick<ServerRow, 'id' | 'project_id' | 'version' | 'flavor_id' | 'host'>
const REF_COLUMNS = ['id', 'project_id', 'version', 'flavor_id', 'host'] as const
/** Refs kept in memory between writes, at most (ref): 100 bytes or so each. */
const MAX_KEPT_REFS = 10_000

/** A server's latest fault; `ofLastAction`: recorded at or after the start of its latest instance action. */
export interface LatestFaultRow {
  code: number
  message: string
  details: string
  created_at: string
  ofLastAction: boolean
}

/** A server as os-simple-tenant-usage reads it: its times and its flavor's figures (null: flavor gone). */
export interface UsageRow {
  id: string
  name: string
  project_id: string
  vm_state: string
  launched_at: string | null
  terminated_at: string | null
  flavor_name: string | null
  ram: number | null
  vcpus: number | null
  disk: number | null
  ephemeral: number | null
}

/** A project's use of its quotas: servers that exist, and their flavors' cores and RAM. */
export interface Usage {
  instances: number
  cores: number
  ram: number
}

export class ServersRepo {
  readonly #db: Kysely<Database>
  readonly #clock: Clock
  // The reads of every GET of a server, compiled once (prepared.ts).
  readonly #get
  readonly #fixedIps
  readonly #faults
  readonly #shown
  readonly #ref
  readonly #byIds
  /** Read by every rescue (the server's own key for the rescue system) and boot: compiled once too. */
  readonly #bootData
  /** Compare-and-sets compiled once per shape: the columns set and the states compared (see cas). */
  readonly #compareAndSets = new Map<string, (values: readonly unknown[], on?: Db) => Promise<number>>()
  /** Server lists compiled once per shape of filter (see list). */
  readonly #lists = new Map<string, (values: readonly unknown[]) => Promise<ServerRow[]>>()

  /** Store.writes (SQLite): refs read while it had the value `#refsAt`, still true while it has it. */
  readonly #writes: (() => number) | undefined
  readonly #refs = new Map<string, ServerRef>()
  #refsAt = -1

  constructor(db: Kysely<Database>, clock: Clock, writes?: () => number) {
    this.#db = db
    this.#clock = clock
    this.#writes = writes
    this.#get = prepared(db, ([id]) => db.selectFrom('servers').selectAll().where('id', '=', id!).where('deleted', '=', 0))
    this.#ref = prepared(db, ([id]) => db.selectFrom('servers').select(REF_COLUMNS).where('id', '=', id!).where('deleted', '=', 0))
    // Deleted ones too: a list that named them (changes-since, or a delete since) shows them as they are.
    this.#byIds = prepared(db, (ids) => db.selectFrom('servers').selectAll().where('id', 'in', ids))
    this.#bootData = prepared(db, ([id]) =>
      db.selectFrom('server_boot_data').select(['key_data', 'user_data']).where('server_id', '=', id!),
    )
    this.#fixedIps = prepared(db, (ids) =>
      db.selectFrom('fixed_ips').select(['server_id', 'address', 'mac']).where('server_id', 'in', ids).orderBy('allocated_at'),
    )
    // The start of the latest action is read only for servers that have faults (few): a
    // correlated subquery, rather than a second query over every server's actions.
    this.#faults = prepared(db, (ids) =>
      db
        .selectFrom('instance_faults as f')
        .selectAll('f')
        .select((eb) =>
          eb
            .selectFrom('instance_actions as a')
            .select((a) => a.fn.max('a.start_time').as('m'))
            .whereRef('a.server_id', '=', 'f.server_id')
            .as('last'),
        )
        .where('f.server_id', 'in', ids)
        .orderBy('f.created_at', 'desc'),
    )
    // One row per address (a server has one, or none): the server, the address, its latest
    // fault and the start of its latest action; portable SQL, no JSON functions.
    this.#shown = prepared(db, ([id]) =>
      db
        .selectFrom('servers as s')
        .leftJoin('fixed_ips as ip', 'ip.server_id', 's.id')
        .leftJoin('instance_faults as f', (join) =>
          join.on((eb) =>
            eb(
              'f.id',
              '=',
              eb
                .selectFrom('instance_faults as g')
                .select('g.id')
                .whereRef('g.server_id', '=', 's.id')
                .orderBy('g.created_at', 'desc')
                .limit(1),
            ),
          ),
        )
        .selectAll('s')
        .select([
          'ip.address as ip_address',
          'ip.mac as ip_mac',
          'f.code as fault_code',
          'f.message as fault_message',
          'f.details as fault_details',
          'f.created_at as fault_created_at',
        ])
        .select((eb) =>
          eb
            .selectFrom('instance_actions as a')
            .select((a) => a.fn.max('a.start_time').as('m'))
            .whereRef('a.server_id', '=', 's.id')
            .as('last_action'),
        )
        .where('s.id', '=', id!)
        .where('s.deleted', '=', 0)
        .orderBy('ip.allocated_at'),
    )
  }

  now(): string {
    return this.#clock.now().toISOString()
  }

  /** One transaction for the writes of several repositories (they all take `trx`). */
  transaction<T>(fn: (trx: Tx) => Promise<T>): Promise<T> {
    return this.#db.transaction().execute(fn)
  }

  async get(id: string, db: Db = this.#db): Promise<ServerRow | undefined> {
    return (await this.#get([id], db))[0]
  }

  /**
   * A server with what its own GET shows beside it, in one statement rather than three: its
   * addresses (as fixedIps) and its latest fault (as latestFaults).
   */
  async getShown(
    id: string,
  ): Promise<{ server: ServerRow; ips: { address: string; mac: string }[]; fault: LatestFaultRow | undefined } | undefined> {
    const rows = await this.#shown([id])
    const first = rows[0]
    if (!first) return undefined
    const { ip_address: _a, ip_mac: _m, fault_code, fault_message, fault_details, fault_created_at, last_action, ...server } = first
    const ips = rows.flatMap((r) => (r.ip_address === null || r.ip_mac === null ? [] : [{ address: r.ip_address, mac: r.ip_mac }]))
    const fault =
      fault_code === null || fault_message === null || fault_details === null || fault_created_at === null
        ? undefined
        : {
            code: fault_code,
            message: fault_message,
            details: fault_details,
            created_at: fault_created_at,
            ofLastAction: last_action === null || fault_created_at >= String(last_action),
          }
    return { server, ips, fault }
  }

  /** What a server's view is found by (ServerRef); undefined if there is none or it is deleted. */
  async ref(id: string): Promise<ServerRef | undefined> {
    // Every GET of a server reads its ref (its version finds the memoized view): on SQLite, kept
    // in memory until the next write of any row; the read costs more than the rest of the GET.
    const at = this.#writes?.()
    if (at === undefined) return (await this.#ref([id]))[0]
    const kept = this.keptRef(id)
    if (kept) return kept
    const ref = (await this.#ref([id]))[0]
    // Kept only if nothing was written while it was read (it waited for a transaction, say).
    if (ref && this.#writes!() === at && this.#refsAt === at) {
      if (this.#refs.size >= MAX_KEPT_REFS) this.#refs.clear()
      this.#refs.set(id, Object.freeze(ref))
    }
    return ref
  }

  /** The ref `ref` keeps in memory (SQLite), if it is kept and nothing was written since: no read, no promise. */
  keptRef(id: string): ServerRef | undefined {
    const at = this.#writes?.()
    if (at === undefined) return undefined
    if (at !== this.#refsAt) {
      this.#refs.clear()
      this.#refsAt = at
    }
    return this.#refs.get(id)
  }

  /** These servers, deleted or not, in no particular order. */
  async byIds(ids: string[]): Promise<ServerRow[]> {
    if (ids.length === 0) return []
    return this.#byIds(ids)
  }

  /** Deleted servers too. */
  async getAny(id: string): Promise<ServerRow | undefined> {
    return this.#db.selectFrom('servers').selectAll().where('id', '=', id).executeTakeFirst()
  }

  /**
   * Newest first. With a page: read by keyset from the marker, over the (project_id, created_at,
   * id) index, never the whole project (100,000 servers, say); undefined when the marker is not
   * among the servers the filter selects.
   */
  async list(f: ServerFilter, page?: { marker?: string; limit?: number }): Promise<ServerRow[] | undefined>
  /** `refs`: only what finds each server's view (ServerRef), not the whole row. */
  async list(f: ServerFilter, page: { marker?: string; limit?: number }, refs: true): Promise<ServerRef[] | undefined>
  async list(f: ServerFilter, page: { marker?: string; limit?: number } = {}, refs = false): Promise<ServerRef[] | undefined> {
    // The common case, no marker and only the filters of 2.1, is compiled once per shape of
    // filter (prepared.ts): which filters are set and how long their lists are. A page from a
    // marker, or a filter of a later microversion, takes the long way.
    const common = (Object.keys(f) as (keyof ServerFilter)[]).every((k) => f[k] === undefined || PREPARED_FILTERS.has(k))
    if (page.marker !== undefined || !common) return this.#listFrom(f, page.marker, page.limit, refs)
    const values: unknown[] = []
    // -1: not set; else how many values (an empty list is a filter too: it matches nothing).
    const has = (v: unknown) => {
      if (v === undefined) return -1
      if (Array.isArray(v)) values.push(...(v as unknown[]))
      else values.push(v)
      return Array.isArray(v) ? v.length : 1
    }
    const shape = [
      has(f.projectId),
      has(f.changesSince),
      has(f.vmStates),
      has(f.taskStates),
      has(f.imageId),
      has(f.flavorId),
      has(f.reservationId),
      has(page.limit),
    ]
    const key = `${shape.join(',')}${refs ? ' refs' : ''}`
    let run = this.#lists.get(key)
    if (!run) {
      run = prepared(this.#db, (stands) => {
        let next = 0
        const take = (n: number) => stands.slice(next, (next += n))
        const [project, since, vms, tasks, image, flavor, reservation, limit] = shape.map((n) => (n >= 0 ? take(n) : undefined))
        const q = this.#listQuery(
          {
            projectId: project?.[0],
            changesSince: since?.[0],
            vmStates: vms as VmState[] | undefined,
            taskStates: tasks as TaskState[] | undefined,
            imageId: image?.[0],
            flavorId: flavor?.[0],
            reservationId: reservation?.[0],
          },
          refs,
        )
        return limit ? q.limit(limit[0] as unknown as number) : q
      })
      // A client picks the filters: bounded, oldest shape out first.
      if (this.#lists.size >= 64) this.#lists.delete(this.#lists.keys().next().value!)
      this.#lists.set(key, run)
    }
    return run(values)
  }

  #listQuery(f: ServerFilter, refs = false) {
    // One builder type for both: the callers of `refs` are typed by list's overloads.
    let query = refs
      ? (this.#db.selectFrom('servers').select(REF_COLUMNS) as unknown as SelectQueryBuilder<Database, 'servers', ServerRow>)
      : this.#db.selectFrom('servers').selectAll()
    if (f.projectId !== undefined) query = query.where('project_id', '=', f.projectId)
    // changes-since shows deleted servers too: that is how clients see deletions.
    if (f.changesSince !== undefined) query = query.where('updated_at', '>=', f.changesSince)
    if (f.changesBefore !== undefined) query = query.where('updated_at', '<=', f.changesBefore)
    if (f.deleted === true) query = query.where('deleted', '!=', 0)
    else if (f.deleted === false || (f.changesSince === undefined && f.changesBefore === undefined)) query = query.where('deleted', '=', 0)
    if (f.id !== undefined) query = query.where('id', '=', f.id)
    if (f.locked !== undefined) query = query.where('locked', '=', f.locked ? 1 : 0)
    if (f.userId !== undefined) query = query.where('user_id', '=', f.userId)
    if (f.powerState !== undefined) query = query.where('power_state', '=', f.powerState)
    if (f.host !== undefined) query = query.where('host', '=', f.host)
    // Tags as Nova's instance_get_all_by_filters reads them: subqueries on the tag table.
    const tagged = (tags: string[]) => this.#db.selectFrom('server_tags').select('server_id').where('tag', 'in', tags)
    const withAll = (tags: string[]) =>
      tagged(tags)
        .groupBy('server_id')
        .having((eb) => eb.fn.count('tag').distinct(), '=', tags.length)
    if (f.tags?.length) query = query.where('id', 'in', withAll(f.tags))
    if (f.tagsAny?.length) query = query.where('id', 'in', tagged(f.tagsAny))
    if (f.notTags?.length) query = query.where('id', 'not in', withAll(f.notTags))
    if (f.notTagsAny?.length) query = query.where('id', 'not in', tagged(f.notTagsAny))
    if (f.vmStates) query = query.where('vm_state', 'in', f.vmStates)
    if (f.taskStates) query = query.where('task_state', 'in', f.taskStates)
    if (f.imageId !== undefined) query = query.where('image_id', '=', f.imageId)
    if (f.flavorId !== undefined) query = query.where('flavor_id', '=', f.flavorId)
    if (f.reservationId !== undefined) query = query.where('reservation_id', '=', f.reservationId)
    return query.orderBy('created_at', 'desc').orderBy('id', 'desc')
  }

  async #listFrom(f: ServerFilter, marker: string | undefined, limit: number | undefined, refs: boolean): Promise<ServerRef[] | undefined> {
    let query = this.#listQuery(f, refs)
    if (marker === undefined) return limit !== undefined ? query.limit(limit).execute() : query.execute()
    const m = await this.#listQuery(f).where('id', '=', marker).executeTakeFirst()
    if (!m) return undefined
    query = query.where((eb) =>
      eb.or([eb('created_at', '<', m.created_at), eb.and([eb('created_at', '=', m.created_at), eb('id', '<', m.id)])]),
    )
    return limit !== undefined ? query.limit(limit).execute() : query.execute()
  }

  /** Servers of a host in these states (an agent adopting its servers after a restart). */
  /**
   * os-simple-tenant-usage: servers, deleted ones included, that ran in [begin, end)
   * (get_active_by_window_joined: not terminated before `begin`, launched before `end`), with
   * their flavors, by project then id (Nova's sort), after the `marker` server, at most `limit`.
   * Undefined when the marker names no such server.
   */
  async activeInWindow(
    begin: string,
    end: string,
    page: { projectId?: string; limit?: number; marker?: string },
  ): Promise<UsageRow[] | undefined> {
    let q = this.#db
      .selectFrom('servers as s')
      .leftJoin('flavors as f', 'f.id', 's.flavor_id')
      .select([
        's.id',
        's.name',
        's.project_id',
        's.vm_state',
        's.launched_at',
        's.terminated_at',
        'f.name as flavor_name',
        'f.ram',
        'f.vcpus',
        'f.disk',
        'f.ephemeral',
      ])
      .where((eb) => eb.or([eb('s.terminated_at', 'is', null), eb('s.terminated_at', '>', begin)]))
      .where('s.launched_at', '<', end)
    if (page.projectId !== undefined) q = q.where('s.project_id', '=', page.projectId)
    if (page.marker !== undefined) {
      const m = await this.#db.selectFrom('servers').select(['id', 'project_id']).where('id', '=', page.marker).executeTakeFirst()
      if (!m) return undefined
      q = q.where((eb) =>
        eb.or([eb('s.project_id', '>', m.project_id), eb.and([eb('s.project_id', '=', m.project_id), eb('s.id', '>', m.id)])]),
      )
    }
    q = q.orderBy('s.project_id').orderBy('s.id')
    if (page.limit !== undefined) q = q.limit(page.limit)
    return q.execute()
  }

  /** Servers (not deleted) on these hosts: how many (an aggregate's zone may not change under them). */
  async countOnHosts(hosts: string[]): Promise<number> {
    if (hosts.length === 0) return 0
    const r = await this.#db
      .selectFrom('servers')
      .select((eb) => eb.fn.countAll<number | string>().as('n'))
      .where('host', 'in', hosts)
      .where('deleted', '=', 0)
      .executeTakeFirstOrThrow()
    return Number(r.n)
  }

  /** Every server (not deleted) of a host, oldest first: os-hypervisors' servers. */
  async allOnHost(host: string): Promise<Pick<ServerRow, 'id' | 'name' | 'task_state'>[]> {
    return this.#db
      .selectFrom('servers')
      .select(['id', 'name', 'task_state'])
      .where('host', '=', host)
      .where('deleted', '=', 0)
      .orderBy('created_at')
      .orderBy('id')
      .execute()
  }

  async onHost(host: string, vmStates: VmState[]): Promise<ServerRow[]> {
    return this.#db
      .selectFrom('servers')
      .selectAll()
      .where('host', '=', host)
      .where('deleted', '=', 0)
      .where('vm_state', 'in', vmStates)
      .execute()
  }

  /**
   * Rows updated at or after `from`, deleted ones included, oldest first (the change feed).
   * ISO strings of one format sort as the instants they name, in SQLite and PostgreSQL alike.
   */
  async changedSince(from: string): Promise<ServerRow[]> {
    return this.#db.selectFrom('servers').selectAll().where('updated_at', '>=', from).orderBy('updated_at').orderBy('id').execute()
  }

  /**
   * The project's use (or, with `userId`, that user's within the project): quotas and /limits.
   * From the counters migration 0019's triggers keep (a row per project and user), not a sum
   * over the project's servers.
   */
  async usage(projectId: string, db: Db = this.#db, userId?: string): Promise<Usage> {
    let q = db
      .selectFrom('project_usage')
      .select((eb) => [eb.fn.sum<number>('instances').as('n'), eb.fn.sum<number>('cores').as('cores'), eb.fn.sum<number>('ram').as('ram')])
      .where('project_id', '=', projectId)
    if (userId !== undefined) q = q.where('user_id', '=', userId)
    const used = await q.executeTakeFirstOrThrow()
    return { instances: Number(used.n ?? 0), cores: Number(used.cores ?? 0), ram: Number(used.ram ?? 0) }
  }

  /**
   * Change a server only if it is still where the caller saw it (Nova's
   * save(expected_task_state=...)). False when someone else changed it first.
   */
  async cas(id: string, from: CasFrom, to: Partial<ServerRow>, db: Db = this.#db): Promise<boolean> {
    const columns = (Object.keys(to) as (keyof ServerRow)[]).filter((c) => to[c] !== undefined)
    const tasks = from.taskStates.filter((t) => t !== null)
    const allowsNull = from.taskStates.includes(null)
    // Every action sets and compares the same few things: one compiled statement per shape (prepared.ts).
    const key = `${columns.join(',')}|${from.vmStates?.length ?? -1}|${from.metadata !== undefined}|${from.unlocked === true}|${tasks.length}|${allowsNull}`
    let run = this.#compareAndSets.get(key)
    if (!run) {
      run = preparedWrite(this.#db, (stands) => {
        let next = 0
        const take = (n: number) => stands.slice(next, (next += n))
        const set = Object.fromEntries(columns.map((c) => [c, take(1)[0]]))
        let q = this.#db
          .updateTable('servers')
          .set({ ...set, updated_at: take(1)[0]! })
          .where('id', '=', take(1)[0]!)
          .where('deleted', '=', 0)
        if (from.vmStates) q = q.where('vm_state', 'in', take(from.vmStates.length) as VmState[])
        if (from.metadata !== undefined) q = q.where('metadata', '=', take(1)[0]!)
        if (from.unlocked) q = q.where('locked', '=', 0)
        const states = take(tasks.length) as TaskState[]
        return q.where((eb) => {
          const ors = []
          if (allowsNull) ors.push(eb('task_state', 'is', null))
          if (states.length) ors.push(eb('task_state', 'in', states))
          return eb.or(ors)
        })
      })
      if (this.#compareAndSets.size >= 64) this.#compareAndSets.delete(this.#compareAndSets.keys().next().value!)
      this.#compareAndSets.set(key, run)
    }
    const values = [
      ...columns.map((c) => to[c]),
      this.now(),
      id,
      ...(from.vmStates ?? []),
      ...(from.metadata !== undefined ? [from.metadata] : []),
      ...tasks,
    ]
    return (await run(values, db)) === 1
  }

  /**
   * os-resetState: the vm_state an admin names, no task, whatever the server was doing (Nova's
   * save(admin_state_reset=True)); its open rescue, if any, ends. False if it is gone.
   */
  async resetState(id: string, vmState: 'active' | 'error', trx: Tx): Promise<boolean> {
    const now = this.now()
    const r = await trx
      .updateTable('servers')
      .set({ vm_state: vmState, task_state: null, updated_at: now })
      .where('id', '=', id)
      .where('deleted', '=', 0)
      .executeTakeFirst()
    if (r.numUpdatedRows !== 1n) return false
    await endOpenRescues(trx, id, now)
    return true
  }

  /** Fields that change whatever the server's state (name, access addresses, lock); false if it is gone. */
  async update(
    id: string,
    to: Partial<
      Pick<ServerRow, 'name' | 'access_ipv4' | 'access_ipv6' | 'locked' | 'locked_by' | 'locked_reason' | 'description' | 'hostname'>
    >,
  ): Promise<boolean> {
    const r = await this.#db
      .updateTable('servers')
      .set({ ...to, updated_at: this.now() })
      .where('id', '=', id)
      .where('deleted', '=', 0)
      .executeTakeFirst()
    return r.numUpdatedRows === 1n
  }

  /**
   * The one soft-delete, for the API's local delete and the agent's: by compare-and-set on the
   * task state the caller saw, the row marked deleted and everything the server held let go
   * (addresses, its open rescue, SSH access, boot data) in the caller's transaction. False if
   * the server had moved on (or was deleted already).
   */
  async softDelete(id: string, from: { taskStates: TaskState[] }, trx: Tx): Promise<boolean> {
    const now = this.now()
    // power_state 0: NOSTATE.
    const to = { vm_state: 'deleted', task_state: null, power_state: 0, deleted: 1, deleted_at: now, terminated_at: now } as const
    if (!(await this.cas(id, from, to, trx))) return false
    await this.releaseFixedIps(id, trx)
    await endOpenRescues(trx, id, now)
    await releaseServerVolumes(trx, id, now)
    await this.recordAccess(id, null, trx)
    await trx.deleteFrom('server_boot_data').where('server_id', '=', id).execute()
    return true
  }

  async insert(row: ServerRow, db: Db): Promise<void> {
    await db.insertInto('servers').values(row).execute()
  }

  /** A server's first-boot data (see ServerBootDataRow), recorded at create. */
  async insertBootData(serverId: string, data: { keyData: string | null; userData: string | null }, db: Db): Promise<void> {
    await db.insertInto('server_boot_data').values({ server_id: serverId, key_data: data.keyData, user_data: data.userData }).execute()
  }

  /** Lowest free address of the built-in private network 10.0.0.0/16 (.1 is the gateway). */
  async allocateFixedIp(serverId: string, db: Db): Promise<string> {
    const used = new Set((await db.selectFrom('fixed_ips').select('address').execute()).map((r) => r.address))
    for (let n = 3; n < 65534; n++) {
      const address = `10.0.${n >> 8}.${n & 255}`
      if ((n & 255) === 0 || (n & 255) === 255 || used.has(address)) continue
      const mac = 'fa:16:3e:' + [...randomBytes(3)].map((b) => b.toString(16).padStart(2, '0')).join(':')
      // Another API process may take the same address at the same moment: the loser moves on.
      const r = await db
        .insertInto('fixed_ips')
        .values({ address, server_id: serverId, mac, allocated_at: this.now() })
        .onConflict((oc) => oc.column('address').doNothing())
        .executeTakeFirst()
      if (Number(r.numInsertedOrUpdatedRows ?? 0n) === 1) return address
    }
    throw new Error('the private network is full')
  }

  async releaseFixedIps(serverId: string, db: Db = this.#db): Promise<void> {
    await db.deleteFrom('fixed_ips').where('server_id', '=', serverId).execute()
  }

  async fixedIps(serverIds: string[]): Promise<Map<string, { address: string; mac: string }[]>> {
    const out = new Map<string, { address: string; mac: string }[]>()
    if (serverIds.length === 0) return out
    const rows = await this.#fixedIps(serverIds)
    for (const r of rows) {
      const list = out.get(r.server_id) ?? []
      list.push({ address: r.address, mac: r.mac })
      out.set(r.server_id, list)
    }
    return out
  }

  async recordFault(serverId: string, code: number, message: string, details: string, db: Db = this.#db): Promise<void> {
    await db
      .insertInto('instance_faults')
      .values({
        id: randomUUID(),
        server_id: serverId,
        code,
        message,
        details,
        created_at: this.now(),
      })
      .execute()
  }

  /** Where the server's SSH is reached now (null: nowhere, e.g. deleted). */
  async recordAccess(
    serverId: string,
    ssh: { host: string; port: number; hostKeyFingerprint: string | null; serialEndpoint?: string | null } | null,
    db: Db = this.#db,
  ): Promise<void> {
    if (!ssh) {
      await db.deleteFrom('server_access').where('server_id', '=', serverId).execute()
      return
    }
    const row = {
      ssh_host: ssh.host,
      ssh_port: ssh.port,
      host_key_fingerprint: ssh.hostKeyFingerprint,
      serial_endpoint: ssh.serialEndpoint ?? null,
      updated_at: this.now(),
    }
    await db
      .insertInto('server_access')
      .values({ server_id: serverId, ...row })
      .onConflict((oc) => oc.column('server_id').doUpdateSet(row))
      .execute()
  }

  /** The key pair's key and the user data a server's first boot is given (see ServerBootDataRow). */
  async bootData(serverId: string): Promise<{ key_data: string | null; user_data: string | null } | undefined> {
    return (await this.#bootData([serverId]))[0]
  }

  async access(
    serverId: string,
  ): Promise<{ ssh_host: string; ssh_port: number; host_key_fingerprint: string | null; serial_endpoint: string | null } | undefined> {
    return this.#db
      .selectFrom('server_access')
      .select(['ssh_host', 'ssh_port', 'host_key_fingerprint', 'serial_endpoint'])
      .where('server_id', '=', serverId)
      .executeTakeFirst()
  }

  /**
   * Each server's latest fault, and whether it came at or after the start of the server's latest
   * instance action (that action failed, or the VM died since): a fault that a later action
   * has made history of is not.
   */
  async latestFaults(serverIds: string[]): Promise<Map<string, LatestFaultRow>> {
    const out = new Map<string, LatestFaultRow>()
    if (serverIds.length === 0) return out
    const rows = await this.#faults(serverIds)
    for (const { last, ...r } of rows) {
      if (out.has(r.server_id)) continue
      out.set(r.server_id, { ...r, ofLastAction: last === null || r.created_at >= String(last) })
    }
    return out
  }

  /** Of these ids, the servers that exist and are not deleted (any host, any state). */
  async liveIds(ids: string[]): Promise<Set<string>> {
    const live = new Set<string>()
    // In slices: a host may hold many VMs, a statement only so many parameters.
    for (let i = 0; i < ids.length; i += 1000) {
      const rows = await this.#db
        .selectFrom('servers')
        .select('id')
        .where('id', 'in', ids.slice(i, i + 1000))
        .where('deleted', '=', 0)
        .execute()
      for (const r of rows) live.add(r.id)
    }
    return live
  }
}
