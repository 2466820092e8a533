// The agent's side of every server task: drive the hypervisor, then record the outcome with a
// second compare-and-set, the instance-action event and, on failure, the instance fault.
// A failed action puts the server back where it was; only a failed build ends in ERROR.
import { randomUUID } from 'node:crypto'
import type { Logger } from 'pino'
import { VmNotFound, type ServerSpec, type VirtDriver } from '../drivers/driver.ts'
import type { InstanceActionsRepo } from '../store/instance-actions-repo.ts'
import type { RescuesRepo } from '../store/rescues-repo.ts'
import type { ServersRepo } from '../store/servers-repo.ts'
import type { Tx } from '../store/schema.ts'
import type { TaskHandlers } from '../tasks/agent.ts'
import type { Task } from '../tasks/queue.ts'
import type { FlavorService } from './flavor-service.ts'
import type { Sealer } from '../secrets.ts'
import type { Server } from './server.ts'
import type { MoveTaskKind, SealedSecrets, ServerTaskKind, ServerTaskPayloads } from './server-tasks.ts'
import { PowerState, type PowerStateValue, type TaskState } from './states.ts'
import { shelveHandlers, type ShelveWorkerDeps, type WorkerCore } from './worker-shelve.ts'

const TRUSTED_CERTS_UNSUPPORTED = 'Trusted image certificates provided on host that does not support certificate validation.'
/** Nova's BuildAbortException: its message is the server's fault. */
class BuildAborted extends Error {
  constructor(serverId: string, reason: string) {
    super(`Build of instance ${serverId} aborted: ${reason}`)
    this.name = 'BuildAbortException'
  }
}

export interface WorkerDeps {
  repo: ServersRepo
  actions: InstanceActionsRepo
  rescues: RescuesRepo
  driver: VirtDriver
  flavors: FlavorService
  imageName: (id: string | null) => Promise<string | null>
  /** Opens the passwords the API sealed into the task. */
  sealer: Sealer
  host: string
  logger: Logger
  /** Snapshots and shelve (worker-shelve.ts): the image service, the shelve keys, shelved_offload_time. */
  shelve: ShelveWorkerDeps
  /**
   * The volumes a server's create asked for (block device mapping v2): made before its first boot,
   * plugged in after it, let go if the boot fails (volumes/volume-worker.ts).
   */
  bootVolumes?: {
    prepare(serverId: string): Promise<void>
    attach(serverId: string): Promise<void>
    release(serverId: string): Promise<void>
    /** The volume the server boots from (its root disk), if it is volume-backed. */
    root(serverId: string): Promise<{ id: string; imageId: string | null } | null>
  }
}

type ServerTask<K extends ServerTaskKind = ServerTaskKind> = Task<ServerTaskPayloads, K>

export interface Step<K extends ServerTaskKind> {
  /** The instance-action event name (Nova's). */
  event: string
  /** The task state the API set; a server elsewhere means the task is stale (a delete won). */
  taskStates: Exclude<TaskState, null>[]
  work: (server: Server, payload: ServerTaskPayloads[K]) => Promise<Partial<Server>>
  /** What a failure leaves: by default the vm_state is kept and the power state re-read. */
  onFailure?: (server: Server, payload: ServerTaskPayloads[K]) => Promise<Partial<Server>> | Partial<Server>
  /** Writes that commit with a successful outcome, in its transaction (nothing is written if the server moved on). */
  withOutcome?: (server: Server, outcome: Partial<Server>, trx: Tx) => Promise<void>
}

/** A compare-and-set the task needed was lost: the server moved on (deleted, most likely). */
class ServerMovedOn extends Error {
  constructor(serverId: string, taskState: TaskState | undefined) {
    super(`server ${serverId} changed while its task ran (task_state ${taskState === undefined ? 'gone' : (taskState ?? 'None')})`)
  }
}

export class ServerWorker implements WorkerCore {
  readonly #d: WorkerDeps

  constructor(deps: WorkerDeps) {
    this.#d = deps
  }

  /** The handlers the agent runs, by task kind (moves: worker-migrate.ts). */
  handlers(): Omit<TaskHandlers<ServerTaskPayloads>, 'server.console' | MoveTaskKind> {
    const d = this.#d
    const running = () => ({ power_state: PowerState.RUNNING })
    return {
      'server.create': (t) =>
        this.#run(t, {
          event: 'compute__do_build_and_run_instance',
          taskStates: ['scheduling', 'spawning'],
          work: async (s, p) => {
            await this.#advance(s, { vmStates: ['building'], taskStates: ['scheduling'] }, 'spawning')
            try {
              await d.bootVolumes?.prepare(s.id)
              await d.driver.spawn({ ...(await this.#bootSpec(s, p)), bootVolume: (await d.bootVolumes?.root(s.id)) ?? null })
              await d.bootVolumes?.attach(s.id)
            } catch (err) {
              await d.bootVolumes?.release(s.id)
              throw err
            }
            return { vm_state: 'active', power_state: PowerState.RUNNING, launched_at: d.repo.now() }
          },
          onFailure: () => ({ vm_state: 'error', power_state: PowerState.NOSTATE }),
        }),
      'server.stop': (t) =>
        this.#run(t, {
          event: 'compute_stop_instance',
          taskStates: ['powering-off'],
          work: async (s) => {
            await d.driver.powerOff(s.id, { clean: true, timeoutMs: 60_000 })
            return { vm_state: 'stopped', power_state: PowerState.SHUTDOWN }
          },
        }),
      'server.start': (t) =>
        this.#run(t, {
          event: 'compute_start_instance',
          taskStates: ['powering-on'],
          work: async (s) => {
            await d.driver.powerOn(s.id)
            return { vm_state: 'active', ...running() }
          },
        }),
      'server.reboot': (t) =>
        this.#run(t, {
          event: 'compute_reboot_instance',
          taskStates: ['rebooting', 'rebooting_hard'],
          work: async (s, p) => {
            await d.driver.reboot(s.id, p.type)
            return { vm_state: 'active', ...running() }
          },
        }),
      'server.pause': (t) =>
        this.#run(t, {
          event: 'compute_pause_instance',
          taskStates: ['pausing'],
          work: async (s) => {
            await d.driver.pause(s.id)
            return { vm_state: 'paused', power_state: PowerState.PAUSED }
          },
        }),
      'server.unpause': (t) =>
        this.#run(t, {
          event: 'compute_unpause_instance',
          taskStates: ['unpausing'],
          work: async (s) => {
            await d.driver.unpause(s.id)
            return { vm_state: 'active', ...running() }
          },
        }),
      'server.rebuild': (t) =>
        this.#run(t, {
          event: 'compute_rebuild_instance',
          taskStates: ['rebuilding', 'rebuild_spawning'],
          work: async (s, p) => {
            // Nova's _check_trusted_certs: no Skiff driver verifies image signatures (the scheduler
            // finds no host for them at create; a rebuild stays on its host and is aborted there).
            if (s.trusted_certs) throw new BuildAborted(s.id, TRUSTED_CERTS_UNSUPPORTED)
            await this.#advance(s, { taskStates: ['rebuilding'] }, 'rebuild_spawning')
            await d.driver.rebuild(await this.#bootSpec(s, p))
            // A stopped server stays stopped after a rebuild, as in Nova.
            if (p.previousVmState === 'stopped') {
              await d.driver.powerOff(s.id, { clean: false, timeoutMs: 0 })
              return { vm_state: 'stopped', power_state: PowerState.SHUTDOWN, launched_at: d.repo.now() }
            }
            return { vm_state: 'active', ...running(), launched_at: d.repo.now() }
          },
          // Nova's _error_out_instance_on_exception: an aborted rebuild leaves the server in ERROR.
          onFailure: (s) => (s.trusted_certs ? { vm_state: 'error' } : {}),
        }),
      'server.rescue': (t) =>
        this.#run(t, {
          event: 'compute_rescue_instance',
          taskStates: ['rescuing'],
          work: async (s, p) => {
            const imageId = p.rescueImageId
            const secret = this.#open(p)
            await d.driver.rescue(s.id, {
              imageId,
              imageName: await d.imageName(imageId),
              adminPass: secret.adminPass ?? '',
              authorizedKeys: secret.authorizedKeys ?? [],
              stable: p.stable ?? null,
              checkpoint: p.checkpoint ?? false,
            })
            const { powerState } = await d.driver.getInfo(s.id)
            return { vm_state: 'rescued', power_state: powerState, launched_at: d.repo.now() }
          },
          // The auto-unrescue clock runs from the moment the rescue is usable, which the server's state says in the same commit.
          withOutcome: (s, outcome, trx) =>
            d.rescues.markRescued(s.id, t.request_id, outcome.launched_at!, d.driver.hostKeyFingerprint?.(s.id) ?? null, trx),
          // Safe failure: back to the server's own disk in its former power state; ERROR only if even that fails.
          onFailure: async (s, p) => {
            await d.rescues.endRequest(s.id, t.request_id)
            const previous = p.previousPowerState as PowerStateValue
            try {
              await d.driver.restore(s.id, previous)
              return { vm_state: p.previousVmState, power_state: (await d.driver.getInfo(s.id)).powerState }
            } catch (err) {
              d.logger.error({ server: s.id, err: (err as Error).message }, 'could not restore the server after a failed rescue')
              return {
                vm_state: 'error',
                power_state: (await d.driver.getInfo(s.id).catch(() => ({ powerState: PowerState.NOSTATE }))).powerState,
              }
            }
          },
        }),
      'server.unrescue': (t) =>
        this.#run(t, {
          event: 'compute_unrescue_instance',
          taskStates: ['unrescuing'],
          work: async (s, p) => {
            // A discard needs the checkpoint still there (a driver restarted without it, or a
            // discard cut short after it dropped the changes): never claim one that did not happen.
            if (p.discardChanges && !(await d.driver.hasCheckpoint(s.id))) {
              throw new Error("no checkpoint of the server's disk is left to go back to: unrescue without discard_changes")
            }
            await d.driver.unrescue(s.id, { discardChanges: p.discardChanges ?? false })
            return { vm_state: 'active', ...running() }
          },
          // The rescue ends, with its checkpoint's outcome, in the commit that shows the server
          // ACTIVE: never a server still unrescuing whose rescue is already over.
          withOutcome: async (s, _outcome, trx) => {
            await d.rescues.setCheckpoint(s.id, ['held', 'keeping', 'discarding'], t.payload.discardChanges ? 'discarded' : 'kept', trx)
            await d.rescues.endOpen(s.id, trx)
          },
          // Safe failure, the other way: the rescue system boots again (same disk, same password),
          // so the user is back in RESCUE and can retry; ERROR only if even that fails. A
          // checkpoint the unrescue had not yet kept or discarded is held again (a retry may do
          // either); one it had is spent, and the record says which.
          onFailure: async (s, p) => {
            const held = await d.driver.hasCheckpoint(s.id).catch(() => false)
            await d.rescues.setCheckpoint(s.id, ['keeping', 'discarding'], held ? 'held' : p.discardChanges ? 'discarded' : 'kept')
            try {
              await d.driver.restoreRescue(s.id)
              // An auto-exit that failed would be tried again at the next sweep, every second, for as
              // long as the fault lasts: the next try comes one rescue period later.
              await d.rescues.postponeExpired(s.id)
              return { vm_state: 'rescued', power_state: (await d.driver.getInfo(s.id)).powerState }
            } catch (err) {
              d.logger.error(
                { server: s.id, err: (err as Error).message },
                'could not boot the rescue system again after a failed unrescue',
              )
              // Nothing runs for this rescue any more: it ends (and its auto-exit with it).
              await d.rescues.endOpen(s.id)
              return {
                vm_state: 'error',
                power_state: (await d.driver.getInfo(s.id).catch(() => ({ powerState: PowerState.NOSTATE }))).powerState,
              }
            }
          },
        }),
      'server.delete': (t) => this.#delete(t),
      // suspend, resume, createImage, createBackup, shelve, shelveOffload, unshelve
      ...shelveHandlers(this, d),
    }
  }

  /** The one run path, for the handlers of worker-shelve.ts. */
  runStep<K extends ServerTaskKind>(task: ServerTask<K>, step: Step<K>): Promise<void> {
    return this.#run(task, step)
  }

  advanceTask(s: Server, from: { vmStates?: Server['vm_state'][]; taskStates: TaskState[] }, to: Exclude<TaskState, null>): Promise<void> {
    return this.#advance(s, from, to)
  }

  /** The server's spec, booting `imageId` when given (unshelve: the shelve image). */
  async specOf(s: Server, imageId?: string): Promise<ServerSpec> {
    const spec = await this.#spec(s)
    return imageId === undefined ? spec : { ...spec, imageId, imageName: await this.#d.imageName(imageId) }
  }

  /** After a restart: tell the driver which servers live on this host. */
  async adoptServers(): Promise<void> {
    const rows = await this.#d.repo.onHost(this.#d.host, [
      'active',
      'stopped',
      'paused',
      'rescued',
      'error',
      'suspended',
      'resized',
      'shelved',
    ])
    const servers = []
    for (const s of rows) {
      if (!s.launched_at) continue
      servers.push({
        spec: await this.#spec(s),
        powerState: s.power_state as (typeof PowerState)[keyof typeof PowerState],
        rescued: s.vm_state === 'rescued',
      })
    }
    await this.#d.driver.adopt(servers)
  }

  #open(payload: { sealed: string }): SealedSecrets {
    return this.#d.sealer.open<SealedSecrets>(payload.sealed)
  }

  /**
   * The next task state of a task that has two (scheduling → spawning, rebuilding →
   * rebuild_spawning), by compare-and-set. A re-run finds it set already; a server found
   * anywhere else moved on, and the task stops before it touches the hypervisor.
   */
  async #advance(
    s: Server,
    from: { vmStates?: Server['vm_state'][]; taskStates: TaskState[] },
    to: Exclude<TaskState, null>,
  ): Promise<void> {
    if (await this.#d.repo.cas(s.id, from, { task_state: to })) return
    const fresh = await this.#d.repo.get(s.id)
    if (fresh?.task_state === to) return
    throw new ServerMovedOn(s.id, fresh?.task_state)
  }

  async #spec(s: Server): Promise<ServerSpec> {
    const flavor = await this.#d.flavors.getIncludingDeleted(s.flavor_id)
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

  /** The spec of a first boot (create, rebuild): with the key pair's key and the user data. */
  async #bootSpec(s: Server, payload: { sealed: string }): Promise<ServerSpec> {
    const boot = await this.#d.repo.bootData(s.id)
    return {
      ...(await this.#spec(s)),
      adminPass: this.#open(payload).adminPass,
      authorizedKeys: boot?.key_data ? [boot.key_data] : [],
      userData: boot?.user_data ? Buffer.from(boot.user_data, 'base64') : undefined,
    }
  }

  /**
   * A task run again (attempt 2 or more) was taken over from an agent that stopped in the middle
   * of it (killed, crashed, or its lease ran out): the events that attempt started are finished
   * now, with Error and why, before this attempt starts its own. Returns how many there were.
   */
  async #closeAbandoned(task: ServerTask): Promise<number> {
    if (task.attempts <= 1) return 0
    const reason =
      `The agent running this task stopped before it finished (killed, crashed or lost its lease); ` +
      `the task was taken over and run again by the agent of host ${this.#d.host} (attempt ${task.attempts}).`
    const n = await this.#d.actions.finishAbandonedEvents(task.subject_id, task.request_id, reason)
    if (n)
      this.#d.logger.warn(
        { server: task.subject_id, kind: task.kind, attempt: task.attempts, events: n },
        "task taken over: the abandoned attempt's events finished with Error",
      )
    return n
  }

  async #run<K extends ServerTaskKind>(task: ServerTask<K>, step: Step<K>): Promise<void> {
    const { repo, actions, logger } = this.#d
    const payload = task.payload
    const abandoned = await this.#closeAbandoned(task)
    const server = await repo.get(task.subject_id)
    if (!server || !server.task_state || !step.taskStates.includes(server.task_state)) {
      logger.info({ server: task.subject_id, kind: task.kind, task_state: server?.task_state }, 'stale task skipped')
      // The abandoned attempt was this action's only one: it ends failed, not silent.
      if (abandoned) await actions.markFailed(task.subject_id, task.request_id)
      return
    }
    const eventId = await actions.startEvent(server.id, task.request_id, step.event, this.#d.host)
    let outcome: Partial<Server>
    let error: Error | undefined
    try {
      outcome = await step.work(server, payload)
    } catch (err) {
      error = err as Error
      if (err instanceof ServerMovedOn) {
        // Nothing was done on the hypervisor: the event ends failed, the server is left to whoever moved it.
        logger.info({ server: server.id, kind: task.kind, err: err.message }, 'server moved on before its task ran; nothing done')
        await actions.finishEvent(eventId, 'Error', `${err.name}: ${err.message}`, undefined, { onlyIfOpen: true })
        return
      }
      const { powerState } = await this.#d.driver.getInfo(server.id).catch(() => ({ powerState: server.power_state }))
      outcome = { power_state: powerState, ...((await step.onFailure?.(server, payload)) ?? {}) }
    }
    // The outcome, the fault and the event commit with the final compare-and-set: whoever sees the
    // server idle again (in any process) sees how its action ended.
    const done = await repo.transaction(async (trx) => {
      const won = await repo.cas(server.id, { taskStates: step.taskStates }, { ...outcome, task_state: null }, trx)
      // Drivers that forward SSH: the address and the booted system's host key, for every API process.
      if (won && this.#d.driver.sshAccess) await repo.recordAccess(server.id, this.#d.driver.sshAccess(server.id), trx)
      // Lost: the server moved on (deleted, or this attempt's task was taken over and its next
      // attempt recorded the outcome). Its fault would describe a server that is no longer so,
      // and an event the next attempt closed keeps what it says.
      if (won && !error) await step.withOutcome?.(server, outcome, trx)
      if (error) {
        if (won) await repo.recordFault(server.id, 500, error.message, error.stack ?? error.message, trx)
        await actions.finishEvent(eventId, 'Error', `${error.name}: ${error.message}`, trx, { onlyIfOpen: !won })
      } else {
        await actions.finishEvent(eventId, 'Success', undefined, trx, { onlyIfOpen: !won })
      }
      return won
    })
    if (!done) logger.info({ server: server.id }, 'server changed while the task ran (deleted?); outcome not recorded')
    if (error) logger.warn({ server: server.id, kind: task.kind, err: error.message }, 'server task failed; server put back')
  }

  async #delete(task: ServerTask<'server.delete'>): Promise<void> {
    const { repo, actions, driver, logger } = this.#d
    const abandoned = await this.#closeAbandoned(task)
    const server = await repo.get(task.subject_id)
    if (!server || server.task_state !== 'deleting') {
      if (server) logger.info({ server: task.subject_id, kind: task.kind, task_state: server.task_state }, 'stale task skipped')
      if (abandoned) await actions.markFailed(task.subject_id, task.request_id)
      return
    }
    const eventId = await actions.startEvent(server.id, task.request_id, 'compute_terminate_instance', this.#d.host)
    try {
      await driver.destroy(server.id)
    } catch (err) {
      // A VM that is already gone is what we wanted; anything else is recorded and retried by the user.
      if (!(err instanceof VmNotFound)) {
        const error = err as Error
        logger.warn({ server: server.id, err: error.message }, 'destroy failed')
        const won = await repo.transaction(async (trx) => {
          const won = await repo.cas(server.id, { taskStates: ['deleting'] }, { task_state: null, vm_state: 'error' }, trx)
          if (won) await repo.recordFault(server.id, 500, error.message, error.stack ?? '', trx)
          await actions.finishEvent(eventId, 'Error', error.message, trx, { onlyIfOpen: !won })
          return won
        })
        if (!won) logger.info({ server: server.id }, 'server changed while the delete ran (deleted?); its failure not recorded')
        return
      }
    }
    const won = await repo.transaction(async (trx) => {
      const won = await repo.softDelete(server.id, { taskStates: ['deleting'] }, trx)
      // With the deletion, not after it: an agent killed in between would leave the event open,
      // and the re-run, finding the server gone, could not tell that the delete had worked.
      await actions.finishEvent(eventId, 'Success', undefined, trx, { onlyIfOpen: !won })
      return won
    })
    // Lost: deleted meanwhile by the API (its host was found down), which let go of the same rows.
    if (!won) logger.info({ server: server.id }, 'server already deleted when its VM was destroyed')
  }
}

/**
 * A VM died under an idle server (its QEMU exited or was killed): record it as Nova's power-state
 * sync does. An active or paused server is stopped, with a `stop` instance action as Nova's
 * force_stop leaves; a rescued one stays RESCUE, powered off, and unrescue boots its own disk.
 * The fault says what happened. Nothing changes for a server with a task running.
 */
export async function recordVmGone(
  repos: { servers: ServersRepo; actions: InstanceActionsRepo },
  serverId: string,
  detail: { rescued: boolean; reason: string },
): Promise<boolean> {
  const { servers: repo, actions } = repos
  return repo.transaction(async (trx) => {
    const server = await repo.get(serverId, trx)
    if (!server) return false
    const to: Partial<Server> = { power_state: PowerState.SHUTDOWN, ...(detail.rescued ? {} : { vm_state: 'stopped' }) }
    if (!(await repo.cas(serverId, { vmStates: detail.rescued ? ['rescued'] : ['active', 'paused'], taskStates: [null] }, to, trx)))
      return false
    if (!detail.rescued) {
      await actions.record(
        { server_id: serverId, action: 'stop', request_id: `req-${randomUUID()}`, user_id: server.user_id, project_id: server.project_id },
        trx,
      )
    }
    await repo.recordFault(serverId, 500, detail.reason, detail.reason, trx)
    return true
  })
}
