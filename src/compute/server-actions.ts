// How every server action starts, in Nova's order: 404 → policy → lock → state (→ the host is
// alive), then one transaction that sets task_state by compare-and-set, records the instance
// action and enqueues the task. The agent does the slow part (server-worker.ts).
import { ServiceUnavailable } from '../errors.ts'
import type { AuthContext } from '../identity/identity-service.ts'
import type { InstanceActionsRepo } from '../store/instance-actions-repo.ts'
import type { Tx } from '../store/schema.ts'
import type { ServersRepo } from '../store/servers-repo.ts'
import type { HostRegistry } from '../tasks/hosts.ts'
import { InstanceInvalidState, InstanceIsLocked, InstanceNotFound } from './errors.ts'
import { authorize } from './policy.ts'
import type { Server } from './server.ts'
import type { ServerTaskKind, ServerTaskPayloads, ServerTaskQueue } from './server-tasks.ts'
import type { TaskState, VmState } from './states.ts'

/** An action's rule: from which states it may start and which task state it sets. */
export interface ActionRule<K extends ServerTaskKind = ServerTaskKind> {
  action: string
  policy: string
  vmStates: VmState[]
  taskStates?: TaskState[]
  mustHaveLaunched?: boolean
  checkLock?: boolean
  taskState: Exclude<TaskState, null>
  kind: K
}

// must_have_launched is Nova's default in check_instance_state: a server that never booted is
// refused with "... while it is in launched_at None".
export const RULES = {
  stop: {
    action: 'stop',
    policy: 'os_compute_api:servers:stop',
    vmStates: ['active', 'error'],
    mustHaveLaunched: true,
    taskState: 'powering-off',
    kind: 'server.stop',
  },
  start: {
    action: 'start',
    policy: 'os_compute_api:servers:start',
    vmStates: ['stopped'],
    mustHaveLaunched: true,
    taskState: 'powering-on',
    kind: 'server.start',
  },
  pause: {
    action: 'pause',
    policy: 'os_compute_api:os-pause-server:pause',
    vmStates: ['active'],
    mustHaveLaunched: true,
    taskState: 'pausing',
    kind: 'server.pause',
  },
  unpause: {
    action: 'unpause',
    policy: 'os_compute_api:os-pause-server:unpause',
    vmStates: ['paused'],
    mustHaveLaunched: true,
    taskState: 'unpausing',
    kind: 'server.unpause',
  },
  softReboot: {
    action: 'reboot',
    policy: 'os_compute_api:servers:reboot',
    vmStates: ['active'],
    mustHaveLaunched: true,
    taskState: 'rebooting',
    kind: 'server.reboot',
  },
  hardReboot: {
    action: 'reboot',
    policy: 'os_compute_api:servers:reboot',
    vmStates: ['active', 'stopped', 'paused', 'suspended', 'error'],
    // Nova's task_states.ALLOW_REBOOT.
    taskStates: [null, 'rebooting', 'reboot_pending', 'reboot_started', 'resuming', 'rebooting_hard', 'unpausing', 'pausing', 'suspending'],
    mustHaveLaunched: true,
    taskState: 'rebooting_hard',
    kind: 'server.reboot',
  },
  rebuild: {
    action: 'rebuild',
    policy: 'os_compute_api:servers:rebuild',
    vmStates: ['active', 'stopped', 'error'],
    mustHaveLaunched: true,
    taskState: 'rebuilding',
    kind: 'server.rebuild',
  },
  rescue: {
    action: 'rescue',
    policy: 'os_compute_api:os-rescue',
    vmStates: ['active', 'stopped', 'error'],
    mustHaveLaunched: true,
    taskState: 'rescuing',
    kind: 'server.rescue',
  },
  unrescue: {
    action: 'unrescue',
    policy: 'os_compute_api:os-unrescue',
    vmStates: ['rescued'],
    mustHaveLaunched: true,
    taskState: 'unrescuing',
    kind: 'server.unrescue',
  },
  // nova/compute/api.py's @check_instance_state of suspend, resume, snapshot, backup, shelve,
  // shelve_offload and unshelve (must_have_launched is Nova's default there). Snapshot and backup
  // do not check the lock (Nova: a lock guards against change, and an image changes nothing).
  suspend: {
    action: 'suspend',
    policy: 'os_compute_api:os-suspend-server:suspend',
    vmStates: ['active'],
    mustHaveLaunched: true,
    taskState: 'suspending',
    kind: 'server.suspend',
  },
  resume: {
    action: 'resume',
    policy: 'os_compute_api:os-suspend-server:resume',
    vmStates: ['suspended'],
    mustHaveLaunched: true,
    taskState: 'resuming',
    kind: 'server.resume',
  },
  createImage: {
    action: 'createImage',
    policy: 'os_compute_api:servers:create_image',
    vmStates: ['active', 'stopped', 'paused', 'suspended'],
    mustHaveLaunched: true,
    checkLock: false,
    taskState: 'image_snapshot_pending',
    kind: 'server.snapshot',
  },
  createBackup: {
    action: 'createBackup',
    policy: 'os_compute_api:os-create-backup',
    vmStates: ['active', 'stopped', 'paused', 'suspended'],
    mustHaveLaunched: true,
    checkLock: false,
    taskState: 'image_backup',
    kind: 'server.snapshot',
  },
  shelve: {
    action: 'shelve',
    policy: 'os_compute_api:os-shelve:shelve',
    vmStates: ['active', 'stopped', 'paused', 'suspended'],
    mustHaveLaunched: true,
    taskState: 'shelving',
    kind: 'server.shelve',
  },
  shelveOffload: {
    action: 'shelveOffload',
    policy: 'os_compute_api:os-shelve:shelve_offload',
    vmStates: ['shelved'],
    mustHaveLaunched: true,
    taskState: 'shelving_offloading',
    kind: 'server.shelveOffload',
  },
  unshelve: {
    action: 'unshelve',
    policy: 'os_compute_api:os-shelve:unshelve',
    vmStates: ['shelved', 'shelved_offloaded'],
    mustHaveLaunched: true,
    taskState: 'unshelving',
    kind: 'server.unshelve',
  },
} satisfies Record<string, ActionRule>

export interface ServerActionsDeps {
  repo: ServersRepo
  actions: InstanceActionsRepo
  queue: ServerTaskQueue
  hosts: HostRegistry
}

export class ServerActions {
  readonly #d: ServerActionsDeps

  constructor(deps: ServerActionsDeps) {
    this.#d = deps
  }

  /** The server as the caller may see it: another project's server is 404, not 403. */
  async get(ctx: AuthContext, id: string): Promise<Server> {
    const s = await this.#d.repo.get(id)
    if (!s || (s.project_id !== ctx.projectId && !ctx.isAdmin)) throw new InstanceNotFound(id)
    return s
  }

  async check(ctx: AuthContext, id: string, rule: ActionRule): Promise<Server> {
    const s = await this.get(ctx, id)
    authorize(ctx, rule.policy, 'member')
    if (rule.checkLock !== false && s.locked && !ctx.isAdmin) throw new InstanceIsLocked(s.id)
    assertState(s, rule)
    await this.assertHostUp(s.host)
    return s
  }

  /** Work for a host whose agent stopped heartbeating would wait forever: refuse it, change nothing. */
  async assertHostUp(host: string | null): Promise<void> {
    if (host && !(await this.#d.hosts.isUp(host))) throw new ServiceUnavailable(`Compute service of ${host} is unavailable at this time.`)
  }

  async start<K extends ServerTaskKind>(
    ctx: AuthContext,
    id: string,
    rule: ActionRule<K>,
    payload: ServerTaskPayloads[K],
    requestId: string,
  ): Promise<void> {
    const s = await this.check(ctx, id, rule)
    return this.begin(ctx, s, rule, payload, requestId)
  }

  /** The compare-and-set, the instance action and the task, in one transaction. */
  async begin<K extends ServerTaskKind>(
    ctx: AuthContext,
    s: Server,
    rule: ActionRule<K>,
    payload: ServerTaskPayloads[K],
    requestId: string,
    extra: Partial<Server> = {},
    /** More writes of the transaction; what it returns (if anything) is the task's payload (ids it created). */
    alsoInTransaction?: (trx: Tx) => Promise<ServerTaskPayloads[K] | undefined | void>,
  ): Promise<void> {
    // Actions are refused before they start on a server without a host (they need one launched or
    // running: its vm_state says so); a server in ERROR for want of a host has none to act on.
    const host = s.host
    if (host === null) throw new InstanceInvalidState(s.id, rule.action, 'vm_state', s.vm_state)
    await this.#d.repo.transaction(async (trx) => {
      const ok = await this.#d.repo.cas(
        s.id,
        { vmStates: rule.vmStates, taskStates: rule.taskStates ?? [null] },
        { ...extra, task_state: rule.taskState },
        trx,
      )
      if (!ok) {
        // Someone else changed it between our read and our write: answer as if we had seen it.
        const fresh = await this.#d.repo.get(s.id, trx)
        if (!fresh) throw new InstanceNotFound(s.id)
        assertState(fresh, rule)
        throw new InstanceInvalidState(s.id, rule.action, 'task_state', fresh.task_state)
      }
      await this.#d.actions.record(
        { server_id: s.id, action: rule.action, request_id: requestId, user_id: ctx.userId, project_id: s.project_id },
        trx,
      )
      const created = await alsoInTransaction?.(trx)
      await this.#d.queue.enqueue(trx, { kind: rule.kind, subjectId: s.id, host, payload: created ?? payload, requestId })
    })
    this.#d.queue.notify(host)
  }
}

export function assertState(s: Server, rule: ActionRule): void {
  if (!rule.vmStates.includes(s.vm_state)) throw new InstanceInvalidState(s.id, rule.action, 'vm_state', s.vm_state)
  if (!(rule.taskStates ?? [null]).includes(s.task_state)) throw new InstanceInvalidState(s.id, rule.action, 'task_state', s.task_state)
  if (rule.mustHaveLaunched && !s.launched_at) throw new InstanceInvalidState(s.id, rule.action, 'launched_at', null)
}
