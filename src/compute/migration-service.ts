// Moves of a server, API side, as Nova's compute API does them (nova/compute/api.py resize,
// confirm_resize, revert_resize, live_migrate, evacuate; the migrations APIs): 404 → policy →
// lock → state → the checks of the request, then ServerActions.begin (compare-and-set, the
// instance action, the migration record and the first task, in one transaction). The scheduler
// chooses the destination here, in that transaction (Nova's conductor does it asynchronously;
// with no room, as in Nova, the request is accepted and the move fails on its first step).
import { BadRequest, Forbidden, NotFound } from '../errors.ts'
import type { AuthContext } from '../identity/identity-service.ts'
import type { MigrationFilters, MigrationsRepo } from '../store/migrations-repo.ts'
import type { InstanceActionsRepo } from '../store/instance-actions-repo.ts'
import type { FlavorRow, HostScope, LiveMigrationRequest, MigrationRow, MigrationType, Tx } from '../store/schema.ts'
import type { ServersRepo } from '../store/servers-repo.ts'
import type { HostRegistry } from '../tasks/hosts.ts'
import type { Sealer } from '../secrets.ts'
import { generateInstancePassword } from './admin-pass.ts'
import { FlavorNotFound, InstanceInvalidState, InstanceIsLocked } from './errors.ts'
import type { FlavorService } from './flavor-service.ts'
import { authorize } from './policy.ts'
import type { Candidate, Scheduler } from './scheduler.ts'
import { assertState, type ActionRule, type ServerActions } from './server-actions.ts'
import type { Server } from './server.ts'
import type { MoveTaskKind } from './server-tasks.ts'
import type { Conflict } from '../errors.ts'

export type Migration = MigrationRow

/** The rules of the move actions (beside server-actions.ts RULES: one contract, kept apart to keep that file small). */
export const MOVE_RULES = {
  resize: {
    action: 'resize',
    policy: 'os_compute_api:servers:resize',
    vmStates: ['active', 'stopped'],
    taskState: 'resize_prep',
    kind: 'server.prep_resize',
  },
  migrate: {
    action: 'migrate',
    policy: 'os_compute_api:os-migrate-server:migrate',
    vmStates: ['active', 'stopped'],
    taskState: 'resize_prep',
    kind: 'server.prep_resize',
  },
  // Nova's confirm sets no task state: the migration's status (finished → confirming) is the compare-and-set.
  confirmResize: {
    action: 'confirmResize',
    policy: 'os_compute_api:servers:confirm_resize',
    vmStates: ['resized'],
    taskState: null as never,
    kind: 'server.confirm_resize',
  },
  revertResize: {
    action: 'revertResize',
    policy: 'os_compute_api:servers:revert_resize',
    vmStates: ['resized'],
    taskState: 'resize_reverting',
    kind: 'server.revert_resize',
  },
  liveMigrate: {
    action: 'live-migration',
    policy: 'os_compute_api:os-migrate-server:migrate_live',
    vmStates: ['active', 'paused'],
    taskState: 'migrating',
    kind: 'server.check_live_migration_source',
  },
  evacuate: {
    action: 'evacuate',
    policy: 'os_compute_api:os-evacuate',
    vmStates: ['active', 'stopped', 'error'],
    taskState: 'rebuilding',
    kind: 'server.evacuate',
  },
} satisfies Record<string, ActionRule<MoveTaskKind>>

export interface MigrationServiceDeps {
  actions: ServerActions
  /** The instance actions of the requests on a live migration under way (abort, force-complete). */
  actionsRepo: InstanceActionsRepo
  repo: ServersRepo
  migrations: MigrationsRepo
  flavors: FlavorService
  scheduler: Scheduler
  hosts: HostRegistry
  sealer: Sealer
  /** The project's limits, or a user's within it (quota-service.ts; -1: unlimited). */
  quotas: { limits(projectId: string, userId?: string): Promise<{ cores: number; ram: number }> }
  enableInstancePassword: boolean
  /** Nova's allow_resize_to_same_host (default false): a resize may stay on its host. */
  allowResizeToSameHost: boolean
}

/**
 * A copy of the candidates for a first look (a claim shrinks the room it counts): the claim in
 * the move's own transaction then counts from what was read.
 */
const fresh = (cs: Candidate[]): Candidate[] => cs.map((c) => ({ ...c, free: { ...c.free } }))

/** Statuses of a live migration still under way (Nova's in-progress list). */
const LIVE_IN_PROGRESS = ['queued', 'preparing', 'running', 'post-migrating']

/**
 * An admin's requests on a live migration under way, as Nova names them: in its messages, its
 * instance action and compute event, and its answer when the migration is not the server's
 * (MigrationNotFoundForInstance: a 404 for an abort, a 400 for a force-complete).
 */
const LIVE_MIGRATION_REQUESTS = {
  abort: { method: 'abort live migration', action: 'live_migration_cancel', event: 'compute_live_migration_abort', notFound: NotFound },
  'force-complete': {
    method: 'force complete',
    action: 'live_migration_force_complete',
    event: 'compute_live_migration_force_complete',
    notFound: BadRequest,
  },
} as const satisfies Record<
  LiveMigrationRequest,
  { method: string; action: string; event: string; notFound: typeof NotFound | typeof BadRequest }
>

export class MigrationService {
  readonly #d: MigrationServiceDeps

  constructor(deps: MigrationServiceDeps) {
    this.#d = deps
  }

  /** 404, policy (at `role`), lock, state: ServerActions.check with Nova's admin-only moves. */
  async #check(ctx: AuthContext, id: string, rule: ActionRule, role: 'member' | 'admin', policy = rule.policy): Promise<Server> {
    const s = await this.#d.actions.get(ctx, id)
    authorize(ctx, policy, role)
    if (s.locked && !ctx.isAdmin) throw new InstanceIsLocked(s.id)
    assertState(s, rule)
    return s
  }

  async resize(ctx: AuthContext, id: string, flavorRef: string, requestId: string): Promise<void> {
    const s = await this.#check(ctx, id, MOVE_RULES.resize, 'member')
    await this.#d.actions.assertHostUp(s.host)
    const current = await this.#d.flavors.getIncludingDeleted(s.flavor_id)
    const flavor = await this.#d.flavors.getIncludingDeleted(flavorRef)
    // Nova answers 400 here (FlavorNotFound is a bad request to resize), with the usual words.
    if (!flavor || flavor.deleted || (flavor.disabled && flavor.id !== s.flavor_id))
      throw new BadRequest(`Flavor ${flavorRef} could not be found.`)
    if (flavor.id === s.flavor_id) throw new BadRequest('When resizing, instances must change flavor!')
    if (flavor.disk === 0 && (current?.disk ?? 0) !== 0) {
      throw new BadRequest('Server disk was unable to be resized because: Resize to zero disk flavor is not allowed.')
    }
    await this.#checkQuota(s, current, flavor)
    await this.#move(ctx, s, MOVE_RULES.resize, 'resize', flavor, requestId, this.#d.allowResizeToSameHost)
  }

  async migrate(ctx: AuthContext, id: string, host: string | null, requestId: string): Promise<void> {
    const policy = host ? 'os_compute_api:os-migrate-server:migrate:host' : MOVE_RULES.migrate.policy
    const s = await this.#check(ctx, id, MOVE_RULES.migrate, 'admin', policy)
    await this.#d.actions.assertHostUp(s.host)
    if (host) {
      if (!(await this.#hostExists(host))) throw new BadRequest(`Compute host ${host} could not be found.`)
      if (host === s.host) throw new BadRequest('Cannot migrate to the host where the server exists.')
    }
    const flavor = await this.#d.flavors.getIncludingDeleted(s.flavor_id)
    if (!flavor) throw new FlavorNotFound(s.flavor_id)
    // Nova lets a cold migration stay on its host only where the driver can (libvirt cannot).
    await this.#move(ctx, s, MOVE_RULES.migrate, 'migration', flavor, requestId, false, host ?? undefined)
  }

  async confirmResize(ctx: AuthContext, id: string, requestId: string): Promise<void> {
    const rule = MOVE_RULES.confirmResize
    const s = await this.#check(ctx, id, rule, 'member')
    const m = await this.#d.migrations.latest(s.id, ['finished'])
    if (!m || !m.source_compute) throw new BadRequest('Instance has not been resized.')
    await this.#d.actions.assertHostUp(m.source_compute)
    await this.#d.actions.begin(ctx, { ...s, host: m.source_compute }, rule, { migrationId: m.id }, requestId, {}, async (trx) =>
      this.#casMigration(m, ['finished'], 'confirming', s, rule.action, trx),
    )
  }

  async revertResize(ctx: AuthContext, id: string, requestId: string): Promise<void> {
    const rule = MOVE_RULES.revertResize
    const s = await this.#check(ctx, id, rule, 'member')
    const m = await this.#d.migrations.latest(s.id, ['finished'])
    if (!m || !m.source_compute) throw new BadRequest('Instance has not been resized.')
    await this.#d.actions.assertHostUp(s.host)
    await this.#d.actions.begin(ctx, s, rule, { migrationId: m.id }, requestId, {}, async (trx) =>
      this.#casMigration(m, ['finished'], 'reverting', s, rule.action, trx),
    )
  }

  /** The sweep of auto-confirm (Nova's resize_confirm_window): a confirm by Skiff itself. */
  async unconfirmed(hosts: HostScope, windowSeconds: number, now: Date): Promise<Migration[]> {
    return this.#d.migrations.unconfirmed(hosts, new Date(now.getTime() - windowSeconds * 1000).toISOString())
  }

  /**
   * `async_` (2.34+): Nova checks the destination in the conductor after answering 202, so "No
   * valid host" fails the migration (server back to ACTIVE, migration `error`); below 2.34 it is
   * the answer, 400.
   */
  async liveMigrate(ctx: AuthContext, id: string, host: string | null, force: boolean, async_: boolean, requestId: string): Promise<void> {
    const policy = host ? 'os_compute_api:os-migrate-server:migrate_live:host' : MOVE_RULES.liveMigrate.policy
    const s = await this.#check(ctx, id, MOVE_RULES.liveMigrate, 'admin', policy)
    if (force && !host) throw new BadRequest("Can't force to a non-provided destination")
    await this.#d.actions.assertHostUp(s.host)
    if (host) {
      if (!(await this.#hostExists(host))) throw new BadRequest(`Compute host ${host} could not be found.`)
      if (host === s.host) throw new BadRequest(`Unable to migrate instance (${s.id}) to current host (${host}).`)
    }
    const flavor = await this.#flavorOf(s)
    const demand = { vcpus: flavor.vcpus, ramMb: flavor.ram, diskGb: flavor.disk }
    const candidates = (await this.#d.scheduler.candidates(demand)).filter((c) => c.name !== s.host && (!host || c.name === host))
    let dest: string | null = null
    await this.#d.repo.transaction(async (trx) => {
      dest = await this.#d.scheduler.claim(trx, fresh(candidates), demand)
    })
    if (!dest && !async_) throw new BadRequest('No valid host was found. ')
    const to: string | null = dest
    // The first step runs on the source (Nova's live_migration); without a destination it fails there.
    await this.#d.actions.begin(ctx, s, MOVE_RULES.liveMigrate, { migrationId: 0 }, requestId, {}, async (trx) => {
      const claimed = to
        ? await this.#d.scheduler.claim(
            trx,
            candidates.filter((c) => c.name === to),
            demand,
          )
        : null
      const m = await this.#insert(
        ctx,
        s,
        'live-migration',
        'accepted',
        s.host,
        claimed,
        flavor,
        flavor,
        claimed ? { host: claimed } : {},
        requestId,
        trx,
      )
      return { migrationId: m.id }
    })
  }

  async evacuate(
    ctx: AuthContext,
    id: string,
    req: { host?: string; adminPass?: string; onSharedStorage?: boolean; force?: boolean },
    requestId: string,
  ): Promise<{ adminPass?: string }> {
    const s = await this.#d.actions.get(ctx, id)
    authorize(ctx, MOVE_RULES.evacuate.policy, 'admin')
    if (req.force && !req.host) throw new BadRequest("Can't force to a non-provided destination")
    if (req.onSharedStorage && req.adminPass !== undefined) throw new BadRequest("admin password can't be changed on existing disk")
    if (req.host !== undefined && !(await this.#hostExists(req.host))) throw new NotFound(`Compute host ${req.host} not found.`)
    if (req.host !== undefined && s.host === req.host) throw new BadRequest("The target host can't be the same one.")
    assertState(s, MOVE_RULES.evacuate)
    if (!s.host) throw new InstanceInvalidState(s.id, 'evacuate', 'vm_state', s.vm_state)
    // Nova's service_is_up: a service forced down (os-services) is down whatever its heartbeat.
    const source = (await this.#d.hosts.list()).find((h) => h.name === s.host)
    if (source?.up && !source.forced_down) throw new BadRequest(`Compute service of ${s.host} is still in use.`)
    const flavor = await this.#d.flavors.getIncludingDeleted(s.flavor_id)
    if (!flavor) throw new FlavorNotFound(s.flavor_id)
    const adminPass = req.adminPass ?? (this.#d.enableInstancePassword ? generateInstancePassword() : undefined)
    const demand = { vcpus: flavor.vcpus, ramMb: flavor.ram, diskGb: flavor.disk }
    const candidates = (await this.#d.scheduler.candidates(demand)).filter((c) => c.name !== s.host && (!req.host || c.name === req.host))
    // The task goes to the destination: the source is down. No host: Nova's conductor fails the
    // evacuation and the server stays where it is; here nothing is started (400 "No valid host").
    let dest: string | null = null
    const from = s.host
    const sealed = this.#d.sealer.seal({ adminPass })
    await this.#d.repo.transaction(async (trx) => {
      dest = await this.#d.scheduler.claim(trx, fresh(candidates), demand)
    })
    if (!dest) throw new BadRequest('No valid host was found. ')
    const to: string = dest
    await this.#d.actions.begin(
      ctx,
      { ...s, host: to },
      MOVE_RULES.evacuate,
      { migrationId: 0, sealed },
      requestId,
      { host: to },
      async (trx) => {
        const m = await this.#insert(ctx, s, 'evacuation', 'accepted', from, to, flavor, flavor, {}, requestId, trx)
        return { migrationId: m.id, sealed }
      },
    )
    return { adminPass }
  }

  // Migrations APIs (os-migrations; /servers/{id}/migrations).

  async list(ctx: AuthContext, filters: MigrationFilters): Promise<Migration[]> {
    authorize(ctx, 'os_compute_api:os-migrations:index', 'admin')
    return this.#d.migrations.list(filters)
  }

  async markerId(uuid: string): Promise<number | undefined> {
    return (await this.#d.migrations.getByUuid(uuid))?.id
  }

  /** A server's live migrations under way (GET /servers/{id}/migrations). */
  async ofServer(ctx: AuthContext, serverId: string): Promise<Migration[]> {
    const s = await this.#d.actions.get(ctx, serverId)
    authorize(ctx, 'os_compute_api:servers:migrations:index', 'admin')
    const rows = await this.#d.migrations.list({ serverId: s.id, migrationType: 'live-migration' })
    return rows.filter((m) => LIVE_IN_PROGRESS.includes(m.status))
  }

  async showOfServer(ctx: AuthContext, serverId: string, migrationId: number): Promise<Migration> {
    const s = await this.#d.actions.get(ctx, serverId)
    authorize(ctx, 'os_compute_api:servers:migrations:show', 'admin')
    const m = await this.#d.migrations.get(migrationId)
    if (!m || m.server_id !== s.id) throw new NotFound(`Migration ${migrationId} not found for instance ${s.id}`)
    if (m.migration_type !== 'live-migration') throw new NotFound(`Migration ${migrationId} for server ${s.id} is not live-migration.`)
    if (!LIVE_IN_PROGRESS.includes(m.status)) throw new NotFound(`Migration ${migrationId} not found for instance ${s.id}`)
    return m
  }

  /**
   * force_complete (Nova's live_migrate_force_complete): while the copy runs, the agent copying
   * the guest is asked to finish it: it pauses the guest so that the copy converges (Nova's
   * libvirt driver without post-copy), and the destination runs it. The action
   * `live_migration_force_complete` and its compute event are recorded as the request is handed
   * over (Nova's compute manager only queues it for the copy's monitor).
   */
  async forceComplete(ctx: AuthContext, serverId: string, migrationId: number, requestId: string): Promise<void> {
    const s = await this.#d.actions.get(ctx, serverId)
    authorize(ctx, 'os_compute_api:servers:migrations:force_complete', 'admin')
    if (s.locked && !ctx.isAdmin) throw new InstanceIsLocked(s.id)
    if (s.vm_state !== 'active' || s.task_state !== 'migrating') {
      throw new InstanceInvalidState(
        s.id,
        'force_complete',
        s.vm_state !== 'active' ? 'vm_state' : 'task_state',
        s.vm_state !== 'active' ? s.vm_state : s.task_state,
      )
    }
    await this.#request(ctx, s, { migrationId, allowed: ['running'], requested: 'force-complete', requestId })
  }

  /**
   * DELETE (Nova's live_migrate_abort): a copy under way (`running`) is cancelled by the agent
   * copying the guest, which runs on its source; from 2.65 a migration not yet copying (`queued`,
   * `preparing`) ends at its next step. The migration ends `cancelled`. Action
   * `live_migration_cancel`, its event recorded as the request is handed over.
   */
  async abort(ctx: AuthContext, serverId: string, migrationId: number, inQueue: boolean, requestId: string): Promise<void> {
    const s = await this.#d.actions.get(ctx, serverId)
    authorize(ctx, 'os_compute_api:servers:migrations:delete', 'admin')
    if (s.locked && !ctx.isAdmin) throw new InstanceIsLocked(s.id)
    if (s.task_state !== 'migrating') throw new InstanceInvalidState(s.id, 'abort live migration', 'task_state', s.task_state)
    const allowed = inQueue ? ['running', 'queued', 'preparing'] : ['running']
    await this.#request(ctx, s, { migrationId, allowed, requested: 'abort', requestId })
  }

  /** Record an admin's request on a live migration in one of `allowed`, with its action and event; Nova's messages. */
  async #request(
    ctx: AuthContext,
    s: Server,
    r: { migrationId: number; allowed: string[]; requested: LiveMigrationRequest; requestId: string },
  ): Promise<void> {
    const { migrationId, allowed, requested, requestId } = r
    const { method, action, event, notFound } = LIVE_MIGRATION_REQUESTS[requested]
    const invalid = (status: string) =>
      new BadRequest(
        `Migration ${migrationId} state of instance ${s.id} is ${status}. Cannot ${method} while the migration is in this state.`,
      )
    const m = await this.#d.migrations.get(migrationId)
    if (!m || m.server_id !== s.id) throw new notFound(`Migration ${migrationId} not found for instance ${s.id}`)
    if (!allowed.includes(m.status)) throw invalid(m.status)
    await this.#d.repo.transaction(async (trx) => {
      // An abort asked before stays asked: a force-complete does not undo it.
      const to = requested === 'abort' || m.requested === null ? { requested } : {}
      if (!(await this.#d.migrations.cas(m.id, allowed, to, trx))) {
        throw invalid((await this.#d.migrations.get(m.id, trx))?.status ?? m.status)
      }
      await this.#d.actionsRepo.record(
        { server_id: s.id, action, request_id: requestId, user_id: ctx.userId, project_id: s.project_id },
        trx,
      )
      await this.#d.actionsRepo.recordEvent(s.id, requestId, event, s.host, trx)
    })
  }

  async #hostExists(name: string): Promise<boolean> {
    return (await this.#d.hosts.list()).some((h) => h.name === name)
  }

  /**
   * Nova's _check_quota_for_upsize: only what grows (compute_utils.upsize_quota_delta), against
   * the user's limits within the project (the project's where the user has none of their own)
   * and the project's, with TooManyInstances' message: every resource over, in one line.
   */
  async #checkQuota(s: Server, current: FlavorRow | undefined, next: FlavorRow): Promise<void> {
    const deltas: Partial<Record<'cores' | 'ram', number>> = {}
    if (next.vcpus - (current?.vcpus ?? 0) > 0) deltas.cores = next.vcpus - (current?.vcpus ?? 0)
    if (next.ram - (current?.ram ?? 0) > 0) deltas.ram = next.ram - (current?.ram ?? 0)
    if (deltas.cores === undefined && deltas.ram === undefined) return
    for (const userId of [s.user_id, undefined]) {
      const [q, used] = await Promise.all([
        this.#d.quotas.limits(s.project_id, userId),
        this.#d.repo.usage(s.project_id, undefined, userId),
      ])
      const overs = (['cores', 'ram'] as const).filter((r) => deltas[r] !== undefined && q[r] >= 0 && used[r] + deltas[r]! > q[r])
      if (!overs.length) continue
      const join = (f: (r: (typeof overs)[number]) => number) => overs.map(f).join(', ')
      const names = overs.join(', ')
      throw new Forbidden(
        `Quota exceeded for ${names}: Requested ${join((r) => deltas[r]!)}, but already used ${join((r) => used[r])} of ${join((r) => q[r])} ${names}`,
      )
    }
  }

  /** Resize and cold migration: the destination claimed, the migration recorded, prep_resize on the destination. */
  async #move(
    ctx: AuthContext,
    s: Server,
    rule: ActionRule<'server.prep_resize'>,
    type: MigrationType,
    flavor: FlavorRow,
    requestId: string,
    sameHostAllowed: boolean,
    requestedHost?: string,
  ): Promise<void> {
    const demand = { vcpus: flavor.vcpus, ramMb: flavor.ram, diskGb: flavor.disk }
    const candidates = (await this.#d.scheduler.candidates(demand)).filter(
      (c) => (sameHostAllowed || c.name !== s.host) && (!requestedHost || c.name === requestedHost),
    )
    // The first task goes to the destination (Nova's prep_resize); with none, to the source, whose
    // step fails the move as Nova's conductor does ("No valid host was found").
    let dest: string | null = null
    const source = s.host!
    await this.#d.repo.transaction(async (trx) => {
      dest = await this.#d.scheduler.claim(trx, fresh(candidates), demand)
    })
    const to: string | null = dest
    const current = await this.#flavorOf(s)
    await this.#d.actions.begin(ctx, { ...s, host: to ?? source }, rule, { migrationId: 0 }, requestId, {}, async (trx) => {
      // Claimed again under the host row's lock, in this transaction: the last room is never given
      // twice. (Only `trx` in here: SQLite's one connection is the transaction's until it ends.)
      const claimed = to
        ? await this.#d.scheduler.claim(
            trx,
            candidates.filter((c) => c.name === to),
            demand,
          )
        : null
      const m = await this.#insert(
        ctx,
        s,
        type,
        'pre-migrating',
        source,
        claimed,
        current,
        flavor,
        claimed ? { host: claimed } : {},
        requestId,
        trx,
      )
      return { migrationId: m.id }
    })
  }

  async #flavorOf(s: Server): Promise<FlavorRow> {
    const f = await this.#d.flavors.getIncludingDeleted(s.flavor_id)
    if (!f) throw new FlavorNotFound(s.flavor_id)
    return f
  }

  async #insert(
    ctx: AuthContext,
    s: Server,
    type: MigrationType,
    status: string,
    source: string | null,
    dest: string | null,
    from: FlavorRow,
    to: FlavorRow,
    alloc: { host?: string },
    requestId: string,
    trx: Tx,
  ): Promise<Migration> {
    return this.#d.migrations.insert(
      {
        server_id: s.id,
        project_id: s.project_id,
        user_id: ctx.userId,
        migration_type: type,
        status,
        source_compute: source,
        dest_compute: dest,
        old_flavor_id: from.id,
        new_flavor_id: to.id,
        old_vm_state: s.vm_state,
        alloc_host: alloc.host ?? null,
        alloc_flavor_id: alloc.host ? to.id : null,
        request_id: requestId,
      },
      trx,
    )
  }

  async #casMigration(m: Migration, from: string[], to: string, s: Server, action: string, trx: Tx): Promise<undefined> {
    if (!(await this.#d.migrations.cas(m.id, from, { status: to }, trx))) {
      // Someone else confirmed or reverted it first.
      throw new InstanceInvalidState(s.id, action, 'vm_state', s.vm_state) as Conflict
    }
    return undefined
  }
}
