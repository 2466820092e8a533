// A clock the test moves: real time plus an offset that only grows, so that rows written one
// after another still order by time (as in production), while a rescue's expiry, a task's lease
// or a host's heartbeat age is reached by `advance`, not by waiting real seconds.
import type { Clock } from '../../src/clock.ts'

export class TestClock implements Clock {
  #offsetMs = 0
  readonly #listeners = new Set<() => Promise<unknown>>()

  now(): Date {
    return new Date(Date.now() + this.#offsetMs)
  }

  /**
   * Move time forward by `ms`; resolves once what waits for time to pass (heartbeats, then the
   * rescue expiry sweep: in the order they listen) has looked at the new time.
   */
  async advance(ms: number): Promise<void> {
    if (!(ms >= 0)) throw new Error(`a clock only goes forward (asked ${ms} ms)`)
    this.#offsetMs += ms
    for (const listener of [...this.#listeners]) await listener()
  }

  onAdvance(listener: () => Promise<unknown>): () => void {
    this.#listeners.add(listener)
    return () => {
      this.#listeners.delete(listener)
    }
  }
}
