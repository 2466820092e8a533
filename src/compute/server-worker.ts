// The agent's side of every server task: drive the hypervisor, then record the outcome with a
// second compare-and-set, the instance-action event and, on failure, the instance fault.
// A failed action puts the server back where it was; only a failed build ends in ERROR.
import { randomUUID } from 'node:crypto'
import type { Logger } from 'pino'
import { VmNotFound, type ServerSpec, type VirtDriver } from '../drivers/driver.ts'
import type { ServerRow } from '../store/schema.ts'
import type { ServersRepo } from '../store/servers-repo.ts'
import type { TaskHandler } from '../tasks/agent.ts'
import type { Task } from '../tasks/queue.ts'
import type { FlavorService } from './flavor-service.ts'
import type { Sealer } from '../secrets.ts'
import { PowerState, type PowerStateValue, type TaskState, type VmState } from './states.ts'

export interface WorkerDeps {
  repo: ServersRepo
  driver: VirtDriver
  flavors: FlavorService
  imageName: (id: string | null) => Promise<string | null>
  /** Opens the passwords the API sealed into the task. */
  sealer: Sealer
  host: string
  logger: Logger
}

interface Sealed { adminPass?: string; authorizedKeys?: string[] }

interface Step {
  /** The instance-action event name (Nova's). */
  event: string
  /** The task state the API set; a server elsewhere means the task is stale (a delete won). */
  taskStates: Exclude<TaskState, null>[]
  work: (server: ServerRow, payload: Record<string, unknown>) => Promise<Partial<ServerRow>>
  /** What a failure leaves: by default the vm_state is kept and the power state re-read. */
  onFailure?: (server: ServerRow, payload: Record<string, unknown>) => Promise<Partial<ServerRow>> | Partial<ServerRow>
}

export class ServerWorker {
  readonly #d: WorkerDeps

  constructor(deps: WorkerDeps) {
    this.#d = deps
  }

  /** The handlers the agent runs, by task kind. */
  handlers(): Record<string, TaskHandler> {
    const d = this.#d
    const running = () => ({ power_state: PowerState.RUNNING })
    return {
      'server.create': (t) => this.#run(t, {
        event: 'compute__do_build_and_run_instance',
        taskStates: ['scheduling', 'spawning'],
        work: async (s, p) => {
          await d.repo.cas(s.id, { vmStates: ['building'], taskStates: ['scheduling'] }, { task_state: 'spawning' })
          await d.driver.spawn(await this.#bootSpec(s, p))
          return { vm_state: 'active', power_state: PowerState.RUNNING, launched_at: d.repo.now() }
        },
        onFailure: () => ({ vm_state: 'error', power_state: PowerState.NOSTATE }),
      }),
      'server.stop': (t) => this.#run(t, {
        event: 'compute_stop_instance', taskStates: ['powering-off'],
        work: async (s) => { await d.driver.powerOff(s.id, { clean: true, timeoutMs: 60_000 }); return { vm_state: 'stopped', power_state: PowerState.SHUTDOWN } },
      }),
      'server.start': (t) => this.#run(t, {
        event: 'compute_start_instance', taskStates: ['powering-on'],
        work: async (s) => { await d.driver.powerOn(s.id); return { vm_state: 'active', ...running() } },
      }),
      'server.reboot': (t) => this.#run(t, {
        event: 'compute_reboot_instance', taskStates: ['rebooting', 'rebooting_hard'],
        work: async (s, p) => { await d.driver.reboot(s.id, p.type === 'HARD' ? 'HARD' : 'SOFT'); return { vm_state: 'active', ...running() } },
      }),
      'server.pause': (t) => this.#run(t, {
        event: 'compute_pause_instance', taskStates: ['pausing'],
        work: async (s) => { await d.driver.pause(s.id); return { vm_state: 'paused', power_state: PowerState.PAUSED } },
      }),
      'server.unpause': (t) => this.#run(t, {
        event: 'compute_unpause_instance', taskStates: ['unpausing'],
        work: async (s) => { await d.driver.unpause(s.id); return { vm_state: 'active', ...running() } },
      }),
      'server.rebuild': (t) => this.#run(t, {
        event: 'compute_rebuild_instance', taskStates: ['rebuilding', 'rebuild_spawning'],
        work: async (s, p) => {
          await d.repo.cas(s.id, { taskStates: ['rebuilding'] }, { task_state: 'rebuild_spawning' })
          await d.driver.rebuild(await this.#bootSpec(s, p))
          // A stopped server stays stopped after a rebuild, as in Nova.
          if (p.previousVmState === 'stopped') {
            await d.driver.powerOff(s.id, { clean: false, timeoutMs: 0 })
            return { vm_state: 'stopped', power_state: PowerState.SHUTDOWN, launched_at: d.repo.now() }
          }
          return { vm_state: 'active', ...running(), launched_at: d.repo.now() }
        },
      }),
      'server.rescue': (t) => this.#run(t, {
        event: 'compute_rescue_instance', taskStates: ['rescuing'],
        work: async (s, p) => {
          const imageId = String(p.rescueImageId)
          const secret = this.#open(p)
          await d.driver.rescue(s.id, { imageId, imageName: await d.imageName(imageId), adminPass: secret.adminPass ?? '', authorizedKeys: secret.authorizedKeys ?? [] })
          const { powerState } = await d.driver.getInfo(s.id)
          const now = d.repo.now()
          // The auto-unrescue clock runs from the moment the rescue is usable.
          const rescue = await d.repo.db.selectFrom('rescues').select(['id', 'auto_unrescue_seconds']).where('request_id', '=', t.request_id).where('server_id', '=', s.id).executeTakeFirst()
          if (rescue) {
            await d.repo.db.updateTable('rescues').set({
              rescued_at: now, host_key_fingerprint: d.driver.hostKeyFingerprint?.(s.id) ?? null,
              expires_at: rescue.auto_unrescue_seconds === null ? null : new Date(Date.parse(now) + rescue.auto_unrescue_seconds * 1000).toISOString(),
            }).where('id', '=', rescue.id).execute()
          }
          return { vm_state: 'rescued', power_state: powerState, launched_at: now }
        },
        // Safe failure: back to the server's own disk in its former power state; ERROR only if even that fails.
        onFailure: async (s, p) => {
          await d.repo.db.updateTable('rescues').set({ ended_at: d.repo.now() }).where('request_id', '=', t.request_id).where('server_id', '=', s.id).execute()
          const previous = Number(p.previousPowerState ?? s.power_state) as PowerStateValue
          try {
            await d.driver.restore(s.id, previous)
            return { vm_state: String(p.previousVmState ?? s.vm_state), power_state: (await d.driver.getInfo(s.id)).powerState }
          } catch (err) {
            d.logger.error({ server: s.id, err: (err as Error).message }, 'could not restore the server after a failed rescue')
            return { vm_state: 'error', power_state: (await d.driver.getInfo(s.id).catch(() => ({ powerState: PowerState.NOSTATE }))).powerState }
          }
        },
      }),
      'server.unrescue': (t) => this.#run(t, {
        event: 'compute_unrescue_instance', taskStates: ['unrescuing'],
        work: async (s) => {
          await d.driver.unrescue(s.id)
          await d.repo.db.updateTable('rescues').set({ ended_at: d.repo.now() }).where('server_id', '=', s.id).where('ended_at', 'is', null).execute()
          return { vm_state: 'active', ...running() }
        },
        // Safe failure, the other way: the rescue system boots again (same disk, same password),
        // so the user is back in RESCUE and can retry; ERROR only if even that fails.
        onFailure: async (s) => {
          try {
            await d.driver.restoreRescue(s.id)
            await this.#postponeExpiredRescue(s.id)
            return { vm_state: 'rescued', power_state: (await d.driver.getInfo(s.id)).powerState }
          } catch (err) {
            d.logger.error({ server: s.id, err: (err as Error).message }, 'could not boot the rescue system again after a failed unrescue')
            // Nothing runs for this rescue any more: it ends (and its auto-exit with it).
            await d.repo.db.updateTable('rescues').set({ ended_at: d.repo.now() }).where('server_id', '=', s.id).where('ended_at', 'is', null).execute()
            return { vm_state: 'error', power_state: (await d.driver.getInfo(s.id).catch(() => ({ powerState: PowerState.NOSTATE }))).powerState }
          }
        },
      }),
      'server.delete': (t) => this.#delete(t),
    }
  }

  /** After a restart: tell the driver which servers live on this host. */
  async adoptServers(): Promise<void> {
    const rows = await this.#d.repo.db.selectFrom('servers').selectAll().where('host', '=', this.#d.host).where('deleted', '=', 0)
      .where('vm_state', 'in', ['active', 'stopped', 'paused', 'rescued', 'error', 'suspended']).execute()
    const servers = []
    for (const s of rows) {
      if (!s.launched_at) continue
      servers.push({ spec: await this.#spec(s), powerState: s.power_state as (typeof PowerState)[keyof typeof PowerState], rescued: s.vm_state === 'rescued' })
    }
    await this.#d.driver.adopt(servers)
  }

  /**
   * An auto-exit that failed would be tried again at the next sweep, every second, for as long
   * as the fault lasts: the next try comes one rescue period later, as if the rescue had just begun.
   */
  async #postponeExpiredRescue(serverId: string): Promise<void> {
    const { repo } = this.#d
    const now = repo.now()
    const r = await repo.db.selectFrom('rescues').select(['id', 'auto_unrescue_seconds', 'expires_at'])
      .where('server_id', '=', serverId).where('ended_at', 'is', null).where('expires_at', '<=', now).executeTakeFirst()
    if (!r || r.auto_unrescue_seconds === null) return
    await repo.db.updateTable('rescues').set({ expires_at: new Date(Date.parse(now) + r.auto_unrescue_seconds * 1000).toISOString() }).where('id', '=', r.id).execute()
  }

  #open(payload: Record<string, unknown>): Sealed {
    return typeof payload.sealed === 'string' ? this.#d.sealer.open<Sealed>(payload.sealed) : {}
  }

  async #spec(s: ServerRow): Promise<ServerSpec> {
    const flavor = await this.#d.flavors.getIncludingDeleted(s.flavor_id)
    return {
      id: s.id, name: s.name, vcpus: flavor?.vcpus ?? 1, ramMb: flavor?.ram ?? 512, diskGb: flavor?.disk ?? 1,
      imageId: s.image_id ?? '', imageName: await this.#d.imageName(s.image_id),
    }
  }

  /** The spec of a first boot (create, rebuild): with the key pair's key and the user data. */
  async #bootSpec(s: ServerRow, payload: Record<string, unknown>): Promise<ServerSpec> {
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
  async #closeAbandoned(task: Task): Promise<number> {
    if (task.attempts <= 1) return 0
    const reason = `The agent running this task stopped before it finished (killed, crashed or lost its lease); ` +
      `the task was taken over and run again by the agent of host ${this.#d.host} (attempt ${task.attempts}).`
    const n = await this.#d.repo.finishAbandonedEvents(task.subject_id, task.request_id, reason)
    if (n) this.#d.logger.warn({ server: task.subject_id, kind: task.kind, attempt: task.attempts, events: n }, 'task taken over: the abandoned attempt\'s events finished with Error')
    return n
  }

  async #run(task: Task, step: Step): Promise<void> {
    const { repo, logger } = this.#d
    const payload = (task.payload ?? {}) as Record<string, unknown>
    const abandoned = await this.#closeAbandoned(task)
    const server = await repo.get(task.subject_id)
    if (!server || !step.taskStates.includes(server.task_state as Exclude<TaskState, null>)) {
      logger.info({ server: task.subject_id, kind: task.kind, task_state: server?.task_state }, 'stale task skipped')
      // The abandoned attempt was this action's only one: it ends failed, not silent.
      if (abandoned) await repo.markActionFailed(task.subject_id, task.request_id)
      return
    }
    const eventId = await repo.startEvent(server.id, task.request_id, step.event, this.#d.host)
    let outcome: Partial<ServerRow>
    let error: Error | undefined
    try {
      outcome = await step.work(server, payload)
    } catch (err) {
      error = err as Error
      const { powerState } = await this.#d.driver.getInfo(server.id).catch(() => ({ powerState: server.power_state }))
      outcome = { power_state: powerState, ...((await step.onFailure?.(server, payload)) ?? {}) }
    }
    // The outcome, the fault and the event commit with the final compare-and-set: whoever sees the
    // server idle again (in any process) sees how its action ended.
    const done = await repo.db.transaction().execute(async (trx) => {
      const won = await repo.cas(server.id, { taskStates: step.taskStates }, { ...outcome, task_state: null }, trx)
      // Drivers that forward SSH: the address and the booted system's host key, for every API process.
      if (won && this.#d.driver.sshAccess) await repo.recordAccess(server.id, this.#d.driver.sshAccess(server.id), trx)
      // Lost: the server moved on (deleted, or this attempt's task was taken over and its next
      // attempt recorded the outcome). Its fault would describe a server that is no longer so,
      // and an event the next attempt closed keeps what it says.
      if (error) {
        if (won) await repo.recordFault(server.id, 500, error.message, error.stack ?? error.message, trx)
        await repo.finishEvent(eventId, 'Error', `${error.name}: ${error.message}`, trx, { onlyIfOpen: !won })
      } else {
        await repo.finishEvent(eventId, 'Success', undefined, trx, { onlyIfOpen: !won })
      }
      return won
    })
    if (!done) logger.info({ server: server.id }, 'server changed while the task ran (deleted?); outcome not recorded')
    if (error) logger.warn({ server: server.id, kind: task.kind, err: error.message }, 'server task failed; server put back')
  }

  async #delete(task: Task): Promise<void> {
    const { repo, driver, logger } = this.#d
    const abandoned = await this.#closeAbandoned(task)
    const server = await repo.get(task.subject_id)
    if (!server) {
      if (abandoned) await repo.markActionFailed(task.subject_id, task.request_id)
      return
    }
    const eventId = await repo.startEvent(server.id, task.request_id, 'compute_terminate_instance', this.#d.host)
    try {
      await driver.destroy(server.id)
    } catch (err) {
      // A VM that is already gone is what we wanted; anything else is recorded and retried by the user.
      if (!(err instanceof VmNotFound)) {
        logger.warn({ server: server.id, err: (err as Error).message }, 'destroy failed')
        await repo.db.transaction().execute(async (trx) => {
          await repo.cas(server.id, { taskStates: ['deleting'] }, { task_state: null, vm_state: 'error' as VmState }, trx)
          await repo.recordFault(server.id, 500, (err as Error).message, (err as Error).stack ?? '', trx)
          await repo.finishEvent(eventId, 'Error', (err as Error).message, trx)
        })
        return
      }
    }
    const now = repo.now()
    await repo.db.transaction().execute(async (trx) => {
      await trx.updateTable('servers').set({
        vm_state: 'deleted', task_state: null, power_state: PowerState.NOSTATE, deleted: 1, deleted_at: now, terminated_at: now, updated_at: now,
      }).where('id', '=', server.id).execute()
      await repo.releaseFixedIps(server.id, trx)
      await trx.updateTable('rescues').set({ ended_at: now }).where('server_id', '=', server.id).where('ended_at', 'is', null).execute()
      await repo.recordAccess(server.id, null, trx)
      await trx.deleteFrom('server_boot_data').where('server_id', '=', server.id).execute()
      // With the deletion, not after it: an agent killed in between would leave the event open,
      // and the re-run, finding the server gone, could not tell that the delete had worked.
      await repo.finishEvent(eventId, 'Success', undefined, trx)
    })
  }
}

/**
 * A VM died under an idle server (its QEMU exited or was killed): record it as Nova's power-state
 * sync does. An active or paused server is stopped, with a `stop` instance action as Nova's
 * force_stop leaves; a rescued one stays RESCUE, powered off, and unrescue boots its own disk.
 * The fault says what happened. Nothing changes for a server with a task running.
 */
export async function recordVmGone(repo: ServersRepo, serverId: string, detail: { rescued: boolean; reason: string }): Promise<boolean> {
  return repo.db.transaction().execute(async (trx) => {
    const server = await repo.get(serverId, trx)
    if (!server) return false
    const to = { power_state: PowerState.SHUTDOWN, ...(detail.rescued ? {} : { vm_state: 'stopped' as VmState }) }
    if (!(await repo.cas(serverId, { vmStates: detail.rescued ? ['rescued'] : ['active', 'paused'], taskStates: [null] }, to, trx))) return false
    if (!detail.rescued) {
      await repo.recordAction({ server_id: serverId, action: 'stop', request_id: `req-${randomUUID()}`, user_id: server.user_id, project_id: server.project_id }, trx)
    }
    await repo.recordFault(serverId, 500, detail.reason, detail.reason, trx)
    return true
  })
}
