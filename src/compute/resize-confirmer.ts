// Auto-confirm (Nova's resize_confirm_window and _poll_unconfirmed_resizes): a resize or cold
// migration left in VERIFY_RESIZE longer than the window is confirmed by Skiff itself, through
// the path a user's confirmResize takes (compare-and-set, instance action, task). Each agent
// sweeps the moves whose destination is one of its hosts.
import { randomUUID } from 'node:crypto'
import type { Logger } from 'pino'
import type { Clock } from '../clock.ts'
import type { MigrationService } from './migration-service.ts'
import { systemContext } from './policy.ts'

export class ResizeConfirmer {
  readonly #moves: MigrationService
  readonly #clock: Clock
  readonly #logger: Logger
  readonly #hosts: string[]
  readonly #windowSeconds: number
  #timer: NodeJS.Timeout | undefined
  #unlisten: (() => void) | undefined
  #sweeping = false

  constructor(moves: MigrationService, clock: Clock, logger: Logger, hosts: string[], windowSeconds: number) {
    this.#moves = moves
    this.#clock = clock
    this.#logger = logger
    this.#hosts = hosts
    this.#windowSeconds = windowSeconds
  }

  /** Nothing to do with a window of 0 (never, as Nova's default). */
  start(intervalMs = 1000): void {
    if (this.#windowSeconds <= 0) return
    this.#timer = setInterval(() => void this.sweep(), intervalMs)
    this.#timer.unref()
    this.#unlisten = this.#clock.onAdvance?.(() => this.sweep())
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer)
    this.#unlisten?.()
  }

  async sweep(): Promise<number> {
    if (this.#sweeping || this.#windowSeconds <= 0) return 0
    this.#sweeping = true
    let n = 0
    try {
      for (const m of await this.#moves.unconfirmed(this.#hosts, this.#windowSeconds, this.#clock.now())) {
        try {
          await this.#moves.confirmResize(systemContext(m.project_id, 'skiff-resize-confirm-window'), m.server_id, `req-${randomUUID()}`)
          n++
          this.#logger.info({ server: m.server_id, migration: m.id }, 'resize confirm window passed: confirming')
        } catch (err) {
          // The user acted first (confirm, revert, delete): nothing to do.
          this.#logger.debug({ server: m.server_id, err: (err as Error).message }, 'unconfirmed resize not confirmed')
        }
      }
    } catch (err) {
      this.#logger.warn({ err }, 'resize auto-confirm sweep failed')
    } finally {
      this.#sweeping = false
    }
    return n
  }
}
