// Auto-exit: a rescue whose time is up is unrescued by Skiff itself, through the same path a
// user's unrescue takes (compare-and-set, instance action, task), as Nova's rescue_timeout.
import { randomUUID } from 'node:crypto'
import type { Logger } from 'pino'
import type { Clock } from '../clock.ts'
import type { RescuesRepo } from '../store/rescues-repo.ts'
import type { HostScope } from '../store/schema.ts'
import type { RescueService } from './rescue-service.ts'
import { systemContext } from './policy.ts'

export class RescueExpiry {
  readonly #rescues: RescueService
  readonly #repo: RescuesRepo
  readonly #clock: Clock
  readonly #logger: Logger
  readonly #hosts: HostScope
  #timer: NodeJS.Timeout | undefined
  #unlisten: (() => void) | undefined
  #sweeping = false

  constructor(rescues: RescueService, repo: RescuesRepo, clock: Clock, logger: Logger, hosts: HostScope) {
    this.#rescues = rescues
    this.#repo = repo
    this.#clock = clock
    this.#logger = logger
    this.#hosts = hosts
  }

  start(intervalMs = 1000): void {
    this.#timer = setInterval(() => void this.sweep(), intervalMs)
    this.#timer.unref()
    this.#unlisten = this.#clock.onAdvance?.(() => this.sweep())
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer)
    this.#unlisten?.()
  }

  /** Unrescue every rescued server of these hosts whose rescue has expired. */
  async sweep(): Promise<number> {
    if (this.#sweeping) return 0
    this.#sweeping = true
    let n = 0
    try {
      const now = this.#clock.now().toISOString()
      const due = await this.#repo.expired(this.#hosts, now)
      for (const s of due) {
        try {
          await this.#rescues.unrescue(systemContext(s.project_id, 'skiff-rescue-timeout'), s.id, `req-${randomUUID()}`)
          n++
          this.#logger.info({ server: s.id }, 'rescue expired: unrescuing')
        } catch (err) {
          // Someone else acted first (a user's unrescue, a delete): nothing to do.
          this.#logger.debug({ server: s.id, err: (err as Error).message }, 'expired rescue not unrescued')
        }
      }
    } catch (err) {
      this.#logger.warn({ err }, 'rescue expiry sweep failed')
    } finally {
      this.#sweeping = false
    }
    return n
  }
}
