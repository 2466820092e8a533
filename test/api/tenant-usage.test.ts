// os-simple-tenant-usage as Nova's simple_tenant_usage.py computes it: each server's hours in the
// period from launched_at and terminated_at, times its flavor's vCPUs, RAM and disk; list for
// admins (detailed=1 with each server), show for the project's readers; 2.40 pagination.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { activeServer, startTestSkiff, waitFor, type TestSkiff } from '../helpers/skiff.ts'

let skiff: TestSkiff
let admin: string
let demo: string
let alt: string
let reader: string
let demoProject: string
let a: string
let b: string
let launchedA: Date

const mv = (v: string) => ({ 'x-openstack-nova-api-version': v })
const get = (url: string, token = admin, v = '2.1') => skiff.compute('GET', url, { token, headers: mv(v) })
// Nova's own format for the period: naive UTC, microseconds.
const fmt = (d: Date) => d.toISOString().replace('Z', '000')

before(async () => {
  // Tokens that outlive the hours the clock is moved on.
  skiff = await startTestSkiff({ tokenTtlSeconds: 86_400 })
  admin = await skiff.token('admin')
  demo = await skiff.token('demo')
  alt = await skiff.token('alt_demo')
  reader = await skiff.token('reader_demo')
  demoProject = (
    await skiff.apps.identity.inject({ method: 'GET', url: '/v3/auth/tokens', headers: { 'x-auth-token': demo, 'x-subject-token': demo } })
  ).json().token.project.id
  a = await activeServer(skiff, demo, 'usage-a')
  b = await activeServer(skiff, demo, 'usage-b')
  launchedA = new Date((await get(`/v2.1/servers/${a}`)).json().server['OS-SRV-USG:launched_at'] + 'Z')
  // Three hours pass (the test Skiff's clock), then b is deleted.
  await skiff.clock.advance(3 * 3_600_000)
  assert.equal((await skiff.compute('DELETE', `/v2.1/servers/${b}`, { token: demo })).statusCode, 204)
  await waitFor('b deleted', async () => (await get(`/v2.1/servers/${b}`)).statusCode === 404)
})
after(() => skiff.close())

test("show: a project's servers over a period, hours clipped to it, totals from the flavors (m1.tiny: 1 vCPU, 512 MB, 1 GB)", async () => {
  const start = new Date(launchedA.getTime() - 3_600_000)
  const end = new Date(launchedA.getTime() + 90 * 60_000)
  const res = await get(`/v2.1/os-simple-tenant-usage/${demoProject}?start=${fmt(start)}&end=${fmt(end)}`, reader)
  assert.equal(res.statusCode, 200, res.body)
  const u = res.json().tenant_usage
  assert.equal(u.tenant_id, demoProject)
  assert.equal(u.start, fmt(start))
  assert.equal(u.stop, fmt(end))
  const sa = u.server_usages.find((s: { instance_id: string }) => s.instance_id === a)
  assert.equal(sa.hours, 1.5)
  assert.deepEqual(
    { ...sa, started_at: undefined, uptime: undefined },
    {
      ended_at: null,
      flavor: 'm1.tiny',
      hours: 1.5,
      instance_id: a,
      local_gb: 1,
      memory_mb: 512,
      name: 'usage-a',
      started_at: undefined,
      state: 'active',
      tenant_id: demoProject,
      uptime: undefined,
      vcpus: 1,
    },
  )
  assert.ok(sa.uptime >= 3 * 3600)
  const sb = u.server_usages.find((s: { instance_id: string }) => s.instance_id === b)
  assert.ok(Math.abs(sb.hours - 1.5) < 0.01)
  // Deleted after the period: terminated, with its end, as Nova shows it.
  assert.equal(sb.state, 'terminated')
  assert.notEqual(sb.ended_at, null)
  const hours = sa.hours + sb.hours
  assert.equal(u.total_hours, hours)
  assert.equal(u.total_vcpus_usage, hours)
  assert.equal(u.total_memory_mb_usage, 512 * sa.hours + 512 * sb.hours)
  assert.equal(u.total_local_gb_usage, hours)
})

test('list (admins): one entry per project, server_usages only with detailed=1; a deleted server is terminated', async () => {
  const since = fmt(new Date(launchedA.getTime() - 3_600_000))
  const res = await get(`/v2.1/os-simple-tenant-usage?detailed=1&start=${since}`)
  assert.equal(res.statusCode, 200, res.body)
  const mine = res.json().tenant_usages.find((t: { tenant_id: string }) => t.tenant_id === demoProject)
  const sb = mine.server_usages.find((s: { instance_id: string }) => s.instance_id === b)
  assert.equal(sb.state, 'terminated')
  assert.match(sb.ended_at, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}$/)
  const brief = (await get('/v2.1/os-simple-tenant-usage')).json().tenant_usages[0]
  assert.equal(brief.server_usages, undefined)
  // The default period is now: b, deleted before it, is not in it.
  const now = (await get(`/v2.1/os-simple-tenant-usage/${demoProject}`)).json().tenant_usage
  assert.deepEqual(
    now.server_usages.map((s: { instance_id: string }) => s.instance_id),
    [a],
  )
  // A period before anything ran: nothing.
  const old = await get(`/v2.1/os-simple-tenant-usage/${demoProject}?start=2001-01-01T00:00:00&end=2001-01-02T00:00:00`)
  assert.deepEqual(old.json(), { tenant_usage: {} })
})

test('2.40: limit and marker page over the servers, with a next link', async () => {
  const since = fmt(new Date(launchedA.getTime() - 3_600_000))
  const first = await get(`/v2.1/os-simple-tenant-usage/${demoProject}?limit=1&start=${since}`, demo, '2.40')
  assert.equal(first.statusCode, 200, first.body)
  const one = first.json().tenant_usage.server_usages
  assert.equal(one.length, 1)
  const link = first.json().tenant_usage_links[0]
  assert.equal(link.rel, 'next')
  assert.ok(
    link.href.endsWith(
      `/v2.1/os-simple-tenant-usage/${demoProject}?limit=1&start=${encodeURIComponent(since)}&marker=${one[0].instance_id}`,
    ),
    link.href,
  )
  const next = (
    await get(`/v2.1/os-simple-tenant-usage/${demoProject}?limit=1&start=${since}&marker=${one[0].instance_id}`, demo, '2.40')
  ).json()
  assert.notEqual(next.tenant_usage.server_usages[0].instance_id, one[0].instance_id)
  const bad = await get(`/v2.1/os-simple-tenant-usage?marker=00000000-0000-4000-8000-000000000000`, admin, '2.40')
  assert.deepEqual(bad.json(), { badRequest: { code: 400, message: 'Marker 00000000-0000-4000-8000-000000000000 could not be found.' } })
  const list = (await get(`/v2.1/os-simple-tenant-usage?limit=1&start=${since}`, admin, '2.40')).json()
  assert.equal(list.tenant_usages_links[0].rel, 'next')
})

test("bad input and policy: Nova's messages", async () => {
  const bad = await get(`/v2.1/os-simple-tenant-usage/${demoProject}?start=yesterday`, demo)
  assert.deepEqual(bad.json(), { badRequest: { code: 400, message: 'Invalid datetime string: Datetime is in invalid format' } })
  const backwards = await get(`/v2.1/os-simple-tenant-usage/${demoProject}?start=2026-01-02T00:00:00&end=2026-01-01T00:00:00`, demo)
  assert.deepEqual(backwards.json(), {
    badRequest: { code: 400, message: 'Invalid start time. The start time cannot occur after the end time.' },
  })
  const list = await get('/v2.1/os-simple-tenant-usage', demo)
  assert.equal(list.statusCode, 403)
  assert.equal(list.json().forbidden.message, "Policy doesn't allow os_compute_api:os-simple-tenant-usage:list to be performed.")
  const other = await get(`/v2.1/os-simple-tenant-usage/${demoProject}`, alt)
  assert.equal(other.statusCode, 403)
  assert.equal(other.json().forbidden.message, "Policy doesn't allow os_compute_api:os-simple-tenant-usage:show to be performed.")
  assert.equal((await get(`/v2.1/os-simple-tenant-usage/${demoProject}?bogus=1`, demo, '2.75')).statusCode, 400)
})
