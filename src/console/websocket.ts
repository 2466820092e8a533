// A small RFC 6455 WebSocket: the server's handshake (for the serial proxy), a client's (for tests
// and tools), and the framing both share. Only what a byte stream needs: binary and text messages,
// fragmented or not, ping/pong and close; no extensions (permessage-deflate is never accepted).
import { createHash, randomBytes } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import { request } from 'node:http'
import type { Duplex } from 'node:stream'

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11'
/** A frame larger than this closes the connection (1009): a console never sends one. */
const MAX_MESSAGE = 1 << 20

export const acceptKey = (key: string) =>
  createHash('sha1')
    .update(key + GUID)
    .digest('base64')

export class WebSocketConnection {
  readonly #socket: Duplex
  /** A client masks what it sends; a server does not. */
  readonly #mask: boolean
  #buf: Buffer = Buffer.alloc(0)
  #fragments: Buffer[] = []
  #fragmentOpcode = 0
  #closed = false
  #onMessage: ((data: Buffer, binary: boolean) => void) | undefined
  /** Messages that came before anyone listened (a server's greeting in the handshake's packet). */
  #early: [Buffer, boolean][] = []
  onClose: () => void = () => {}

  set onMessage(fn: (data: Buffer, binary: boolean) => void) {
    this.#onMessage = fn
    for (const [data, binary] of this.#early.splice(0)) fn(data, binary)
  }

  constructor(socket: Duplex, opts: { mask: boolean; head?: Buffer }) {
    this.#socket = socket
    this.#mask = opts.mask
    socket.on('data', (chunk: Buffer) => this.#read(chunk))
    socket.on('close', () => this.#ended())
    socket.on('end', () => this.#ended())
    socket.on('error', () => this.#ended())
    if (opts.head?.length) queueMicrotask(() => this.#read(opts.head!))
  }

  get closed(): boolean {
    return this.#closed
  }

  send(data: Buffer | string): void {
    if (this.#closed) return
    const binary = typeof data !== 'string'
    this.#frame(binary ? 2 : 1, binary ? data : Buffer.from(data, 'utf8'))
  }

  close(code = 1000, reason = ''): void {
    if (this.#closed) return
    const body = Buffer.alloc(2 + Buffer.byteLength(reason))
    body.writeUInt16BE(code, 0)
    body.write(reason, 2)
    this.#frame(8, body)
    this.#closed = true
    this.#socket.end()
    this.onClose()
  }

  #ended() {
    if (this.#closed) return
    this.#closed = true
    this.#socket.destroy()
    this.onClose()
  }

  #frame(opcode: number, payload: Buffer) {
    const len = payload.length
    const head = len < 126 ? 2 : len < 65536 ? 4 : 10
    const out = Buffer.alloc(head + (this.#mask ? 4 : 0) + len)
    out[0] = 0x80 | opcode
    if (len < 126) out[1] = len
    else if (len < 65536) {
      out[1] = 126
      out.writeUInt16BE(len, 2)
    } else {
      out[1] = 127
      out.writeBigUInt64BE(BigInt(len), 2)
    }
    if (this.#mask) {
      out[1]! |= 0x80
      const key = randomBytes(4)
      key.copy(out, head)
      for (let i = 0; i < len; i++) out[head + 4 + i] = payload[i]! ^ key[i & 3]!
    } else payload.copy(out, head)
    this.#socket.write(out)
  }

  #read(chunk: Buffer) {
    this.#buf = this.#buf.length ? Buffer.concat([this.#buf, chunk]) : chunk
    for (;;) {
      const b = this.#buf
      if (b.length < 2) return
      const fin = (b[0]! & 0x80) !== 0
      const opcode = b[0]! & 0x0f
      const masked = (b[1]! & 0x80) !== 0
      let len = b[1]! & 0x7f
      let off = 2
      if (len === 126) {
        if (b.length < 4) return
        len = b.readUInt16BE(2)
        off = 4
      } else if (len === 127) {
        if (b.length < 10) return
        const big = b.readBigUInt64BE(2)
        if (big > BigInt(MAX_MESSAGE)) return this.close(1009, 'message too big')
        len = Number(big)
        off = 10
      }
      if (len > MAX_MESSAGE) return this.close(1009, 'message too big')
      const keyOff = off
      if (masked) off += 4
      if (b.length < off + len) return
      const payload = Buffer.from(b.subarray(off, off + len))
      if (masked) for (let i = 0; i < len; i++) payload[i]! ^= b[keyOff + (i & 3)]!
      this.#buf = b.subarray(off + len)
      if (this.#closed) return
      if (opcode === 8) {
        const code = payload.length >= 2 ? payload.readUInt16BE(0) : 1000
        this.close(code === 1005 || code === 1006 ? 1000 : code)
        return
      }
      if (opcode === 9) {
        this.#frame(10, payload)
        continue
      }
      if (opcode === 10) continue
      if (opcode === 0) {
        this.#fragments.push(payload)
      } else if (opcode === 1 || opcode === 2) {
        this.#fragmentOpcode = opcode
        this.#fragments = [payload]
      } else return this.close(1002, 'unknown opcode')
      if (fin) {
        const data = Buffer.concat(this.#fragments)
        this.#fragments = []
        if (data.length > MAX_MESSAGE) return this.close(1009, 'message too big')
        if (this.#onMessage) this.#onMessage(data, this.#fragmentOpcode === 2)
        else this.#early.push([data, this.#fragmentOpcode === 2])
      }
    }
  }
}

/**
 * The server's side of the handshake on an HTTP upgrade; undefined (and a 400 written) when the
 * request is no WebSocket handshake. Of the subprotocols a client offers, `binary` is chosen
 * (websockify's, which Nova's serial proxy speaks); none is needed.
 */
export function acceptWebSocket(req: IncomingMessage, socket: Duplex, head: Buffer): WebSocketConnection | undefined {
  const key = req.headers['sec-websocket-key']
  if (req.headers.upgrade?.toLowerCase() !== 'websocket' || typeof key !== 'string' || req.headers['sec-websocket-version'] !== '13') {
    socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n')
    return undefined
  }
  const offered = String(req.headers['sec-websocket-protocol'] ?? '')
    .split(',')
    .map((p) => p.trim())
  const protocol = offered.includes('binary') ? 'Sec-WebSocket-Protocol: binary\r\n' : ''
  socket.write(
    'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      `Sec-WebSocket-Accept: ${acceptKey(key)}\r\n${protocol}\r\n`,
  )
  return new WebSocketConnection(socket, { mask: false, head })
}

/** A client connection to a ws:// URL (tests, tools); rejects with the HTTP status when refused. */
export function connectWebSocket(url: string, opts: { protocols?: string[] } = {}): Promise<WebSocketConnection> {
  const u = new URL(url)
  if (u.protocol !== 'ws:') return Promise.reject(new Error(`not a ws:// URL: ${url}`))
  const key = randomBytes(16).toString('base64')
  return new Promise((resolve, reject) => {
    const req = request({
      host: u.hostname.replace(/^\[|\]$/g, ''),
      port: u.port || 80,
      path: u.pathname + u.search,
      headers: {
        Connection: 'Upgrade',
        Upgrade: 'websocket',
        'Sec-WebSocket-Key': key,
        'Sec-WebSocket-Version': '13',
        ...(opts.protocols ? { 'Sec-WebSocket-Protocol': opts.protocols.join(', ') } : {}),
      },
    })
    req.on('upgrade', (res, socket, head) => {
      if (res.headers['sec-websocket-accept'] !== acceptKey(key)) {
        socket.destroy()
        reject(new Error('bad Sec-WebSocket-Accept'))
        return
      }
      resolve(new WebSocketConnection(socket, { mask: true, head }))
    })
    req.on('response', (res) => {
      res.resume()
      reject(Object.assign(new Error(`WebSocket refused: HTTP ${res.statusCode}`), { status: res.statusCode }))
    })
    req.on('error', reject)
    req.end()
  })
}
