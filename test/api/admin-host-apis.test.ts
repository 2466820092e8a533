// The admin APIs about hosts and servers Nova answers with its drivers' help: os-hosts (to 2.42),
// os-instance_usage_audit_log, GET /servers/{id}/diagnostics, POST /os-server-external-events,
// and the admins' host / node filters of the server list. Nova's messages; admins only.
import assert from 'node:assert/strict'
import { hostname } from 'node:os'
import { after, before, test } from 'node:test'
import { activeServer, startTestSkiff, waitForStatus, type TestSkiff } from '../helpers/skiff.ts'

let skiff: TestSkiff
let admin: string
let demo: string
let serverId: string
let demoProject: string

const mv = (v: string) => ({ 'x-openstack-nova-api-version': v })
const call = (method: string, url: string, body?: unknown, v = '2.1', token = admin) =>
  skiff.compute(method, url, { token, headers: mv(v), ...(body === undefined ? {} : { body }) })

before(async () => {
  skiff = await startTestSkiff({ hostVcpus: 8, hostRamMb: 8192, hostDiskGb: 100 })
  admin = await skiff.token('admin')
  demo = await skiff.token('demo')
  serverId = await activeServer(skiff, demo, 'hosts-probe')
  demoProject = (await call('GET', `/v2.1/servers/${serverId}`)).json().server.tenant_id
})
after(() => skiff.close())

test('os-hosts: the control plane services and the compute hosts, filtered by zone', async () => {
  const res = await call('GET', '/v2.1/os-hosts')
  assert.equal(res.statusCode, 200, res.body)
  assert.deepEqual(res.json().hosts, [
    { host_name: hostname(), service: 'conductor', zone: 'internal' },
    { host_name: hostname(), service: 'scheduler', zone: 'internal' },
    { host_name: 'skiff-1', service: 'compute', zone: 'nova' },
  ])
  assert.deepEqual((await call('GET', '/v2.1/os-hosts?zone=nova')).json().hosts, [
    { host_name: 'skiff-1', service: 'compute', zone: 'nova' },
  ])
  assert.equal((await call('GET', '/v2.1/os-hosts?zone=')).json().hosts.length, 3)
  assert.deepEqual((await call('GET', '/v2.1/os-hosts?zone=xxx')).json().hosts, [])
})

test('os-hosts show: totals, used now, used by its servers, and per project', async () => {
  const res = await call('GET', '/v2.1/os-hosts/skiff-1')
  assert.equal(res.statusCode, 200, res.body)
  const r = (project: string, cpu: number, memory_mb: number, disk_gb: number) => ({
    resource: { host: 'skiff-1', project, cpu, memory_mb, disk_gb },
  })
  assert.deepEqual(res.json().host, [
    r('(total)', 8, 8192, 100),
    r('(used_now)', 1, 512, 1),
    r('(used_max)', 1, 512, 1),
    r(demoProject, 1, 512, 1),
  ])
  const missing = await call('GET', '/v2.1/os-hosts/nowhere')
  assert.equal(missing.statusCode, 404)
  assert.equal(missing.json().itemNotFound.message, "Host 'nowhere' is not mapped to any cell")
})

test('os-hosts update and power actions answer as the fake driver; bad bodies are 400', async () => {
  const up = await call('PUT', '/v2.1/os-hosts/skiff-1', { status: 'Disable', maintenance_mode: 'enable' })
  assert.equal(up.statusCode, 200, up.body)
  assert.deepEqual(up.json(), { host: 'skiff-1', status: 'disabled', maintenance_mode: 'on_maintenance' })
  for (const body of [{}, { status: 'off' }, { status: 'enable', extra: 1 }]) {
    assert.equal((await call('PUT', '/v2.1/os-hosts/skiff-1', body)).statusCode, 400, JSON.stringify(body))
  }
  assert.equal((await call('PUT', '/v2.1/os-hosts/nowhere', { status: 'enable' })).statusCode, 404)
  for (const action of ['startup', 'shutdown', 'reboot']) {
    const res = await call('GET', `/v2.1/os-hosts/skiff-1/${action}`)
    assert.deepEqual(res.json(), { host: 'skiff-1', power_action: action })
    assert.equal((await call('GET', `/v2.1/os-hosts/nowhere/${action}`)).statusCode, 404)
  }
  // The host is still enabled: os-services is where a host is disabled.
  assert.equal((await call('GET', '/v2.1/os-services')).json().services[0].status, 'enabled')
})

test('os-hosts: admins only, gone from 2.43', async () => {
  const res = await call('GET', '/v2.1/os-hosts', undefined, '2.1', demo)
  assert.equal(res.statusCode, 403)
  assert.equal(res.json().forbidden.message, "Policy doesn't allow os_compute_api:os-hosts:list to be performed.")
  assert.equal((await call('PUT', '/v2.1/os-hosts/skiff-1', { status: 'enable' }, '2.1', demo)).statusCode, 403)
  assert.equal((await call('GET', '/v2.1/os-hosts', undefined, '2.42')).statusCode, 200)
  assert.equal((await call('GET', '/v2.1/os-hosts', undefined, '2.43')).statusCode, 404)
  assert.equal((await call('GET', '/v2.1/os-hosts/skiff-1', undefined, '2.43')).statusCode, 404)
})

test('os-instance_usage_audit_log: the last completed month, every compute host not run', async () => {
  const now = skiff.clock.now()
  const end = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1))
  const begin = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - 1, 1))
  const py = (d: Date) => d.toISOString().slice(0, 19).replace('T', ' ')
  const res = await call('GET', '/v2.1/os-instance_usage_audit_log')
  assert.equal(res.statusCode, 200, res.body)
  assert.deepEqual(res.json().instance_usage_audit_logs, {
    period_beginning: py(begin),
    period_ending: py(end),
    num_hosts: 1,
    num_hosts_done: 0,
    num_hosts_running: 0,
    num_hosts_not_run: 1,
    hosts_not_run: ['skiff-1'],
    total_instances: 0,
    total_errors: 0,
    overall_status: '0 of 1 hosts done. 0 errors.',
    log: {},
  })
  const show = await call('GET', `/v2.1/os-instance_usage_audit_log/${encodeURIComponent('2020-03-01 00:00:00')}`)
  assert.equal(show.statusCode, 200, show.body)
  assert.equal(show.json().instance_usage_audit_log.period_beginning, '2020-01-01 00:00:00')
  assert.equal(show.json().instance_usage_audit_log.period_ending, '2020-02-01 00:00:00')
  const micro = await call('GET', `/v2.1/os-instance_usage_audit_log/${encodeURIComponent('2020-03-15 10:00:00.5')}`)
  assert.equal(micro.json().instance_usage_audit_log.period_ending, '2020-03-01 00:00:00')
  const bad = await call('GET', '/v2.1/os-instance_usage_audit_log/2020-02-30')
  assert.equal(bad.statusCode, 400)
  assert.equal(bad.json().badRequest.message, 'Invalid timestamp for date 2020-02-30')
  const denied = await call('GET', '/v2.1/os-instance_usage_audit_log', undefined, '2.1', demo)
  assert.equal(denied.statusCode, 403)
})

test('diagnostics: the free-form dict below 2.48, the standard format from it', async () => {
  const old = await call('GET', `/v2.1/servers/${serverId}/diagnostics`)
  assert.equal(old.statusCode, 200, old.body)
  assert.equal(old.json().cpu0_time, 0)
  assert.equal(old.json().memory, 512 * 1024)
  const res = await call('GET', `/v2.1/servers/${serverId}/diagnostics`, undefined, '2.48')
  assert.equal(res.statusCode, 200, res.body)
  const d = res.json()
  assert.equal(d.state, 'running')
  assert.equal(d.driver, 'libvirt')
  assert.equal(d.num_cpus, 1)
  assert.equal(d.num_nics, 1)
  assert.equal(d.num_disks, 1)
  assert.deepEqual(d.memory_details, { maximum: 512, used: 512 })
  assert.equal(d.nic_details.length, 1)
  assert.match(d.nic_details[0].mac_address, /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/)
  assert.equal(typeof d.uptime, 'number')
  assert.equal(d.config_drive, false)
})

test('diagnostics: admins only; 404 for no server; 409 when it is not running', async () => {
  const denied = await call('GET', `/v2.1/servers/${serverId}/diagnostics`, undefined, '2.1', demo)
  assert.equal(denied.statusCode, 403)
  assert.equal(denied.json().forbidden.message, "Policy doesn't allow os_compute_api:os-server-diagnostics to be performed.")
  assert.equal((await call('GET', '/v2.1/servers/00000000-0000-0000-0000-000000000000/diagnostics')).statusCode, 404)
  const stopped = await activeServer(skiff, demo, 'diag-stopped')
  assert.equal((await call('POST', `/v2.1/servers/${stopped}/action`, { 'os-stop': null }, '2.1', demo)).statusCode, 202)
  await waitForStatus(skiff, demo, stopped, 'SHUTOFF')
  const res = await call('GET', `/v2.1/servers/${stopped}/diagnostics`, undefined, '2.48')
  assert.equal(res.statusCode, 409)
  assert.equal(res.json().conflictingRequest.message, `Cannot 'get_diagnostics' instance ${stopped} while it is in power_state shutdown`)
})

test('external events: 200 with each event completed; 207 with the failures coded', async () => {
  const ok = await call('POST', '/v2.1/os-server-external-events', {
    events: [{ name: 'network-changed', server_uuid: serverId, tag: 'port' }],
  })
  assert.equal(ok.statusCode, 200, ok.body)
  assert.deepEqual(ok.json(), { events: [{ name: 'network-changed', server_uuid: serverId, tag: 'port', status: 'completed', code: 200 }] })
  const missing = '11111111-2222-3333-4444-555555555555'
  const mixed = await call(
    'POST',
    '/v2.1/os-server-external-events',
    {
      events: [
        { name: 'network-vif-plugged', server_uuid: serverId, status: 'completed' },
        { name: 'network-vif-plugged', server_uuid: missing },
        { name: 'power-update', server_uuid: serverId },
      ],
    },
    '2.76',
  )
  assert.equal(mixed.statusCode, 207, mixed.body)
  assert.deepEqual(
    mixed.json().events.map((e: { code: number; status: string }) => [e.code, e.status]),
    [
      [200, 'completed'],
      [404, 'failed'],
      [400, 'failed'],
    ],
  )
  // Only missing servers: still 207 in Zed (no 404).
  const none = await call('POST', '/v2.1/os-server-external-events', { events: [{ name: 'network-changed', server_uuid: missing }] })
  assert.equal(none.statusCode, 207)
})

test('external events: bad bodies 400 (names per version), admins only', async () => {
  const post = (body: unknown, v = '2.1', token = admin) => call('POST', '/v2.1/os-server-external-events', body, v, token)
  for (const body of [
    {},
    { events: [] },
    { events: [{ name: 'network-changed' }] },
    { events: [{ name: 'nope', server_uuid: serverId }] },
  ]) {
    assert.equal((await post(body)).statusCode, 400, JSON.stringify(body))
  }
  assert.equal((await post({ events: [{ name: 'power-update', server_uuid: serverId, tag: 'POWER_ON' }] }, '2.75')).statusCode, 400)
  assert.equal((await post({ events: [{ name: 'power-update', server_uuid: serverId, tag: 'POWER_ON' }] }, '2.76')).statusCode, 200)
  const denied = await post({ events: [{ name: 'network-changed', server_uuid: serverId }] }, '2.1', demo)
  assert.equal(denied.statusCode, 403)
  assert.equal(denied.json().forbidden.message, "Policy doesn't allow os_compute_api:os-server-external-events:create to be performed.")
})

test('server list: admins filter by host and node; others have the filter ignored', async () => {
  const ids = async (query: string, token = admin) =>
    (await call('GET', `/v2.1/servers?${query}`, undefined, '2.1', token)).json().servers.map((s: { id: string }) => s.id)
  assert.ok((await ids('all_tenants=1&host=skiff-1')).includes(serverId))
  assert.ok((await ids('all_tenants=1&node=skiff-1')).includes(serverId))
  assert.deepEqual(await ids('all_tenants=1&host=nonexistent_host'), [])
  assert.deepEqual(await ids('all_tenants=1&host=skiff-1&node=other'), [])
  assert.ok((await ids('host=nonexistent_host', demo)).includes(serverId))
})
