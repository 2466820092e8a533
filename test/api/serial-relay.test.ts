// The serial relay of an agent host (`skiff agent` with the qemu driver): a serial proxy on another
// machine reaches a VM's serial port (a unix socket on the agent's machine) through it. Here the
// VM's port is a unix socket server that answers like a getty; the proxy is the test Skiff's,
// joined to the relay by the endpoint recorded for the server, as an agent records it. The rest
// speak the relay's protocol by hand (its challenge, then an answer) as a proxy or an eavesdropper.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, before, test } from 'node:test'
import pino from 'pino'
import { connectRelay, relayAnswerMac, relayEndpoint, startSerialRelay, type SerialRelay } from '../../src/console/serial-relay.ts'
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
let socketPath: string
/** What the relay logged (pino's JSON lines, parsed). */
const logged: Record<string, unknown>[] = []
const logger = pino({ level: 'info' }, { write: (line: string) => void logged.push(JSON.parse(line) as Record<string, unknown>) })
const dir = mkdtempSync(path.join(tmpdir(), 'skiff-relay-'))

before(async () => {
  skiff = await startTestSkiff({}, { serialProxy: true })
  demo = await skiff.token('demo')
  id = await activeServer(skiff, demo, 'relayed')
  // The VM's serial port: a login prompt, then every line typed echoed back.
  socketPath = path.join(dir, 'serial.sock')
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
    logger,
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

/** A connection to a relay spoken to by hand: its challenge, and everything it sends after that until it closes. */
interface Raw {
  socket: Socket
  nonce: string
  /** The bytes after the challenge line, when the relay has closed the connection. */
  after: Promise<string>
  /** When the connection closed (Date.now()). */
  closedAt: Promise<number>
}

async function raw(endpoint = relay.endpoint): Promise<Raw> {
  const at = endpoint.slice('relay:'.length)
  const socket = connect(Number(at.slice(at.lastIndexOf(':') + 1)), '127.0.0.1')
  socket.on('error', () => {})
  let got = ''
  let nonceSeen: (nonce: string) => void = () => {}
  const nonce = new Promise<string>((resolve) => (nonceSeen = resolve))
  socket.on('data', (b: Buffer) => {
    got += b.toString('latin1')
    const end = got.indexOf('\n')
    if (end >= 0) nonceSeen(got.slice(0, end))
  })
  const closedAt = new Promise<number>((resolve) => socket.on('close', () => resolve(Date.now())))
  const challenge = await Promise.race([nonce, closedAt.then(() => '(closed)')])
  const m = /^SKIFF-SERIAL\/2 ([0-9a-f]{64})$/.exec(challenge)
  assert.ok(m, `a challenge line: ${JSON.stringify(challenge)}`)
  const after = closedAt.then(() => got.slice(got.indexOf('\n') + 1))
  return { socket, nonce: m[1] as string, after, closedAt }
}

/** The answer a proxy with `key` gives to `nonce` for `serverId`. */
const answer = (nonce: string, serverId: string, key = sealer) =>
  `SKIFF-SERIAL/2 ${serverId} ${relayAnswerMac(key, nonce, serverId).toString('hex')}\n`

/** The first bytes that come on `s` after `sent`, then `s` is closed. */
function firstBytes(s: Socket, sent = ''): Promise<string> {
  return new Promise((resolve, reject) => {
    s.once('data', (b: Buffer) => {
      resolve(b.toString('utf8'))
      s.destroy()
    })
    s.once('error', reject)
    s.once('close', () => resolve('(closed)'))
    if (sent) s.write(sent)
  })
}

test('a right answer gets the console; the same answer on another connection gets nothing', async () => {
  const first = await raw()
  assert.match(await firstBytes(first.socket, answer(first.nonce, id)), /^rescue login: /)
  // An eavesdropper replays the answer it saw: the relay asked another nonce.
  const second = await raw()
  assert.notEqual(second.nonce, first.nonce)
  second.socket.write(answer(first.nonce, id))
  assert.equal(await second.after, '', 'not a byte of console')
  // The proxy's side, as the serial proxy uses it: paused, the console's bytes unread.
  const proxied = await connectRelay(relay.endpoint, id, sealer)
  assert.match(await firstBytes(proxied.resume()), /^rescue login: /)
})

test('the relay closes, without a byte of console, a connection whose answer is wrong', async () => {
  const other = id.replace(/^./, (c) => (c === 'a' ? 'b' : 'a'))
  const noVm = '00000000-0000-4000-8000-000000000000'
  const cases: [string, (nonce: string) => string][] = [
    ['another deployment’s key', (n) => answer(n, id, new Sealer(randomBytes(32)))],
    ['the MAC for this server, naming another', (n) => answer(n, id).replace(id, other)],
    ['the MAC for another server, naming this one', (n) => answer(n, other).replace(other, id)],
    ['a right answer for a server this host has no VM of', (n) => answer(n, noVm)],
    ['no MAC', () => `SKIFF-SERIAL/2 ${id}\n`],
    ['the first version’s hello', () => `SKIFF-SERIAL/1 ${id} ${Date.now() + 60_000} ${'0'.repeat(64)}\n`],
    ['another protocol', () => 'GET / HTTP/1.1\r\nHost: x\r\n\r\n'],
  ]
  for (const [why, line] of cases) {
    const c = await raw()
    const mac = line(c.nonce).split(' ')[2]?.trim()
    logged.length = 0
    c.socket.write(line(c.nonce))
    assert.equal(await c.after, '', why)
    // Its log line names no more than the server (when well formed) and where it came from.
    const refusal = logged.find((l) => String(l.msg).startsWith('serial relay: a connection was refused'))
    assert.ok(refusal, `${why}: logged`)
    assert.equal(refusal.remote, '127.0.0.1', why)
    const text = JSON.stringify(refusal)
    for (const secret of [c.nonce, mac].filter((s) => s && s.length >= 32)) assert.ok(!text.includes(secret as string), `${why}: ${text}`)
    assert.deepEqual(
      Object.keys(refusal).filter((k) => !['level', 'time', 'pid', 'hostname', 'msg'].includes(k)),
      ['server', 'remote'],
      why,
    )
  }
})

test('a line longer than any answer is cut at once; a silent or trickling client at the deadline', async () => {
  // The test relay gives 5 s to answer: cut for its length, long before that.
  for (const [why, line] of [
    ['never ended', 'A'.repeat(4096)],
    ['ended after 300 bytes', `SKIFF-SERIAL/2 ${id} ${'a'.repeat(300)}\n`],
  ] as const) {
    const c = await raw()
    const t0 = Date.now()
    c.socket.write(line)
    assert.equal(await c.after, '', why)
    assert.ok((await c.closedAt) - t0 < 2000, `${why}: cut after ${(await c.closedAt) - t0} ms`)
  }
  // A relay that gives 600 ms: one client says nothing, another sends the start of an answer a
  // byte at a time (each byte would reset an idle timer; it does not move a deadline).
  const quick = await startSerialRelay({
    address: '127.0.0.1',
    port: 0,
    sealer,
    serialSocket: (serverId) => (serverId === id ? socketPath : null),
    logger,
    answerTimeoutMs: 600,
  })
  try {
    const t0 = Date.now()
    const silent = await raw(quick.endpoint)
    const trickling = await raw(quick.endpoint)
    const good = answer(trickling.nonce, id)
    let sent = 0
    const drip = setInterval(() => sent < good.length - 1 && trickling.socket.write(good[sent++] as string), 50)
    try {
      for (const [why, c] of [
        ['silent', silent],
        ['trickling', trickling],
      ] as const) {
        assert.equal(await c.after, '', why)
        const took = (await c.closedAt) - t0
        assert.ok(took >= 600 && took < 3000, `${why}: cut after ${took} ms`)
      }
    } finally {
      clearInterval(drip)
    }
    assert.ok(sent >= 5, `the trickling client sent ${sent} bytes before the deadline`)
  } finally {
    await quick.close()
  }
})

test('the proxy holds a relay to the same bounds: no challenge in time, or an endless line, is an error', async () => {
  // A listener where a relay should be: first it says nothing, then it sends a line without end.
  let greeting = ''
  const fakes: Socket[] = []
  const fake = createServer((c) => {
    fakes.push(c)
    c.on('error', () => {})
    if (greeting) c.write(greeting)
  })
  await new Promise<void>((resolve) => fake.listen(0, '127.0.0.1', resolve))
  const endpoint = relayEndpoint('127.0.0.1', (fake.address() as AddressInfo).port)
  try {
    const t0 = Date.now()
    await assert.rejects(connectRelay(endpoint, id, sealer, 400), /no answer in time/)
    const took = Date.now() - t0
    assert.ok(took >= 400 && took < 3000, `gave up after ${took} ms`)
    greeting = 'B'.repeat(4096)
    await assert.rejects(connectRelay(endpoint, id, sealer, 5000), /line too long/)
  } finally {
    for (const c of fakes) c.destroy()
    fake.close()
  }
})
