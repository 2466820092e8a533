// The agent loop: claims the tasks of its hosts and runs them with the handler registered for
// their kind. It knows nothing of servers: whoever starts it passes the handlers (which look at
// the task's host where one loop serves several).
import type { Logger } from 'pino'
import type { HostScope, PayloadMap, Task, TaskQueue } from './queue.ts'

/**
 * Runs a task. Handlers of ordinary tasks record their own outcome and return nothing; the
 * handler of a call (`TaskQueue.call`) returns its answer, which goes back to the caller.
 */
export type TaskHandler<P extends PayloadMap = PayloadMap, K extends keyof P & string = keyof P & string> = (
  task: Task<P, K>,
) => Promise<unknown>

/** One handler per kind, each given the payload of its kind. */
export type TaskHandlers<P extends PayloadMap> = { [K in keyof P & string]: TaskHandler<P, K> }

export interface AgentOptions<P extends PayloadMap = PayloadMap> {
  queue: TaskQueue<P>
  /** The hosts whose tasks this loop runs: one, or all the hosts of a process (a simulator's). */
  hosts: readonly string[]
  /** With several hosts: the agent id holding their leases (tasks are claimed by it). */
  agentId?: string
  handlers: TaskHandlers<P>
  logger: Logger
  /** Tasks run at once (each on a different subject). */
  concurrency?: number
  leaseMs?: number
  /** Safety net when a wake-up is missed (another process enqueued, say). */
  pollMs?: number
}

export class Agent<P extends PayloadMap = PayloadMap> {
  readonly #o: Required<Omit<AgentOptions<P>, 'agentId'>>
  readonly #scope: HostScope
  readonly #hosts: Set<string>
  readonly #running = new Set<Promise<void>>()
  #stopped = true
  #timer: NodeJS.Timeout | undefined
  #unsubscribe: (() => Promise<void>) | undefined
  #sweep: NodeJS.Timeout | undefined
  #pumping = false
  #again = false

  constructor(options: AgentOptions<P>) {
    // Heartbeats are not the loop's business: whoever runs the agents beats for their hosts
    // (one statement for all the hosts of a process), while `running` says so.
    this.#o = { concurrency: 8, leaseMs: 60_000, pollMs: 1_000, ...options }
    this.#hosts = new Set(options.hosts)
    if (options.hosts.length === 1) this.#scope = { host: options.hosts[0]! }
    else if (options.agentId) this.#scope = { agentId: options.agentId }
    else throw new Error('an agent of several hosts claims their tasks by the agent id holding their leases')
  }

  async start(): Promise<void> {
    const requeued = await this.#o.queue.requeueAllRunning(this.#scope)
    if (requeued) this.#o.logger.warn({ requeued }, 'resuming tasks left running by a previous agent')
    this.#stopped = false
    // '' is "the wake-up channel was down a while": look, something may have been missed.
    this.#unsubscribe = await this.#o.queue.onNotify((host) => {
      if (host === '' || this.#hosts.has(host)) this.wake()
    })
    this.#timer = setInterval(() => this.wake(), this.#o.pollMs)
    this.#timer.unref()
    // A task whose lease ran out (its renewals failed: the database was unreachable, the
    // process stalled) goes back to the queue and runs again; handlers are safe to re-run.
    this.#sweep = setInterval(
      () => {
        void this.#o.queue.requeueExpired(this.#scope).then(
          (n) => {
            if (n) {
              this.#o.logger.warn({ requeued: n }, 'tasks whose lease ran out go back to the queue')
              this.wake()
            }
          },
          (err: unknown) => this.#o.logger.warn({ err }, 'could not requeue expired tasks'),
        )
      },
      Math.max(100, this.#o.leaseMs / 2),
    )
    this.#sweep.unref()
    this.wake()
  }

  wake(): void {
    if (this.#stopped) return
    if (this.#pumping) {
      this.#again = true
      return
    }
    void this.#pump()
  }

  async #pump(): Promise<void> {
    this.#pumping = true
    try {
      do {
        this.#again = false
        while (!this.#stopped && this.#running.size < this.#o.concurrency) {
          const task = await this.#o.queue.claim(this.#scope, this.#o.leaseMs)
          if (!task) break
          const run = this.#run(task).finally(() => {
            this.#running.delete(run)
            this.wake()
          })
          this.#running.add(run)
        }
      } while (this.#again && !this.#stopped)
    } catch (err) {
      this.#o.logger.error({ err }, 'agent could not claim a task')
    } finally {
      this.#pumping = false
    }
  }

  async #run(task: Task<P>): Promise<void> {
    const log = this.#o.logger.child({ task: task.id, kind: task.kind, request_id: task.request_id })
    // Own keys only: a row's kind is data, and handlers is a plain object.
    const handler = Object.hasOwn(this.#o.handlers, task.kind) ? (this.#o.handlers[task.kind] as TaskHandler<P>) : undefined
    const renew = setInterval(() => {
      void this.#o.queue.renewLease(task, this.#o.leaseMs).then(
        (mine) => {
          if (!mine) log.warn('lease lost: the task was taken back and runs again elsewhere')
        },
        () => {},
      )
    }, this.#o.leaseMs / 3)
    renew.unref()
    try {
      if (!handler) {
        log.error('no handler for this kind of task; dropping it')
        await this.#o.queue.reply(task.id, { error: `no handler for tasks of kind ${task.kind}` })
      } else {
        const value = await handler(task)
        if (value !== undefined) await this.#o.queue.reply(task.id, { value })
      }
    } catch (err) {
      // Handlers record their own outcome; reaching here means even that failed (or a call failed:
      // its caller hears why).
      log.error({ err }, 'task failed')
      await this.#o.queue.reply(task.id, { error: (err as Error).message ?? String(err) }).catch(() => {})
    } finally {
      clearInterval(renew)
    }
    try {
      await this.#o.queue.finish(task)
    } catch (err) {
      log.error({ err }, 'could not mark the task finished')
    }
  }

  /** Stop claiming and wait for the running tasks. */
  async stop(): Promise<void> {
    this.#stopped = true
    if (this.#timer) clearInterval(this.#timer)
    if (this.#sweep) clearInterval(this.#sweep)
    await this.#unsubscribe?.().catch(() => {})
    await Promise.allSettled([...this.#running])
  }

  /** Started and not stopped: its host may say it is alive. */
  get running(): boolean {
    return !this.#stopped
  }

  get idle(): boolean {
    return this.#running.size === 0
  }
}
