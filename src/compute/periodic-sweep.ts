// The agent's periodic duties (a rescue's auto-exit, a resize's auto-confirm, a shelved server's
// offload): every second, and whenever a test's clock moves, find what is due on this agent's
// hosts and act on each through the path a user's own request takes (compare-and-set, instance
// action, task). One sweep at a time; an item someone else acted on first is skipped.
import type { Logger } from 'pino'
import type { Clock } from '../clock.ts'

export interface Duty<T extends { id: string }> {
  /** Log lines: what is done to an item, why one was left, that a whole sweep failed. */
  readonly acting: string
  readonly skipped: string
  readonly failed: string
  /** Off (a window or time of 0 or less): never swept. */
  readonly enabled: boolean
  due(now: Date): Promise<T[]>
  act(item: T): Promise<void>
}

export class PeriodicSweep<T extends { id: string }> {
  readonly #duty: Duty<T>
  readonly #clock: Clock
  readonly #logger: Logger
  #timer: NodeJS.Timeout | undefined
  #unlisten: (() => void) | undefined
  #sweeping = false

  constructor(duty: Duty<T>, clock: Clock, logger: Logger) {
    this.#duty = duty
    this.#clock = clock
    this.#logger = logger
  }

  start(intervalMs = 1000): void {
    if (!this.#duty.enabled) return
    this.#timer = setInterval(() => void this.sweep(), intervalMs)
    this.#timer.unref()
    this.#unlisten = this.#clock.onAdvance?.(() => this.sweep())
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer)
    this.#unlisten?.()
  }

  /** Acts on everything due now; how many it acted on. */
  async sweep(): Promise<number> {
    if (this.#sweeping || !this.#duty.enabled) return 0
    this.#sweeping = true
    let n = 0
    try {
      for (const item of await this.#duty.due(this.#clock.now())) {
        try {
          await this.#duty.act(item)
          n++
          this.#logger.info({ server: item.id }, this.#duty.acting)
        } catch (err) {
          // The user or an admin acted first (or a delete): nothing to do.
          this.#logger.debug({ server: item.id, err: (err as Error).message }, this.#duty.skipped)
        }
      }
    } catch (err) {
      this.#logger.warn({ err }, this.#duty.failed)
    } finally {
      this.#sweeping = false
    }
    return n
  }
}
