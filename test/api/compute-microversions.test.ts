// Each microversion boundary of the resources beside servers, and each of their errors, with
// Nova's status and message (nova/api/openstack/compute/*.py at Zed).
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { activeServer, startTestSkiff, type TestSkiff } from '../helpers/skiff.ts'

let skiff: TestSkiff
let admin: string
let demo: string
let demoUserId: string

const at = (v: string) => ({ 'openstack-api-version': `compute ${v}` })
const call = (method: string, url: string, v: string, token = demo, body?: unknown) =>
  skiff.compute(method, url, { token, headers: at(v), ...(body !== undefined ? { body } : {}) })
const fault = (res: { statusCode: number; json: () => unknown }, status: number, message: string) => {
  assert.equal(res.statusCode, status)
  const name = { 400: 'badRequest', 403: 'forbidden', 404: 'itemNotFound', 409: 'conflictingRequest' }[status]!
  assert.deepEqual(res.json(), { [name]: { code: status, message } })
}
const PUBLIC_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJq0Ue0N4R4bkgYQyT6WyW9DhWl3P6Rkz0hX9m0o4tqu test@skiff'

before(async () => {
  skiff = await startTestSkiff()
  admin = await skiff.token('admin')
  demo = await skiff.token('demo')
  const me = await skiff.apps.identity.inject({
    method: 'GET',
    url: '/v3/auth/tokens',
    headers: { 'x-auth-token': demo, 'x-subject-token': demo },
  })
  demoUserId = me.json().token.user.id
})
after(() => skiff.close())

test('keypairs: 200/202 at 2.1, 201/204 and `type` from 2.2; x509 only from 2.2', async () => {
  const old = await call('POST', '/v2.1/os-keypairs', '2.1', demo, { keypair: { name: 'k21', public_key: PUBLIC_KEY } })
  assert.equal(old.statusCode, 200)
  assert.deepEqual(Object.keys(old.json().keypair).sort(), ['fingerprint', 'name', 'public_key', 'user_id'])
  fault(
    await call('POST', '/v2.1/os-keypairs', '2.1', demo, { keypair: { name: 'x', type: 'ssh' } }),
    400,
    "Invalid input for field/attribute keypair. Value: {'name': 'x', 'type': 'ssh'}. Additional properties are not allowed ('type' was unexpected)",
  )
  assert.equal((await call('DELETE', '/v2.1/os-keypairs/k21', '2.1')).statusCode, 202)

  const created = await call('POST', '/v2.1/os-keypairs', '2.2', demo, { keypair: { name: 'k22', public_key: PUBLIC_KEY, type: 'ssh' } })
  assert.equal(created.statusCode, 201)
  assert.deepEqual(Object.keys(created.json().keypair).sort(), ['fingerprint', 'name', 'public_key', 'type', 'user_id'])
  assert.equal(created.json().keypair.type, 'ssh')
  const generated = await call('POST', '/v2.1/os-keypairs', '2.2', demo, { keypair: { name: 'gen22' } })
  assert.equal(generated.statusCode, 201)
  assert.match(generated.json().keypair.private_key, /BEGIN RSA PRIVATE KEY/)
  fault(
    await call('POST', '/v2.1/os-keypairs', '2.2', demo, { keypair: { name: 'x', type: 'rsa' } }),
    400,
    "Invalid input for field/attribute type. Value: rsa. 'rsa' is not one of ['ssh', 'x509']",
  )
  // The reason after "Error message:" is the certificate parser's own (OpenSSL's here, pyca's in Nova).
  const x509 = await call('POST', '/v2.1/os-keypairs', '2.2', demo, {
    keypair: { name: 'x', type: 'x509', public_key: 'not a certificate' },
  })
  assert.equal(x509.statusCode, 400)
  assert.match(x509.json().badRequest.message, /^Keypair data is invalid: failed to generate X509 fingerprint. Error message: ./)
  fault(
    await call('POST', '/v2.1/os-keypairs', '2.2', demo, { keypair: { name: 'k22', public_key: PUBLIC_KEY } }),
    409,
    "Key pair 'k22' already exists.",
  )
  assert.equal((await call('DELETE', '/v2.1/os-keypairs/k22', '2.2')).statusCode, 204)
  fault(await call('DELETE', '/v2.1/os-keypairs/k22', '2.2'), 404, `Keypair k22 not found for user ${demoUserId}`)
})

test('keypairs: names with @ and . from 2.92, generation refused from 2.92', async () => {
  const chars = '_- 0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'
  fault(
    await call('POST', '/v2.1/os-keypairs', '2.91', demo, { keypair: { name: 'me@host.x', public_key: PUBLIC_KEY } }),
    400,
    `An invalid 'name' value was provided. The name must be: Only expected characters: [${chars}]`,
  )
  fault(
    await call('POST', '/v2.1/os-keypairs', '2.92', demo, { keypair: { name: 'me/x', public_key: PUBLIC_KEY } }),
    400,
    `An invalid 'name' value was provided. The name must be: Only expected characters: [@.${chars}]`,
  )
  fault(
    await call('POST', '/v2.1/os-keypairs', '2.92', demo, { keypair: { name: ' lead', public_key: PUBLIC_KEY } }),
    400,
    "An invalid 'name' value was provided. The name must be: printable characters. Can not start or end with whitespace.",
  )
  const ok = await call('POST', '/v2.1/os-keypairs', '2.92', demo, { keypair: { name: 'me@host.x', public_key: PUBLIC_KEY } })
  assert.equal(ok.statusCode, 201)
  assert.equal(ok.json().keypair.private_key, undefined)
  fault(
    await call('POST', '/v2.1/os-keypairs', '2.92', demo, { keypair: { name: 'gen' } }),
    400,
    "Invalid input for field/attribute keypair. Value: {'name': 'gen'}. 'public_key' is a required property",
  )
  assert.equal((await call('DELETE', '/v2.1/os-keypairs/me@host.x', '2.92')).statusCode, 204)
})

test("keypairs: ?user_id= from 2.10, admins only (another user's is 403 to others)", async () => {
  await call('POST', '/v2.1/os-keypairs', '2.10', demo, { keypair: { name: 'mine', public_key: PUBLIC_KEY } })
  // Below 2.10 the parameter is ignored: the admin's own (none).
  assert.deepEqual((await call('GET', `/v2.1/os-keypairs?user_id=${demoUserId}`, '2.9', admin)).json(), { keypairs: [] })
  const listed = (await call('GET', `/v2.1/os-keypairs?user_id=${demoUserId}`, '2.10', admin)).json().keypairs
  assert.ok(listed.some((k: { keypair: { name: string } }) => k.keypair.name === 'mine'))
  const shown = await call('GET', `/v2.1/os-keypairs/mine?user_id=${demoUserId}`, '2.10', admin)
  assert.equal(shown.json().keypair.user_id, demoUserId)
  const made = await call('POST', '/v2.1/os-keypairs', '2.10', admin, {
    keypair: { name: 'for-demo', public_key: PUBLIC_KEY, user_id: demoUserId },
  })
  assert.equal(made.json().keypair.user_id, demoUserId)
  const adminUser = (await call('GET', '/v2.1/os-keypairs/for-demo', '2.10', demo)).json().keypair.user_id
  assert.equal(adminUser, demoUserId)
  fault(
    await call('GET', '/v2.1/os-keypairs?user_id=someone-else', '2.10', demo),
    403,
    "Policy doesn't allow os_compute_api:os-keypairs:index to be performed.",
  )
  fault(
    await call('DELETE', '/v2.1/os-keypairs/mine?user_id=someone-else', '2.10', demo),
    403,
    "Policy doesn't allow os_compute_api:os-keypairs:delete to be performed.",
  )
  assert.equal((await call('DELETE', `/v2.1/os-keypairs/for-demo?user_id=${demoUserId}`, '2.10', admin)).statusCode, 204)
  // Unknown query parameters: ignored until 2.75, 400 from it.
  assert.equal((await call('GET', '/v2.1/os-keypairs?foo=1', '2.74')).statusCode, 200)
  fault(await call('GET', '/v2.1/os-keypairs?foo=1', '2.75'), 400, "Additional properties are not allowed ('foo' was unexpected)")
})

test('keypairs: limit and marker from 2.35, with keypairs_links', async () => {
  for (const n of ['p1', 'p2', 'p3'])
    await call('POST', '/v2.1/os-keypairs', '2.35', demo, { keypair: { name: n, public_key: PUBLIC_KEY } })
  const all = (await call('GET', '/v2.1/os-keypairs?limit=2', '2.34')).json()
  assert.ok(all.keypairs.length > 2, 'limit is ignored below 2.35')
  assert.equal(all.keypairs_links, undefined)
  const page = (await call('GET', '/v2.1/os-keypairs?limit=2&marker=mine', '2.35')).json()
  assert.deepEqual(
    page.keypairs.map((k: { keypair: { name: string } }) => k.keypair.name),
    ['p1', 'p2'],
  )
  assert.equal(page.keypairs_links.length, 1)
  assert.equal(page.keypairs_links[0].rel, 'next')
  assert.match(page.keypairs_links[0].href, /\/v2\.1\/os-keypairs\?limit=2&marker=p2$/)
  const last = (await call('GET', '/v2.1/os-keypairs?limit=2&marker=p2', '2.35')).json()
  assert.deepEqual(
    last.keypairs.map((k: { keypair: { name: string } }) => k.keypair.name),
    ['p3'],
  )
  assert.equal(last.keypairs_links, undefined)
  fault(await call('GET', '/v2.1/os-keypairs?marker=nope', '2.35'), 400, 'Marker nope could not be found.')
  fault(
    await call('GET', '/v2.1/os-keypairs?limit=-1', '2.35'),
    400,
    "Invalid input for query parameters limit. Value: -1. '-1' does not match '^[0-9]*$'",
  )
})

test('flavors: description from 2.55 (create, PUT), extra_specs from 2.61, swap 0 from 2.75', async () => {
  const body = { flavor: { name: 'mv-flavor', id: 'mvf', ram: 64, vcpus: 1, disk: 1 } }
  fault(
    await call('POST', '/v2.1/flavors', '2.54', admin, { flavor: { ...body.flavor, description: 'd' } }),
    400,
    "Invalid input for field/attribute flavor. Value: {'name': 'mv-flavor', 'id': 'mvf', 'ram': 64, 'vcpus': 1, 'disk': 1, 'description': 'd'}. Additional properties are not allowed ('description' was unexpected)",
  )
  const created = await call('POST', '/v2.1/flavors', '2.55', admin, { flavor: { ...body.flavor, description: 'small' } })
  assert.equal(created.statusCode, 200)
  assert.equal(created.json().flavor.description, 'small')
  assert.equal(created.json().flavor.swap, '')
  assert.equal(created.json().flavor.extra_specs, undefined)
  // PUT /flavors/{id} exists from 2.55.
  fault(await call('PUT', '/v2.1/flavors/mvf', '2.54', admin, { flavor: { description: 'x' } }), 404, 'The resource could not be found.')
  const updated = await call('PUT', '/v2.1/flavors/mvf', '2.55', admin, { flavor: { description: null } })
  assert.equal(updated.statusCode, 200)
  assert.equal(updated.json().flavor.description, null)
  fault(
    await call('PUT', '/v2.1/flavors/mvf', '2.55', admin, { flavor: {} }),
    400,
    "Invalid input for field/attribute flavor. Value: {}. 'description' is a required property",
  )
  fault(
    await call('PUT', '/v2.1/flavors/mvf', '2.55', demo, { flavor: { description: 'x' } }),
    403,
    "Policy doesn't allow os_compute_api:os-flavor-manage:update to be performed.",
  )
  fault(await call('PUT', '/v2.1/flavors/nope', '2.55', admin, { flavor: { description: 'x' } }), 404, 'Flavor nope could not be found.')
  await call('POST', '/v2.1/flavors/mvf/os-extra_specs', '2.61', admin, { extra_specs: { 'hw:cpu_policy': 'shared' } })
  assert.equal((await call('GET', '/v2.1/flavors/mvf', '2.60')).json().flavor.extra_specs, undefined)
  assert.deepEqual((await call('GET', '/v2.1/flavors/mvf', '2.61')).json().flavor.extra_specs, { 'hw:cpu_policy': 'shared' })
  assert.equal((await call('GET', '/v2.1/flavors/mvf', '2.74')).json().flavor.swap, '')
  assert.equal((await call('GET', '/v2.1/flavors/mvf', '2.75')).json().flavor.swap, 0)
  const basic = (await call('GET', '/v2.1/flavors', '2.55')).json().flavors[0]
  assert.deepEqual(Object.keys(basic).sort(), ['description', 'id', 'links', 'name'])
  fault(
    await call('GET', '/v2.1/flavors?sort_key=bogus', '2.1'),
    400,
    "Invalid input for query parameters sort_key. Value: bogus. 'bogus' is not one of ['created_at', 'description', 'disabled', 'ephemeral_gb', 'flavorid', 'id', 'is_public', 'memory_mb', 'name', 'root_gb', 'rxtx_factor', 'swap', 'updated_at', 'vcpu_weight', 'vcpus']",
  )
})

test('limits: network and security-group limits gone at 2.36, maxImageMeta at 2.39, personality at 2.57', async () => {
  const keys = async (v: string) => Object.keys((await call('GET', '/v2.1/limits', v)).json().limits.absolute)
  const k21 = await keys('2.35')
  for (const k of ['maxTotalFloatingIps', 'totalFloatingIpsUsed', 'maxSecurityGroups', 'totalSecurityGroupsUsed', 'maxSecurityGroupRules'])
    assert.ok(k21.includes(k) && !(await keys('2.36')).includes(k), k)
  assert.ok((await keys('2.38')).includes('maxImageMeta'))
  assert.ok(!(await keys('2.39')).includes('maxImageMeta'))
  assert.ok((await keys('2.56')).includes('maxPersonality'))
  const k257 = await keys('2.57')
  assert.ok(!k257.includes('maxPersonality') && !k257.includes('maxPersonalitySize'))
  fault(
    await call('GET', '/v2.1/limits?tenant_id=other', '2.1'),
    403,
    "Policy doesn't allow os_compute_api:limits:other_project to be performed.",
  )
  fault(await call('GET', '/v2.1/limits?x=1', '2.75'), 400, "Additional properties are not allowed ('x' was unexpected)")
})

test('server groups: owner keys at 2.13, soft policies at 2.15, policy and rules at 2.64', async () => {
  fault(
    await call('POST', '/v2.1/os-server-groups', '2.14', demo, { server_group: { name: 'g', policies: ['soft-affinity'] } }),
    400,
    "Invalid input for field/attribute 0. Value: soft-affinity. 'soft-affinity' is not one of ['anti-affinity', 'affinity']",
  )
  const g215 = await call('POST', '/v2.1/os-server-groups', '2.15', demo, { server_group: { name: 'g', policies: ['soft-affinity'] } })
  assert.equal(g215.statusCode, 200)
  assert.deepEqual(Object.keys(g215.json().server_group).sort(), ['id', 'members', 'metadata', 'name', 'policies', 'project_id', 'user_id'])
  assert.deepEqual(
    Object.keys((await call('GET', `/v2.1/os-server-groups/${g215.json().server_group.id}`, '2.12')).json().server_group).sort(),
    ['id', 'members', 'metadata', 'name', 'policies'],
  )
  fault(
    await call('POST', '/v2.1/os-server-groups', '2.64', demo, { server_group: { name: 'g', policies: ['affinity'] } }),
    400,
    "Invalid input for field/attribute server_group. Value: {'name': 'g', 'policies': ['affinity']}. 'policy' is a required property",
  )
  fault(
    await call('POST', '/v2.1/os-server-groups', '2.64', demo, {
      server_group: { name: 'g', policy: 'affinity', rules: { max_server_per_host: 2 } },
    }),
    400,
    'Only anti-affinity policy supports rules.',
  )
  fault(
    await call('POST', '/v2.1/os-server-groups', '2.64', demo, {
      server_group: { name: 'g', policy: 'anti-affinity', rules: { max_server_per_host: 0 } },
    }),
    400,
    'Invalid input for field/attribute max_server_per_host. Value: 0. 0 is less than the minimum of 1',
  )
  const g264 = await call('POST', '/v2.1/os-server-groups', '2.64', demo, {
    server_group: { name: 'g', policy: 'anti-affinity', rules: { max_server_per_host: '2' } },
  })
  assert.equal(g264.statusCode, 200)
  const sg = g264.json().server_group
  assert.deepEqual(Object.keys(sg).sort(), ['id', 'members', 'name', 'policy', 'project_id', 'rules', 'user_id'])
  assert.deepEqual(sg.rules, { max_server_per_host: 2 })
  // Below 2.64 the same group shows a one-item list and an empty metadata.
  const old = (await call('GET', `/v2.1/os-server-groups/${sg.id}`, '2.63')).json().server_group
  assert.deepEqual([old.policies, old.metadata], [['anti-affinity'], {}])
})

test('instance actions: 2.21 deleted servers, 2.51 events for all, 2.58 paging, 2.62 host/hostId, 2.66 changes-before, 2.84 details', async () => {
  const id = await activeServer(skiff, demo, 'ia')
  await call('POST', `/v2.1/servers/${id}/action`, '2.1', demo, { 'os-stop': null })
  const list = async (v: string, q = '', token = demo) => call('GET', `/v2.1/servers/${id}/os-instance-actions${q}`, v, token)
  const actions = (await list('2.58')).json().instanceActions
  assert.deepEqual(
    actions.map((a: { action: string }) => a.action),
    ['stop', 'create'],
  )
  assert.ok(actions[0].updated_at)
  assert.equal((await list('2.57')).json().instanceActions[0].updated_at, undefined)
  const page = (await list('2.58', '?limit=1')).json()
  assert.equal(page.instanceActions.length, 1)
  assert.match(page.links[0].href, new RegExp(`/os-instance-actions\\?limit=1&marker=${page.instanceActions[0].request_id}$`))
  assert.equal((await list('2.58', `?marker=${page.instanceActions[0].request_id}`)).json().instanceActions[0].action, 'create')
  fault(await list('2.58', '?marker=req-nope'), 400, 'Marker None could not be found.')
  assert.equal((await list('2.58', '?changes-since=2999-01-01T00:00:00Z')).json().instanceActions.length, 0)
  fault(
    await list('2.58', '?changes-before=2000-01-01T00:00:00Z'),
    400,
    "Additional properties are not allowed ('changes-before' was unexpected)",
  )
  assert.equal((await list('2.66', '?changes-before=2000-01-01T00:00:00Z')).json().instanceActions.length, 0)
  fault(
    await list('2.66', '?changes-since=2020-01-02T00:00:00Z&changes-before=2020-01-01T00:00:00Z'),
    400,
    'The value of changes-since must be less than or equal to changes-before.',
  )
  fault(
    await list('2.58', '?changes-since=yesterday'),
    400,
    "Invalid input for query parameters changes-since. Value: yesterday. 'yesterday' is not a 'date-time'",
  )

  const show = async (v: string, token = demo) =>
    (await call('GET', `/v2.1/servers/${id}/os-instance-actions/${actions[1].request_id}`, v, token)).json().instanceAction
  assert.equal((await show('2.50')).events, undefined)
  const e51 = (await show('2.51')).events[0]
  assert.deepEqual(Object.keys(e51).sort(), ['event', 'finish_time', 'result', 'start_time'])
  assert.deepEqual(Object.keys((await show('2.62')).events[0]).sort(), ['event', 'finish_time', 'hostId', 'result', 'start_time'])
  assert.deepEqual(Object.keys((await show('2.61', admin)).events[0]).sort(), ['event', 'finish_time', 'result', 'start_time', 'traceback'])
  assert.deepEqual(Object.keys((await show('2.62', admin)).events[0]).sort(), [
    'event',
    'finish_time',
    'host',
    'hostId',
    'result',
    'start_time',
    'traceback',
  ])
  assert.ok(Object.keys((await show('2.84', admin)).events[0]).includes('details'))
  assert.ok(!Object.keys((await show('2.84')).events[0]).includes('details'))
  fault(await call('GET', `/v2.1/servers/${id}/os-instance-actions/req-nope`, '2.1'), 404, 'Action req-nope not found')

  // A deleted server's actions: 404 before 2.21, listed from it.
  assert.equal((await call('DELETE', `/v2.1/servers/${id}`, '2.1')).statusCode, 204)
  for (let i = 0; i < 50 && (await call('GET', `/v2.1/servers/${id}`, '2.1')).statusCode !== 404; i++)
    await new Promise((r) => setTimeout(r, 50))
  fault(await list('2.20'), 404, `Instance ${id} could not be found.`)
  assert.ok((await list('2.21')).json().instanceActions.some((a: { action: string }) => a.action === 'delete'))
})

test('os-services: forced_down from 2.11, uuid ids and PUT /os-services/{id} from 2.53', async () => {
  const busy = await activeServer(skiff, demo, 'on-host')
  const s21 = (await call('GET', '/v2.1/os-services', '2.1', admin)).json().services[0]
  assert.equal(typeof s21.id, 'number')
  assert.equal(s21.forced_down, undefined)
  const host = s21.host as string
  assert.equal((await call('GET', '/v2.1/os-services', '2.11', admin)).json().services[0].forced_down, false)
  fault(
    await call('PUT', '/v2.1/os-services/force-down', '2.10', admin, { host, binary: 'nova-compute', forced_down: true }),
    400,
    "Additional properties are not allowed ('forced_down' was unexpected)",
  )
  fault(await call('PUT', '/v2.1/os-services/force-down', '2.10', admin, { host, binary: 'nova-compute' }), 404, 'Unknown action')
  const down = await call('PUT', '/v2.1/os-services/force-down', '2.11', admin, { host, binary: 'nova-compute', forced_down: true })
  assert.deepEqual(down.json(), { service: { host, binary: 'nova-compute', forced_down: true } })
  const listed = (await call('GET', '/v2.1/os-services', '2.11', admin)).json().services[0]
  assert.deepEqual([listed.forced_down, listed.state], [true, 'down'])
  await call('PUT', '/v2.1/os-services/force-down', '2.11', admin, { host, binary: 'nova-compute', forced_down: false })
  const disabled = await call('PUT', '/v2.1/os-services/disable-log-reason', '2.1', admin, {
    host,
    binary: 'nova-compute',
    disabled_reason: 'maint',
  })
  assert.deepEqual(disabled.json(), { service: { host, binary: 'nova-compute', status: 'disabled', disabled_reason: 'maint' } })
  fault(
    await call('PUT', '/v2.1/os-services/enable', '2.1', admin, { host, binary: 'nova-scheduler' }),
    400,
    'Updating a nova-scheduler service is not supported. Only nova-compute services can be updated.',
  )
  fault(
    await call('PUT', '/v2.1/os-services/enable', '2.1', admin, { host: 'nohost', binary: 'nova-compute' }),
    404,
    "Host 'nohost' is not mapped to any cell",
  )
  assert.deepEqual((await call('PUT', '/v2.1/os-services/enable', '2.1', admin, { host, binary: 'nova-compute' })).json(), {
    service: { host, binary: 'nova-compute', status: 'enabled' },
  })

  const s253 = (await call('GET', '/v2.1/os-services', '2.53', admin)).json().services[0]
  assert.match(s253.id, /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
  fault(await call('PUT', '/v2.1/os-services/disable', '2.53', admin, { status: 'disabled' }), 400, 'Invalid uuid disable')
  fault(
    await call('PUT', `/v2.1/os-services/${s253.id}`, '2.53', admin, {}),
    400,
    "No updates were requested. Fields 'status' or 'forced_down' should be specified.",
  )
  fault(
    await call('PUT', `/v2.1/os-services/${s253.id}`, '2.53', admin, { status: 'enabled', disabled_reason: 'x' }),
    400,
    "Specifying 'disabled_reason' with status 'enabled' is invalid.",
  )
  const put = (await call('PUT', `/v2.1/os-services/${s253.id}`, '2.53', admin, { status: 'disabled', disabled_reason: 'r' })).json()
    .service
  assert.deepEqual([put.id, put.status, put.disabled_reason, put.forced_down], [s253.id, 'disabled', 'r', false])
  // A disabled compute service gets no new servers: Nova's "No valid host was found".
  const create = await call('POST', '/v2.1/servers', '2.1', demo, {
    server: { name: 'nowhere', imageRef: await skiff.imageId('skiff-base'), flavorRef: '1' },
  })
  assert.equal(create.statusCode, 202)
  const failed = await skiff.compute('GET', `/v2.1/servers/${create.json().server.id}`, { token: demo })
  assert.equal(failed.json().server.status, 'ERROR')
  await call('PUT', `/v2.1/os-services/${s253.id}`, '2.53', admin, { status: 'enabled' })
  fault(
    await call('PUT', '/v2.1/os-services/0b3b5e5c-0000-4000-8000-000000000000', '2.53', admin, { status: 'enabled' }),
    404,
    'Service 0b3b5e5c-0000-4000-8000-000000000000 could not be found.',
  )
  fault(await call('DELETE', '/v2.1/os-services/x', '2.52', admin), 400, 'Invalid input received: id must be an integer')
  fault(await call('DELETE', '/v2.1/os-services/x', '2.53', admin), 400, 'Invalid uuid x')
  fault(
    await call('DELETE', `/v2.1/os-services/${s253.id}`, '2.53', admin),
    409,
    'Unable to delete compute service that is hosting instances. Migrate or delete the instances first.',
  )
  fault(await call('GET', '/v2.1/os-services', '2.1', demo), 403, "Policy doesn't allow os_compute_api:os-services:list to be performed.")
  assert.equal((await call('DELETE', `/v2.1/servers/${busy}`, '2.1')).statusCode, 204)
})

test('remote consoles: the actions until 2.5, POST remote-consoles from 2.6; no console is configured', async () => {
  const id = await activeServer(skiff, demo, 'console')
  fault(
    await call('POST', `/v2.1/servers/${id}/action`, '2.5', demo, { 'os-getVNCConsole': { type: 'novnc' } }),
    400,
    'Unavailable console type novnc.',
  )
  fault(
    await call('POST', `/v2.1/servers/${id}/action`, '2.1', demo, { 'os-getSerialConsole': { type: 'serial' } }),
    400,
    'Unavailable console type serial.',
  )
  fault(
    await call('POST', `/v2.1/servers/${id}/action`, '2.1', demo, { 'os-getVNCConsole': { type: 'spice-html5' } }),
    400,
    "Invalid input for field/attribute type. Value: spice-html5. 'spice-html5' is not one of ['novnc', 'xvpvnc']",
  )
  fault(
    await call('POST', `/v2.1/servers/${id}/action`, '2.6', demo, { 'os-getVNCConsole': { type: 'novnc' } }),
    404,
    'The resource could not be found.',
  )
  const body = { remote_console: { protocol: 'vnc', type: 'novnc' } }
  fault(await call('POST', `/v2.1/servers/${id}/remote-consoles`, '2.5', demo, body), 404, 'The resource could not be found.')
  fault(await call('POST', `/v2.1/servers/${id}/remote-consoles`, '2.6', demo, body), 400, 'Unavailable console type novnc.')
  fault(
    await call('POST', `/v2.1/servers/${id}/remote-consoles`, '2.6', demo, { remote_console: { protocol: 'mks', type: 'webmks' } }),
    400,
    "Invalid input for field/attribute protocol. Value: mks. 'mks' is not one of ['vnc', 'spice', 'rdp', 'serial']",
  )
  fault(
    await call('POST', `/v2.1/servers/${id}/remote-consoles`, '2.8', demo, { remote_console: { protocol: 'mks', type: 'webmks' } }),
    400,
    'Unavailable console type webmks.',
  )
  fault(
    await call('POST', '/v2.1/servers/00000000-0000-4000-8000-000000000000/remote-consoles', '2.6', demo, body),
    404,
    'Instance 00000000-0000-4000-8000-000000000000 could not be found.',
  )
})

test('2.36: the proxy APIs answer 404; os-security-groups, floating IP pools and floating IPs list nothing up to 2.35', async () => {
  assert.deepEqual((await call('GET', '/v2.1/os-security-groups', '2.35')).json(), { security_groups: [] })
  assert.deepEqual((await call('GET', '/v2.1/os-floating-ip-pools', '2.1')).json(), { floating_ip_pools: [] })
  assert.deepEqual((await call('GET', '/v2.1/os-floating-ips', '2.35')).json(), { floating_ips: [] })
  fault(await call('GET', '/v2.1/os-floating-ips/1.2.3.4', '2.35'), 404, 'Floating IP not found for ID 1.2.3.4')
  fault(await call('GET', '/v2.1/os-floating-ip-pools', '2.36'), 404, 'The resource could not be found.')
  for (const path of [
    '/v2.1/os-security-groups',
    '/v2.1/os-networks',
    '/v2.1/os-volumes',
    '/v2.1/os-snapshots',
    '/v2.1/images',
    '/v2.1/os-floating-ips',
  ]) {
    fault(await call('GET', path, '2.36'), 404, 'The resource could not be found.')
  }
  // os-fping is no proxy: Zed answers 410 Gone at every version (server-microversion-gaps.test.ts).
  assert.equal((await call('GET', '/v2.1/os-fping', '2.36')).statusCode, 410)
})
