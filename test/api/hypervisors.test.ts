// os-hypervisors as nova/api/openstack/compute/hypervisors.py answers, one hypervisor per agent
// host, its figures from the host's capacity and its servers' flavors: list, detail, show,
// statistics, servers, search, per microversion (2.28 cpu_info object, 2.33 pagination, 2.53
// uuids and query parameters instead of the search and servers routes, 2.88 the figures and
// statistics gone, uptime in); admins only.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { activeServer, startTestSkiff, type TestSkiff } from '../helpers/skiff.ts'

let skiff: TestSkiff
let admin: string
let demo: string
let serverId: string

const mv = (v: string) => ({ 'x-openstack-nova-api-version': v })
const get = (url: string, v = '2.1', token = admin) => skiff.compute('GET', url, { token, headers: mv(v) })

before(async () => {
  skiff = await startTestSkiff({ hostVcpus: 8, hostRamMb: 8192, hostDiskGb: 100 })
  admin = await skiff.token('admin')
  demo = await skiff.token('demo')
  serverId = await activeServer(skiff, demo, 'hv-probe')
  // A second host that registered and is heartbeating (no agent runs its tasks in this test).
  const now = skiff.clock.now().toISOString()
  await skiff.store.db
    .insertInto('hosts')
    .values({ name: 'skiff-2', started_at: now, heartbeat_at: now, driver: 'simulated', vcpus: 4, ram_mb: 2048, disk_gb: 10 })
    .execute()
})
after(() => skiff.close())

test('detail at 2.1: the figures of each host (an m1.tiny on skiff-1), integer ids, cpu_info as text', async () => {
  const res = await get('/v2.1/os-hypervisors/detail')
  assert.equal(res.statusCode, 200, res.body)
  const [one, two] = res.json().hypervisors
  assert.equal(res.json().hypervisors.length, 2)
  assert.deepEqual(
    { ...one, cpu_info: typeof one.cpu_info },
    {
      id: 1,
      hypervisor_hostname: 'skiff-1',
      state: 'up',
      status: 'enabled',
      hypervisor_type: 'fake',
      hypervisor_version: 1000,
      host_ip: '127.0.0.1',
      service: { id: 1, host: 'skiff-1', disabled_reason: null },
      vcpus: 8,
      memory_mb: 8192,
      local_gb: 100,
      vcpus_used: 1,
      memory_mb_used: 512,
      local_gb_used: 1,
      free_ram_mb: 7680,
      free_disk_gb: 99,
      current_workload: 0,
      running_vms: 1,
      disk_available_least: 99,
      cpu_info: 'string',
    },
  )
  assert.equal(JSON.parse(one.cpu_info).topology.cores, 8)
  assert.equal(two.hypervisor_hostname, 'skiff-2')
  assert.equal(two.running_vms, 0)
  // 2.28: an object.
  assert.equal(typeof (await get('/v2.1/os-hypervisors/detail', '2.28')).json().hypervisors[0].cpu_info, 'object')
})

test('list, show, statistics and the pre-2.53 search and servers routes', async () => {
  assert.deepEqual((await get('/v2.1/os-hypervisors')).json(), {
    hypervisors: [
      { id: 1, hypervisor_hostname: 'skiff-1', state: 'up', status: 'enabled' },
      { id: 2, hypervisor_hostname: 'skiff-2', state: 'up', status: 'enabled' },
    ],
  })
  const shown = (await get('/v2.1/os-hypervisors/2')).json().hypervisor
  assert.equal(shown.hypervisor_hostname, 'skiff-2')
  assert.equal(shown.vcpus, 4)
  assert.deepEqual((await get('/v2.1/os-hypervisors/statistics')).json(), {
    hypervisor_statistics: {
      count: 2,
      vcpus: 12,
      memory_mb: 10240,
      local_gb: 110,
      vcpus_used: 1,
      memory_mb_used: 512,
      local_gb_used: 1,
      free_ram_mb: 9728,
      free_disk_gb: 109,
      current_workload: 0,
      running_vms: 1,
      disk_available_least: 109,
    },
  })
  assert.deepEqual((await get('/v2.1/os-hypervisors/skiff-1/servers')).json(), {
    hypervisors: [
      { id: 1, hypervisor_hostname: 'skiff-1', state: 'up', status: 'enabled', servers: [{ name: 'hv-probe', uuid: serverId }] },
    ],
  })
  assert.equal((await get('/v2.1/os-hypervisors/skiff/search')).json().hypervisors.length, 2)
  const none = await get('/v2.1/os-hypervisors/nothere/search')
  assert.equal(none.statusCode, 404)
  assert.deepEqual(none.json(), { itemNotFound: { code: 404, message: "No hypervisor matching 'nothere' could be found." } })
  const missing = await get('/v2.1/os-hypervisors/7')
  assert.deepEqual(missing.json(), { itemNotFound: { code: 404, message: "Hypervisor with ID '7' could not be found." } })
  assert.equal((await get('/v2.1/os-hypervisors/abc')).statusCode, 404)
})

test('2.33 pagination; 2.53 uuids, hypervisor_hostname_pattern and with_servers; the old routes gone', async () => {
  const page = (await get('/v2.1/os-hypervisors?limit=1', '2.33')).json()
  assert.equal(page.hypervisors.length, 1)
  assert.match(page.hypervisors_links[0].href, /\/v2\.1\/os-hypervisors\?limit=1&marker=1$/)
  assert.deepEqual(
    (await get('/v2.1/os-hypervisors?marker=1', '2.33')).json().hypervisors.map((h: { id: number }) => h.id),
    [2],
  )
  assert.equal((await get('/v2.1/os-hypervisors?marker=9', '2.33')).json().badRequest.message, 'marker [9] not found')

  const list = (await get('/v2.1/os-hypervisors?hypervisor_hostname_pattern=skiff-1&with_servers=true', '2.53')).json().hypervisors
  assert.equal(list.length, 1)
  assert.match(list[0].id, /^[0-9a-f-]{36}$/)
  assert.deepEqual(list[0].servers, [{ name: 'hv-probe', uuid: serverId }])
  const byUuid = await get(`/v2.1/os-hypervisors/${list[0].id}?with_servers=1`, '2.53')
  assert.equal(byUuid.statusCode, 200, byUuid.body)
  assert.match(byUuid.json().hypervisor.service.id, /^[0-9a-f-]{36}$/)
  // 2.75: with_servers and none there: an empty list.
  const empty = (await get('/v2.1/os-hypervisors?hypervisor_hostname_pattern=skiff-2&with_servers=true', '2.75')).json()
  assert.deepEqual(empty.hypervisors[0].servers, [])
  assert.equal((await get('/v2.1/os-hypervisors/1', '2.53')).json().badRequest.message, 'Invalid uuid 1')
  const paging = await get('/v2.1/os-hypervisors?hypervisor_hostname_pattern=skiff&limit=1', '2.53')
  assert.equal(
    paging.json().badRequest.message,
    'Paging over hypervisors with the hypervisor_hostname_pattern query parameter is not supported.',
  )
  assert.equal((await get('/v2.1/os-hypervisors?with_servers=maybe', '2.53')).statusCode, 400)
  assert.equal((await get('/v2.1/os-hypervisors?bogus=1', '2.53')).statusCode, 400)
  assert.equal((await get('/v2.1/os-hypervisors/skiff/search', '2.53')).statusCode, 404)
  // 2.88: no figures, uptime; statistics gone.
  const d88 = (await get('/v2.1/os-hypervisors/detail', '2.88')).json().hypervisors[0]
  assert.deepEqual(Object.keys(d88).sort(), [
    'host_ip',
    'hypervisor_hostname',
    'hypervisor_type',
    'hypervisor_version',
    'id',
    'service',
    'state',
    'status',
    'uptime',
  ])
  assert.equal((await get('/v2.1/os-hypervisors/statistics', '2.88')).statusCode, 404)
})

test('admins only: a member gets the policy refusal of each route', async () => {
  for (const [url, rule] of [
    ['/v2.1/os-hypervisors', 'list'],
    ['/v2.1/os-hypervisors/detail', 'list-detail'],
    ['/v2.1/os-hypervisors/1', 'show'],
    ['/v2.1/os-hypervisors/statistics', 'statistics'],
    ['/v2.1/os-hypervisors/skiff/search', 'search'],
    ['/v2.1/os-hypervisors/skiff/servers', 'servers'],
  ] as const) {
    const res = await get(url, '2.1', demo)
    assert.equal(res.statusCode, 403, url)
    assert.equal(res.json().forbidden.message, `Policy doesn't allow os_compute_api:os-hypervisors:${rule} to be performed.`)
  }
})
