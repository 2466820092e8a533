// A QMP client over node:net: one connection, the greeting, capability negotiation, commands
// matched to answers by id, and events. QEMU serves one client per QMP socket at a time, so the
// driver holds at most one connection per VM, and SHUTDOWN events reach only that client.
import { createConnection, type Socket } from 'node:net'

export interface QmpEvent {
  event: string
  data?: Record<string, unknown>
  timestamp?: { seconds: number; microseconds: number }
}

/** An error answer from QEMU (`{"error": {"class": ..., "desc": ...}}`). */
export class QmpError extends Error {
  constructor(
    readonly errorClass: string,
    desc: string,
  ) {
    super(`${errorClass}: ${desc}`)
  }
}

export class QmpClosed extends Error {
  constructor() {
    super('QMP connection closed')
  }
}

interface Pending {
  resolve: (v: unknown) => void
  reject: (e: Error) => void
}

export class QmpClient {
  readonly #sock: Socket
  readonly #pending = new Map<number, Pending>()
  readonly #listeners = new Set<(e: QmpEvent) => void>()
  readonly #closed: Promise<void>
  #nextId = 1
  #buf = ''
  #isClosed = false

  private constructor(sock: Socket) {
    this.#sock = sock
    this.#closed = new Promise((resolve) =>
      sock.once('close', () => {
        this.#isClosed = true
        for (const p of this.#pending.values()) p.reject(new QmpClosed())
        this.#pending.clear()
        resolve()
      }),
    )
  }

  /** Connect to a QMP unix socket and negotiate capabilities; rejects after `timeoutMs`. */
  static async connect(socketPath: string, timeoutMs = 5000): Promise<QmpClient> {
    const sock = createConnection(socketPath)
    sock.setEncoding('utf8')
    const client = new QmpClient(sock)
    const greeting = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        sock.destroy()
        reject(new Error(`QMP ${socketPath}: no greeting within ${timeoutMs} ms`))
      }, timeoutMs)
      sock.once('error', (e) => {
        clearTimeout(timer)
        reject(e)
      })
      client.#onGreeting = () => {
        clearTimeout(timer)
        resolve()
      }
      sock.once('close', () => {
        clearTimeout(timer)
        reject(new QmpClosed())
      })
    })
    sock.on('error', () => {}) // later errors surface as 'close', which fails what is pending
    sock.on('data', (chunk: string) => client.#onData(chunk))
    await greeting
    await client.execute('qmp_capabilities')
    return client
  }

  #onGreeting: () => void = () => {}

  #onData(chunk: string) {
    this.#buf += chunk
    for (let i = this.#buf.indexOf('\n'); i >= 0; i = this.#buf.indexOf('\n')) {
      const line = this.#buf.slice(0, i).trim()
      this.#buf = this.#buf.slice(i + 1)
      if (!line) continue
      let msg: Record<string, unknown>
      try {
        msg = JSON.parse(line) as Record<string, unknown>
      } catch {
        continue
      }
      if ('QMP' in msg) {
        this.#onGreeting()
      } else if (typeof msg.event === 'string') {
        for (const l of this.#listeners) l(msg as unknown as QmpEvent)
      } else if (typeof msg.id === 'number') {
        const p = this.#pending.get(msg.id)
        if (!p) continue
        this.#pending.delete(msg.id)
        const err = msg.error as { class?: string; desc?: string } | undefined
        if (err) p.reject(new QmpError(err.class ?? 'GenericError', err.desc ?? 'unknown error'))
        else p.resolve(msg.return)
      }
    }
  }

  get closed(): boolean {
    return this.#isClosed
  }

  execute<T = unknown>(command: string, args?: Record<string, unknown>): Promise<T> {
    if (this.#isClosed) return Promise.reject(new QmpClosed())
    const id = this.#nextId++
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject })
      this.#sock.write(JSON.stringify(args ? { execute: command, arguments: args, id } : { execute: command, id }) + '\n')
    })
  }

  /** Call `listener` for every event until the returned function is called. */
  onEvent(listener: (e: QmpEvent) => void): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  /** Resolve with the next event named `name`, or reject after `timeoutMs` or on close. */
  waitEvent(name: string, timeoutMs: number): Promise<QmpEvent> {
    return new Promise((resolve, reject) => {
      const off = this.onEvent((e) => {
        if (e.event !== name) return
        clearTimeout(timer)
        off()
        resolve(e)
      })
      const timer = setTimeout(() => {
        off()
        reject(new Error(`no ${name} event within ${timeoutMs} ms`))
      }, timeoutMs)
      void this.#closed.then(() => {
        clearTimeout(timer)
        off()
        reject(new QmpClosed())
      })
    })
  }

  /** True once QEMU closed the connection (it exits), false if it is still open after `timeoutMs`. */
  async waitClosed(timeoutMs: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs)
    })
    const r = await Promise.race([this.#closed.then(() => true), timeout])
    clearTimeout(timer)
    return r
  }

  close(): void {
    this.#sock.destroy()
  }
}
