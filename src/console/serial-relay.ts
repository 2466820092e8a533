// How a serial console proxy on one machine reaches a VM's serial port on another. A VM's serial
// port is a unix socket in its directory, as private as its disk; an agent host that runs
// `skiff agent` opens its consoles to the deployment's proxies through this relay instead: a TCP
// listener on the host's address (--migration-address, the address other hosts reach it at).
// A connection first sends one line, which proves it comes from the deployment (a MAC under a
// key derived from the sealing key every host has) and names the server, valid for a minute:
//   SKIFF-SERIAL/1 <server id> <expiry, ms since the epoch> <MAC, hex>\n
// then its bytes go both ways. Any other first line, or none within 5 s, is closed unanswered.
import { timingSafeEqual } from 'node:crypto'
import { connect, createServer, type Server, type Socket } from 'node:net'
import type { Logger } from 'pino'
import type { Sealer } from '../secrets.ts'

const PURPOSE = 'skiff serial relay'
const VERSION = 'SKIFF-SERIAL/1'
const VALID_MS = 60_000
const HELLO_TIMEOUT_MS = 5_000
const MAX_LINE = 512

/** `relay:<address>:<port>`: where a server's console is when its host runs a relay. */
export const relayEndpoint = (address: string, port: number) => `relay:${address.includes(':') ? `[${address}]` : address}:${port}`

const macOf = (sealer: Sealer, serverId: string, expires: number) => sealer.mac(PURPOSE, `${serverId} ${expires}`)

/** The proxy's side: a connection to the relay at `endpoint` that has asked for `serverId`'s console. */
export function connectRelay(endpoint: string, serverId: string, sealer: Sealer, now = Date.now()): Socket {
  const at = endpoint.slice('relay:'.length)
  const i = at.lastIndexOf(':')
  const socket = connect(Number(at.slice(i + 1)), at.slice(0, i).replace(/^\[|\]$/g, ''))
  const expires = now + VALID_MS
  socket.write(`${VERSION} ${serverId} ${expires} ${macOf(sealer, serverId, expires).toString('hex')}\n`)
  return socket
}

export interface SerialRelayOptions {
  address: string
  /** 0: any free port (the endpoint recorded for each server says which). */
  port: number
  sealer: Sealer
  /** The unix socket of the running VM of `serverId` on this host, if there is one. */
  serialSocket: (serverId: string) => string | null
  logger: Logger
  clock?: () => number
}

export interface SerialRelay {
  endpoint: string
  close(): Promise<void>
}

export async function startSerialRelay(o: SerialRelayOptions): Promise<SerialRelay> {
  const open = new Set<Socket>()
  const server: Server = createServer((client) => {
    open.add(client)
    client.on('close', () => open.delete(client))
    client.on('error', () => {})
    client.setTimeout(HELLO_TIMEOUT_MS, () => client.destroy())
    let hello = Buffer.alloc(0)
    const onData = (chunk: Buffer) => {
      hello = Buffer.concat([hello, chunk])
      const end = hello.indexOf(0x0a)
      if (end < 0) {
        if (hello.length > MAX_LINE) client.destroy()
        return
      }
      client.off('data', onData)
      client.setTimeout(0)
      const serverId = admitted(o, hello.subarray(0, end).toString('latin1'))
      const socketPath = serverId === undefined ? null : o.serialSocket(serverId)
      if (socketPath === null) {
        o.logger.warn({ remote: client.remoteAddress }, 'serial relay: a connection was refused')
        return client.destroy()
      }
      const port = connect(socketPath)
      port.on('error', () => client.destroy())
      client.on('close', () => port.destroy())
      port.on('close', () => client.destroy())
      const rest = hello.subarray(end + 1)
      if (rest.length > 0) port.write(rest)
      client.pipe(port)
      port.pipe(client)
      o.logger.info({ server: serverId, remote: client.remoteAddress }, 'serial relay: console joined')
    }
    client.on('data', onData)
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

/** The server a first line asks for, if it proves the deployment's key and has not expired. */
function admitted(o: SerialRelayOptions, line: string): string | undefined {
  const [version, serverId, expiresText, macHex, extra] = line.split(' ')
  if (version !== VERSION || !serverId || !expiresText || !macHex || extra !== undefined) return undefined
  const expires = Number(expiresText)
  if (!/^\d{1,16}$/.test(expiresText) || expires < (o.clock ?? Date.now)()) return undefined
  const want = macOf(o.sealer, serverId, expires)
  const got = Buffer.from(macHex, 'hex')
  return got.length === want.length && timingSafeEqual(got, want) ? serverId : undefined
}
