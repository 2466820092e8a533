// The agents' side of moves (resize, cold and live migration, evacuation), in Nova's structure:
// each step is a task on the host that must do it (tasks are per host), and each step's last
// transaction records its outcome (server by compare-and-set, migration status, the instance
// action event, a fault) and enqueues the next step for the other host.
//
//   resize / migrate:  prep_resize (dest) → resize_instance (source) → finish_resize (dest) → VERIFY_RESIZE
//   confirmResize:     confirm_resize (source: drop the old VM and disk)
//   revertResize:      revert_resize (dest: drop the copy) → finish_revert_resize (source: boot the old disk)
//   os-migrateLive:    check_live_migration_source (source) → pre_live_migration (dest: ready to receive)
//                      → live_migration (source: the copy) → post_live_migration (dest: the guest runs there)
//                      → confirm_resize (source cleanup); a failed copy: rollback_live_migration_at_destination
//   evacuate:          evacuate (dest: a rebuild from the image; the source host is down)
//
// A failure puts the server back on its own disk as it was (the source's VM, old flavor, old
// power state), with the fault recorded and the migration in `error`; ERROR only where Nova ends
// there and nothing is left to go back to (a failed revert's last step, a failed evacuation).
import type { Logger } from 'pino'
import {
  LiveMigrationCancelled,
  type LiveMigrationProgress,
  type MigratedDisk,
  type ServerSpec,
  type VirtDriver,
} from '../drivers/driver.ts'
import type { Sealer } from '../secrets.ts'
import type { InstanceActionsRepo } from '../store/instance-actions-repo.ts'
import type { MigrationsRepo } from '../store/migrations-repo.ts'
import type { MigrationRow, Tx } from '../store/schema.ts'
import type { ServersRepo } from '../store/servers-repo.ts'
import type { TaskHandlers } from '../tasks/agent.ts'
import type { NewTask, Task } from '../tasks/queue.ts'
import type { FlavorService } from './flavor-service.ts'
import type { Server } from './server.ts'
import type { MoveTaskKind, SealedSecrets, ServerTaskPayloads, ServerTaskQueue } from './server-tasks.ts'
import { PowerState, type TaskState, type VmState } from './states.ts'

export interface MoveWorkerDeps {
  repo: ServersRepo
  actions: InstanceActionsRepo
  migrations: MigrationsRepo
  queue: ServerTaskQueue
  driver: VirtDriver
  flavors: FlavorService
  imageName: (id: string | null) => Promise<string | null>
  sealer: Sealer
  host: string
  /** This host's address for the moves it receives (Nova's dest_host: live_migration_inbound_addr); null: none of its own. */
  address?: string | null
  logger: Logger
  /** The server's volumes are served from `host` now (the driver moved their data with the server). */
  moveVolumes?: (serverId: string, host: string, trx: Tx) => Promise<void>
}

type P = ServerTaskPayloads
type Next = NewTask<P, MoveTaskKind>

/** What a step leaves: the server (none: untouched), the migration, and the step after it. */
interface Outcome {
  server?: Partial<Server>
  migration: Partial<MigrationRow>
  next?: Next
  /** A fault to record although the step itself succeeded (a rollback's cause). */
  fault?: string
  /** The server's VM runs on this host now: where its SSH is reached is recorded (drivers that forward it). */
  access?: true
  /** Its attached volumes' data is on this host now (recorded with the server's host, in one transaction). */
  volumesTo?: string
}

interface MoveStep<K extends MoveTaskKind> {
  event: string | ((m: MigrationRow) => string)
  taskStates: TaskState[]
  statuses: string[]
  work: (s: Server, m: MigrationRow, p: P[K]) => Promise<Outcome>
  onFailure: (s: Server, m: MigrationRow, p: P[K], err: Error) => Promise<Outcome>
}

/** A live migration that failed: the server runs on its source, the destination's room is freed. */
const LIVE_FAILED: Partial<MigrationRow> = { status: 'error', alloc_host: null, alloc_flavor_id: null }
/** How often a live migration's progress is saved while it copies. */
const PROGRESS_SAVE_MS = 2000
/** The same, aborted by an admin (Nova's `cancelled`). */
const LIVE_CANCELLED: Partial<MigrationRow> = { status: 'cancelled', alloc_host: null, alloc_flavor_id: null }
/** An abort asked before the copy began (2.65: queued, preparing) ends the move at its next step, the guest untouched. */
const abortedBeforeCopy = (m: MigrationRow): Outcome | null =>
  m.requested === 'abort' ? { server: { task_state: null }, migration: LIVE_CANCELLED } : null

const NO_VALID_HOST = (m: MigrationRow) =>
  `No valid host was found. No valid host found for ${m.migration_type === 'resize' ? 'resize' : 'cold migrate'}`

export class MoveWorker {
  readonly #d: MoveWorkerDeps

  constructor(deps: MoveWorkerDeps) {
    this.#d = deps
  }

  handlers(): Pick<TaskHandlers<P>, MoveTaskKind> {
    const d = this.#d
    const oldPowerOn = (m: MigrationRow) => m.old_vm_state !== 'stopped'
    const backToSource = (m: MigrationRow): Partial<Server> => ({ vm_state: m.old_vm_state as VmState, task_state: null })
    // A failure on the source before its VM left: boot it again as it was; ERROR only if even that fails.
    const restoreSource = async (s: Server, m: MigrationRow): Promise<Partial<Server>> => {
      try {
        await d.driver.finishRevertMigration(s.id, oldPowerOn(m))
        return { ...backToSource(m), power_state: (await d.driver.getInfo(s.id)).powerState }
      } catch (err) {
        d.logger.error({ server: s.id, err: (err as Error).message }, 'could not restore the server after a failed move')
        return { vm_state: 'error', task_state: null }
      }
    }
    const task = <K extends MoveTaskKind>(kind: K, host: string, payload: P[K], requestId: string): Next =>
      ({ kind, subjectId: '', host, payload, requestId }) as Next

    return {
      'server.prep_resize': (t) =>
        this.#run(t, {
          // Without a destination the scheduler found none: Nova's conductor fails the move.
          event: (m) => (m.dest_compute ? 'compute_prep_resize' : 'conductor_migrate_server'),
          taskStates: ['resize_prep'],
          statuses: ['pre-migrating'],
          work: async (_s, m) => {
            if (!m.dest_compute || !m.source_compute) throw new Error(NO_VALID_HOST(m))
            return { migration: {}, next: task('server.resize_instance', m.source_compute, { migrationId: m.id }, t.request_id) }
          },
          onFailure: async (_s, m) => ({
            server: backToSource(m),
            migration: { status: 'error', alloc_host: null, alloc_flavor_id: null },
          }),
        }),
      'server.resize_instance': (t) =>
        this.#run(t, {
          event: 'compute_resize_instance',
          taskStates: ['resize_prep', 'resize_migrating'],
          statuses: ['pre-migrating', 'migrating'],
          work: async (s, m) => {
            await this.#advance(s, m, 'resize_migrating', 'migrating')
            const disk = await d.driver.migrateDiskAndPowerOff(s.id, await this.#spec(s, m.new_flavor_id), {
              sameHost: m.source_compute === m.dest_compute,
            })
            return {
              server: { task_state: 'resize_migrated', power_state: PowerState.SHUTDOWN },
              migration: { status: 'post-migrating' },
              next: task('server.finish_resize', m.dest_compute!, { migrationId: m.id, disk }, t.request_id),
            }
          },
          onFailure: async (s, m) => ({
            server: await restoreSource(s, m),
            migration: { status: 'error', alloc_host: null, alloc_flavor_id: null },
          }),
        }),
      'server.finish_resize': (t) =>
        this.#run(t, {
          event: 'compute_finish_resize',
          taskStates: ['resize_migrated', 'resize_finish'],
          statuses: ['post-migrating'],
          work: async (s, m, p) => {
            await this.#advance(s, m, 'resize_finish')
            await d.driver.finishMigration(await this.#spec(s, m.new_flavor_id), p.disk, oldPowerOn(m))
            const { powerState } = await d.driver.getInfo(s.id)
            return {
              access: true,
              volumesTo: m.dest_compute!,
              server: { vm_state: 'resized', task_state: null, host: m.dest_compute, flavor_id: m.new_flavor_id, power_state: powerState },
              // From now on the source's old disk holds the old flavor's room there, until confirm or revert.
              migration: { status: 'finished', alloc_host: m.source_compute, alloc_flavor_id: m.old_flavor_id },
            }
          },
          // Nothing is lost: the source still holds the server's disk. Drop the copy, boot the source again.
          onFailure: async (s, m, _p, err) => {
            await d.driver.dropMigrationTarget(s.id).catch(() => {})
            return {
              server: { task_state: 'resize_finish' },
              migration: {},
              next: task('server.finish_revert_resize', m.source_compute!, { migrationId: m.id, rollback: err.message }, t.request_id),
            }
          },
        }),
      'server.confirm_resize': (t) =>
        this.#run(t, {
          event: (m) => (m.migration_type === 'live-migration' ? 'compute_live_migration_cleanup' : 'compute_confirm_resize'),
          taskStates: [null, 'migrating'],
          statuses: ['confirming', 'running'],
          work: async (s, m) => {
            await d.driver.confirmMigration(s.id)
            // A live migration ends here, the source cleaned up (Nova's post_live_migration).
            if (m.migration_type === 'live-migration') {
              return { server: { task_state: null }, migration: { status: 'completed', alloc_host: null, alloc_flavor_id: null } }
            }
            const vm = s.power_state === PowerState.SHUTDOWN ? 'stopped' : 'active'
            return {
              server: { vm_state: vm, task_state: null },
              migration: { status: 'confirmed', alloc_host: null, alloc_flavor_id: null },
            }
          },
          // The server stays in VERIFY_RESIZE: the user may confirm again (or revert). A live
          // migration's guest runs on the destination already: it is done, the source's leftovers
          // go with the next orphan sweep.
          onFailure: async (_s, m) =>
            m.migration_type === 'live-migration'
              ? { server: { task_state: null }, migration: { status: 'completed', alloc_host: null, alloc_flavor_id: null } }
              : { server: {}, migration: { status: 'finished' } },
        }),
      'server.revert_resize': (t) =>
        this.#run(t, {
          event: 'compute_revert_resize',
          taskStates: ['resize_reverting'],
          statuses: ['reverting'],
          work: async (s, m) => {
            await d.driver.dropMigrationTarget(s.id)
            return { migration: {}, next: task('server.finish_revert_resize', m.source_compute!, { migrationId: m.id }, t.request_id) }
          },
          // The copy still runs: back in VERIFY_RESIZE, to confirm or revert again.
          onFailure: async () => ({ server: { vm_state: 'resized', task_state: null }, migration: { status: 'finished' } }),
        }),
      'server.finish_revert_resize': (t) =>
        this.#run(t, {
          event: (m) => (m.status === 'reverting' ? 'compute_finish_revert_resize' : 'compute_rollback_migration'),
          taskStates: ['resize_reverting', 'resize_finish', 'migrating'],
          statuses: ['reverting', 'post-migrating', 'running'],
          work: async (s, m, p) => {
            await d.driver.finishRevertMigration(s.id, m.migration_type === 'live-migration' || oldPowerOn(m))
            const { powerState } = await d.driver.getInfo(s.id)
            const vm = m.migration_type === 'live-migration' ? s.vm_state : (m.old_vm_state as VmState)
            return {
              access: true,
              volumesTo: m.source_compute!,
              server: { vm_state: vm, task_state: null, host: m.source_compute, flavor_id: m.old_flavor_id, power_state: powerState },
              migration: { status: p.rollback === undefined ? 'reverted' : 'error', alloc_host: null, alloc_flavor_id: null },
            }
          },
          // Nova's finish_revert_resize errors the instance out: the copy is gone, the source would not boot.
          onFailure: async () => ({
            server: { vm_state: 'error', task_state: null },
            migration: { status: 'error', alloc_host: null, alloc_flavor_id: null },
          }),
        }),
      'server.check_live_migration_source': (t) =>
        this.#run(t, {
          // Without a destination the scheduler found none: Nova's conductor fails the move.
          event: (m) => (m.dest_compute ? 'compute_check_can_live_migrate_source' : 'conductor_live_migrate_instance'),
          taskStates: ['migrating'],
          statuses: ['accepted', 'queued', 'preparing'],
          work: async (s, m) => {
            if (!m.dest_compute) throw new Error('No valid host was found. ')
            const aborted = abortedBeforeCopy(m)
            if (aborted) return aborted
            const source = await d.driver.checkLiveMigrationSource(s.id)
            return {
              migration: { status: 'preparing' },
              next: task('server.pre_live_migration', m.dest_compute, { migrationId: m.id, source }, t.request_id),
            }
          },
          // The guest never stopped: it runs on as before, on its host.
          onFailure: async () => ({ server: { task_state: null }, migration: LIVE_FAILED }),
        }),
      'server.pre_live_migration': (t) =>
        this.#run(t, {
          event: 'compute_pre_live_migration',
          taskStates: ['migrating'],
          statuses: ['preparing'],
          work: async (s, m, p) => {
            const aborted = abortedBeforeCopy(m)
            if (aborted) return aborted
            // The destination's config drive holds what the source's does (its keys and user data).
            const boot = await d.repo.bootData(s.id)
            const spec: ServerSpec = {
              ...(await this.#spec(s, s.flavor_id)),
              authorizedKeys: boot?.key_data ? [boot.key_data] : [],
              userData: boot?.user_data ? Buffer.from(boot.user_data, 'base64') : undefined,
            }
            const target = await d.driver.preLiveMigration(spec, p.source)
            return { migration: {}, next: task('server.live_migration', m.source_compute!, { migrationId: m.id, target }, t.request_id) }
          },
          // Nothing left the source: what the destination made goes, the guest runs on where it was.
          onFailure: async (s) => {
            await d.driver.dropMigrationTarget(s.id).catch(() => {})
            return { server: { task_state: null }, migration: LIVE_FAILED }
          },
        }),
      'server.live_migration': (t) =>
        this.#run(t, {
          event: 'compute_live_migration',
          taskStates: ['migrating'],
          statuses: ['preparing', 'running'],
          work: async (s, m, p) => {
            const cancelled = (): Outcome => ({
              migration: {},
              next: task(
                'server.rollback_live_migration_at_destination',
                m.dest_compute!,
                { migrationId: m.id, rollback: 'Live migration cancelled', cancelled: true },
                t.request_id,
              ),
            })
            // Aborted while the destination prepared: nothing was copied; the destination drops what it made.
            if (m.requested === 'abort') return cancelled()
            await d.migrations.update(m.id, { status: 'running' })
            try {
              // The copy polls what an admin asks of it meanwhile (abort, force-complete), and says
              // how far it is: saved every few seconds (Nova's libvirt monitor saves its stats too).
              let saved = 0
              const control = {
                requested: async () => (await d.migrations.get(m.id))?.requested ?? null,
                progress: (stats: LiveMigrationProgress) => {
                  if (Date.now() - saved < PROGRESS_SAVE_MS) return
                  saved = Date.now()
                  d.migrations.cas(m.id, ['running'], { progress: JSON.stringify(stats) }).catch(() => {})
                },
              }
              const disk = await d.driver.liveMigrate(s.id, p.target, control)
              return { migration: {}, next: task('server.post_live_migration', m.dest_compute!, { migrationId: m.id, disk }, t.request_id) }
            } catch (err) {
              // Nova's libvirt driver: a cancelled job is rolled back with the migration `cancelled`, no fault.
              if (err instanceof LiveMigrationCancelled) return cancelled()
              throw err
            }
          },
          // The driver left the guest running here; the destination drops what it prepared, then the move ends.
          onFailure: async (_s, m, _p, err) => ({
            server: {},
            migration: {},
            next: task(
              'server.rollback_live_migration_at_destination',
              m.dest_compute!,
              { migrationId: m.id, rollback: err.message },
              t.request_id,
            ),
          }),
        }),
      'server.rollback_live_migration_at_destination': (t) =>
        this.#run(t, {
          event: 'compute_rollback_live_migration_at_destination',
          taskStates: ['migrating'],
          statuses: ['preparing', 'running'],
          work: async (s, _m, p) => {
            await d.driver.dropMigrationTarget(s.id)
            return { server: { task_state: null }, migration: p.cancelled ? LIVE_CANCELLED : LIVE_FAILED }
          },
          // The guest runs on its source all the same: the move ends; what the destination kept is logged.
          onFailure: async (s, _m, p, err) => {
            d.logger.error({ server: s.id, err: err.message }, 'the destination of a failed live migration could not drop its copy')
            return { server: { task_state: null }, migration: p.cancelled ? LIVE_CANCELLED : LIVE_FAILED }
          },
        }),
      'server.post_live_migration': (t) =>
        this.#run(t, {
          event: 'compute_post_live_migration_at_destination',
          taskStates: ['migrating'],
          statuses: ['running'],
          work: async (s, m, p) => {
            await d.driver.finishMigration(await this.#spec(s, s.flavor_id), p.disk, true)
            const { powerState } = await d.driver.getInfo(s.id)
            // The server is on the destination now; the source cleans up and ends the migration.
            return {
              access: true,
              volumesTo: m.dest_compute!,
              server: { host: m.dest_compute, power_state: powerState },
              migration: {},
              next: task('server.confirm_resize', m.source_compute!, { migrationId: m.id }, t.request_id),
            }
          },
          onFailure: async (s, m, _p, err) => {
            await d.driver.dropMigrationTarget(s.id).catch(() => {})
            return {
              server: {},
              migration: {},
              next: task('server.finish_revert_resize', m.source_compute!, { migrationId: m.id, rollback: err.message }, t.request_id),
            }
          },
        }),
      'server.evacuate': (t) =>
        this.#run(t, {
          event: 'compute_rebuild_instance',
          taskStates: ['rebuilding', 'rebuild_spawning'],
          statuses: ['accepted', 'pre-migrating'],
          work: async (s, m, p) => {
            await this.#advance(s, m, 'rebuild_spawning', 'pre-migrating')
            const boot = await d.repo.bootData(s.id)
            const secret = d.sealer.open<SealedSecrets>(p.sealed)
            await d.driver.spawn({
              ...(await this.#spec(s, s.flavor_id)),
              adminPass: secret.adminPass,
              authorizedKeys: boot?.key_data ? [boot.key_data] : [],
              userData: boot?.user_data ? Buffer.from(boot.user_data, 'base64') : undefined,
            })
            // A stopped server stays stopped (Nova's evacuate keeps the vm_state it had).
            if (m.old_vm_state === 'stopped') await d.driver.powerOff(s.id, { clean: false, timeoutMs: 0 })
            const { powerState } = await d.driver.getInfo(s.id)
            const vm: VmState = m.old_vm_state === 'stopped' ? 'stopped' : 'active'
            return {
              access: true,
              server: { vm_state: vm, task_state: null, power_state: powerState, launched_at: d.repo.now() },
              migration: { status: 'done' },
            }
          },
          onFailure: async () => ({ server: { vm_state: 'error', task_state: null }, migration: { status: 'failed' } }),
        }),
    }
  }

  /** The next task and migration status of a step, set before the hypervisor is touched (a re-run finds them set). */
  async #advance(s: Server, m: MigrationRow, taskState: Exclude<TaskState, null>, status?: string): Promise<void> {
    if (s.task_state !== taskState && !(await this.#d.repo.cas(s.id, { taskStates: [s.task_state] }, { task_state: taskState })))
      throw new Error(`server ${s.id} changed while its move ran`)
    s.task_state = taskState
    if (status && m.status !== status) await this.#d.migrations.update(m.id, { status })
  }

  async #spec(s: Server, flavorId: string): Promise<ServerSpec> {
    const flavor = await this.#d.flavors.getIncludingDeleted(flavorId)
    return {
      id: s.id,
      name: s.name,
      vcpus: flavor?.vcpus ?? 1,
      ramMb: flavor?.ram ?? 512,
      diskGb: flavor?.disk ?? 1,
      imageId: s.image_id ?? '',
      imageName: await this.#d.imageName(s.image_id),
    }
  }

  async #run<K extends MoveTaskKind>(t: Task<P, K>, step: MoveStep<K>): Promise<void> {
    const { repo, actions, migrations, queue, logger, host } = this.#d
    if (t.attempts > 1) {
      await actions.finishAbandonedEvents(
        t.subject_id,
        t.request_id,
        `The agent running this task stopped before it finished; the task was taken over and run again by the agent of host ${host} (attempt ${t.attempts}).`,
      )
    }
    const p = t.payload
    const server = await repo.get(t.subject_id)
    const m = await migrations.get(p.migrationId)
    if (!server || !m || !step.taskStates.includes(server.task_state) || !step.statuses.includes(m.status)) {
      logger.info({ server: t.subject_id, kind: t.kind, task_state: server?.task_state, migration: m?.status }, 'stale move task skipped')
      return
    }
    const from = { vmStates: [server.vm_state], taskStates: [server.task_state] }
    const eventId = await actions.startEvent(server.id, t.request_id, typeof step.event === 'string' ? step.event : step.event(m), host)
    let out: Outcome
    let error: Error | undefined
    try {
      out = await step.work(server, m, p)
    } catch (err) {
      error = err as Error
      try {
        out = await step.onFailure(server, m, p, error)
      } catch (err2) {
        logger.error({ server: server.id, err: (err2 as Error).message }, 'recovery of a failed move failed')
        out = { server: { vm_state: 'error', task_state: null }, migration: { status: 'error', alloc_host: null, alloc_flavor_id: null } }
      }
    }
    // The destination took the move on: its address on the migration (Nova's dest_host, set at its claim).
    if (host === m.dest_compute && this.#d.address && m.dest_host === null)
      out = { ...out, migration: { dest_host: this.#d.address, ...out.migration } }
    const next = out.next && { ...out.next, subjectId: server.id }
    const won = await repo.transaction(async (trx) => {
      // The server as this step found it (its own #advance aside): a delete that won meanwhile wins.
      const fromNow = { vmStates: from.vmStates, taskStates: [...new Set([from.taskStates[0]!, server.task_state])] }
      const won = out.server === undefined || (await repo.cas(server.id, fromNow, out.server, trx))
      if (won) {
        if (out.access && this.#d.driver.sshAccess) await repo.recordAccess(server.id, this.#d.driver.sshAccess(server.id), trx)
        if (out.volumesTo) await this.#d.moveVolumes?.(server.id, out.volumesTo, trx)
        await migrations.update(m.id, out.migration, trx)
        const fault = error?.message ?? out.fault
        if (fault) await repo.recordFault(server.id, 500, fault, error?.stack ?? fault, trx)
        if (next) await queue.enqueue(trx, next)
      }
      if (error) await actions.finishEvent(eventId, 'Error', `${error.name}: ${error.message}`, trx, { onlyIfOpen: !won })
      else await actions.finishEvent(eventId, 'Success', undefined, trx, { onlyIfOpen: !won })
      return won
    })
    if (won && next) queue.notify(next.host)
    if (!won) logger.info({ server: server.id, kind: t.kind }, 'server changed while its move ran; outcome not recorded')
    if (error) logger.warn({ server: server.id, kind: t.kind, err: error.message }, 'move step failed; server put back')
  }
}

export type { MigratedDisk }
