// The serial relay of an agent host (`skiff agent` with the qemu driver): a serial proxy on another
// machine reaches a VM's serial port (a unix socket on the agent's machine) through it. Here the
// VM's port is a unix socket server that answers like a getty; the proxy is the test Skiff's,
// joined to the relay by the endpoint recorded for the server, as an agent records it.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { connect, createServer, type Server, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, before, test } from 'node:test'
import pino from 'pino'
import { connectRelay, startSerialRelay, type SerialRelay } from '../../src/console/serial-relay.ts'
import { connectWebSocket } from '../../src/console/websocket.ts'
import { Sealer } from '../../src/secrets.ts'
import { ServersRepo } from '../../src/store/servers-repo.ts'
import { activeServer, startTestSkiff, waitFor, type TestSkiff } from '../helpers/skiff.ts'

let skiff: TestSkiff
let demo: string
let id: string
let relay: SerialRelay
let vmPort: Server
let sealer: Sealer
const dir = mkdtempSync(path.join(tmpdir(), 'skiff-relay-'))

before(async () => {
  skiff = await startTestSkiff({}, { serialProxy: true })
  demo = await skiff.token('demo')
  id = await activeServer(skiff, demo, 'relayed')
  // The VM's serial port: a login prompt, then every line typed echoed back.
  const socketPath = path.join(dir, 'serial.sock')
  vmPort = createServer((c) => {
    c.write('rescue login: ')
    c.on('data', (b: Buffer) => c.write(`got:${b.toString('utf8')}`))
    c.on('error', () => {})
  })
  await new Promise<void>((resolve) => vmPort.listen(socketPath, resolve))
  // The deployment's key, as every host has it (the test Skiff's data dir holds it).
  sealer = Sealer.load(skiff.dataDir, undefined).sealer
  relay = await startSerialRelay({
    address: '127.0.0.1',
    port: 0,
    sealer,
    serialSocket: (serverId) => (serverId === id ? socketPath : null),
    logger: pino({ level: 'silent' }),
  })
  await new ServersRepo(skiff.store.db, skiff.clock).recordAccess(id, {
    host: '127.0.0.1',
    port: 22,
    hostKeyFingerprint: null,
    serialEndpoint: relay.endpoint,
  })
})
after(async () => {
  await relay?.close()
  vmPort?.close()
  await skiff.close()
  rmSync(dir, { recursive: true, force: true })
})

/** What the relay sends back on a raw connection after `hello`, until it closes the connection. */
function answerTo(hello: Buffer | string): Promise<string> {
  const at = relay.endpoint.slice('relay:'.length)
  return new Promise((resolve) => {
    const s: Socket = connect(Number(at.slice(at.lastIndexOf(':') + 1)), '127.0.0.1')
    let out = ''
    s.on('data', (b: Buffer) => (out += b.toString('utf8')))
    s.on('error', () => {})
    s.on('close', () => resolve(out))
    s.write(hello)
  })
}

test('the console URL reaches the VM on the relay host: its prompt, and what is typed', async () => {
  const res = await skiff.compute('POST', `/v2.1/servers/${id}/remote-consoles`, {
    token: demo,
    headers: { 'openstack-api-version': 'compute 2.6' },
    body: { remote_console: { protocol: 'serial', type: 'serial' } },
  })
  assert.equal(res.statusCode, 200, res.body)
  const ws = await connectWebSocket(res.json().remote_console.url as string)
  const got = { out: '' }
  ws.onMessage = (data) => (got.out += data.toString('utf8'))
  await waitFor('the login prompt', async () => got.out.includes('rescue login: '), 5000)
  ws.send(Buffer.from('root\r'))
  await waitFor('the echo', async () => got.out.includes('got:root'), 5000)
  ws.close()
})

test('the relay answers nothing to a connection that does not prove the deployment’s key', async () => {
  const expires = Date.now() + 60_000
  const valid = (serverId: string, key: Sealer) =>
    `SKIFF-SERIAL/1 ${serverId} ${expires} ${key.mac('skiff serial relay', `${serverId} ${expires}`).toString('hex')}\n`
  const stranger = new Sealer(randomBytes(32))
  const expired = `SKIFF-SERIAL/1 ${id} ${Date.now() - 1} ${sealer.mac('skiff serial relay', `${id} ${Date.now() - 1}`).toString('hex')}\n`
  for (const [why, hello] of [
    ['another deployment’s key', valid(id, stranger)],
    [
      'a MAC for another server',
      valid(id, sealer).replace(
        id,
        id.replace(/^./, (c) => (c === 'a' ? 'b' : 'a')),
      ),
    ],
    ['expired', expired],
    ['a server this host has no VM of', valid('00000000-0000-4000-8000-000000000000', sealer)],
    ['no MAC', `SKIFF-SERIAL/1 ${id} ${expires}\n`],
    ['another protocol', `GET / HTTP/1.1\r\nHost: x\r\n\r\n`],
    ['a line longer than any hello, never ended', 'A'.repeat(4096)],
  ] as const) {
    assert.equal(await answerTo(hello), '', why)
  }
  // The same hello with the deployment's key is let through.
  assert.match(await firstBytes(connectRelay(relay.endpoint, id, sealer)), /^rescue login: /)
})

function firstBytes(s: Socket): Promise<string> {
  return new Promise((resolve, reject) => {
    s.once('data', (b: Buffer) => {
      resolve(b.toString('utf8'))
      s.destroy()
    })
    s.once('error', reject)
  })
}
