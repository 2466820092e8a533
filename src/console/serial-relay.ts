// How a serial console proxy on one machine reaches a VM's serial port on another. A VM's serial
// port is a unix socket in its directory, as private as its disk; an agent host that runs
// `skiff agent` opens its consoles to the deployment's proxies through this relay instead: a TCP
// listener on the host's address (--migration-address, the address other hosts reach it at).
//
// The protocol, challenge-response so that an answer seen on the wire is worth nothing later:
//   relay → proxy  SKIFF-SERIAL/2 <nonce: 32 random bytes of this connection, hex>\n
//   proxy → relay  SKIFF-SERIAL/2 <server id> <MAC, hex>\n
// MAC = HMAC-SHA256 of "skiff serial relay answer <nonce hex> <server id>", under the key HKDF
// derives from the deployment's sealing key (which every host has) for "skiff serial relay"
// (Sealer.mac). The relay checks it in constant time and then joins the connection to that
// server's serial port, bytes both ways. A wrong MAC, another version, a server with no VM on this
// host, a line over 256 bytes, or no whole answer within 5 s of connecting (a deadline from the
// accept, not an idle timer: bytes trickled in do not extend it) closes the connection before any
// byte of console; the log says only the server id (when well formed) and the remote address.
// The proxy holds the relay to the same bounds for the challenge line.
import { randomBytes, timingSafeEqual } from 'node:crypto'
import { connect, createServer, type Server, type Socket } from 'node:net'
import type { Logger } from 'pino'
import type { Sealer } from '../secrets.ts'

const PURPOSE = 'skiff serial relay'
const VERSION = 'SKIFF-SERIAL/2'
const NONCE_BYTES = 32
const MAX_LINE = 256
const ANSWER_TIMEOUT_MS = 5_000
/** Connections that have not answered yet, at most: more are closed at once. */
const MAX_UNANSWERED = 64
const SERVER_ID = /^[A-Za-z0-9-]{1,64}$/
/** A nonce or a MAC: 32 bytes, in lowercase hex. */
const HEX32 = /^[0-9a-f]{64}$/

/** `relay:<address>:<port>`: where a server's console is when its host runs a relay. */
export const relayEndpoint = (address: string, port: number) => `relay:${address.includes(':') ? `[${address}]` : address}:${port}`

/** The MAC that answers `nonceHex` for `serverId`. */
export const relayAnswerMac = (sealer: Sealer, nonceHex: string, serverId: string) =>
  sealer.mac(PURPOSE, `${PURPOSE} answer ${nonceHex} ${serverId}`)

/**
 * The proxy's side: a connection to the relay at `endpoint` that has answered its challenge for
 * `serverId`'s console. It comes paused, every byte after the challenge unread; it rejects if the
 * relay sends no challenge line within the deadline (or a malformed one).
 */
export async function connectRelay(endpoint: string, serverId: string, sealer: Sealer, timeoutMs = ANSWER_TIMEOUT_MS): Promise<Socket> {
  const at = endpoint.slice('relay:'.length)
  const i = at.lastIndexOf(':')
  const socket = connect(Number(at.slice(i + 1)), at.slice(0, i).replace(/^\[|\]$/g, ''))
  try {
    const [version, nonceHex, extra] = (await readLine(socket, timeoutMs)).split(' ')
    if (version !== VERSION || !nonceHex || !HEX32.test(nonceHex) || extra !== undefined) {
      throw new Error('the serial relay sent no challenge of this version')
    }
    socket.write(`${VERSION} ${serverId} ${relayAnswerMac(sealer, nonceHex, serverId).toString('hex')}\n`)
    return socket
  } catch (err) {
    socket.destroy()
    throw err
  }
}

export interface SerialRelayOptions {
  address: string
  /** 0: any free port (the endpoint recorded for each server says which). */
  port: number
  sealer: Sealer
  /** The unix socket of the running VM of `serverId` on this host, if there is one. */
  serialSocket: (serverId: string) => string | null
  logger: Logger
  /** How long a connection has to answer the challenge, from its accept (5 s). */
  answerTimeoutMs?: number
}

export interface SerialRelay {
  endpoint: string
  close(): Promise<void>
}

export async function startSerialRelay(o: SerialRelayOptions): Promise<SerialRelay> {
  const open = new Set<Socket>()
  let unanswered = 0
  const server: Server = createServer((client) => {
    open.add(client)
    client.on('close', () => open.delete(client))
    client.on('error', () => {})
    if (unanswered >= MAX_UNANSWERED) return client.destroy()
    unanswered++
    const nonceHex = randomBytes(NONCE_BYTES).toString('hex')
    client.write(`${VERSION} ${nonceHex}\n`)
    const refuse = (serverId: string | undefined, why: string) => {
      o.logger.warn({ server: serverId ?? null, remote: client.remoteAddress }, `serial relay: a connection was refused (${why})`)
      client.destroy()
    }
    readLine(client, o.answerTimeoutMs ?? ANSWER_TIMEOUT_MS).then(
      (line) => {
        unanswered--
        const [version, serverId, macHex, extra] = line.split(' ')
        const wellFormed = serverId !== undefined && SERVER_ID.test(serverId)
        if (version !== VERSION || !wellFormed || !macHex || !HEX32.test(macHex) || extra !== undefined) {
          return refuse(wellFormed ? serverId : undefined, 'not an answer')
        }
        if (!timingSafeEqual(Buffer.from(macHex, 'hex'), relayAnswerMac(o.sealer, nonceHex, serverId))) {
          return refuse(serverId, 'wrong answer')
        }
        const socketPath = o.serialSocket(serverId)
        if (socketPath === null) return refuse(serverId, 'no VM of that server on this host')
        const port = connect(socketPath)
        port.on('error', () => client.destroy())
        client.on('close', () => port.destroy())
        port.on('close', () => client.destroy())
        client.pipe(port)
        port.pipe(client)
        o.logger.info({ server: serverId, remote: client.remoteAddress }, 'serial relay: console joined')
      },
      (err: Error) => {
        unanswered--
        refuse(undefined, err.message)
      },
    )
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(o.port, o.address, () => resolve())
  })
  const { port } = server.address() as { port: number }
  return {
    endpoint: relayEndpoint(o.address, port),
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of open) s.destroy()
        server.close(() => resolve())
      }),
  }
}

/**
 * The first line `socket` sends (without its \n), within `timeoutMs` of now and MAX_LINE bytes;
 * the socket is then left paused with the bytes after the line unread. Rejects otherwise (the
 * caller closes the socket).
 */
function readLine(socket: Socket, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = Buffer.alloc(0)
    const finish = (err: Error | null, line = '') => {
      clearTimeout(deadline)
      socket.off('data', onData)
      socket.off('close', onClose)
      socket.off('error', onError)
      if (err) return reject(err)
      socket.pause()
      resolve(line)
    }
    const deadline = setTimeout(() => finish(new Error('no answer in time')), timeoutMs)
    const onData = (chunk: Buffer) => {
      got = Buffer.concat([got, chunk])
      const end = got.indexOf(0x0a)
      if ((end < 0 ? got.length : end) > MAX_LINE) return finish(new Error('line too long'))
      if (end < 0) return
      const rest = got.subarray(end + 1)
      finish(null, got.subarray(0, end).toString('latin1'))
      if (rest.length > 0) socket.unshift(rest)
    }
    const onClose = () => finish(new Error('closed before a whole line'))
    const onError = (err: Error) => finish(err)
    socket.on('data', onData)
    socket.on('close', onClose)
    socket.on('error', onError)
  })
}
