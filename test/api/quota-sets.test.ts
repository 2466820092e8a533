// os-quota-sets and os-quota-class-sets as Nova's quota_sets.py and quota_classes.py answer them,
// and the quotas enforced where Nova enforces them (server create with min/max_count, key pairs,
// metadata, server groups and their members), with Nova's messages word for word; GET /limits
// reads the same limits.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { startTestSkiff, waitForStatus, type TestSkiff } from '../helpers/skiff.ts'

let skiff: TestSkiff
let admin: string
let demo: string
let alt: string
let reader: string
let demoProject: string
let altProject: string
let imageRef: string

const mv = (v: string) => ({ 'x-openstack-nova-api-version': v })
const projectOf = async (token: string) =>
  (
    await skiff.apps.identity.inject({
      method: 'GET',
      url: '/v3/auth/tokens',
      headers: { 'x-auth-token': token, 'x-subject-token': token },
    })
  ).json().token.project.id as string

const create = (token: string, extra: Record<string, unknown> = {}, flavorRef = '1') =>
  skiff.compute('POST', '/v2.1/servers', { token, body: { server: { name: 'q', imageRef, flavorRef, ...extra } } })
const setQuota = (project: string, values: Record<string, unknown>, query = '', token = admin, headers?: Record<string, string>) =>
  skiff.compute('PUT', `/v2.1/os-quota-sets/${project}${query}`, { token, body: { quota_set: values }, headers })

before(async () => {
  skiff = await startTestSkiff()
  admin = await skiff.token('admin')
  demo = await skiff.token('demo')
  alt = await skiff.token('alt_demo')
  reader = await skiff.token('reader_demo')
  demoProject = await projectOf(demo)
  altProject = await projectOf(alt)
  imageRef = await skiff.imageId('skiff-base')
})
after(() => skiff.close())

const DEFAULTS_21 = {
  cores: 2000,
  fixed_ips: -1,
  floating_ips: -1,
  injected_file_content_bytes: 10240,
  injected_file_path_bytes: 255,
  injected_files: 5,
  instances: 1000,
  key_pairs: 100,
  metadata_items: 128,
  ram: 4096000,
  security_group_rules: -1,
  security_groups: -1,
  server_group_members: 10,
  server_groups: 10,
}

test('show, defaults and detail answer the defaults with the keys of each microversion (2.36: no network quotas; 2.57: no injected files)', async () => {
  const show = await skiff.compute('GET', `/v2.1/os-quota-sets/${demoProject}`, { token: demo, headers: mv('2.1') })
  assert.equal(show.statusCode, 200, show.body)
  assert.deepEqual(show.json(), { quota_set: { id: demoProject, ...DEFAULTS_21 } })
  const at236 = (await skiff.compute('GET', `/v2.1/os-quota-sets/${demoProject}/defaults`, { token: demo, headers: mv('2.36') })).json()
  assert.deepEqual(Object.keys(at236.quota_set).sort(), [
    'cores',
    'id',
    'injected_file_content_bytes',
    'injected_file_path_bytes',
    'injected_files',
    'instances',
    'key_pairs',
    'metadata_items',
    'ram',
    'server_group_members',
    'server_groups',
  ])
  const detail = (await skiff.compute('GET', `/v2.1/os-quota-sets/${demoProject}/detail`, { token: reader, headers: mv('2.57') })).json()
  assert.deepEqual(Object.keys(detail.quota_set).sort(), [
    'cores',
    'id',
    'instances',
    'key_pairs',
    'metadata_items',
    'ram',
    'server_group_members',
    'server_groups',
  ])
  assert.deepEqual(detail.quota_set.cores, { limit: 2000, in_use: 0, reserved: 0 })
})

test("policy: a reader sees its own project's quotas, not another's; only admins update and delete", async () => {
  const other = await skiff.compute('GET', `/v2.1/os-quota-sets/${altProject}`, { token: demo })
  assert.equal(other.statusCode, 403)
  assert.deepEqual(other.json(), {
    forbidden: { code: 403, message: "Policy doesn't allow os_compute_api:os-quota-sets:show to be performed." },
  })
  const detail = await skiff.compute('GET', `/v2.1/os-quota-sets/${altProject}/detail`, { token: reader })
  assert.equal(detail.statusCode, 403)
  const put = await setQuota(demoProject, { cores: 1 }, '', demo)
  assert.equal(put.statusCode, 403)
  assert.equal(put.json().forbidden.message, "Policy doesn't allow os_compute_api:os-quota-sets:update to be performed.")
  const del = await skiff.compute('DELETE', `/v2.1/os-quota-sets/${demoProject}`, { token: reader })
  assert.equal(del.json().forbidden.message, "Policy doesn't allow os_compute_api:os-quota-sets:delete to be performed.")
  // Anyone may read the defaults; an admin may read any project's.
  assert.equal((await skiff.compute('GET', `/v2.1/os-quota-sets/${altProject}/defaults`, { token: demo })).statusCode, 200)
  assert.equal((await skiff.compute('GET', `/v2.1/os-quota-sets/${altProject}`, { token: admin })).statusCode, 200)
  // A project that does not exist: Nova's verify_project_id.
  const ghost = await skiff.compute('GET', '/v2.1/os-quota-sets/0123456789abcdef0123456789abcdef', { token: admin })
  assert.equal(ghost.statusCode, 400)
  assert.equal(ghost.json().badRequest.message, 'Project ID 0123456789abcdef0123456789abcdef is not a valid project.')
})

test("bad bodies are 400 in Nova's fault shape; a resource removed at a version is refused there", async () => {
  for (const [body, headers] of [
    [{ quota_set: { cores: 'many' } }, mv('2.1')],
    [{ quota_set: { cores: -2 } }, mv('2.1')],
    [{ quota_set: { cores: 1.5 } }, mv('2.1')],
    [{ quota_set: { bogus: 1 } }, mv('2.1')],
    [{ quota_set: { floating_ips: 1 } }, mv('2.36')],
    [{ quota_set: { injected_files: 1 } }, mv('2.57')],
    [{ quota_set: { force: 'maybe' } }, mv('2.1')],
    [{ cores: 1 }, mv('2.1')],
    [[], mv('2.1')],
  ] as const) {
    const res = await skiff.compute('PUT', `/v2.1/os-quota-sets/${demoProject}`, { token: admin, body, headers })
    assert.equal(res.statusCode, 400, `${JSON.stringify(body)}: ${res.body}`)
    assert.equal(typeof res.json().badRequest.message, 'string', res.body)
  }
  const unknownQuery = await skiff.compute('GET', `/v2.1/os-quota-sets/${demoProject}?foo=1`, { token: demo, headers: mv('2.75') })
  assert.equal(unknownQuery.statusCode, 400)
})

test('update sets limits (strings too), refuses one below what is in use unless forced, and delete goes back to the defaults', async () => {
  const server = await create(demo)
  assert.equal(server.statusCode, 202, server.body)
  await waitForStatus(skiff, demo, server.json().server.id, 'ACTIVE')
  const low = await setQuota(demoProject, { instances: 0 })
  assert.equal(low.statusCode, 400)
  assert.deepEqual(low.json(), {
    badRequest: { code: 400, message: 'Quota limit 0 for instances must be greater than or equal to already used and reserved 1.' },
  })
  const ok = await setQuota(demoProject, { instances: '5', cores: 4, ram: -1 })
  assert.equal(ok.statusCode, 200, ok.body)
  // The update's answer has no id.
  assert.equal(ok.json().quota_set.id, undefined)
  assert.equal(ok.json().quota_set.instances, 5)
  assert.equal(ok.json().quota_set.ram, -1)
  const forced = await setQuota(demoProject, { instances: 0, force: true })
  assert.equal(forced.statusCode, 200)
  assert.equal(forced.json().quota_set.instances, 0)
  const limits = (await skiff.compute('GET', '/v2.1/limits', { token: demo })).json().limits.absolute
  assert.equal(limits.maxTotalInstances, 0)
  assert.equal(limits.maxTotalCores, 4)
  assert.equal(limits.maxTotalRAMSize, -1)
  assert.equal(limits.totalInstancesUsed, 1)
  const del = await skiff.compute('DELETE', `/v2.1/os-quota-sets/${demoProject}`, { token: admin })
  assert.equal(del.statusCode, 202)
  assert.equal((await skiff.compute('GET', '/v2.1/limits', { token: demo })).json().limits.absolute.maxTotalInstances, 1000)
  await skiff.compute('DELETE', `/v2.1/servers/${server.json().server.id}`, { token: demo })
})

test("a user's limits: below the project's, shown with ?user_id, over what the project leaves refused", async () => {
  const me = (
    await skiff.apps.identity.inject({ method: 'GET', url: '/v3/auth/tokens', headers: { 'x-auth-token': demo, 'x-subject-token': demo } })
  ).json().token.user.id as string
  await setQuota(demoProject, { key_pairs: 10 })
  const over = await setQuota(demoProject, { key_pairs: 11 }, `?user_id=${me}`)
  assert.equal(over.statusCode, 400)
  assert.equal(over.json().badRequest.message, 'Quota limit 11 for key_pairs must be less than or equal to 10.')
  assert.equal((await setQuota(demoProject, { key_pairs: 1 }, `?user_id=${me}`)).statusCode, 200)
  const shown = (await skiff.compute('GET', `/v2.1/os-quota-sets/${demoProject}?user_id=${me}`, { token: demo })).json().quota_set
  assert.equal(shown.key_pairs, 1)
  assert.equal((await skiff.compute('GET', `/v2.1/os-quota-sets/${demoProject}`, { token: demo })).json().quota_set.key_pairs, 10)
  // Enforced at key pair create: the user's limit.
  const first = await skiff.compute('POST', '/v2.1/os-keypairs', { token: demo, body: { keypair: { name: 'kp1' } } })
  assert.equal(first.statusCode, 200, first.body)
  const second = await skiff.compute('POST', '/v2.1/os-keypairs', { token: demo, body: { keypair: { name: 'kp2' } } })
  assert.equal(second.statusCode, 403)
  assert.deepEqual(second.json(), { forbidden: { code: 403, message: 'Quota exceeded, too many key pairs.' } })
  const detail = (await skiff.compute('GET', `/v2.1/os-quota-sets/${demoProject}/detail?user_id=${me}`, { token: demo })).json()
  assert.deepEqual(detail.quota_set.key_pairs, { limit: 1, in_use: 1, reserved: 0 })
  await skiff.compute('DELETE', '/v2.1/os-keypairs/kp1', { token: demo })
  assert.equal((await skiff.compute('DELETE', `/v2.1/os-quota-sets/${demoProject}?user_id=${me}`, { token: admin })).statusCode, 202)
  await skiff.compute('DELETE', `/v2.1/os-quota-sets/${demoProject}`, { token: admin })
})

test("server create: Nova's 403 for cores, instances and ram, min_count/max_count cut to what fits", async () => {
  await setQuota(altProject, { cores: 8 })
  // Flavor 1: 1 vCPU, 512 MB. Seven servers take 7 cores.
  const seven = await create(alt, { min_count: 7, max_count: 7 })
  assert.equal(seven.statusCode, 202, seven.body)
  const flavors = (await skiff.compute('GET', '/v2.1/flavors/detail', { token: alt })).json().flavors as { id: string; vcpus: number }[]
  const two = flavors.find((f) => f.vcpus === 2)!
  const over = await create(alt, {}, two.id)
  assert.equal(over.statusCode, 403)
  assert.deepEqual(over.json(), {
    forbidden: { code: 403, message: 'Quota exceeded for cores: Requested 2, but already used 7 of 8 cores' },
  })
  // max_count beyond the room: as many as fit (one).
  const some = await create(alt, { min_count: 1, max_count: 3, return_reservation_id: true })
  assert.equal(some.statusCode, 202, some.body)
  const rid = some.json().reservation_id
  const mine = (await skiff.compute('GET', `/v2.1/servers?reservation_id=${rid}`, { token: alt })).json().servers
  assert.equal(mine.length, 1)
  const none = await create(alt, { min_count: 2, max_count: 4 })
  assert.equal(none.statusCode, 403)
  // Nova's requested cores are max_count's.
  assert.equal(none.json().forbidden.message, 'Quota exceeded for cores: Requested 4, but already used 8 of 8 cores')
  await setQuota(altProject, { cores: -1, instances: 8 })
  const inst = await create(alt)
  assert.equal(inst.statusCode, 403)
  assert.equal(inst.json().forbidden.message, 'Quota exceeded for instances: Requested 1, but already used 8 of 8 instances')
  await setQuota(altProject, { instances: -1, ram: 4096 })
  const ram = await create(alt)
  assert.equal(ram.json().forbidden.message, 'Quota exceeded for ram: Requested 512, but already used 4096 of 4096 ram')
  await skiff.compute('DELETE', `/v2.1/os-quota-sets/${altProject}`, { token: admin })
})

test("metadata_items, server_groups and server_group_members follow the project's limits", async () => {
  await setQuota(demoProject, { metadata_items: 2, server_groups: 1, server_group_members: 1 })
  const meta = await create(demo, { metadata: { a: '1', b: '2', c: '3' } })
  assert.equal(meta.statusCode, 403)
  assert.deepEqual(meta.json(), { forbidden: { code: 403, message: 'Maximum number of metadata items exceeds 2' } })
  const g1 = await skiff.compute('POST', '/v2.1/os-server-groups', {
    token: demo,
    body: { server_group: { name: 'g1', policies: ['affinity'] } },
  })
  assert.equal(g1.statusCode, 200, g1.body)
  const g2 = await skiff.compute('POST', '/v2.1/os-server-groups', {
    token: demo,
    body: { server_group: { name: 'g2', policies: ['affinity'] } },
  })
  assert.equal(g2.statusCode, 403)
  assert.deepEqual(g2.json(), { forbidden: { code: 403, message: 'Quota exceeded, too many server groups.' } })
  const group = g1.json().server_group.id
  const hint = (name: string) =>
    skiff.compute('POST', '/v2.1/servers', {
      token: demo,
      body: { server: { name, imageRef, flavorRef: '1', metadata: { a: '1' } }, 'os:scheduler_hints': { group } },
    })
  const m1 = await hint('m1')
  assert.equal(m1.statusCode, 202, m1.body)
  await waitForStatus(skiff, demo, m1.json().server.id, 'ACTIVE')
  const m2 = await hint('m2')
  assert.equal(m2.statusCode, 403)
  assert.deepEqual(m2.json(), { forbidden: { code: 403, message: 'Quota exceeded, too many servers in group' } })
  // Server metadata writes count against it too.
  const put = await skiff.compute('PUT', `/v2.1/servers/${m1.json().server.id}/metadata`, {
    token: demo,
    body: { metadata: { a: '1', b: '2', c: '3' } },
  })
  assert.equal(put.statusCode, 403)
  assert.equal(put.json().forbidden.message, 'Maximum number of metadata items exceeds 2')
  const limits = (await skiff.compute('GET', '/v2.1/limits', { token: demo })).json().limits.absolute
  assert.equal(limits.maxServerMeta, 2)
  assert.equal(limits.maxServerGroups, 1)
  assert.equal(limits.maxServerGroupMembers, 1)
  await skiff.compute('DELETE', `/v2.1/servers/${m1.json().server.id}`, { token: demo })
  await skiff.compute('DELETE', `/v2.1/os-server-groups/${group}`, { token: demo })
  await skiff.compute('DELETE', `/v2.1/os-quota-sets/${demoProject}`, { token: admin })
})

test("os-quota-class-sets: admins show and update the 'default' class, which becomes every project's default", async () => {
  const shown = await skiff.compute('GET', '/v2.1/os-quota-class-sets/default', { token: admin, headers: mv('2.1') })
  assert.equal(shown.statusCode, 200, shown.body)
  // Before 2.50 the class set has no server group quotas; from 2.50 no network ones.
  const { server_groups: _g, server_group_members: _m, ...without } = DEFAULTS_21
  assert.deepEqual(shown.json(), { quota_class_set: { id: 'default', ...without } })
  const at250 = (await skiff.compute('GET', '/v2.1/os-quota-class-sets/default', { token: admin, headers: mv('2.50') })).json()
  assert.equal(at250.quota_class_set.server_groups, 10)
  assert.equal(at250.quota_class_set.floating_ips, undefined)
  const refused = await skiff.compute('PUT', '/v2.1/os-quota-class-sets/default', { token: demo, body: { quota_class_set: { cores: 3 } } })
  assert.equal(refused.statusCode, 403)
  assert.equal(refused.json().forbidden.message, "Policy doesn't allow os_compute_api:os-quota-class-sets:update to be performed.")
  const put = await skiff.compute('PUT', '/v2.1/os-quota-class-sets/default', {
    token: admin,
    body: { quota_class_set: { cores: 30 } },
    headers: mv('2.57'),
  })
  assert.equal(put.statusCode, 200, put.body)
  assert.equal(put.json().quota_class_set.cores, 30)
  assert.equal(put.json().quota_class_set.id, undefined)
  assert.equal((await skiff.compute('GET', `/v2.1/os-quota-sets/${demoProject}/defaults`, { token: demo })).json().quota_set.cores, 30)
  assert.equal((await skiff.compute('GET', '/v2.1/limits', { token: alt })).json().limits.absolute.maxTotalCores, 30)
  const bad = await skiff.compute('PUT', '/v2.1/os-quota-class-sets/default', {
    token: admin,
    body: { quota_class_set: { fixed_ips: 1 } },
    headers: mv('2.50'),
  })
  assert.equal(bad.statusCode, 400)
  await skiff.compute('PUT', '/v2.1/os-quota-class-sets/default', { token: admin, body: { quota_class_set: { cores: 2000 } } })
})
