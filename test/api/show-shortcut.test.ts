// GET /v2.1/servers/{id} over real HTTP is answered before fastify (api/shortcut.ts,
// routes/compute/show-shortcut.ts) when the request is the plain one; every other request goes
// through fastify's routes. Either way a client gets the same answer: each request here is made
// over a socket and through fastify alone (inject(), which never meets the shortcut), and the two
// answers compared: status, body, headers. Which of the two answered over the socket is seen by
// a hook on fastify's requests.
import assert from 'node:assert/strict'
import { request } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, test } from 'node:test'
import pino from 'pino'
import { activeServer, startTestSkiff, type TestSkiff } from '../helpers/skiff.ts'

const lines: Record<string, unknown>[] = []
let skiff: TestSkiff
let root: string
let tokens: Record<'demo' | 'admin' | 'reader_demo' | 'alt_demo', string>
let id: string
/** The request ids fastify's routes answered over the socket. */
const routed = new Set<string>()

before(async () => {
  const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line)) })
  skiff = await startTestSkiff({}, { logger })
  // onResponse: every answer fastify gives runs it, one refused in an earlier hook too.
  skiff.apps.compute.addHook('onResponse', (req, _reply, done) => {
    routed.add(req.id)
    done()
  })
  await skiff.apps.compute.listen({ port: 0, host: '127.0.0.1' })
  root = `http://127.0.0.1:${(skiff.apps.compute.server.address() as AddressInfo).port}`
  tokens = {
    demo: await skiff.token('demo'),
    admin: await skiff.token('admin'),
    reader_demo: await skiff.token('reader_demo'),
    alt_demo: await skiff.token('alt_demo'),
  }
  id = await activeServer(skiff, tokens.demo, 'shortcut-1')
})
after(async () => {
  await skiff?.close()
})

/** Headers that differ between two answers by nature: the request's own id, the transport's. */
const PER_ANSWER = new Set(['x-openstack-request-id', 'x-compute-request-id', 'date', 'connection', 'keep-alive', 'transfer-encoding'])

interface Answer {
  status: number
  body: string
  headers: Record<string, string>
  requestId: string
}

async function overSocket(path: string, headers: Record<string, string>, method = 'GET'): Promise<Answer> {
  const res = await fetch(root + path, { method, headers })
  const out: Record<string, string> = {}
  res.headers.forEach((v, k) => {
    if (!PER_ANSWER.has(k)) out[k] = v
  })
  return { status: res.status, body: await res.text(), headers: out, requestId: res.headers.get('x-openstack-request-id') ?? '' }
}

async function throughFastify(path: string, headers: Record<string, string>, method = 'GET'): Promise<Answer> {
  const res = await skiff.apps.compute.inject({ method: method as 'GET', url: path, headers })
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(res.headers)) if (!PER_ANSWER.has(k) && v !== undefined) out[k] = String(v)
  return { status: res.statusCode, body: res.body, headers: out, requestId: String(res.headers['x-openstack-request-id']) }
}

/** The same request both ways: the same answer; `shortcut`: whether fastify must not have seen the socket's. */
async function same(path: string, headers: Record<string, string>, shortcut: boolean, method = 'GET') {
  // Twice over the socket: the first may build the view, the second finds it memoized.
  await overSocket(path, headers, method)
  const fast = await overSocket(path, headers, method)
  const slow = await throughFastify(path, headers, method)
  assert.equal(fast.status, slow.status, `${path}: ${fast.body}`)
  assert.equal(fast.body, slow.body, path)
  assert.deepEqual(fast.headers, slow.headers, path)
  assert.match(fast.requestId, /^req-[0-9a-f-]{36}$/)
  assert.equal(
    routed.has(fast.requestId),
    !shortcut,
    `${path} ${JSON.stringify(headers)}: expected to be answered by ${shortcut ? 'the shortcut' : 'fastify'}`,
  )
  return fast
}

const as = (user: keyof typeof tokens, version?: string): Record<string, string> => ({
  'x-auth-token': tokens[user],
  ...(version ? { 'openstack-api-version': `compute ${version}` } : {}),
})

test('the plain GET of a server is answered before fastify, the same as fastify answers it, at every microversion and role', async () => {
  for (const user of ['demo', 'admin', 'reader_demo'] as const) {
    for (const v of [undefined, '2.1', '2.9', '2.47', '2.73', '2.93', 'latest']) {
      const a = await same(`/v2.1/servers/${id}`, as(user, v), true)
      assert.equal(a.status, 200)
      assert.equal(JSON.parse(a.body).server.id, id)
    }
  }
  // The legacy header, and both headers at once (the modern one wins).
  await same(`/v2.1/servers/${id}`, { 'x-auth-token': tokens.demo, 'x-openstack-nova-api-version': '2.30' }, true)
  await same(`/v2.1/servers/${id}`, { ...as('demo', '2.60'), 'x-openstack-nova-api-version': '2.30' }, true)
})

test('a change to the server shows at once through the shortcut', async () => {
  const before = JSON.parse((await overSocket(`/v2.1/servers/${id}`, as('demo'))).body).server
  const put = await skiff.compute('PUT', `/v2.1/servers/${id}`, { token: tokens.demo, body: { server: { name: 'renamed' } } })
  assert.equal(put.statusCode, 200)
  const after = await overSocket(`/v2.1/servers/${id}`, as('demo'))
  assert.equal(JSON.parse(after.body).server.name, 'renamed')
  assert.notEqual(before.name, 'renamed')
  assert.equal(routed.has(after.requestId), false)
})

test('everything but the plain answer is left to fastify, which answers it as always', async () => {
  const missing = '00000000-0000-4000-8000-000000000000'
  const cases: [string, Record<string, string>][] = [
    [`/v2.1/servers/${id}`, as('alt_demo')], // another project's server: 404
    [`/v2.1/servers/${missing}`, as('demo')], // no such server: 404
    [`/v2.1/servers/${id}`, as('demo', '3.0')], // 406
    [`/v2.1/servers/${id}`, as('demo', '2.1000')], // 406
    [`/v2.1/servers/${id}`, as('demo', 'compute')], // 400, no version headers
    [`/v2.1/servers/${id}`, { 'x-auth-token': 'not-a-token' }], // 401
    [`/v2.1/servers/${id}`, {}], // 401
    [`/v2.1/servers/${id}?fields=name`, as('demo')], // a query: the route's
    [`/v2.1/servers/${id}/`, as('demo')], // trailing slash
    [`/v2.1/servers/${id.toUpperCase()}`, as('demo')],
  ]
  for (const [path, headers] of cases) await same(path, headers, false)
  // A GET with a body (fetch will not send one): the route's hooks read or refuse it.
  const withBody = await new Promise<{ status: number; requestId: string }>((resolve, reject) => {
    const req = request(
      `${root}/v2.1/servers/${id}`,
      { method: 'GET', headers: { ...as('demo'), 'content-type': 'application/json', 'content-length': '2' } },
      (res) => {
        res.resume()
        res.on('end', () => resolve({ status: res.statusCode!, requestId: String(res.headers['x-openstack-request-id']) }))
      },
    )
    req.on('error', reject)
    req.end('{}')
  })
  assert.equal(withBody.status, 200)
  assert.equal(routed.has(withBody.requestId), true, 'a GET with a body goes to fastify')
  await same(`/v2.1/servers/${id}`, as('demo'), false, 'HEAD')
  // A token checked by fastify a moment ago is the shortcut's from then on.
  const fresh = await skiff.token('admin')
  assert.equal(fresh, tokens.admin)
})

test('its log line is the one fastify writes: the request id, method, url, status, time, remote', async () => {
  const fast = await same(`/v2.1/servers/${id}`, as('demo', '2.47'), true)
  const slow = await overSocket(`/v2.1/servers/${id}?x=1`, as('demo', '2.47'))
  assert.equal(routed.has(slow.requestId), true)
  const lineOf = (requestId: string) => lines.filter((l) => l.reqId === requestId)
  const [f] = lineOf(fast.requestId)
  const [s] = lineOf(slow.requestId)
  assert.equal(lineOf(fast.requestId).length, 1)
  assert.ok(f && s)
  assert.deepEqual(Object.keys(f).sort(), Object.keys(s).sort())
  assert.equal(f.msg, 'request')
  assert.equal(f.service, 'compute')
  assert.equal(f.method, 'GET')
  assert.equal(f.url, `/v2.1/servers/${id}`)
  assert.equal(f.status, 200)
  assert.equal(f.remote, '127.0.0.1')
  assert.equal(typeof f.ms, 'number')
  // Never the token.
  assert.equal(JSON.stringify(f).includes(tokens.demo), false)
})
