// The server API's details found by reading Nova Zed's source against Skiff's: the list's query
// schema, filters and sort per version (schemas/servers.py query_params_v21 … v275,
// servers.py _get_servers, db process_sort_params), the device tag of a network at create
// (create_v232 / v233 / v237 / v242), a rebuild with trusted certificates on a host that cannot
// verify them, PUT's answer for a server in ERROR, and the APIs Nova answers 410 Gone.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { activeServer, startTestSkiff, waitFor, type TestSkiff } from '../helpers/skiff.ts'

let skiff: TestSkiff
let admin: string
let demo: string
const ids: string[] = []

const at = (v: string) => ({ 'openstack-api-version': `compute ${v}` })
const list = (query: string, v = '2.1', token = demo) => skiff.compute('GET', `/v2.1/servers${query}`, { token, headers: at(v) })
const names = (res: { json: () => { servers: { id: string }[] } }) =>
  res.json().servers.map((s) => ['a-one', 'b-two', 'c-three'][ids.indexOf(s.id)] ?? s.id)
const badRequest = (res: { statusCode: number; json: () => unknown }, message: string) => {
  assert.equal(res.statusCode, 400, JSON.stringify(res.json()))
  assert.deepEqual(res.json(), { badRequest: { code: 400, message } })
}

before(async () => {
  skiff = await startTestSkiff()
  admin = await skiff.token('admin')
  demo = await skiff.token('demo')
  // Created one after the other: created_at increases a-one < b-two < c-three.
  for (const name of ['a-one', 'b-two', 'c-three']) {
    ids.push(await activeServer(skiff, demo, name))
    await skiff.clock.advance(1500)
  }
})
after(() => skiff.close())

test('sort_key and sort_dir: several keys, default created_at desc, the direction of the first for the defaults', async () => {
  assert.deepEqual(names(await list('')), ['c-three', 'b-two', 'a-one'])
  assert.deepEqual(names(await list('?sort_dir=asc')), ['a-one', 'b-two', 'c-three'])
  assert.deepEqual(names(await list('?sort_key=display_name&sort_dir=desc')), ['c-three', 'b-two', 'a-one'])
  assert.deepEqual(names(await list('?sort_key=display_name&sort_dir=asc')), ['a-one', 'b-two', 'c-three'])
  // Equal vm_state: created_at and id follow, in the first direction given.
  assert.deepEqual(names(await list('?sort_key=vm_state&sort_dir=asc')), ['a-one', 'b-two', 'c-three'])
  // Pages follow the sort: the marker is the last server of the page before.
  const first = await list('?sort_key=display_name&sort_dir=asc&limit=2')
  assert.deepEqual(names(first), ['a-one', 'b-two'])
  assert.deepEqual(names(await list(`?sort_key=display_name&sort_dir=asc&limit=2&marker=${ids[1]}`)), ['c-three'])
})

test('sort errors: unknown key (schema), direction (InvalidInput), more directions than keys; host for admins only', async () => {
  const unknown = await list('?sort_key=foo')
  assert.equal(unknown.statusCode, 400)
  assert.match(unknown.json().badRequest.message, /^Invalid input for query parameters sort_key\. Value: foo\. 'foo' is not one of \[/)
  badRequest(await list('?sort_dir=up'), "Invalid input received: Unknown sort direction, must be 'desc' or 'asc'")
  badRequest(
    await list('?sort_key=display_name&sort_dir=asc&sort_dir=desc'),
    'Invalid input received: Sort direction size exceeds sort key size',
  )
  const host = await list('?sort_key=host')
  assert.equal(host.statusCode, 403)
  assert.deepEqual(host.json(), { forbidden: { code: 403, message: 'Only administrators can sort servers by host' } })
  assert.equal((await list('?sort_key=host', '2.1', admin)).statusCode, 200)
})

test('ignored sort keys: dropped (with their direction) below 2.75, refused from 2.75; locked sorts from 2.73', async () => {
  // `id` is ignored: its direction goes with it, the default order stays.
  assert.deepEqual(names(await list('?sort_key=id&sort_dir=asc')), ['c-three', 'b-two', 'a-one'])
  assert.deepEqual(names(await list('?sort_key=locked&sort_dir=asc', '2.72')), ['c-three', 'b-two', 'a-one'])
  assert.deepEqual(names(await list('?sort_key=locked&sort_dir=asc', '2.73')), ['a-one', 'b-two', 'c-three'])
  assert.deepEqual(names(await list('?sort_key=id&sort_dir=asc', '2.74')), ['c-three', 'b-two', 'a-one'])
  const refused = await list('?sort_key=id', '2.75')
  assert.equal(refused.statusCode, 400)
  assert.match(refused.json().badRequest.message, /^Invalid input for query parameters sort_key\. Value: id\. 'id' is not one of /)
  assert.equal((await list('?sort_key=locked', '2.75')).statusCode, 200)
})

test('admin filters: created_at, launched_at, terminated_at, progress (REGEXP on the column as MySQL shows it), uuid, ip6', async () => {
  const show = await skiff.compute('GET', `/v2.1/servers/${ids[0]}`, { token: demo })
  const created = (show.json().server.created as string).replace('T', ' ').replace('Z', '')
  // An admin sees its own project's servers unless it asks for all.
  const detail = (q: string, v = '2.1', token = admin) =>
    skiff.compute('GET', `/v2.1/servers${q}${token === admin ? '&all_tenants=1' : ''}`, { token, headers: at(v) })
  const only = async (q: string, expected: string[], v = '2.1', token = admin) => {
    const res = await detail(q, v, token)
    assert.equal(res.statusCode, 200, res.body)
    assert.deepEqual(names(res).sort(), expected, q)
  }
  await only(`?created_at=${encodeURIComponent(`^${created}$`)}`, ['a-one'])
  await only(`?launched_at=${encodeURIComponent(created.slice(0, 10))}`, ['a-one', 'b-two', 'c-three'])
  await only('?terminated_at=.', [])
  await only('?progress=0', ['a-one', 'b-two', 'c-three'])
  await only('?progress=1', [])
  await only(`?uuid=${ids[1]}`, ['b-two'])
  await only(`?display_name=two`, ['b-two'])
  await only('?ip6=%3A', [])
  // A non-admin's are stripped below 2.83 (all servers), applied from 2.83.
  await only('?progress=1', ['a-one', 'b-two', 'c-three'], '2.82', demo)
  await only('?progress=1', [], '2.83', demo)
  await only(`?created_at=${encodeURIComponent(`^${created}$`)}`, ['a-one'], '2.83', demo)
  // A pattern that does not compile is the schema's 400.
  const bad = await detail('?created_at=(')
  assert.equal(bad.statusCode, 400)
  assert.match(bad.json().badRequest.message, /^Invalid input for query parameters created_at\. Value: \(\. '\(' is not a 'regex'/)
})

test('deleted servers: `deleted=true` and `vm_state=deleted` for admins; a non-admin asking vm_state=deleted at 2.83 is refused', async () => {
  const gone = await activeServer(skiff, demo, 'd-gone')
  assert.equal((await skiff.compute('DELETE', `/v2.1/servers/${gone}`, { token: demo })).statusCode, 204)
  await waitFor('deleted', async () => (await skiff.compute('GET', `/v2.1/servers/${gone}`, { token: demo })).statusCode === 404)
  const deleted = await list('?deleted=true&all_tenants=1', '2.1', admin)
  assert.deepEqual(
    deleted.json().servers.map((s: { id: string }) => s.id),
    [gone],
  )
  const byState = await list('?vm_state=deleted&all_tenants=1', '2.1', admin)
  assert.deepEqual(
    byState.json().servers.map((s: { id: string }) => s.id),
    [gone],
  )
  const refused = await list('?vm_state=deleted', '2.83')
  assert.equal(refused.statusCode, 403)
  assert.deepEqual(refused.json(), { forbidden: { code: 403, message: 'Only administrators may list deleted instances' } })
  // Below 2.83 a non-admin's vm_state is stripped: the live servers.
  assert.equal((await list('?vm_state=deleted', '2.82')).json().servers.length, 3)
})

test("a network's device tag at create: 2.32 to 2.36 and from 2.42, not below 2.32 nor at 2.37 to 2.41", async () => {
  const image = await skiff.imageId('skiff-base')
  const create = (v: string, network: Record<string, unknown>) =>
    skiff.compute('POST', '/v2.1/servers', {
      token: demo,
      headers: at(v),
      body: { server: { name: `tag-${v}`, imageRef: image, flavorRef: '1', networks: [network] } },
    })
  const NET = '4e8e5957-649f-477b-9e5b-f1f75b21c03c'
  for (const [v, accepted] of [
    ['2.31', false],
    ['2.32', true],
    ['2.36', true],
    ['2.37', false],
    ['2.41', false],
    ['2.42', true],
    ['2.93', true],
  ] as const) {
    const res = await create(v, { uuid: NET, tag: 'nic1' })
    if (accepted) {
      assert.equal(res.statusCode, 202, `${v}: ${res.body}`)
      // Within the project's quota: each goes once accepted.
      await skiff.compute('DELETE', `/v2.1/servers/${res.json().server.id}`, { token: demo })
    } else {
      assert.equal(res.statusCode, 400, `${v}: ${res.body}`)
      assert.match(
        res.json().badRequest.message,
        /Additional properties are not allowed \('tag' was unexpected\)|is not valid under any of the given schemas/,
      )
    }
  }
  // fixed_ip is parameter_types.ip_address: IPv4 or IPv6.
  assert.equal((await create('2.42', { uuid: NET, fixed_ip: '2001:db8::5' })).statusCode, 202)
  assert.equal((await create('2.42', { uuid: NET, fixed_ip: 'not-an-ip' })).statusCode, 400)
})

test('rebuild with trusted image certificates (2.63) on a host that cannot verify them: ERROR with Nova BuildAbortException fault', async () => {
  const id = await activeServer(skiff, demo, 'certs')
  const image = await skiff.imageId('skiff-base')
  const res = await skiff.compute('POST', `/v2.1/servers/${id}/action`, {
    token: demo,
    headers: at('2.63'),
    body: { rebuild: { imageRef: image, trusted_image_certificates: ['0b5d2c72-12cc-4ba6-a8d7-3ff5cc1d8cb8'] } },
  })
  assert.equal(res.statusCode, 202, res.body)
  assert.deepEqual(res.json().server.trusted_image_certificates, ['0b5d2c72-12cc-4ba6-a8d7-3ff5cc1d8cb8'])
  const server = await waitFor('ERROR', async () => {
    const s = (await skiff.compute('GET', `/v2.1/servers/${id}`, { token: demo, headers: at('2.63') })).json().server
    return s.status === 'ERROR' && s['OS-EXT-STS:task_state'] === null ? s : undefined
  })
  assert.equal(server.fault.code, 500)
  assert.equal(
    server.fault.message,
    `Build of instance ${id} aborted: Trusted image certificates provided on host that does not support certificate validation.`,
  )
  // PUT answers with the fault at every version (ViewBuilder.show), without the extension attributes below 2.75.
  for (const v of ['2.1', '2.74', '2.75']) {
    const put = await skiff.compute('PUT', `/v2.1/servers/${id}`, { token: demo, headers: at(v), body: { server: { name: 'certs' } } })
    assert.equal(put.statusCode, 200)
    const view = put.json().server
    assert.equal(view.status, 'ERROR')
    assert.equal(view.fault.message, server.fault.message, v)
    assert.equal('OS-EXT-STS:vm_state' in view, v === '2.75', v)
  }
  // null resets the certificates: the next rebuild goes through.
  const reset = await skiff.compute('POST', `/v2.1/servers/${id}/action`, {
    token: demo,
    headers: at('2.63'),
    body: { rebuild: { imageRef: image, trusted_image_certificates: null } },
  })
  assert.equal(reset.statusCode, 202, reset.body)
})

test("Nova's 410 Gone APIs, at every version and before any lookup; resetNetwork too", async () => {
  const GONE = { computeFault: { code: 410, message: 'This resource is no longer available.  No forwarding address is given.' } }
  for (const [method, url] of [
    ['GET', `/v2.1/servers/${ids[0]}/os-virtual-interfaces`],
    ['GET', '/v2.1/os-fping'],
    ['GET', '/v2.1/os-cells'],
    ['POST', '/v2.1/os-networks'],
    ['GET', `/v2.1/servers/${ids[0]}/consoles`],
    ['GET', '/v2.1/os-agents'],
  ] as const) {
    for (const v of ['2.1', '2.93']) {
      const res = await skiff.compute(method, url, { token: demo, headers: at(v), ...(method === 'POST' ? { body: {} } : {}) })
      assert.equal(res.statusCode, 410, `${method} ${url} ${v}`)
      assert.deepEqual(res.json(), GONE)
    }
  }
  const reset = await skiff.compute('POST', `/v2.1/servers/00000000-0000-0000-0000-000000000000/action`, {
    token: demo,
    body: { resetNetwork: null },
  })
  assert.equal(reset.statusCode, 410)
  assert.deepEqual(reset.json(), GONE)
})
