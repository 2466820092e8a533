// A durable task queue in one table. Tasks are enqueued inside the caller's transaction (so a
// state change and its task commit together), claimed by the agent of their host, and run one
// at a time per subject. A claim holds a lease; an expired lease puts the task back.
// Wake-ups: in memory within a process; on PostgreSQL also NOTIFY, sent by the enqueuing
// transaction itself (delivered at commit, never for a rolled-back task) to every process
// that LISTENs, so an agent hears of work from any API process.
import { randomUUID } from 'node:crypto'
import { sql, type Kysely, type Transaction } from 'kysely'
import type { Clock } from '../clock.ts'
import type { Store } from '../store/db.ts'
import { onHostsOf } from '../store/host-scope.ts'
import { prepared, preparedInsert, preparedWrite } from '../store/prepared.ts'
import type { Database, HostScope, TaskRow } from '../store/schema.ts'

export type { HostScope }

const CHANNEL = 'skiff_tasks'
/** PostgreSQL: an agent answered a call (payload: the task id). */
const REPLIES = 'skiff_task_replies'

/** No answer within the caller's deadline (the agent is busy, stuck or gone); the task is withdrawn if it had not started. */
export class CallTimedOut extends Error {}
/** The handler of a call failed: its message. */
export class CallFailed extends Error {}

/**
 * What the queue carries: a map from task kind to its payload's type, given by whoever uses the
 * queue (compute's is TaskPayloads). The queue itself knows no kind.
 */
export type PayloadMap = Record<string, unknown>

export interface NewTask<P extends PayloadMap = PayloadMap, K extends keyof P & string = keyof P & string> {
  kind: K
  subjectId: string
  host: string
  payload: P[K]
  requestId: string
}

/**
 * A claimed task. `attempts` counts its claims, this one included: 1 on a first run; more when
 * it runs again after its agent stopped in the middle of it (restarted and took back what it
 * was running, or its lease ran out). Handlers are safe to re-run; the attempt number tells
 * them to tidy what an abandoned attempt left (for compute: its unfinished events).
 */
export type Task<P extends PayloadMap = PayloadMap, K extends keyof P & string = keyof P & string> = Omit<TaskRow, 'kind' | 'payload'> & {
  kind: K
  payload: P[K]
}

export class TaskQueue<P extends PayloadMap = PayloadMap> {
  readonly #store: Store
  readonly #db: Kysely<Database>
  readonly #clock: Clock
  readonly #listeners = new Set<(host: string) => void>()
  #unlisten: Promise<() => Promise<void>> | undefined
  /** Calls of this process waiting for an answer, by task id. */
  readonly #waiting = new Map<string, () => void>()
  #unlistenReplies: Promise<() => Promise<void>> | undefined
  /** The claim runs after every task and on every wake-up: compiled once (store/prepared.ts), as the insert and delete of every task. */
  readonly #claim
  readonly #claimForAgent
  readonly #insert
  readonly #delete

  constructor(store: Store, clock: Clock) {
    this.#store = store
    this.#db = store.db
    this.#clock = clock
    this.#claim = this.#prepareClaim(false)
    this.#claimForAgent = this.#prepareClaim(true)
    const db = this.#db
    this.#insert = preparedInsert<TaskRow>(db, 'tasks')
    this.#delete = preparedWrite(db, ([id, attempts]) =>
      db
        .deleteFrom('tasks')
        .where('id', '=', id!)
        .where('attempts', '=', attempts as unknown as number),
    )
  }

  /**
   * The claim of the oldest runnable task of one host, or of the hosts whose lease an agent holds
   * (a host taken over by another agent drops out by itself), compiled once.
   */
  #prepareClaim(byAgent: boolean) {
    const db = this.#db
    const store = this.#store
    return prepared(db, ([scope, leaseUntil, now]) => {
      let next = db
        .selectFrom('tasks as t')
        .select('t.id')
        .where((eb) =>
          byAgent
            ? eb('t.host', 'in', eb.selectFrom('hosts').select('hosts.name').where('hosts.agent_id', '=', scope!))
            : eb('t.host', '=', scope!),
        )
        .where('t.state', '=', 'queued')
        .where(({ not, exists, selectFrom }) =>
          not(
            exists(selectFrom('tasks as r').select('r.id').whereRef('r.subject_id', '=', 't.subject_id').where('r.state', '=', 'running')),
          ),
        )
        // An earlier queued task of the same subject goes first.
        .where(({ not, exists, selectFrom }) =>
          not(
            exists(
              selectFrom('tasks as e')
                .select('e.id')
                .whereRef('e.subject_id', '=', 't.subject_id')
                .where('e.state', '=', 'queued')
                .whereRef('e.created_at', '<', 't.created_at'),
            ),
          ),
        )
        .orderBy('t.created_at')
        .orderBy('t.id')
        .limit(1)
      // PostgreSQL: several claimers never wait on (nor take) the same row; SQLite has one writer.
      if (store.dialect === 'postgres') next = next.forUpdate('t').skipLocked()
      return db
        .updateTable('tasks')
        .set({ state: 'running', lease_until: leaseUntil!, attempts: sql`attempts + 1`, updated_at: now! })
        .where('id', '=', next)
        .where('state', '=', 'queued')
        .returningAll()
    })
  }

  /** Insert a task in the caller's transaction. Call `notify` after the commit. */
  async enqueue<K extends keyof P & string>(trx: Transaction<Database> | Kysely<Database>, task: NewTask<P, K>): Promise<string> {
    const id = randomUUID()
    const now = this.#clock.now().toISOString()
    await this.#insert(
      {
        id,
        kind: task.kind,
        subject_id: task.subjectId,
        host: task.host,
        payload: JSON.stringify(task.payload ?? {}),
        state: 'queued',
        attempts: 0,
        lease_until: null,
        request_id: task.requestId,
        created_at: now,
        updated_at: now,
      },
      trx,
    )
    if (this.#store.dialect === 'postgres') await sql`select pg_notify(${CHANNEL}, ${task.host})`.execute(trx)
    return id
  }

  /**
   * Wake the agents of a host in this process (others heard the NOTIFY of the commit), once the
   * caller's turn of the event loop is done: the request that enqueued answers first, and the
   * agent's work does not sit between its commit and its answer.
   */
  notify(host: string): void {
    setImmediate(() => {
      for (const l of this.#listeners) l(host)
    })
  }

  /**
   * Hear of new tasks, from this process and (PostgreSQL) from every other. An empty host means
   * "maybe missed some": the LISTEN connection came back after a break.
   */
  async onNotify(listener: (host: string) => void): Promise<() => Promise<void>> {
    this.#listeners.add(listener)
    if (this.#store.listen && !this.#unlisten) {
      this.#unlisten = this.#store.listen(CHANNEL, (host) => {
        for (const l of this.#listeners) l(host)
      })
      this.#unlisten.catch(() => {
        this.#unlisten = undefined
      })
    }
    await this.#unlisten
    return async () => {
      this.#listeners.delete(listener)
      if (this.#listeners.size === 0 && this.#unlisten) {
        const unlisten = this.#unlisten
        this.#unlisten = undefined
        await (
          await unlisten
        )()
      }
    }
  }

  /**
   * A remote call to a host's agent, as Nova's API calls a compute host over RPC: a task whose
   * handler's return value comes back to the caller through the task_replies table. The reply
   * row is made in the enqueuing transaction, the agent fills it in, the caller reads and
   * deletes it. Woken at once when the answer is in (in memory in one process; on PostgreSQL by
   * a NOTIFY from the answering agent), with a poll as the safety net; past `timeoutMs`, a task
   * not yet claimed is withdrawn and CallTimedOut thrown. Give calls a subject of their own: a
   * call must not wait behind the long operations queued on the same server.
   */
  async call<T, K extends keyof P & string = keyof P & string>(task: NewTask<P, K>, timeoutMs: number): Promise<T> {
    if (this.#store.listen && !this.#unlistenReplies) {
      this.#unlistenReplies = this.#store.listen(REPLIES, (id) => {
        if (id === '') for (const wake of this.#waiting.values()) wake()
        else this.#waiting.get(id)?.()
      })
      this.#unlistenReplies.catch(() => {
        this.#unlistenReplies = undefined
      })
    }
    await this.#unlistenReplies?.catch(() => {})
    const id = await this.#db.transaction().execute(async (trx) => {
      const taskId = await this.enqueue(trx, task)
      // Answers whose caller died before reading them: nobody will (calls are rare; this is cheap).
      await trx
        .deleteFrom('task_replies')
        .where('created_at', '<', new Date(this.#clock.now().getTime() - 3_600_000).toISOString())
        .execute()
      await trx
        .insertInto('task_replies')
        .values({ task_id: taskId, answered_at: null, value: null, error: null, created_at: this.#clock.now().toISOString() })
        .execute()
      return taskId
    })
    this.notify(task.host)
    const deadline = Date.now() + timeoutMs
    let pollMs = 2
    try {
      for (;;) {
        const row = await this.#db
          .selectFrom('task_replies')
          .selectAll()
          .where('task_id', '=', id)
          .where('answered_at', 'is not', null)
          .executeTakeFirst()
        if (row) {
          if (row.error !== null) throw new CallFailed(row.error)
          return (row.value === null ? undefined : JSON.parse(row.value)) as T
        }
        const left = deadline - Date.now()
        if (left <= 0) {
          await this.#db.deleteFrom('tasks').where('id', '=', id).where('state', '=', 'queued').execute()
          throw new CallTimedOut(`no answer from host ${task.host} within ${timeoutMs} ms`)
        }
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, Math.min(pollMs, left))
          this.#waiting.set(id, () => {
            clearTimeout(timer)
            resolve()
          })
        })
        pollMs = Math.min(pollMs * 2, 200)
      }
    } finally {
      this.#waiting.delete(id)
      await this.#db
        .deleteFrom('task_replies')
        .where('task_id', '=', id)
        .execute()
        .catch(() => {})
    }
  }

  /**
   * The agent's answer to a task: recorded only if a caller waits for it (a task enqueued with
   * `call`); a no-op update otherwise.
   */
  async reply(taskId: string, outcome: { value: unknown } | { error: string }): Promise<void> {
    const answered = await this.#db.transaction().execute(async (trx) => {
      const r = await trx
        .updateTable('task_replies')
        .set({
          answered_at: this.#clock.now().toISOString(),
          value: 'value' in outcome ? JSON.stringify(outcome.value ?? null) : null,
          error: 'error' in outcome ? outcome.error : null,
        })
        .where('task_id', '=', taskId)
        .where('answered_at', 'is', null)
        .executeTakeFirst()
      if (r.numUpdatedRows === 0n) return false
      if (this.#store.dialect === 'postgres') await sql`select pg_notify(${REPLIES}, ${taskId})`.execute(trx)
      return true
    })
    if (answered) this.#waiting.get(taskId)?.()
  }

  /** Claim the oldest runnable task of a host: queued, and no other task of its subject running. */
  async claim(scope: string | HostScope, leaseMs: number): Promise<Task<P> | undefined> {
    const now = this.#clock.now()
    const leaseUntil = new Date(now.getTime() + leaseMs).toISOString()
    const s = typeof scope === 'string' ? { host: scope } : scope
    const [row] =
      'host' in s
        ? await this.#claim([s.host, leaseUntil, now.toISOString()])
        : await this.#claimForAgent([s.agentId, leaseUntil, now.toISOString()])
    // The payload is what enqueue wrote for this kind (tasks of a kind no handler knows are dropped by the agent).
    return row ? ({ ...row, payload: JSON.parse(row.payload) as unknown } as Task<P>) : undefined
  }

  /** Extend the lease of this attempt. False if the task is no longer ours (the lease ran out and it was taken back). */
  async renewLease(task: Pick<Task, 'id' | 'attempts'>, leaseMs: number): Promise<boolean> {
    const until = new Date(this.#clock.now().getTime() + leaseMs).toISOString()
    const r = await this.#db
      .updateTable('tasks')
      .set({ lease_until: until })
      .where('id', '=', task.id)
      .where('state', '=', 'running')
      .where('attempts', '=', task.attempts)
      .executeTakeFirst()
    return r.numUpdatedRows === 1n
  }

  /**
   * A finished task leaves the table: the instance actions keep the history. Only this attempt's
   * row: a task taken back after its lease ran out belongs to its next attempt.
   */
  async finish(task: Pick<Task, 'id' | 'attempts'>): Promise<void> {
    await this.#delete([task.id, task.attempts])
  }

  async close(): Promise<void> {
    this.#listeners.clear()
    const unlisten = this.#unlisten
    this.#unlisten = undefined
    if (unlisten) await (await unlisten.catch(() => async () => {}))()
    const unlistenReplies = this.#unlistenReplies
    this.#unlistenReplies = undefined
    if (unlistenReplies) await (await unlistenReplies.catch(() => async () => {}))()
  }

  /**
   * Drop the subject's tasks that no agent has claimed yet (an admin's reset of its state ends
   * the work it was waiting for), but for `keepKinds`. A running task is left to its agent: its
   * handler's compare-and-set finds the subject moved on and records nothing. Returns how many.
   */
  async cancelQueued(trx: Transaction<Database>, subjectId: string, keepKinds: string[] = []): Promise<number> {
    let q = trx.deleteFrom('tasks').where('subject_id', '=', subjectId).where('state', '=', 'queued')
    if (keepKinds.length) q = q.where('kind', 'not in', keepKinds)
    const r = await q.executeTakeFirst()
    return Number(r.numDeletedRows)
  }

  /** Running tasks whose lease ran out (their agent died) go back to the queue. */
  async requeueExpired(scope: string | HostScope): Promise<number> {
    const now = this.#clock.now().toISOString()
    const r = await this.#db
      .updateTable('tasks')
      .set({ state: 'queued', lease_until: null, updated_at: now })
      .where(this.#inScope(scope))
      .where('state', '=', 'running')
      .where('lease_until', '<', now)
      .executeTakeFirst()
    return Number(r.numUpdatedRows)
  }

  /** At agent start every task it was running is orphaned: put them all back. */
  async requeueAllRunning(scope: string | HostScope): Promise<number> {
    const now = this.#clock.now().toISOString()
    const r = await this.#db
      .updateTable('tasks')
      .set({ state: 'queued', lease_until: null, updated_at: now })
      .where(this.#inScope(scope))
      .where('state', '=', 'running')
      .executeTakeFirst()
    return Number(r.numUpdatedRows)
  }

  #inScope(scope: string | HostScope) {
    return onHostsOf('tasks.host', typeof scope === 'string' ? { host: scope } : scope)
  }

  async pending(host?: string): Promise<number> {
    let q = this.#db.selectFrom('tasks').select((eb) => eb.fn.countAll<number>().as('n'))
    if (host) q = q.where('host', '=', host)
    const r = await q.executeTakeFirstOrThrow()
    return Number(r.n)
  }
}
