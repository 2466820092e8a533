// Server views built once, served again while nothing they show has changed. A server's JSON
// (1.3 KB at 2.1) costs more to build and serialize than to read its version: a detail list
// of 100 servers is then its versions and 100 copies, not 100 views and a 130 KB JSON.stringify.
//
// An entry is found by everything a view depends on:
// - the variant: the base URL, the microversion, show or detail, and the caller's project,
//   roles and admin flag (a view shows more to admins; other callers never share an entry);
// - the server's version, which the database bumps (triggers, migration 0017) at every change
//   of its row and of the rows its view shows: addresses, faults, tags, group, user data, and
//   instance actions (whether its latest fault is about its latest action). Read from the
//   database at each request, so a write by another API process or an agent is seen at once;
// - `outside`: what the view shows that the version does not cover, read at each request
//   (the flavor's record at 2.47+, the host's liveness for admins at 2.16+).
// Bounded: at most MAX_BYTES of JSON; the servers least recently shown go first.
import type { AuthContext } from '../../../identity/identity-service.ts'
import { formatVersion, type Microversion } from '../../microversion.ts'

const MAX_BYTES = 16 * 1024 * 1024

interface Entry {
  version: number
  outside: string
  json: Buffer
}

/** A server's views, one per variant; `used`: served since it last came round in eviction. */
interface Slot {
  views: Map<string, Entry>
  bytes: number
  used: boolean
}

export class ServerViewMemo {
  /** By server id, oldest first. Two levels: no key is built per server and request. */
  readonly #servers = new Map<string, Slot>()
  readonly #maxBytes: number
  #bytes = 0

  constructor(maxBytes = MAX_BYTES) {
    this.#maxBytes = maxBytes
  }

  /** The key of everything but the server: `answering` and what the caller is, at `v`. */
  static variant(base: string, answering: string, v: Microversion, ctx: AuthContext): string {
    const roles = ctx.roles.map((r) => r.name).sort()
    return `${base} ${answering} ${formatVersion(v)} ${ctx.isAdmin ? 'admin' : '-'} ${ctx.projectId ?? '-'} ${roles.join(',')}`
  }

  /** The view of server `id` as built for `variant` at `version` with `outside`, if kept. */
  get(variant: string, id: string, version: number, outside: string): Buffer | undefined {
    const slot = this.#servers.get(id)
    const e = slot?.views.get(variant)
    if (!e || e.version !== version || e.outside !== outside) return undefined
    slot!.used = true
    return e.json
  }

  set(variant: string, id: string, version: number, outside: string, json: Buffer): void {
    if (json.length > this.#maxBytes) return
    let slot = this.#servers.get(id)
    // A new server joins at the back, not yet used; a server already kept is being served again.
    if (!slot) this.#servers.set(id, (slot = { views: new Map(), bytes: 0, used: false }))
    else slot.used = true
    const old = slot.views.get(variant)
    const delta = json.length - (old?.json.length ?? 0)
    slot.views.set(variant, { version, outside, json })
    slot.bytes += delta
    this.#bytes += delta
    // Over the cap: servers out, oldest first, but one served since it last came round goes to
    // the back instead, once (the "clock" approximation of least recently used: a hit costs a flag).
    for (const [k, s] of this.#servers) {
      if (this.#bytes <= this.#maxBytes) break
      this.#servers.delete(k)
      if (s.used) {
        s.used = false
        this.#servers.set(k, s)
      } else {
        this.#bytes -= s.bytes
      }
    }
  }

  /** Views and bytes kept (tests). */
  get size(): { entries: number; bytes: number } {
    let entries = 0
    for (const s of this.#servers.values()) entries += s.views.size
    return { entries, bytes: this.#bytes }
  }
}
