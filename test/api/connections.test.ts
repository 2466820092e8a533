// Connections over real sockets: one that sends nothing, or only part of its headers, or trickles
// its JSON body, is closed within a bounded time; a connection over the per-listener cap is
// refused with a warning in the log; a request answered before its large body was read (413 on
// the declared size, 401) closes the connection instead of reading the body to the end; a long
// image upload still works. Short timeouts come from the config; every wait is on an event with
// a deadline.
import assert from 'node:assert/strict'
import { request } from 'node:http'
import net from 'node:net'
import { after, describe, test } from 'node:test'
import type { FastifyInstance } from 'fastify'
import pino from 'pino'
import { createListener } from '../../src/api/listener.ts'
import { loadConfig, type Config } from '../../src/config.ts'
import type { AuthContext, IdentityService } from '../../src/identity/identity-service.ts'
import { startTestSkiff } from '../helpers/skiff.ts'

const GOOD_TOKEN = 'good-token'
const open: FastifyInstance[] = []
after(async () => {
  await Promise.all(open.map((a) => a.close()))
})

/** A compute-flavoured listener with a stub identity (one good token) and a few routes, on port 0. */
async function listener(overrides: Partial<Config>, logs: Record<string, unknown>[] = []) {
  const config = { ...loadConfig({}, {}), ...overrides }
  const identity = {
    // Nothing cached: every token goes through validate.
    cachedContext: () => undefined,
    validate: async (token?: string) =>
      token === GOOD_TOKEN ? ({ userId: 'u', projectId: 'p', roles: [], isAdmin: false } as unknown as AuthContext) : undefined,
  } as unknown as IdentityService
  const logger = pino(
    { level: 'info' },
    {
      write: (line: string) => {
        logs.push(JSON.parse(line))
      },
    },
  )
  const app = createListener('compute', { config, logger, identity, identityUri: 'http://127.0.0.1:5000/v3' })
  app.get('/', { config: { public: true } }, async () => ({ ok: true }))
  app.post('/echo', { config: { public: true } }, async (req) => ({ got: req.body }))
  app.post('/private', async (req) => ({ got: req.body }))
  await app.listen({ port: 0, host: '127.0.0.1' })
  open.push(app)
  return { app, port: (app.server.address() as net.AddressInfo).port }
}

interface Client {
  socket: net.Socket
  /** Everything the server sent. */
  received(): string
  /** ms from connect to the server closing the connection; rejects after `deadlineMs`. */
  closed(deadlineMs: number): Promise<number>
}

async function connect(port: number): Promise<Client> {
  const socket = net.connect(port, '127.0.0.1')
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject))
  const start = Date.now()
  let data = ''
  let closedAfter: number | undefined
  const waiters: (() => void)[] = []
  // Reading is what lets the client see the server's FIN: a paused socket never learns it closed.
  socket.on('data', (d) => {
    data += d.toString('latin1')
  })
  socket.on('error', () => {})
  socket.on('close', () => {
    closedAfter = Date.now() - start
    waiters.forEach((w) => w())
  })
  return {
    socket,
    received: () => data,
    closed: (deadlineMs) =>
      new Promise((resolve, reject) => {
        if (closedAfter !== undefined) return resolve(closedAfter)
        const timer = setTimeout(
          () => reject(new Error(`still open after ${deadlineMs} ms; received ${JSON.stringify(data.slice(0, 200))}`)),
          deadlineMs,
        )
        waiters.push(() => {
          clearTimeout(timer)
          resolve(closedAfter!)
        })
      }),
  }
}

/** Resolves when the client has received `text`; rejects after `deadlineMs`. */
function receivedText(c: Client, text: string, deadlineMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const check = () => {
      if (c.received().includes(text)) {
        clearTimeout(timer)
        c.socket.off('data', check)
        resolve()
      }
    }
    const timer = setTimeout(() => {
      c.socket.off('data', check)
      reject(new Error(`no ${JSON.stringify(text)} within ${deadlineMs} ms: ${JSON.stringify(c.received().slice(0, 200))}`))
    }, deadlineMs)
    c.socket.on('data', check)
    check()
  })
}

describe('connections that do not send a request are closed in bounded time', () => {
  test('silent and partial-header connections: closed at the headers timeout, with 408', async (t) => {
    const { port } = await listener({ headersTimeoutMs: 300, keepAliveTimeoutMs: 60_000 })
    const silent = await Promise.all([1, 2, 3].map(() => connect(port)))
    const partial = await connect(port)
    partial.socket.write('POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: app')
    const times: number[] = []
    for (const c of [...silent, partial]) {
      const ms = await c.closed(4000)
      times.push(ms)
      assert.ok(ms >= 250 && ms < 2000, `closed after ${ms} ms (headers timeout 300 ms)`)
    }
    t.diagnostic(`headers timeout 300 ms: silent closed after ${times.slice(0, 3).join(', ')} ms, partial after ${times[3]} ms`)
    // In the listener's fault shape (Nova's here: 408 has no fault name of its own).
    assert.match(
      partial.received(),
      /^HTTP\/1\.1 408 [^]*\r\n\r\n\{"computeFault":\{"code":408,"message":"The request was not received in time\."\}\}$/,
    )
  })

  test('malformed HTTP: 400 in the fault shape, and closed', async () => {
    const { port } = await listener({})
    const c = await connect(port)
    c.socket.write('NOT HTTP AT ALL\r\n\r\n')
    await c.closed(2000)
    assert.match(c.received(), /^HTTP\/1\.1 400 [^]*\{"badRequest":\{"code":400,"message":"Malformed HTTP request\."\}\}$/)
  })

  test('with no headers timeout, a silent connection is still closed at the keep-alive timeout', async () => {
    const { port } = await listener({ headersTimeoutMs: 0, keepAliveTimeoutMs: 400 })
    const c = await connect(port)
    const ms = await c.closed(3000)
    assert.ok(ms >= 350 && ms < 2000, `closed after ${ms} ms (keep-alive 400 ms)`)
  })

  test('an idle keep-alive connection is closed at the keep-alive timeout, not before', async () => {
    const { port } = await listener({ headersTimeoutMs: 200, keepAliveTimeoutMs: 700 })
    const c = await connect(port)
    c.socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n')
    await receivedText(c, '{"ok":true}', 2000)
    const ms = await c.closed(3000)
    // Past the headers timeout (between two requests only the keep-alive timeout applies).
    assert.ok(ms >= 650 && ms < 2500, `closed after ${ms} ms (keep-alive 700 ms)`)
  })

  test('a JSON body that trickles in is cut at the request timeout', async () => {
    const { port } = await listener({ headersTimeoutMs: 5000, keepAliveTimeoutMs: 60_000, requestTimeoutMs: 400 })
    const c = await connect(port)
    c.socket.write('POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"a":"')
    // One byte every 50 ms: never idle, never done.
    const drip = setInterval(() => {
      if (!c.socket.destroyed) c.socket.write('x')
    }, 50)
    try {
      const ms = await c.closed(3000)
      assert.ok(ms >= 350 && ms < 2000, `closed after ${ms} ms (request timeout 400 ms)`)
    } finally {
      clearInterval(drip)
    }
  })

  test('a request within the bounds is answered', async () => {
    const { port } = await listener({ headersTimeoutMs: 300, requestTimeoutMs: 300 })
    const c = await connect(port)
    c.socket.write(
      'POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 7\r\nConnection: close\r\n\r\n{"a":1}',
    )
    await c.closed(3000)
    assert.match(c.received(), /^HTTP\/1\.1 200 [^]*\{"got":\{"a":1\}\}$/)
  })
})

describe('a cap on connections per listener', () => {
  test('connections over --max-connections are refused at once, with one warning', async () => {
    const logs: Record<string, unknown>[] = []
    const { port } = await listener({ maxConnections: 3, headersTimeoutMs: 60_000 }, logs)
    const held = await Promise.all([1, 2, 3].map(() => connect(port)))
    const refused = await Promise.all([1, 2].map(() => connect(port)))
    for (const c of refused) await c.closed(2000)
    const warnings = logs.filter((l) => l.level === 40 && /connections open \(--max-connections\)/.test(String(l.msg)))
    assert.equal(warnings.length, 1, JSON.stringify(logs))
    assert.equal(warnings[0]!.maxConnections, 3)
    // Once one goes, there is room again.
    held[0]!.socket.destroy()
    await held[0]!.closed(2000)
    const next = await connect(port)
    next.socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n')
    await receivedText(next, '{"ok":true}', 2000)
    for (const c of [...held, next]) c.socket.destroy()
  })
})

describe('an answer given before a large body was read closes the connection', () => {
  // Long timeouts: a close within a second is the early answer's doing.
  const slow = { headersTimeoutMs: 60_000, keepAliveTimeoutMs: 60_000, requestTimeoutMs: 60_000, bodyLimitBytes: 1024 * 1024 }

  test('413 on the declared Content-Length: answered, then closed, the body unread', async () => {
    const { port } = await listener(slow)
    const c = await connect(port)
    c.socket.write(`POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${1024 ** 3}\r\n\r\n{"a":"`)
    const ms = await c.closed(2000)
    assert.ok(ms < 1000, `closed after ${ms} ms`)
    assert.match(c.received(), /^HTTP\/1\.1 413 /)
    assert.match(c.received(), /\r\nconnection: close\r\n/i)
    assert.match(c.received(), /"overLimit":\{"code":413,"message":"Request is too large\."\}/)
  })

  test('401 with a large declared body: closed; a small body is read and the connection kept', async () => {
    const { port } = await listener(slow)
    const big = await connect(port)
    big.socket.write('POST /private HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 900000\r\n\r\n{"a":"')
    const ms = await big.closed(2000)
    assert.ok(ms < 1000, `closed after ${ms} ms`)
    assert.match(big.received(), /^HTTP\/1\.1 401 [^]*\r\nconnection: close\r\n/i)

    const small = await connect(port)
    small.socket.write('POST /private HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n{"a":1}')
    await receivedText(small, '"code":401', 2000)
    assert.doesNotMatch(small.received(), /connection: close/i)
    small.socket.write(`GET / HTTP/1.1\r\nHost: x\r\n\r\n`)
    await receivedText(small, '{"ok":true}', 2000)
    small.socket.destroy()
  })

  test('Expect: 100-continue: no 100 before a 401, so the client never sends the body', async () => {
    const { port } = await listener(slow)
    const refused = await connect(port)
    refused.socket.write(
      'POST /private HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 900000\r\nExpect: 100-continue\r\n\r\n',
    )
    await refused.closed(2000)
    assert.match(refused.received(), /^HTTP\/1\.1 401 /)
    assert.doesNotMatch(refused.received(), /100 Continue/)

    const accepted = await connect(port)
    accepted.socket.write(
      `POST /private HTTP/1.1\r\nHost: x\r\nX-Auth-Token: ${GOOD_TOKEN}\r\nContent-Type: application/json\r\nContent-Length: 7\r\nExpect: 100-continue\r\n\r\n`,
    )
    await receivedText(accepted, 'HTTP/1.1 100 Continue\r\n\r\n', 2000)
    accepted.socket.write('{"a":1}')
    await receivedText(accepted, '{"got":{"a":1}}', 2000)
    accepted.socket.destroy()
  })
})

test('an image upload that takes longer than the request timeout still completes', async () => {
  const skiff = await startTestSkiff({ requestTimeoutMs: 200, headersTimeoutMs: 200, keepAliveTimeoutMs: 5000 })
  try {
    const token = await skiff.token('demo')
    const created = await skiff.apps.image.inject({
      method: 'POST',
      url: '/v2/images',
      headers: { 'x-auth-token': token },
      payload: { name: 'slow', disk_format: 'raw', container_format: 'bare' },
    })
    assert.equal(created.statusCode, 201, created.body)
    const id = created.json().id as string
    await skiff.apps.image.listen({ port: 0, host: '127.0.0.1' })
    const port = (skiff.apps.image.server.address() as net.AddressInfo).port
    const chunks = 12
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(
        {
          port,
          host: '127.0.0.1',
          method: 'PUT',
          path: `/v2/images/${id}/file`,
          headers: { 'x-auth-token': token, 'content-type': 'application/octet-stream', 'content-length': chunks * 1024 },
        },
        (res) => {
          res.resume()
          res.on('end', () => resolve(res.statusCode ?? 0))
        },
      )
      req.on('error', reject)
      let sent = 0
      // 12 chunks 50 ms apart: 600 ms, three times the request timeout.
      const tick = setInterval(() => {
        req.write(Buffer.alloc(1024, sent))
        if (++sent === chunks) {
          clearInterval(tick)
          req.end()
        }
      }, 50)
    })
    assert.equal(status, 204)
    const shown = await skiff.apps.image.inject({ method: 'GET', url: `/v2/images/${id}`, headers: { 'x-auth-token': token } })
    assert.equal(shown.json().size, chunks * 1024)
    assert.equal(shown.json().status, 'active')
  } finally {
    await skiff.close()
  }
})
