// The memo of server views (api/routes/compute/server-view-memo.ts) never serves a view that is
// out of date or built for someone else: each thing a view shows is changed, through the API
// and behind its back (SQL, as another process would write), and GET /servers/{id} and
// /servers/detail show the change at once; callers of other projects, roles and microversions
// never get each other's view. On PostgreSQL, a second Skiff on the same database writes and
// the first sees it.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { ServerViewMemo } from '../../src/api/routes/compute/server-view-memo.ts'
import type { AuthContext } from '../../src/identity/identity-service.ts'
import path from 'node:path'
import { freshDatabase, harnessDialect, type TestDatabase } from '../helpers/database.ts'
import { activeServer, startTestSkiff, waitForStatus, type TestSkiff } from '../helpers/skiff.ts'

let database: TestDatabase
let skiff: TestSkiff
let demo: string
let admin: string
let id: string
let other: string

before(async () => {
  database = await freshDatabase()
  skiff = await startTestSkiff({ databaseUrl: database.url })
  demo = await skiff.token('demo')
  admin = await skiff.token('admin')
  id = await activeServer(skiff, demo, 'memo-1')
  other = await activeServer(skiff, demo, 'memo-2')
})
after(async () => {
  await skiff?.close()
  await database?.drop()
})

type View = Record<string, unknown>
const at = (v: string) => ({ 'openstack-api-version': `compute ${v}` })

async function show(token: string, v = '2.1', server = id): Promise<View> {
  const r = await skiff.compute('GET', `/v2.1/servers/${server}`, { token, headers: at(v) })
  assert.equal(r.statusCode, 200, r.body)
  return r.json().server as View
}
async function inDetail(token: string, v = '2.1', server = id, query = ''): Promise<View> {
  const r = await skiff.compute('GET', `/v2.1/servers/detail${query}`, { token, headers: at(v) })
  assert.equal(r.statusCode, 200, r.body)
  const s = (r.json().servers as View[]).find((x) => x.id === server)
  assert.ok(s, `${server} in the list`)
  return s
}
/** Both GETs, twice (the second from the memo), agree on what `check` looks at. */
async function expectBoth(check: (s: View) => void, token = demo, v = '2.1') {
  for (let i = 0; i < 2; i++) {
    check(await show(token, v))
    // An admin lists the demo project's servers with all_tenants.
    check(await inDetail(token, v, id, token === admin ? '?all_tenants=1' : ''))
  }
}
const action = async (body: unknown, token = demo, v = '2.1') => {
  const r = await skiff.compute('POST', `/v2.1/servers/${id}/action`, { token, body, headers: at(v) })
  assert.ok(r.statusCode < 300, r.body)
  return r
}

test('through the API: name, metadata, status, lock, tags, rescue each show at once', async () => {
  await expectBoth((s) => assert.equal(s.name, 'memo-1'))
  let r = await skiff.compute('PUT', `/v2.1/servers/${id}`, { token: demo, body: { server: { name: 'renamed' } } })
  assert.equal(r.statusCode, 200)
  await expectBoth((s) => assert.equal(s.name, 'renamed'))

  r = await skiff.compute('PUT', `/v2.1/servers/${id}/metadata/color`, { token: demo, body: { meta: { color: 'blue' } } })
  assert.equal(r.statusCode, 200, r.body)
  await expectBoth((s) => assert.deepEqual(s.metadata, { color: 'blue' }))

  await expectBoth((s) => assert.equal(s.locked, false), demo, '2.9')
  await action({ lock: null })
  await expectBoth((s) => assert.equal(s.locked, true), demo, '2.9')
  await action({ unlock: null })
  await expectBoth((s) => assert.equal(s.locked, false), demo, '2.9')

  await expectBoth((s) => assert.deepEqual(s.tags, []), demo, '2.26')
  r = await skiff.compute('PUT', `/v2.1/servers/${id}/tags/blue`, { token: demo, headers: at('2.26') })
  assert.equal(r.statusCode, 201, r.body)
  await expectBoth((s) => assert.deepEqual(s.tags, ['blue']), demo, '2.26')
  r = await skiff.compute('DELETE', `/v2.1/servers/${id}/tags/blue`, { token: demo, headers: at('2.26') })
  assert.equal(r.statusCode, 204, r.body)
  await expectBoth((s) => assert.deepEqual(s.tags, []), demo, '2.26')

  await action({ 'os-stop': null })
  await waitForStatus(skiff, demo, id, 'SHUTOFF')
  await expectBoth((s) => {
    assert.equal(s.status, 'SHUTOFF')
    assert.equal(s['OS-EXT-STS:power_state'], 4)
  })
  await action({ 'os-start': null })
  await waitForStatus(skiff, demo, id, 'ACTIVE')
  await expectBoth((s) => assert.equal(s.status, 'ACTIVE'))

  await action({ rescue: {} })
  await waitForStatus(skiff, demo, id, 'RESCUE')
  await expectBoth((s) => assert.equal(s.status, 'RESCUE'))
  await action({ unrescue: null })
  await waitForStatus(skiff, demo, id, 'ACTIVE')
  await expectBoth((s) => assert.equal(s.status, 'ACTIVE'))
})

test('behind the API (SQL, as another process writes): addresses, fault, action, user data, group, flavor', async () => {
  const db = skiff.store.db
  const before = (await show(demo)).addresses as { private: { addr: string }[] }
  await db.updateTable('fixed_ips').set({ address: '10.0.99.99' }).where('server_id', '=', id).execute()
  await expectBoth((s) => assert.equal((s.addresses as typeof before).private[0]!.addr, '10.0.99.99'))
  await db.deleteFrom('fixed_ips').where('server_id', '=', id).execute()
  await expectBoth((s) => assert.deepEqual(s.addresses, {}))
  assert.notDeepEqual(before, {})

  // A fault newer than the last action shows; a later action makes history of it.
  const later = new Date(Date.parse(String((await show(demo, '2.1')).updated)) + 3_600_000).toISOString()
  await db
    .insertInto('instance_faults')
    .values({ id: 'memo-fault', server_id: id, code: 500, message: 'Disk gone', details: 'trace', created_at: later })
    .execute()
  await expectBoth((s) => assert.deepEqual(s.fault, { code: 500, created: later.slice(0, 19) + 'Z', message: 'Disk gone' }))
  // Admins see the details: not the demo user's entry.
  await expectBoth((s) => assert.equal((s.fault as View).details, 'trace'), admin)
  await expectBoth((s) => assert.equal((s.fault as View).details, undefined))
  const laterStill = new Date(Date.parse(later) + 1000).toISOString()
  await db
    .insertInto('instance_actions')
    .values({
      id: 'memo-action',
      server_id: id,
      action: 'reboot',
      request_id: 'req-memo',
      user_id: 'u',
      project_id: 'p',
      start_time: laterStill,
      updated_at: laterStill,
      message: null,
    })
    .execute()
  await expectBoth((s) => assert.equal(s.fault, undefined))

  await expectBoth((s) => assert.equal(s['OS-EXT-SRV-ATTR:user_data'], null), admin, '2.3')
  await db
    .insertInto('server_boot_data')
    .values({ server_id: id, key_data: null, user_data: 'aGVsbG8=' })
    .onConflict((oc) => oc.column('server_id').doUpdateSet({ user_data: 'aGVsbG8=' }))
    .execute()
  await expectBoth((s) => assert.equal(s['OS-EXT-SRV-ATTR:user_data'], 'aGVsbG8='), admin, '2.3')

  // The detail list does not name the group; one server's GET does (2.71).
  assert.deepEqual((await show(demo, '2.71')).server_groups, [])
  await db.insertInto('server_group_members').values({ group_id: 'memo-group', server_id: id }).execute()
  for (let i = 0; i < 2; i++) assert.deepEqual((await show(demo, '2.71')).server_groups, ['memo-group'])
  await db.deleteFrom('server_group_members').where('server_id', '=', id).execute()
  for (let i = 0; i < 2; i++) assert.deepEqual((await show(demo, '2.71')).server_groups, [])

  // The flavor (2.47) is the flavor's record now, which the server's version does not cover.
  await expectBoth((s) => assert.deepEqual((s.flavor as View).extra_specs, {}), demo, '2.47')
  await db.updateTable('flavors').set({ extra_specs: '{"hw:cpu_policy":"dedicated"}' }).where('id', '=', '1').execute()
  await expectBoth((s) => assert.deepEqual((s.flavor as View).extra_specs, { 'hw:cpu_policy': 'dedicated' }), demo, '2.47')
  await db.updateTable('flavors').set({ extra_specs: '{}' }).where('id', '=', '1').execute()
  await expectBoth((s) => assert.deepEqual((s.flavor as View).extra_specs, {}), demo, '2.47')
})

test('callers never share a view: admin and member, microversions, projects, show and detail', async () => {
  // The admin's view first: the member must not get its extended attributes.
  const a = await show(admin, '2.1', other)
  assert.ok('OS-EXT-SRV-ATTR:host' in a)
  for (let i = 0; i < 2; i++) {
    assert.ok(!('OS-EXT-SRV-ATTR:host' in (await show(demo, '2.1', other))))
    assert.ok(!('OS-EXT-SRV-ATTR:host' in (await inDetail(demo, '2.1', other))))
  }
  assert.ok('OS-EXT-SRV-ATTR:host' in (await inDetail(admin, '2.1', other, '?all_tenants=1')))
  // The reader sees what the member sees, from an entry of its own.
  const reader = await skiff.token('reader_demo')
  assert.deepEqual(await show(reader, '2.1', other), await show(demo, '2.1', other))
  // Each microversion its own keys.
  assert.ok(!('description' in (await show(demo, '2.1', other))))
  assert.ok('description' in (await show(demo, '2.19', other)))
  assert.ok(!('description' in (await show(demo, '2.1', other))))
  assert.ok('OS-EXT-SRV-ATTR:hostname' in (await show(demo, '2.90', other)))
  assert.ok(!('OS-EXT-SRV-ATTR:hostname' in (await show(demo, '2.89', other))))
  // show names the group from 2.71, detail never.
  assert.ok('server_groups' in (await show(demo, '2.71', other)))
  assert.ok(!('server_groups' in (await inDetail(demo, '2.71', other))))
  assert.ok('server_groups' in (await show(demo, '2.71', other)))
  // Another project: 404 however warm the memo is.
  const alt = await skiff.token('alt_demo')
  const r = await skiff.compute('GET', `/v2.1/servers/${other}`, { token: alt })
  assert.equal(r.statusCode, 404)
  const list = await skiff.compute('GET', '/v2.1/servers/detail', { token: alt })
  assert.deepEqual(list.json().servers, [])
})

test('the variant key differs by base, answering, microversion, admin, project and roles', () => {
  const ctx = (over: Partial<AuthContext>): AuthContext => ({
    userId: 'u',
    userName: 'u',
    projectId: 'p',
    projectName: 'p',
    domainScopeId: null,
    roles: [{ id: '1', name: 'member' }],
    isAdmin: false,
    methods: ['password'],
    auditId: 'a',
    issuedAt: '',
    expiresAt: '',
    ...over,
  })
  const v21 = { major: 2, minor: 1 }
  const base = ServerViewMemo.variant('http://x', 'show', v21, ctx({}))
  const others = [
    ServerViewMemo.variant('http://y', 'show', v21, ctx({})),
    ServerViewMemo.variant('http://x', 'detail', v21, ctx({})),
    ServerViewMemo.variant('http://x', 'show', { major: 2, minor: 10 }, ctx({})),
    ServerViewMemo.variant('http://x', 'show', v21, ctx({ isAdmin: true })),
    ServerViewMemo.variant('http://x', 'show', v21, ctx({ projectId: 'q' })),
    ServerViewMemo.variant('http://x', 'show', v21, ctx({ roles: [{ id: '2', name: 'reader' }] })),
  ]
  assert.equal(new Set([base, ...others]).size, others.length + 1)
  // The same caller with the roles in another order is the same variant.
  const two = [
    { id: '1', name: 'member' },
    { id: '2', name: 'reader' },
  ]
  assert.equal(
    ServerViewMemo.variant('http://x', 'show', v21, ctx({ roles: two })),
    ServerViewMemo.variant('http://x', 'show', v21, ctx({ roles: [...two].reverse() })),
  )
})

test('bounded: the least recently used views go first, never more than the cap', () => {
  const memo = new ServerViewMemo(10_000)
  const json = Buffer.alloc(1000, 'x')
  for (let i = 0; i < 10; i++) memo.set('v ', `s${i}`, 1, '', json)
  assert.ok(memo.get('v ', 's0', 1, ''))
  memo.set('v ', 's10', 1, '', json)
  assert.deepEqual(memo.size, { entries: 10, bytes: 10_000 })
  assert.ok(memo.get('v ', 's0', 1, ''), 'used recently: kept')
  assert.equal(memo.get('v ', 's1', 1, ''), undefined, 'least recently used: out')
  // A newer version replaces the entry (no pile of old versions); an old or other key misses.
  memo.set('v ', 's0', 2, '', json)
  assert.equal(memo.size.entries, 10)
  assert.equal(memo.get('v ', 's0', 1, ''), undefined)
  assert.equal(memo.get('v ', 's0', 2, 'other'), undefined)
  assert.ok(memo.get('v ', 's0', 2, ''))
  for (let i = 0; i < 100; i++) memo.set('w ', `t${i}`, 1, '', json)
  assert.ok(memo.size.bytes <= 10_000)
})

test('host status (2.16, admins) follows the host, which the version does not cover', async () => {
  await expectBoth((s) => assert.equal(s.host_status, 'UP'), admin, '2.16')
  await skiff.agent!.stop()
  await skiff.clock.advance(10 * 60_000)
  await expectBoth((s) => assert.notEqual(s.host_status, 'UP'), admin, '2.16')
})

test('PostgreSQL: a write by another Skiff on the same database is seen at once', { skip: harnessDialect() !== 'postgres' }, async () => {
  const second = await startTestSkiff({
    databaseUrl: database.url,
    agentHost: 'memo-host-b',
    secretKeyFile: path.join(skiff.dataDir, 'secret.key'),
  })
  try {
    // The demo user's token, issued by the first: tokens live in the database.
    const token = demo
    await expectBoth((s) => assert.equal(s.name, 'renamed'))
    const r = await second.compute('PUT', `/v2.1/servers/${id}`, { token, body: { server: { name: 'from-the-other' } } })
    assert.equal(r.statusCode, 200, r.body)
    await expectBoth((s) => assert.equal(s.name, 'from-the-other'))
  } finally {
    await second.close()
  }
})
