// The serial console, as Nova's serial_console and nova-serialproxy: the API hands out a ws://
// URL with a short-lived token (console_auth_tokens: only the token's sha256 is stored, with the
// server, its host and the expiry, so any process on the database can check it); the proxy, a
// WebSocket listener of `skiff serve` (--serial-proxy-port), checks the token and joins the
// browser to the VM's serial port where the agent recorded it (server_access.serial_endpoint:
// qemu's unix socket chardev on this machine, or the serial relay of the agent host that runs
// the VM, serial-relay.ts). Servers with no serial port (the simulated driver) get a console
// that says it is simulated, shows the console log and echoes what is typed.
import type { IncomingMessage, Server as HttpServer } from 'node:http'
import { createServer } from 'node:http'
import { connect } from 'node:net'
import type { Duplex } from 'node:stream'
import type { Logger } from 'pino'
import type { Sealer } from '../secrets.ts'
import type { ConsoleTokens } from '../store/console-tokens-repo.ts'
import type { ServersRepo } from '../store/servers-repo.ts'
import { connectRelay } from './serial-relay.ts'
import { acceptWebSocket, type WebSocketConnection } from './websocket.ts'

export interface SerialProxyDeps {
  tokens: ConsoleTokens
  repo: ServersRepo
  /** The console log of a server without a serial port (simulated), from its host's agent. */
  consoleLog: (server: { id: string; host: string }) => Promise<string>
  /** Proves this proxy to the agent hosts' serial relays. */
  sealer: Sealer
  logger: Logger
}

/** The serial proxy's HTTP server: every request is a WebSocket upgrade to one server's console. */
export function createSerialProxy(deps: SerialProxyDeps): HttpServer {
  const sockets = new Set<Duplex>()
  const server = createServer((_req, res) => {
    res.writeHead(426, { 'content-type': 'text/plain', upgrade: 'websocket' })
    res.end('This is the serial console proxy: connect with a WebSocket and the token of a console URL.\n')
  })
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => {})
    void handle(deps, req, socket, head).catch((err: Error) => {
      deps.logger.warn({ err: err.message }, 'serial console connection failed')
      socket.destroy()
    })
  })
  server.on('close', () => {
    for (const s of sockets) s.destroy()
  })
  // Open consoles do not hold `close()` back: it ends them.
  const close = server.close.bind(server)
  server.close = ((cb?: (err?: Error) => void) => {
    for (const s of sockets) s.destroy()
    return close(cb)
  }) as typeof server.close
  return server
}

function refuse(socket: Duplex, status: number, reason: string, message: string) {
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Type: text/plain\r\n` +
      `Content-Length: ${Buffer.byteLength(message) + 1}\r\n\r\n${message}\n`,
  )
}

async function handle(deps: SerialProxyDeps, req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
  const token = new URL(req.url ?? '/', 'ws://proxy').searchParams.get('token') ?? ''
  const t = await deps.tokens.check(token)
  // Nova's InvalidToken, without the token itself (it is a secret until it expires).
  if (!t) return refuse(socket, 401, 'Unauthorized', "The token '***' is invalid or has expired")
  const server = await deps.repo.get(t.serverId)
  // The server is gone or moved to another host since: the token was for where it was.
  if (!server || server.host !== t.host) return refuse(socket, 401, 'Unauthorized', "The token '***' is invalid or has expired")
  const access = await deps.repo.access(server.id)
  const endpoint = access?.serial_endpoint
  acceptWebSocket(req, socket, head, (ws) => {
    deps.logger.info({ server: server.id, host: t.host, endpoint: endpoint ?? 'simulated' }, 'serial console opened')
    if (endpoint?.startsWith('unix:')) return joinUnix(ws, endpoint.slice('unix:'.length), deps.logger)
    if (endpoint?.startsWith('relay:')) return joinRelay(ws, endpoint, server.id, deps)
    if (endpoint?.startsWith('tcp:')) {
      const at = endpoint.slice('tcp:'.length)
      const i = at.lastIndexOf(':')
      return joinSocket(ws, connect(Number(at.slice(i + 1)), at.slice(0, i).replace(/^\[|\]$/g, '')), deps.logger)
    }
    void simulatedConsole(ws, { id: server.id, host: t.host }, deps)
  })
}

function joinUnix(ws: WebSocketConnection, path: string, logger: Logger) {
  joinSocket(ws, connect(path), logger)
}

/** Through the relay of the VM's host, once it has taken our answer to its challenge. */
function joinRelay(ws: WebSocketConnection, endpoint: string, serverId: string, deps: SerialProxyDeps) {
  // What is typed meanwhile waits in `ws` (its messages are kept until onMessage is set).
  let closed = false
  ws.onClose = () => (closed = true)
  connectRelay(endpoint, serverId, deps.sealer).then(
    (port) => {
      if (closed) return port.destroy()
      joinSocket(ws, port, deps.logger)
      port.resume()
    },
    (err: Error) => {
      deps.logger.warn({ server: serverId, endpoint, err: err.message }, 'serial relay unreachable')
      ws.close(1011, 'serial port unreachable')
    },
  )
}

/** Bytes both ways until either side ends. */
function joinSocket(ws: WebSocketConnection, port: Duplex, logger: Logger) {
  port.on('data', (chunk: Buffer) => ws.send(chunk))
  port.on('error', (err) => {
    logger.warn({ err: err.message }, 'serial port unreachable')
    ws.close(1011, 'serial port unreachable')
  })
  port.on('close', () => ws.close(1000, 'serial port closed'))
  ws.onMessage = (data) => port.write(data)
  ws.onClose = () => port.destroy()
}

/** The simulated driver's console: it says so, shows the console log, and echoes each line typed. */
async function simulatedConsole(ws: WebSocketConnection, server: { id: string; host: string }, deps: SerialProxyDeps) {
  const crlf = (s: string) => s.replace(/\r?\n/g, '\r\n')
  ws.send(
    Buffer.from(
      crlf(
        `Skiff serial console of server ${server.id} on host ${server.host}.\n` +
          'This host runs the simulated driver: there is no VM and no serial port; this console is simulated.\n' +
          'Its console log:\n',
      ),
    ),
  )
  const log = await deps.consoleLog(server).catch((err: Error) => `(console log unavailable: ${err.message})`)
  ws.send(Buffer.from(crlf(`${log}\n`)))
  ws.send(Buffer.from('simulated login: '))
  ws.onMessage = (data) => {
    // Echo as a terminal line discipline would: a carriage return ends the line.
    ws.send(Buffer.from(data.toString('utf8').replace(/\r(?!\n)/g, '\r\n')))
  }
}
