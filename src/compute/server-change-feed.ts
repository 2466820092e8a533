// Server changes as the database shows them, for the event streams (GET /servers/events).
// One feed per process: while anyone listens it runs ONE query per tick over the updated_at
// index and fans the rows out by server id or project. It reads the table, not an in-memory
// emitter, so a change written by another API process or agent sharing the database is seen
// just the same. No subscribers, no timer.
import type { Logger } from 'pino'
import type { Clock } from '../clock.ts'
import type { ServersRepo } from '../store/servers-repo.ts'
import type { Server } from './server.ts'

/** What a subscriber watches: one server (deleted ones included), one project, or everything. */
export type ServerWatch = { serverId: string } | { projectId: string } | { allProjects: true }

export type ServerChangeListener = (row: Server) => void

export interface ServerChangeFeedOptions {
  servers: Pick<ServersRepo, 'changedSince'>
  clock: Clock
  logger: Logger
  /** Time between two queries while someone listens, ms. */
  intervalMs: number
  /**
   * How far before the newest updated_at seen each query reaches back, ms. updated_at is
   * stamped before the write commits, and by the writer's clock: a row can become visible
   * after a newer one was read (a slow transaction, another process, a little clock skew).
   * Rows read again are dropped by the dedupe, so this costs reads, never duplicates.
   */
  lookbackMs?: number
}

interface Subscriber {
  readonly watch: ServerWatch
  readonly listener: ServerChangeListener
}

export class ServerChangeFeed {
  readonly #o: Required<ServerChangeFeedOptions>
  readonly #byServer = new Map<string, Set<Subscriber>>()
  readonly #byProject = new Map<string, Set<Subscriber>>()
  readonly #everything = new Set<Subscriber>()
  /** Versions already delivered, by key, with their updated_at (to forget them once out of the window). */
  readonly #seen = new Map<string, string>()
  #count = 0
  #timer: NodeJS.Timeout | undefined
  /** Bumped on every start and stop: a query answered after a stop is dropped. */
  #generation = 0
  /** Newest updated_at seen; the next query starts at it (minus the lookback). */
  #high = ''
  #closed = false

  constructor(options: ServerChangeFeedOptions) {
    this.#o = { lookbackMs: 1000, ...options }
  }

  /** Rows changed from now on that match `watch`, oldest first. Returns the unsubscribe function. */
  subscribe(watch: ServerWatch, listener: ServerChangeListener): () => void {
    if (this.#closed) throw new Error('the server change feed is closed')
    const sub: Subscriber = { watch, listener }
    const bucket = this.#bucket(watch)
    bucket.add(sub)
    if (this.#count++ === 0) this.#start()
    let subscribed = true
    return () => {
      if (!subscribed || this.#closed) return
      subscribed = false
      bucket.delete(sub)
      if ('serverId' in watch && bucket.size === 0) this.#byServer.delete(watch.serverId)
      if ('projectId' in watch && bucket.size === 0) this.#byProject.delete(watch.projectId)
      if (--this.#count === 0) this.#stop()
    }
  }

  get subscriberCount(): number {
    return this.#count
  }

  /** True while the timer is armed (there are subscribers). */
  get running(): boolean {
    return this.#timer !== undefined
  }

  close(): void {
    this.#closed = true
    this.#byServer.clear()
    this.#byProject.clear()
    this.#everything.clear()
    this.#count = 0
    this.#stop()
  }

  #bucket(watch: ServerWatch): Set<Subscriber> {
    if ('allProjects' in watch) return this.#everything
    const [map, key] = 'serverId' in watch ? [this.#byServer, watch.serverId] : [this.#byProject, watch.projectId]
    let set = map.get(key)
    if (!set) map.set(key, (set = new Set()))
    return set
  }

  #start(): void {
    this.#generation++
    // Subscribers read the current state themselves after subscribing; starting a little in
    // the past only replays rows they will recognise as already known.
    this.#high = this.#o.clock.now().toISOString()
    this.#seen.clear()
    this.#schedule(this.#generation)
  }

  #stop(): void {
    clearTimeout(this.#timer)
    this.#timer = undefined
    this.#generation++
    this.#seen.clear()
  }

  /** setTimeout after each tick, not setInterval: a slow query never overlaps the next one. */
  #schedule(generation: number): void {
    if (this.#timer || generation !== this.#generation || this.#count === 0) return
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      void this.#tick(generation)
    }, this.#o.intervalMs)
    // Listening streams keep the process alive, never the feed itself.
    this.#timer.unref()
  }

  async #tick(generation: number): Promise<void> {
    try {
      const from = new Date(Date.parse(this.#high) - this.#o.lookbackMs).toISOString()
      // updated_at >= (not >): rows written in the same millisecond as the newest one seen
      // are read again, and the dedupe below drops those already delivered.
      const rows = await this.#o.servers.changedSince(from)
      for (const row of rows) {
        if (generation !== this.#generation) return
        // The whole row is the version: two writes in one millisecond are two changes.
        const key = JSON.stringify(row)
        if (this.#seen.has(key)) continue
        this.#seen.set(key, row.updated_at)
        if (row.updated_at > this.#high) this.#high = row.updated_at
        this.#deliver(row)
      }
      const floor = new Date(Date.parse(this.#high) - this.#o.lookbackMs).toISOString()
      for (const [key, updatedAt] of this.#seen) if (updatedAt < floor) this.#seen.delete(key)
    } catch (err) {
      if (generation === this.#generation) this.#o.logger.warn({ err }, 'server change feed query failed; retrying')
    } finally {
      this.#schedule(generation)
    }
  }

  #deliver(row: Server): void {
    // Copies: a listener may unsubscribe (its stream ends) while we iterate.
    const subs = [...(this.#byServer.get(row.id) ?? []), ...(this.#byProject.get(row.project_id) ?? []), ...this.#everything]
    for (const sub of subs) {
      try {
        sub.listener(row)
      } catch (err) {
        this.#o.logger.error({ err, server: row.id }, 'server change listener failed')
      }
    }
  }
}
