import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { startTestSkiff, type TestSkiff } from '../helpers/skiff.ts'

let skiff: TestSkiff
before(async () => {
  skiff = await startTestSkiff()
})
after(() => skiff.close())

const auth = (user: Record<string, unknown>, scope?: unknown) => ({
  auth: { identity: { methods: ['password'], password: { user } }, ...(scope ? { scope } : {}) },
})
const post = (payload: unknown) => skiff.apps.identity.inject({ method: 'POST', url: '/v3/auth/tokens', payload: payload as object })

test('version discovery: 300 at the root, 200 at /v3', async () => {
  const root = await skiff.apps.identity.inject({ method: 'GET', url: '/' })
  assert.equal(root.statusCode, 300)
  assert.equal(root.json().versions.values[0].id, 'v3.14')
  const v3 = await skiff.apps.identity.inject({ method: 'GET', url: '/v3' })
  assert.equal(v3.statusCode, 200)
  assert.equal(v3.json().version.links[0].href, 'http://127.0.0.1:5000/v3/')
})

test('a password token scoped by project name carries roles and a catalog with region and region_id', async () => {
  const res = await post(
    auth(
      { name: 'demo', domain: { name: 'Default' }, password: skiff.passwords.demo },
      { project: { name: 'demo', domain: { name: 'Default' } } },
    ),
  )
  assert.equal(res.statusCode, 201)
  assert.ok(res.headers['x-subject-token'])
  const token = res.json().token
  assert.equal(token.project.name, 'demo')
  assert.deepEqual(token.roles.map((r: { name: string }) => r.name).sort(), ['member', 'reader'])
  assert.match(token.expires_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/)
  const compute = token.catalog.find((s: { type: string }) => s.type === 'compute')
  assert.deepEqual(compute.endpoints.map((e: { interface: string }) => e.interface).sort(), ['admin', 'internal', 'public'])
  for (const e of token.catalog.flatMap((s: { endpoints: object[] }) => s.endpoints)) {
    assert.equal(e.region, 'RegionOne')
    assert.equal(e.region_id, 'RegionOne')
  }
  assert.equal(compute.endpoints[0].url, 'http://127.0.0.1:8774/v2.1')
})

test('a wrong password, an unknown user and another project all answer 401 in Keystone shape', async () => {
  for (const body of [
    auth({ name: 'demo', domain: { name: 'Default' }, password: 'wrong' }),
    auth({ name: 'nobody', domain: { name: 'Default' }, password: 'x' }),
    auth(
      { name: 'demo', domain: { name: 'Default' }, password: skiff.passwords.demo },
      { project: { name: 'admin', domain: { name: 'Default' } } },
    ),
  ]) {
    const res = await post(body)
    assert.equal(res.statusCode, 401)
    assert.equal(res.json().error.code, 401)
    assert.equal(res.json().error.title, 'Unauthorized')
    assert.ok(!res.body.includes('wrong'), 'the password is not echoed')
  }
})

test('a malformed auth body is 400, not 500', async () => {
  for (const body of [{}, { auth: {} }, { auth: { identity: { methods: 'password' } } }]) {
    const res = await post(body)
    assert.equal(res.statusCode, 400, JSON.stringify(body))
    assert.equal(res.json().error.code, 400)
  }
  const bad = await skiff.apps.identity.inject({
    method: 'POST',
    url: '/v3/auth/tokens',
    headers: { 'content-type': 'application/json' },
    payload: '{"auth": ',
  })
  assert.equal(bad.statusCode, 400)
})

test('tokens validate, rescope by token, and die when revoked', async () => {
  const demo = await skiff.token('demo')
  const check = await skiff.apps.identity.inject({
    method: 'GET',
    url: '/v3/auth/tokens',
    headers: { 'x-auth-token': demo, 'x-subject-token': demo },
  })
  assert.equal(check.statusCode, 200)
  assert.equal(check.json().token.user.name, 'demo')
  const head = await skiff.apps.identity.inject({
    method: 'HEAD',
    url: '/v3/auth/tokens',
    headers: { 'x-auth-token': demo, 'x-subject-token': demo },
  })
  assert.equal(head.statusCode, 200)

  const rescoped = await post({
    auth: { identity: { methods: ['token'], token: { id: demo } }, scope: { project: { name: 'demo', domain: { id: 'default' } } } },
  })
  assert.equal(rescoped.statusCode, 201)
  const second = String(rescoped.headers['x-subject-token'])
  assert.deepEqual(rescoped.json().token.methods, ['password', 'token'])

  const del = await skiff.apps.identity.inject({
    method: 'DELETE',
    url: '/v3/auth/tokens',
    headers: { 'x-auth-token': demo, 'x-subject-token': second },
  })
  assert.equal(del.statusCode, 204)
  const gone = await skiff.apps.compute.inject({ method: 'GET', url: '/v2.1/servers', headers: { 'x-auth-token': second } })
  assert.equal(gone.statusCode, 401)
  assert.match(String(gone.headers['www-authenticate']), /^Keystone uri="http:\/\/127\.0\.0\.1:5000\/v3"$/)
})

test('admins list projects, users and role assignments; members may not', async () => {
  const admin = await skiff.token('admin')
  const projects = await skiff.apps.identity.inject({ method: 'GET', url: '/v3/projects', headers: { 'x-auth-token': admin } })
  assert.deepEqual(
    projects.json().projects.map((p: { name: string }) => p.name),
    ['admin', 'alt_demo', 'demo'],
  )
  const users = await skiff.apps.identity.inject({ method: 'GET', url: '/v3/users', headers: { 'x-auth-token': admin } })
  assert.deepEqual(
    users.json().users.map((u: { name: string }) => u.name),
    ['admin', 'alt_demo', 'demo', 'reader_demo'],
  )
  const ra = await skiff.apps.identity.inject({
    method: 'GET',
    url: '/v3/role_assignments?include_names=1',
    headers: { 'x-auth-token': admin },
  })
  const demoRoles = ra
    .json()
    .role_assignments.filter((a: { user: { name: string } }) => a.user.name === 'demo')
    .map((a: { role: { name: string } }) => a.role.name)
    .sort()
  assert.deepEqual(demoRoles, ['member', 'reader'])
  const denied = await skiff.apps.identity.inject({
    method: 'GET',
    url: '/v3/users',
    headers: { 'x-auth-token': await skiff.token('demo') },
  })
  assert.equal(denied.statusCode, 403)
})
