// Deeply nested JSON: 5,000 nested arrays (10 KB) used to overflow the stack — a 500 in fastify's
// shape, even before login. Every JSON route of the three services now answers 400 in its own
// fault shape, decided on the raw text before JSON.parse, whatever the depth.
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { jsonTextProblem, MAX_JSON_DEPTH, nestedDeeperThan } from '../../src/api/json-body.ts'
import { canonicalJson } from '../../src/api/idempotency.ts'
import { pyRepr } from '../../src/api/py-repr.ts'
import { activeServer, startTestSkiff, waitForStatus, type TestSkiff } from '../helpers/skiff.ts'
import { assertFault, type Service } from '../helpers/faults.ts'

const PATCH = 'application/openstack-images-v2.1-json-patch'
const DEPTHS = [100, 1_000, 5_000, 100_000]

const arrays = (d: number) => '['.repeat(d) + ']'.repeat(d)
const objects = (d: number) => '{"a":'.repeat(d) + '1' + '}'.repeat(d)

interface Route {
  service: Service
  method: 'POST' | 'PUT' | 'PATCH' | 'DELETE'
  url: string
  token: 'demo' | 'admin' | null
  type?: string
  wrap: (deep: string) => string
}

let skiff: TestSkiff
let routes: Route[]
const tokens: Record<string, string> = {}

before(async () => {
  skiff = await startTestSkiff()
  tokens.demo = await skiff.token('demo')
  tokens.admin = await skiff.token('admin')
  const server = await activeServer(skiff, tokens.demo)
  const created = await skiff.apps.image.inject({
    method: 'POST',
    url: '/v2/images',
    headers: { 'x-auth-token': tokens.demo },
    payload: { name: 'mine' },
  })
  assert.equal(created.statusCode, 201, created.body)
  const image = created.json().id as string
  const key = (k: string) => (deep: string) => `{"${k}": ${deep}}`
  const inner = (k: string, k2: string) => (deep: string) => `{"${k}": {"${k2}": ${deep}}}`
  routes = [
    // Before login: the token request itself.
    { service: 'identity', method: 'POST', url: '/v3/auth/tokens', token: null, wrap: inner('auth', 'identity') },
    { service: 'identity', method: 'POST', url: '/v3/auth/tokens', token: 'demo', wrap: key('auth') },
    { service: 'identity', method: 'DELETE', url: '/v3/auth/tokens', token: 'demo', wrap: key('auth') },
    { service: 'compute', method: 'POST', url: '/v2.1/servers', token: 'demo', wrap: inner('server', 'name') },
    { service: 'compute', method: 'POST', url: '/v2.1/servers', token: 'demo', type: 'text/plain', wrap: key('server') },
    { service: 'compute', method: 'POST', url: '/v2.1/servers', token: 'demo', type: '', wrap: key('server') },
    { service: 'compute', method: 'PUT', url: `/v2.1/servers/${server}`, token: 'demo', wrap: inner('server', 'name') },
    { service: 'compute', method: 'DELETE', url: `/v2.1/servers/${server}`, token: 'demo', wrap: key('server') },
    { service: 'compute', method: 'POST', url: `/v2.1/servers/${server}/action`, token: 'demo', wrap: key('rescue') },
    { service: 'compute', method: 'POST', url: `/v2.1/servers/${server}/action`, token: 'demo', wrap: inner('rebuild', 'personality') },
    { service: 'compute', method: 'POST', url: `/v2/${'x'.repeat(32)}/servers/${server}/action`, token: 'demo', wrap: key('rescue') },
    { service: 'compute', method: 'PUT', url: `/v2.1/servers/${server}/action`, token: 'demo', wrap: key('rescue') },
    { service: 'compute', method: 'POST', url: `/v2.1/servers/${server}/rescue`, token: 'demo', wrap: inner('rescue', 'image_ref') },
    { service: 'compute', method: 'PATCH', url: `/v2.1/servers/${server}/rescue`, token: 'demo', wrap: key('rescue') },
    { service: 'compute', method: 'POST', url: `/v2.1/servers/${server}/metadata`, token: 'demo', wrap: key('metadata') },
    { service: 'compute', method: 'PUT', url: `/v2.1/servers/${server}/metadata`, token: 'demo', wrap: inner('metadata', 'k') },
    { service: 'compute', method: 'PUT', url: `/v2.1/servers/${server}/metadata/k`, token: 'demo', wrap: inner('meta', 'k') },
    { service: 'compute', method: 'POST', url: '/v2.1/os-keypairs', token: 'demo', wrap: key('keypair') },
    { service: 'compute', method: 'POST', url: '/v2.1/os-server-groups', token: 'demo', wrap: key('server_group') },
    { service: 'compute', method: 'POST', url: '/v2.1/flavors', token: 'admin', wrap: key('flavor') },
    { service: 'compute', method: 'POST', url: '/v2.1/flavors/1/os-extra_specs', token: 'admin', wrap: key('extra_specs') },
    { service: 'compute', method: 'PUT', url: '/v2.1/flavors/1/os-extra_specs/k', token: 'admin', wrap: key('k') },
    { service: 'compute', method: 'POST', url: '/v2.1/os-simulator/faults', token: 'admin', wrap: key('fault') },
    { service: 'image', method: 'POST', url: '/v2/images', token: 'demo', wrap: key('name') },
    { service: 'image', method: 'POST', url: '/v2/images', token: 'demo', wrap: key('tags') },
    {
      service: 'image',
      method: 'PATCH',
      url: `/v2/images/${image}`,
      token: 'demo',
      type: PATCH,
      wrap: (d) => `[{"op": "add", "path": "/x", "value": ${d}}]`,
    },
    { service: 'image', method: 'DELETE', url: `/v2/images/${image}`, token: 'demo', wrap: key('x') },
  ]
})

after(async () => {
  await skiff?.close()
})

function send(r: Route, payload: string) {
  const headers: Record<string, string> = {}
  if (r.token) headers['x-auth-token'] = tokens[r.token]!
  const type = r.type ?? 'application/json'
  if (type) headers['content-type'] = type
  return skiff.apps[r.service].inject({ method: r.method, url: r.url, headers, payload })
}

describe('nested JSON on every JSON route', () => {
  for (const depth of DEPTHS) {
    test(`depth ${depth.toLocaleString('en')}: 400 in the service's fault shape, never 5xx`, async () => {
      for (const r of routes) {
        for (const [shape, deep] of [
          ['arrays', arrays(depth)],
          ['objects', objects(depth)],
        ] as const) {
          for (const payload of [deep, r.wrap(deep)]) {
            const res = await send(r, payload)
            const message = assertFault(r.service, res, 400, `${r.method} ${r.url} ${shape} ${payload.slice(0, 20)}`)
            assert.match(message, /nested more than 64 levels deep/)
          }
        }
      }
    })
  }

  test(`the limit is ${MAX_JSON_DEPTH}: one level more is refused, up to it the body is read`, async () => {
    const rename = routes.find((r) => r.method === 'PUT' && r.url.startsWith('/v2.1/servers/') && !r.url.includes('meta'))!
    const at = await send(rename, `{"server": {"name": ${arrays(MAX_JSON_DEPTH - 2)}}}`)
    const message = assertFault('compute', at, 400)
    assert.match(message, /^Invalid input for field\/attribute name\. Value: \[\[\[/)
    const over = await send(rename, `{"server": {"name": ${arrays(MAX_JSON_DEPTH - 1)}}}`)
    assert.match(assertFault('compute', over, 400), /nested more than 64 levels deep/)
  })

  test('brackets inside strings do not count', async () => {
    const create = routes.find((r) => r.url === '/v2.1/servers' && !r.type)!
    const name = `${'['.repeat(120)}\\"${'{'.repeat(120)}`
    const res = await send(
      create,
      JSON.stringify({ server: { name: JSON.parse(`"${name}"`), imageRef: await skiff.imageId('skiff-base'), flavorRef: '1' } }),
    )
    assert.equal(res.statusCode, 202, res.body)
  })
})

describe('NUL characters, which PostgreSQL text cannot hold (a 500 there)', () => {
  test('in any JSON string of any route: 400 in the fault shape', async () => {
    for (const r of routes) {
      for (const payload of [r.wrap('"a\\u0000b"'), JSON.stringify({ ['k\u0000']: 1 })]) {
        const message = assertFault(r.service, await send(r, payload), 400, `${r.method} ${r.url} ${payload}`)
        assert.match(message, /NUL characters \(\\u0000\) are not allowed/)
      }
    }
  })

  test('an escaped backslash before u0000 is no NUL', async () => {
    const rename = routes.find((r) => r.method === 'PUT' && r.url.startsWith('/v2.1/servers/') && !r.url.includes('meta'))!
    const res = await send(rename, JSON.stringify({ server: { name: 'a\\u0000b' } }))
    assert.equal(res.statusCode, 200, res.body)
    assert.equal(res.json().server.name, 'a\\u0000b')
  })

  test("in a URL: 400 in each service's shape", async () => {
    const headers = { 'x-auth-token': tokens.demo! }
    for (const [service, url] of [
      ['compute', '/v2.1/servers/a%00b'],
      ['compute', '/v2.1/servers?name=a%00'],
      ['image', '/v2/images/a%00'],
      ['identity', '/v3/projects/a%00'],
    ] as const) {
      const res = await skiff.apps[service].inject({ method: 'GET', url, headers })
      assert.match(assertFault(service, res, 400, url), /NUL characters \(%00\) are not allowed/)
    }
  })
})

describe('legitimate bodies still work', () => {
  test('Keystone: password auth scoped to a project in a domain (the deepest body, 6 levels)', async () => {
    const res = await skiff.apps.identity.inject({
      method: 'POST',
      url: '/v3/auth/tokens',
      payload: {
        auth: {
          identity: {
            methods: ['password'],
            password: { user: { name: 'demo', domain: { name: 'Default' }, password: skiff.passwords.demo } },
          },
          scope: { project: { name: 'demo', domain: { name: 'Default' } } },
        },
      },
    })
    assert.equal(res.statusCode, 201, res.body)
  })

  test('Nova: create with scheduler hints, rename, metadata', async () => {
    const create = await skiff.compute('POST', '/v2.1/servers', {
      token: tokens.demo,
      body: {
        server: { name: 'legit', imageRef: await skiff.imageId('skiff-base'), flavorRef: '1', metadata: { a: 'b' } },
        'os:scheduler_hints': { anything: [[['deep', { but: 'legal' }]]] },
      },
    })
    assert.equal(create.statusCode, 202, create.body)
    const id = create.json().server.id as string
    // Nova updates metadata of a built server only (409 while building).
    await waitForStatus(skiff, tokens.demo!, id, 'ACTIVE')
    const rename = await skiff.compute('PUT', `/v2.1/servers/${id}`, { token: tokens.demo, body: { server: { name: 'renamed' } } })
    assert.equal(rename.statusCode, 200, rename.body)
    // Metadata changes wait for the build (409 while building, as Nova): on a busy machine it is not done yet.
    await waitForStatus(skiff, tokens.demo!, id, 'ACTIVE')
    const meta = await skiff.compute('POST', `/v2.1/servers/${id}/metadata`, { token: tokens.demo, body: { metadata: { c: 'd' } } })
    assert.equal(meta.statusCode, 200, meta.body)
  })

  test('Glance: create with properties and tags, then a JSON patch', async () => {
    const headers = { 'x-auth-token': tokens.demo }
    const created = await skiff.apps.image.inject({
      method: 'POST',
      url: '/v2/images',
      headers,
      payload: { name: 'legit', tags: ['a', 'b'], hw_disk_bus: 'virtio' },
    })
    assert.equal(created.statusCode, 201, created.body)
    const patched = await skiff.apps.image.inject({
      method: 'PATCH',
      url: `/v2/images/${created.json().id}`,
      headers: { ...headers, 'content-type': PATCH },
      payload: JSON.stringify([
        { op: 'replace', path: '/tags', value: ['c'] },
        { op: 'add', path: '/os_distro', value: 'debian' },
      ]),
    })
    assert.equal(patched.statusCode, 200, patched.body)
    assert.deepEqual(patched.json().tags, ['c'])
  })
})

describe('walkers over client values are safe at any depth', () => {
  let deep: unknown = 'x'
  for (let i = 0; i < 200_000; i++) deep = { a: [deep] }

  test('jsonTextProblem', () => {
    assert.equal(jsonTextProblem('{"a": "\\u0000"}', 64), 'nul')
    assert.equal(jsonTextProblem('{"a": "\\\\u0000"}', 64), undefined)
    assert.equal(jsonTextProblem(`["\\u0000", ${arrays(65)}]`, 64), 'tooDeep')
  })

  test('nestedDeeperThan', () => {
    assert.equal(nestedDeeperThan(arrays(64), 64), false)
    assert.equal(nestedDeeperThan(arrays(65), 64), true)
    assert.equal(nestedDeeperThan(`["${'['.repeat(100)}"]`, 64), false)
    assert.equal(nestedDeeperThan(`["\\"${'['.repeat(100)}"]`, 64), false)
    assert.equal(nestedDeeperThan(`["\\\\"${'['.repeat(100)}]`, 64), true)
  })

  test('the Python repr of validation messages', () => {
    assert.equal(pyRepr([1, 'a', { b: null, c: [true] }]), "[1, 'a', {'b': None, 'c': [True]}]")
    assert.ok(pyRepr(deep).startsWith("{'a': [{'a': ["))
  })

  test('the canonical JSON of an idempotent request', () => {
    assert.equal(canonicalJson({ b: 1, a: [{ d: 2, c: null }] }), '{"a":[{"c":null,"d":2}],"b":1}')
    assert.ok(canonicalJson(deep).startsWith('{"a":[{"a":['))
  })
})
