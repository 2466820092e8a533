// Nova's _poll_shelved_instances: with shelved_offload_time > 0, a server shelved that long ago
// (and idle) is offloaded by Skiff itself, through the same path an admin's shelveOffload takes
// (compare-and-set, instance action, task). 0 offloads within the shelve task; -1 never.
import { randomUUID } from 'node:crypto'
import type { Logger } from 'pino'
import type { Clock } from '../clock.ts'
import type { ShelvesRepo } from '../store/shelves-repo.ts'
import type { ShelveService } from './shelve-service.ts'
import { systemContext } from './policy.ts'

export class ShelveOffloader {
  readonly #service: ShelveService
  readonly #repo: ShelvesRepo
  readonly #clock: Clock
  readonly #logger: Logger
  readonly #hosts: string[]
  readonly #afterSeconds: number
  #timer: NodeJS.Timeout | undefined
  #unlisten: (() => void) | undefined
  #sweeping = false

  constructor(deps: { service: ShelveService; repo: ShelvesRepo; clock: Clock; logger: Logger; hosts: string[]; afterSeconds: number }) {
    this.#service = deps.service
    this.#repo = deps.repo
    this.#clock = deps.clock
    this.#logger = deps.logger
    this.#hosts = deps.hosts
    this.#afterSeconds = deps.afterSeconds
  }

  start(intervalMs = 1000): void {
    if (this.#afterSeconds <= 0) return
    this.#timer = setInterval(() => void this.sweep(), intervalMs)
    this.#timer.unref()
    this.#unlisten = this.#clock.onAdvance?.(() => this.sweep())
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer)
    this.#unlisten?.()
  }

  /** Offload every server of these hosts shelved for shelved_offload_time or longer. */
  async sweep(): Promise<number> {
    if (this.#sweeping || this.#afterSeconds <= 0) return 0
    this.#sweeping = true
    let n = 0
    try {
      const before = new Date(this.#clock.now().getTime() - this.#afterSeconds * 1000).toISOString()
      for (const s of await this.#repo.dueForOffload(this.#hosts, before)) {
        try {
          await this.#service.offloadDue(systemContext(s.project_id, 'skiff-shelved-offload'), s.id, `req-${randomUUID()}`)
          n++
          this.#logger.info({ server: s.id }, 'shelved_offload_time reached: offloading')
        } catch (err) {
          // Someone acted first (an unshelve, a delete, an admin's offload): nothing to do.
          this.#logger.debug({ server: s.id, err: (err as Error).message }, 'shelved server not offloaded')
        }
      }
    } catch (err) {
      this.#logger.warn({ err }, 'shelve offload sweep failed')
    } finally {
      this.#sweeping = false
    }
    return n
  }
}
