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
// Bounded: at most MAX_BYTES of JSON, the least recently used entries out first.
import type { AuthContext } from '../../../identity/identity-service.ts'
import { formatVersion, type Microversion } from '../../microversion.ts'

const MAX_BYTES = 16 * 1024 * 1024

interface Entry {
  version: number
  outside: string
  json: Buffer
}

export class ServerViewMemo {
  readonly #entries = new Map<string, Entry>()
  readonly #maxBytes: number
  #bytes = 0

  constructor(maxBytes = MAX_BYTES) {
    this.#maxBytes = maxBytes
  }

  /** The key of everything but the server: `answering` and what the caller is, at `v`. */
  static variant(base: string, answering: string, v: Microversion, ctx: AuthContext): string {
    const roles = ctx.roles.map((r) => r.name).sort()
    return `${base} ${answering} ${formatVersion(v)} ${ctx.isAdmin ? 'admin' : '-'} ${ctx.projectId ?? '-'} ${roles.join(',')} `
  }

  /** The view of server `id` as built for `variant` at `version` with `outside`, if kept. */
  get(variant: string, id: string, version: number, outside: string): Buffer | undefined {
    const key = variant + id
    const e = this.#entries.get(key)
    if (!e || e.version !== version || e.outside !== outside) return undefined
    // Most recently used last.
    this.#entries.delete(key)
    this.#entries.set(key, e)
    return e.json
  }

  set(variant: string, id: string, version: number, outside: string, json: Buffer): void {
    if (json.length > this.#maxBytes) return
    const key = variant + id
    const old = this.#entries.get(key)
    if (old) {
      this.#bytes -= old.json.length
      this.#entries.delete(key)
    }
    this.#entries.set(key, { version, outside, json })
    this.#bytes += json.length
    for (const [k, e] of this.#entries) {
      if (this.#bytes <= this.#maxBytes) break
      this.#entries.delete(k)
      this.#bytes -= e.json.length
    }
  }

  /** Entries and bytes kept (tests). */
  get size(): { entries: number; bytes: number } {
    return { entries: this.#entries.size, bytes: this.#bytes }
  }
}
