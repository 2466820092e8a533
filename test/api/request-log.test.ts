// The request log: one line per request, at info, with method, url, status and time; the action
// of POST /servers/{id}/action; the fault message of a 4xx or 5xx, so that a 409 says why; and
// never a secret, even when the fault message quotes what the client sent.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import pino from 'pino'
import { activeServer, startTestSkiff, type TestSkiff } from '../helpers/skiff.ts'

const lines: Record<string, any>[] = []
let raw = ''
let skiff: TestSkiff
let demo: string
let server: string

before(async () => {
  const logger = pino(
    { level: 'info' },
    {
      write: (line: string) => {
        raw += line
        lines.push(JSON.parse(line))
      },
    },
  )
  skiff = await startTestSkiff({}, { logger })
  demo = await skiff.token('demo')
  server = await activeServer(skiff, demo)
})

after(async () => {
  await skiff?.close()
})

/** The log lines of the request that answered `res`. */
const linesOf = (res: { headers: Record<string, unknown> }) => lines.filter((l) => l.reqId === res.headers['x-openstack-request-id'])

test('one line per request: method, url, status, time; no fastify request lines', async () => {
  const res = await skiff.compute('GET', `/v2.1/servers/${server}`, { token: demo })
  assert.equal(res.statusCode, 200)
  const mine = linesOf(res)
  assert.equal(mine.length, 1, JSON.stringify(mine))
  const line = mine[0]!
  assert.equal(line.level, 30)
  assert.equal(line.msg, 'request')
  assert.equal(line.service, 'compute')
  assert.equal(line.method, 'GET')
  assert.equal(line.url, `/v2.1/servers/${server}`)
  assert.equal(line.status, 200)
  assert.equal(typeof line.ms, 'number')
  assert.equal(line.fault, undefined)
  assert.ok(!lines.some((l) => l.msg === 'incoming request' || l.msg === 'request completed'))
})

test('a server action names its action; a 409 says why', async () => {
  const res = await skiff.compute('POST', `/v2.1/servers/${server}/action`, { token: demo, body: { unrescue: null } })
  assert.equal(res.statusCode, 409)
  const line = linesOf(res)[0]!
  assert.equal(line.action, 'unrescue')
  assert.equal(line.status, 409)
  assert.equal(line.fault, res.json().conflictingRequest.message)
  assert.match(line.fault, /^Cannot 'unrescue' instance .* while it is in vm_state active$/)
})

test('the legacy v2 action path names its action too', async () => {
  const res = await skiff.compute('POST', `/v2/${'0'.repeat(32)}/servers/${server}/action`, {
    token: demo,
    body: { 'os-getConsoleOutput': { length: 'x' } },
  })
  assert.equal(linesOf(res)[0]?.action, 'os-getConsoleOutput')
})

test('Keystone and Glance faults are logged with their messages', async () => {
  const bad = await skiff.apps.identity.inject({ method: 'GET', url: '/v3/auth/tokens', headers: { 'x-auth-token': 'nope' } })
  assert.equal(bad.statusCode, 401)
  assert.equal(linesOf(bad)[0]?.fault, bad.json().error.message)
  const missing = await skiff.apps.image.inject({
    method: 'GET',
    url: `/v2/images/${'1'.repeat(8)}-1111-1111-1111-${'1'.repeat(12)}`,
    headers: { 'x-auth-token': demo },
  })
  assert.equal(missing.statusCode, 404)
  assert.equal(linesOf(missing)[0]?.fault, missing.json().message)
})

test('secrets quoted by a fault message are blanked out of the log', async () => {
  const secrets = ['Sup3r-s3cret!', 'it\'s-"quoted"\\too', 'only-in-user-data', 'token-id-secret', '98765432123']
  const calls = [
    // The rescue password of the wrong type: the message quotes it.
    skiff.compute('POST', `/v2.1/servers/${server}/action`, { token: demo, body: { rescue: { adminPass: [secrets[0]] } } }),
    // A parent object quoted whole, with an escaped password inside.
    skiff.compute('POST', `/v2.1/servers/${server}/action`, { token: demo, body: { rescue: { adminPass: secrets[1], bogus: 1 } } }),
    skiff.compute('POST', '/v2.1/servers', {
      token: demo,
      body: {
        server: { name: 'x', flavorRef: '1', imageRef: '00000000-0000-0000-0000-000000000000', user_data: 7, adminPass: secrets[0] },
      },
    }),
    skiff.compute('POST', `/v2.1/servers/${server}/rescue`, { token: demo, body: { rescue: { admin_pass: { p: secrets[2] } } } }),
    skiff.compute('POST', '/v2.1/servers', {
      token: demo,
      body: { server: { name: 'x', flavorRef: '1', user_data: ['only-in-user-data'] } },
    }),
    // Keystone: a password and a token of the wrong type, a numeric password, a body that is not JSON.
    skiff.apps.identity.inject({
      method: 'POST',
      url: '/v3/auth/tokens',
      payload: {
        auth: {
          identity: { methods: ['password'], password: { user: { name: 'demo', domain: { name: 'Default' }, password: [secrets[0]] } } },
        },
      },
    }),
    skiff.apps.identity.inject({
      method: 'POST',
      url: '/v3/auth/tokens',
      payload: { auth: { identity: { methods: ['token'], token: { id: [secrets[3]] } } } },
    }),
    skiff.apps.identity.inject({
      method: 'POST',
      url: '/v3/auth/tokens',
      payload: { auth: { identity: { methods: ['password'], password: { user: { name: 'demo', password: Number(secrets[4]) } } } } },
    }),
    skiff.apps.identity.inject({
      method: 'POST',
      url: '/v3/auth/tokens',
      headers: { 'content-type': 'text/plain' },
      payload: `{"auth": {"identity": {"password": {"user": {"password": "${secrets[0]}"}}}}}`,
    }),
  ]
  for (const res of await Promise.all(calls)) {
    assert.equal(res.statusCode, 400, res.body)
    const line = linesOf(res)[0]!
    assert.ok(line?.fault, `no fault logged for ${res.body}`)
    assert.match(line.fault, /\*\*\*/, line.fault)
  }
  for (const s of secrets) assert.ok(!raw.includes(s) && !raw.includes(JSON.stringify(s).slice(1, -1)), `the log holds ${s}`)
})

test('a successful login logs no password', async () => {
  const res = await skiff.apps.identity.inject({
    method: 'POST',
    url: '/v3/auth/tokens',
    payload: {
      auth: {
        identity: {
          methods: ['password'],
          password: { user: { name: 'demo', domain: { name: 'Default' }, password: skiff.passwords.demo } },
        },
      },
    },
  })
  assert.equal(res.statusCode, 201)
  assert.equal(linesOf(res).length, 1)
  assert.ok(!raw.includes(skiff.passwords.demo!))
  assert.ok(!raw.includes(String(res.headers['x-subject-token'])))
})
