// WebSockets for the serial console: `ws` (the ecosystem's well-kept implementation: handshake,
// framing, masking, fragments, ping/pong, close) behind the small interface the proxy and the
// tests use: messages as Buffers with their kind, messages that come before anyone listens kept.
import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import { WebSocket, WebSocketServer, type RawData } from 'ws'

/** A message larger than this closes the connection (1009): a console never sends one. */
const MAX_MESSAGE = 1 << 20

// Of the subprotocols a client offers, `binary` is chosen (websockify's, which Nova's serial
// proxy speaks); none is needed.
const upgrades = new WebSocketServer({
  noServer: true,
  maxPayload: MAX_MESSAGE,
  perMessageDeflate: false,
  handleProtocols: (offered) => (offered.has('binary') ? 'binary' : false),
})

const asBuffer = (data: RawData): Buffer => (Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer))

export class WebSocketConnection {
  readonly #ws: WebSocket
  #onMessage: ((data: Buffer, binary: boolean) => void) | undefined
  /** Messages that came before anyone listened (a server's greeting right after the handshake). */
  #early: [Buffer, boolean][] = []
  onClose: () => void = () => {}

  constructor(ws: WebSocket) {
    this.#ws = ws
    ws.on('message', (data: RawData, binary: boolean) => {
      const b = asBuffer(data)
      if (this.#onMessage) this.#onMessage(b, binary)
      else this.#early.push([b, binary])
    })
    ws.on('close', () => this.onClose())
    ws.on('error', () => {}) // 'close' follows
  }

  set onMessage(fn: (data: Buffer, binary: boolean) => void) {
    this.#onMessage = fn
    for (const [data, binary] of this.#early.splice(0)) fn(data, binary)
  }

  /** The subprotocol the server chose ('' for none). */
  get protocol(): string {
    return this.#ws.protocol
  }

  get closed(): boolean {
    return this.#ws.readyState === WebSocket.CLOSING || this.#ws.readyState === WebSocket.CLOSED
  }

  send(data: Buffer | string): void {
    if (this.#ws.readyState === WebSocket.OPEN) this.#ws.send(data, { binary: typeof data !== 'string' })
  }

  close(code = 1000, reason = ''): void {
    if (!this.closed) this.#ws.close(code, reason)
  }
}

/**
 * The server's side of the handshake on an HTTP upgrade; `open` gets the connection. A request
 * that is no WebSocket handshake is answered 400 and `open` is never called.
 */
export function acceptWebSocket(req: IncomingMessage, socket: Duplex, head: Buffer, open: (ws: WebSocketConnection) => void): void {
  upgrades.handleUpgrade(req, socket, head, (ws) => open(new WebSocketConnection(ws)))
}

/** A client connection to a ws:// URL (tests, tools); rejects with the HTTP status when refused. */
export function connectWebSocket(url: string, opts: { protocols?: string[] } = {}): Promise<WebSocketConnection> {
  if (!url.startsWith('ws://')) return Promise.reject(new Error(`not a ws:// URL: ${url}`))
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, opts.protocols ?? [], { perMessageDeflate: false, maxPayload: MAX_MESSAGE })
    const conn = new WebSocketConnection(ws)
    ws.once('open', () => resolve(conn))
    ws.once('unexpected-response', (_req, res) => {
      res.resume()
      ws.terminate()
      reject(Object.assign(new Error(`WebSocket refused: HTTP ${res.statusCode}`), { status: res.statusCode }))
    })
    ws.once('error', reject)
  })
}
