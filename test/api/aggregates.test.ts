// os-aggregates (admins) and os-availability-zone as Nova answers them; an aggregate's
// availability_zone makes its hosts that zone: the zone list shows it, a server created in it
// lands on one of its hosts, and the server view names the host's zone.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { activeServer, startTestSkiff, type TestSkiff } from '../helpers/skiff.ts'

let skiff: TestSkiff
let admin: string
let demo: string
let imageRef: string

const mv = (v: string) => ({ 'x-openstack-nova-api-version': v })
const call = (method: string, url: string, body?: unknown, token = admin, v = '2.1') =>
  skiff.compute(method, url, { token, body, headers: mv(v) })

before(async () => {
  skiff = await startTestSkiff()
  admin = await skiff.token('admin')
  demo = await skiff.token('demo')
  imageRef = await skiff.imageId('skiff-base')
  const now = skiff.clock.now().toISOString()
  await skiff.store.db
    .insertInto('hosts')
    .values({ name: 'skiff-2', started_at: now, heartbeat_at: now, driver: 'simulated', vcpus: 8, ram_mb: 8192, disk_gb: 100 })
    .execute()
})
after(() => skiff.close())

test('create, list, show, update, set_metadata, add_host, remove_host and delete, with the keys of 2.1 and 2.41', async () => {
  const created = await call('POST', '/v2.1/os-aggregates', { aggregate: { name: 'agg1', availability_zone: 'az1' } })
  assert.equal(created.statusCode, 200, created.body)
  const a = created.json().aggregate
  assert.deepEqual(Object.keys(a).sort(), ['availability_zone', 'created_at', 'deleted', 'deleted_at', 'id', 'name', 'updated_at'])
  assert.equal(a.availability_zone, 'az1')
  assert.equal(a.deleted, false)
  assert.match(a.created_at, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}$/)
  const dup = await call('POST', '/v2.1/os-aggregates', { aggregate: { name: 'agg1' } })
  assert.equal(dup.statusCode, 409)
  assert.deepEqual(dup.json(), { conflictingRequest: { code: 409, message: 'Aggregate agg1 already exists.' } })

  const added = await call('POST', `/v2.1/os-aggregates/${a.id}/action`, { add_host: { host: 'skiff-2' } })
  assert.equal(added.statusCode, 200, added.body)
  assert.deepEqual(added.json().aggregate.hosts, ['skiff-2'])
  assert.deepEqual(added.json().aggregate.metadata, { availability_zone: 'az1' })
  const again = await call('POST', `/v2.1/os-aggregates/${a.id}/action`, { add_host: { host: 'skiff-2' } })
  assert.equal(again.statusCode, 409)
  assert.equal(again.json().conflictingRequest.message, `Aggregate ${a.id} already has host skiff-2.`)
  const ghost = await call('POST', `/v2.1/os-aggregates/${a.id}/action`, { add_host: { host: 'nohost' } })
  assert.deepEqual(ghost.json(), { itemNotFound: { code: 404, message: 'Compute host nohost could not be found.' } })

  const meta = await call('POST', `/v2.1/os-aggregates/${a.id}/action`, { set_metadata: { metadata: { ssd: 'true', gone: null } } })
  assert.equal(meta.statusCode, 200, meta.body)
  assert.deepEqual(meta.json().aggregate.metadata, { availability_zone: 'az1', ssd: 'true' })
  const upd = await call('PUT', `/v2.1/os-aggregates/${a.id}`, { aggregate: { name: 'agg1-renamed' } }, admin, '2.41')
  assert.equal(upd.statusCode, 200, upd.body)
  assert.equal(upd.json().aggregate.name, 'agg1-renamed')
  assert.match(upd.json().aggregate.uuid, /^[0-9a-f-]{36}$/)
  assert.notEqual(upd.json().aggregate.updated_at, null)
  // Name and zone in one update (Tempest's test_aggregate_create_update_with_az), back to az1.
  for (const zone of ['az1-moved', 'az1']) {
    const both = await call('PUT', `/v2.1/os-aggregates/${a.id}`, { aggregate: { name: `agg1-${zone}`, availability_zone: zone } })
    assert.equal(both.statusCode, 200, both.body)
    assert.equal(both.json().aggregate.availability_zone, zone)
  }
  await call('PUT', `/v2.1/os-aggregates/${a.id}`, { aggregate: { name: 'agg1-renamed' } })

  const list = (await call('GET', '/v2.1/os-aggregates')).json().aggregates
  assert.equal(list.length, 1)
  assert.equal(list[0].uuid, undefined)
  assert.equal((await call('GET', `/v2.1/os-aggregates/${a.id}`)).json().aggregate.name, 'agg1-renamed')

  // Another zone for a host already in az1: Nova's 409 (add_host) naming the zones.
  const other = (await call('POST', '/v2.1/os-aggregates', { aggregate: { name: 'agg2', availability_zone: 'az2' } })).json().aggregate
  const clash = await call('POST', `/v2.1/os-aggregates/${other.id}/action`, { add_host: { host: 'skiff-2' } })
  assert.equal(clash.statusCode, 409)
  assert.equal(
    clash.json().conflictingRequest.message,
    `Cannot add host to aggregate ${other.id}. Reason: One or more hosts already in availability zone(s) ['az1'].`,
  )
  const notEmpty = await call('DELETE', `/v2.1/os-aggregates/${a.id}`)
  assert.equal(notEmpty.statusCode, 400)
  assert.equal(notEmpty.json().badRequest.message, `Cannot remove host from aggregate ${a.id}. Reason: Host aggregate is not empty.`)
  const noHost = await call('POST', `/v2.1/os-aggregates/${other.id}/action`, { remove_host: { host: 'skiff-2' } })
  assert.equal(noHost.statusCode, 404)
  assert.equal(noHost.json().itemNotFound.message, `Cannot remove host skiff-2 in aggregate ${other.id}`)
  assert.equal((await call('DELETE', `/v2.1/os-aggregates/${other.id}`)).statusCode, 200)
  assert.equal(
    (await call('GET', `/v2.1/os-aggregates/${other.id}`)).json().itemNotFound.message,
    `Aggregate ${other.id} could not be found.`,
  )
})

test('bad input and policy: 400 for bodies and ids, 403 for non-admins', async () => {
  for (const body of [
    { aggregate: {} },
    { aggregate: { name: '' } },
    { aggregate: { name: 'x', availability_zone: 'a:b' } },
    { aggregate: { name: 'x', extra: 1 } },
    { aggregate: { name: 5 } },
    {},
  ]) {
    assert.equal((await call('POST', '/v2.1/os-aggregates', body)).statusCode, 400, JSON.stringify(body))
  }
  assert.equal((await call('PUT', '/v2.1/os-aggregates/1', { aggregate: {} })).statusCode, 400)
  assert.equal((await call('GET', '/v2.1/os-aggregates/abc')).json().badRequest.message, 'Invalid input received: id must be an integer')
  assert.equal((await call('POST', '/v2.1/os-aggregates/1/action', { add_host: { host: 'bad host!' } })).statusCode, 400)
  assert.equal((await call('POST', '/v2.1/os-aggregates/1/action', { explode: {} })).statusCode, 400)
  for (const [method, url, body, rule] of [
    ['GET', '/v2.1/os-aggregates', undefined, 'index'],
    ['POST', '/v2.1/os-aggregates', { aggregate: { name: 'nope' } }, 'create'],
    ['GET', '/v2.1/os-aggregates/1', undefined, 'show'],
    ['DELETE', '/v2.1/os-aggregates/1', undefined, 'delete'],
    ['POST', '/v2.1/os-aggregates/1/action', { add_host: { host: 'skiff-1' } }, 'add_host'],
  ] as const) {
    const res = await call(method, url, body, demo)
    assert.equal(res.statusCode, 403, url)
    assert.equal(res.json().forbidden.message, `Policy doesn't allow os_compute_api:os-aggregates:${rule} to be performed.`)
  }
  const detail = await call('GET', '/v2.1/os-availability-zone/detail', undefined, demo)
  assert.equal(detail.statusCode, 403)
  assert.equal(detail.json().forbidden.message, "Policy doesn't allow os_compute_api:os-availability-zone:detail to be performed.")
})

test('zones: listed for everyone, detailed for admins; a server asking for az1 lands on its host and shows az1', async () => {
  const zones = (await call('GET', '/v2.1/os-availability-zone', undefined, demo)).json().availabilityZoneInfo
  assert.deepEqual(zones, [
    { zoneName: 'az1', zoneState: { available: true }, hosts: null },
    { zoneName: 'nova', zoneState: { available: true }, hosts: null },
  ])
  const detail = (await call('GET', '/v2.1/os-availability-zone/detail')).json().availabilityZoneInfo
  assert.deepEqual(
    detail.map((z: { zoneName: string; hosts: Record<string, unknown> }) => [z.zoneName, Object.keys(z.hosts).length]),
    [
      ['internal', 1],
      ['az1', 1],
      ['nova', 1],
    ],
  )
  assert.deepEqual(Object.keys(detail[1].hosts.skiff_2 ?? detail[1].hosts['skiff-2']), ['nova-compute'])

  const inAz = await skiff.compute('POST', '/v2.1/servers', {
    token: admin,
    body: { server: { name: 'in-az1', imageRef, flavorRef: '1', availability_zone: 'az1' } },
  })
  assert.equal(inAz.statusCode, 202, inAz.body)
  const s = (await call('GET', `/v2.1/servers/${inAz.json().server.id}`)).json().server
  assert.equal(s['OS-EXT-SRV-ATTR:host'], 'skiff-2')
  assert.equal(s['OS-EXT-AZ:availability_zone'], 'az1')
  // The default zone is the other host's.
  const inNova = await activeServer(skiff, demo, 'in-nova', { availability_zone: 'nova' })
  const n = (await call('GET', `/v2.1/servers/${inNova}`)).json().server
  assert.equal(n['OS-EXT-SRV-ATTR:host'], 'skiff-1')
  assert.equal(n['OS-EXT-AZ:availability_zone'], 'nova')
  const nowhere = await skiff.compute('POST', '/v2.1/servers', {
    token: demo,
    body: { server: { name: 'x', imageRef, flavorRef: '1', availability_zone: 'az9' } },
  })
  assert.equal(nowhere.statusCode, 400)
  assert.deepEqual(nowhere.json(), { badRequest: { code: 400, message: 'The requested availability zone is not available' } })
  // The zone of a host with servers cannot change under them.
  const agg = (await call('GET', '/v2.1/os-aggregates')).json().aggregates[0]
  const move = await call('POST', `/v2.1/os-aggregates/${agg.id}/action`, { set_metadata: { metadata: { availability_zone: 'az3' } } })
  assert.equal(move.statusCode, 400)
  assert.equal(
    move.json().badRequest.message,
    `Cannot update metadata of aggregate ${agg.id}. Reason: One or more hosts contain instances in this zone.`,
  )
  // os-services names each host's zone.
  const services = (await call('GET', '/v2.1/os-services')).json().services as { host: string; zone: string }[]
  assert.deepEqual(
    services.map((x) => [x.host, x.zone]),
    [
      ['skiff-1', 'nova'],
      ['skiff-2', 'az1'],
    ],
  )
})
