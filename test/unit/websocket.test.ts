// src/console/websocket.ts (`ws` behind the console's interface): server and client over a real
// socket, messages of each length encoding, text and binary, the subprotocol, close.
import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:http'
import { after, before, test } from 'node:test'
import { acceptWebSocket, connectWebSocket, type WebSocketConnection } from '../../src/console/websocket.ts'

let server: Server
let url = ''
const accepted: WebSocketConnection[] = []

before(async () => {
  server = createServer((_req, res) => res.writeHead(426).end())
  server.on('upgrade', (req, socket, head) => {
    acceptWebSocket(req, socket, head, (ws) => {
      accepted.push(ws)
      // An echo server: what comes in goes back, binary as binary, text as text.
      ws.onMessage = (data, binary) => ws.send(binary ? data : data.toString('utf8'))
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  url = `ws://127.0.0.1:${(server.address() as { port: number }).port}/`
})
after(async () => {
  for (const ws of accepted) ws.close()
  await new Promise((resolve) => server.close(resolve))
})

const next = (ws: WebSocketConnection) =>
  new Promise<{ data: Buffer; binary: boolean }>((resolve) => {
    ws.onMessage = (data, binary) => resolve({ data, binary })
  })

test('messages of each length encoding come back whole, binary and text', async () => {
  const ws = await connectWebSocket(url)
  for (const size of [0, 5, 125, 126, 200, 65535, 65536, 70_000]) {
    const payload = Buffer.alloc(size, size % 251)
    const got = next(ws)
    ws.send(payload)
    const m = await got
    assert.equal(m.binary, true)
    assert.ok(m.data.equals(payload), `size ${size}`)
  }
  const got = next(ws)
  ws.send('héllo')
  const m = await got
  assert.equal(m.binary, false)
  assert.equal(m.data.toString('utf8'), 'héllo')
  ws.close()
})

test('the server offers no subprotocol unless asked, and binary when offered', async () => {
  const plain = await connectWebSocket(url)
  assert.equal(plain.protocol, '')
  plain.close()
  const ws = await connectWebSocket(url, { protocols: ['base64', 'binary'] })
  assert.equal(ws.protocol, 'binary')
  const got = next(ws)
  ws.send(Buffer.from('x'))
  assert.equal((await got).data.toString(), 'x')
  ws.close()
})

test('a plain HTTP request to the upgrade path is refused, not hung', async () => {
  const res = await fetch(url.replace('ws:', 'http:'))
  assert.equal(res.status, 426)
})

test('closing ends both sides', async () => {
  const ws = await connectWebSocket(url)
  const before = accepted.length
  assert.ok(before >= 1)
  const closed = new Promise<void>((resolve) => {
    accepted[before - 1]!.onClose = resolve
  })
  ws.close()
  await closed
  assert.equal(ws.closed, true)
})
