// The servers API at each microversion family, compared with real Nova's answers (golden file
// nova-servers-mv.json, from the shared anchors by golden/generate-nova-servers-mv.ts), and every
// answer checked against Tempest's response schema for its microversion (helpers/tempest-schemas.py).
//
// The reference server is built as it was on the reference cloud: created by admin at 2.52 with
// networks "none", the tag t1 and the description "probe", then locked at 2.73 with the reason
// "probe". Intended difference (as in nova-transcripts.test.ts, difference 4): root_device_name is
// /dev/vda (virtio), where Nova's fake driver says /dev/sda.
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { after, before, describe, test } from 'node:test'
import type { LightMyRequestResponse } from 'fastify'
import { goldenMatcher, type Bindings, type Expected, type Placeholders } from '../helpers/golden-match.ts'
import { startTestSkiff, waitForStatus, type TestSkiff } from '../helpers/skiff.ts'

interface Sample {
  name: string
  anchor: string
  microversion: string
  request: { method: string; path: string }
  response: Expected
}
const golden = JSON.parse(readFileSync(new URL('./golden/nova-servers-mv.json', import.meta.url), 'utf8')) as {
  placeholders: Placeholders
  samples: Sample[]
}
const { differences, fill } = goldenMatcher(golden.placeholders)

const withVirtioRoot = <T>(v: T): T =>
  JSON.parse(JSON.stringify(v), (k, x) => (k === 'OS-EXT-SRV-ATTR:root_device_name' && x === '/dev/sda' ? '/dev/vda' : x)) as T

/** Tempest's schema (by name, in its servers module) that each golden request's answer must hold. */
function tempestCall(s: Sample): string | undefined {
  if (s.response.status !== 200) return undefined
  if (s.request.path.endsWith('/tags')) return 'list_tags'
  if (s.request.path.startsWith('/v2.1/servers/detail')) return 'list_servers_detail'
  if (s.request.path.startsWith('/v2.1/servers?')) return 'list_servers'
  return 'get_server'
}

let skiff: TestSkiff
let admin: string
let demo: string
let baseImage: string
const bindings: Bindings = new Map()
/** Every answer checked, for Tempest's schemas at the end. */
const answers: { microversion: string; call: string; status: number; body: unknown; label: string }[] = []

const at = (v: string) => ({ 'openstack-api-version': `compute ${v}` })
async function call(
  v: string,
  method: string,
  url: string,
  opts: { token?: string; body?: unknown; headers?: Record<string, string> } = {},
) {
  return skiff.compute(method, url, { token: opts.token ?? admin, body: opts.body, headers: { ...at(v), ...opts.headers } })
}
/** Remember an answer for Tempest's schema check. */
function record(v: string, schemaName: string, res: LightMyRequestResponse, label: string) {
  answers.push({ microversion: v, call: schemaName, status: res.statusCode, body: res.body ? res.json() : null, label })
}
const message = (res: LightMyRequestResponse) => (Object.values(res.json())[0] as { message: string }).message

async function create(v: string, server: Record<string, unknown>, token = admin) {
  const res = await call(v, 'POST', '/v2.1/servers', { token, body: { server: { imageRef: baseImage, flavorRef: '1', ...server } } })
  assert.equal(res.statusCode, 202, res.body)
  return res.json().server.id as string
}

before(async () => {
  skiff = await startTestSkiff()
  admin = await skiff.token('admin')
  demo = await skiff.token('demo')
  baseImage = await skiff.imageId('skiff-base')
  const id = await create('2.52', { name: 'mv-probe', networks: 'none', tags: ['t1'], description: 'probe' })
  await waitForStatus(skiff, admin, id, 'ACTIVE')
  const lock = await call('2.73', 'POST', `/v2.1/servers/${id}/action`, { body: { lock: { locked_reason: 'probe' } } })
  assert.equal(lock.statusCode, 202, lock.body)
  const shown = (await call('2.1', 'GET', `/v2.1/servers/${id}`)).json().server
  const host = shown['OS-EXT-SRV-ATTR:host'] as string
  bindings
    .set('server_id', id)
    .set('project_id', shown.tenant_id)
    .set('user_id', shown.user_id)
    .set('image_id', baseImage)
    .set('host', host)
    .set(
      'host_id',
      createHash('sha224')
        .update(String(shown.tenant_id) + host)
        .digest('hex'),
    )
})
after(() => skiff.close())

describe("as Nova at each version family (the anchors' reads: show, list, detail, tags, 2.94 refused)", () => {
  for (const sample of golden.samples) {
    test(`${sample.name}: GET ${sample.request.path} at ${sample.microversion} → ${sample.response.status}`, async () => {
      const res = await skiff.apps.compute.inject({
        method: 'GET',
        url: fill(sample.request.path, bindings),
        headers: { accept: 'application/json', 'x-auth-token': admin, ...at(sample.microversion) },
      })
      const diff = differences({ ...sample.response, body: withVirtioRoot(sample.response.body) }, res, bindings)
      assert.deepEqual(diff, [], `${sample.name} differs from Nova:\n  ${diff.join('\n  ')}`)
      const schema = tempestCall(sample)
      if (schema) record(sample.microversion, schema, res, sample.name)
    })
  }
})

describe('description (2.19), hostname (2.90), PUT per version (2.75: the whole server)', () => {
  test('create and PUT take a description from 2.19; below, Nova gives the name as description and refuses the key', async () => {
    const old = await call('2.18', 'POST', '/v2.1/servers', {
      body: { server: { name: 'd', imageRef: baseImage, flavorRef: '1', description: 'x' } },
    })
    assert.equal(old.statusCode, 400)
    assert.match(
      message(old),
      /^Invalid input for field\/attribute server\. Value: .*\. Additional properties are not allowed \('description' was unexpected\)$/,
    )
    const named = await create('2.1', { name: 'named-only' })
    assert.equal((await call('2.19', 'GET', `/v2.1/servers/${named}`)).json().server.description, 'named-only')
    const id = await create('2.19', { name: 'described', description: 'first' })
    await waitForStatus(skiff, admin, id, 'ACTIVE')
    const put = await call('2.19', 'PUT', `/v2.1/servers/${id}`, { body: { server: { description: 'second' } } })
    assert.equal(put.statusCode, 200, put.body)
    record('2.19', 'update_server', put, 'PUT 2.19')
    assert.equal(put.json().server.description, 'second')
    // Below 2.75 PUT answers without the extension attributes.
    assert.equal(put.json().server['OS-EXT-STS:vm_state'], undefined)
    const cleared = await call('2.19', 'PUT', `/v2.1/servers/${id}`, { body: { server: { description: null } } })
    assert.equal(cleared.json().server.description, null)
    const full = await call('2.75', 'PUT', `/v2.1/servers/${id}`, { body: { server: { name: 'described2' } } })
    record('2.75', 'update_server', full, 'PUT 2.75')
    const shown = (await call('2.75', 'GET', `/v2.1/servers/${id}`)).json().server
    // 2.75: PUT answers as GET does (the times aside, which the PUT itself changed).
    assert.deepEqual(Object.keys(full.json().server).sort(), Object.keys(shown).sort())
  })

  test('hostname: from the name by default, settable from 2.90 (create, PUT, rebuild), shown to non-admins from 2.90', async () => {
    const id = await create('2.90', { name: 'Web Server_1.example', hostname: 'web-1', networks: 'none' }, demo)
    await waitForStatus(skiff, demo, id, 'ACTIVE')
    const asDemo = await call('2.90', 'GET', `/v2.1/servers/${id}`, { token: demo })
    record('2.90', 'get_server', asDemo, 'show 2.90 as demo')
    assert.equal(asDemo.json().server['OS-EXT-SRV-ATTR:hostname'], 'web-1')
    assert.equal(asDemo.json().server['OS-EXT-SRV-ATTR:host'], undefined)
    assert.equal((await call('2.89', 'GET', `/v2.1/servers/${id}`, { token: demo })).json().server['OS-EXT-SRV-ATTR:hostname'], undefined)
    const derived = await create('2.1', { name: 'Web Server_1.example' })
    assert.equal((await call('2.3', 'GET', `/v2.1/servers/${derived}`)).json().server['OS-EXT-SRV-ATTR:hostname'], 'web-server-1-example')
    const bad = await call('2.90', 'PUT', `/v2.1/servers/${id}`, { token: demo, body: { server: { hostname: '-x' } } })
    assert.equal(bad.statusCode, 400)
    const old = await call('2.89', 'PUT', `/v2.1/servers/${id}`, { token: demo, body: { server: { hostname: 'web-2' } } })
    assert.match(message(old), /Additional properties are not allowed \('hostname' was unexpected\)$/)
    const put = await call('2.90', 'PUT', `/v2.1/servers/${id}`, { token: demo, body: { server: { hostname: 'web-2' } } })
    assert.equal(put.json().server['OS-EXT-SRV-ATTR:hostname'], 'web-2')
    record('2.90', 'update_server', put, 'PUT 2.90 as demo')
    const rebuild = await call('2.90', 'POST', `/v2.1/servers/${id}/action`, {
      token: demo,
      body: { rebuild: { imageRef: baseImage, hostname: 'web-3' } },
    })
    assert.equal(rebuild.statusCode, 202, rebuild.body)
    record('2.90', 'rebuild_server_with_admin_pass', rebuild, 'rebuild 2.90 as demo')
    assert.equal(rebuild.json().server['OS-EXT-SRV-ATTR:hostname'], 'web-3')
    const multi = await call('2.90', 'POST', '/v2.1/servers', {
      body: { server: { name: 'm', imageRef: baseImage, flavorRef: '1', networks: 'auto', hostname: 'one', max_count: 2 } },
    })
    assert.equal(multi.statusCode, 400)
    assert.equal(message(multi), 'Unable to allocate a single hostname to multiple instances')
  })
})

describe('tags (2.26): the tags API, tags at create (2.52), the tag filters', () => {
  test("GET/PUT/DELETE all and one, with Nova's limits and errors", async () => {
    const id = await create('2.37', { name: 'tagged', networks: 'none' })
    await waitForStatus(skiff, admin, id, 'ACTIVE')
    const base = `/v2.1/servers/${id}/tags`
    assert.equal((await call('2.25', 'GET', base)).statusCode, 404)
    const empty = await call('2.26', 'GET', base)
    assert.deepEqual(empty.json(), { tags: [] })
    record('2.26', 'list_tags', empty, 'tags empty')
    const all = await call('2.26', 'PUT', base, { body: { tags: ['b', 'a', 'b'] } })
    assert.equal(all.statusCode, 200, all.body)
    assert.deepEqual(all.json(), { tags: ['a', 'b'] })
    record('2.26', 'update_all_tags', all, 'PUT tags')
    const added = await call('2.26', 'PUT', `${base}/c`)
    assert.equal(added.statusCode, 201, added.body)
    assert.equal(added.headers.location, `http://127.0.0.1:8774/v2.1/servers/${id}/tags/c`)
    assert.equal((await call('2.26', 'PUT', `${base}/c`)).statusCode, 204)
    // As Tempest sends it: a JSON content type and no body at all (Nova reads an empty PUT as none).
    const bare = await call('2.26', 'PUT', `${base}/d`, { headers: { 'content-type': 'application/json' } })
    assert.equal(bare.statusCode, 201, bare.body)
    assert.equal((await call('2.26', 'DELETE', `${base}/d`)).statusCode, 204)
    assert.equal((await call('2.26', 'GET', `${base}/c`)).statusCode, 204)
    const missing = await call('2.26', 'GET', `${base}/zz`)
    assert.equal(missing.statusCode, 404)
    assert.equal(message(missing), `Server ${id} has no tag 'zz'`)
    const notMine = await call('2.26', 'GET', base, { token: demo })
    assert.equal(notMine.statusCode, 403)
    assert.equal(message(notMine), "Policy doesn't allow os_compute_api:os-server-tags:index to be performed.")
    const long = 'x'.repeat(61)
    const tooLong = await call('2.26', 'PUT', `${base}/${long}`)
    assert.equal(tooLong.statusCode, 400)
    assert.equal(
      message(tooLong),
      `Tag '${long}' is invalid. It must be a non empty string without characters '/' and ','. Validation error message: '${long}' is too long`,
    )
    const fifty = Array.from({ length: 50 }, (_, i) => `t${i}`)
    assert.equal((await call('2.26', 'PUT', base, { body: { tags: fifty } })).statusCode, 200)
    const over = await call('2.26', 'PUT', `${base}/one-more`)
    assert.equal(over.statusCode, 400)
    assert.equal(message(over), 'The number of tags exceeded the per-server limit 50')
    const fiftyOne = await call('2.26', 'PUT', base, { body: { tags: [...fifty, 'x'] } })
    assert.equal(fiftyOne.statusCode, 400)
    assert.equal((await call('2.26', 'DELETE', `${base}/t0`)).statusCode, 204)
    const gone = await call('2.26', 'DELETE', `${base}/t0`)
    assert.equal(gone.statusCode, 404)
    assert.equal(message(gone), `Instance ${id} has no tag 't0'`)
    assert.equal((await call('2.26', 'DELETE', base)).statusCode, 204)
    assert.deepEqual((await call('2.26', 'GET', base)).json(), { tags: [] })
    assert.equal((await call('2.26', 'GET', '/v2.1/servers/7c1f5b61-9b6d-4d8a-a0b0-7f1f2a1d1f00/tags')).statusCode, 404)
  })

  test('a change while the server builds is 409 (Nova: active, paused, suspended or stopped only)', async () => {
    await skiff.driver.injectFault({ operation: 'spawn', delayMs: 400, count: 1 })
    const id = await create('2.37', { name: 'building', networks: 'none' })
    const res = await call('2.26', 'PUT', `/v2.1/servers/${id}/tags`, { body: { tags: ['a'] } })
    assert.equal(res.statusCode, 409, res.body)
    assert.match(message(res), new RegExp(`^Cannot 'update tags' instance ${id} while it is in vm_state building$`))
    await waitForStatus(skiff, admin, id, 'ACTIVE')
  })

  test('tags at create from 2.52 (refused below), and the four tag filters', async () => {
    const refused = await call('2.51', 'POST', '/v2.1/servers', {
      body: { server: { name: 'x', imageRef: baseImage, flavorRef: '1', networks: 'none', tags: ['a'] } },
    })
    assert.equal(refused.statusCode, 400)
    const ab = await create('2.52', { name: 'tf-ab', networks: 'none', tags: ['a', 'b'] })
    const a = await create('2.52', { name: 'tf-a', networks: 'none', tags: ['a'] })
    const none = await create('2.52', { name: 'tf-none', networks: 'none' })
    const names = async (q: string, v = '2.26') => {
      const res = await call(v, 'GET', `/v2.1/servers?name=^tf-&${q}`)
      assert.equal(res.statusCode, 200, res.body)
      return (res.json().servers as { id: string }[]).map((s) => s.id).sort()
    }
    assert.deepEqual(await names('tags=a,b'), [ab])
    assert.deepEqual(await names('tags-any=a,b'), [a, ab].sort())
    assert.deepEqual(await names('not-tags=a,b'), [a, none].sort())
    assert.deepEqual(await names('not-tags-any=b'), [a, none].sort())
    // Below 2.26 the filters are not known: ignored.
    assert.deepEqual(await names('tags=a,b', '2.25'), [a, ab, none].sort())
    const detail = await call('2.52', 'GET', '/v2.1/servers/detail?name=^tf-')
    record('2.52', 'list_servers_detail', detail, 'detail 2.52')
  })
})

describe('create: networks (2.37), personality (2.57), trusted certificates (2.63), host (2.74)', () => {
  test("networks is required from 2.37: a list of uuids, 'auto' or 'none'", async () => {
    const missing = await call('2.37', 'POST', '/v2.1/servers', { body: { server: { name: 'n', imageRef: baseImage, flavorRef: '1' } } })
    assert.equal(missing.statusCode, 400)
    assert.match(message(missing), /^Invalid input for field\/attribute server\. Value: .*'networks' is a required property$/)
    const notUuid = await call('2.37', 'POST', '/v2.1/servers', {
      body: { server: { name: 'n', imageRef: baseImage, flavorRef: '1', networks: [{ uuid: 'private' }] } },
    })
    assert.equal(notUuid.statusCode, 400)
    const other = await call('2.37', 'POST', '/v2.1/servers', {
      body: { server: { name: 'n', imageRef: baseImage, flavorRef: '1', networks: 'some' } },
    })
    assert.equal(other.statusCode, 400)
    const auto = await create('2.37', { name: 'net-auto', networks: 'auto' })
    const none = await create('2.37', { name: 'net-none', networks: 'none' })
    await waitForStatus(skiff, admin, auto, 'ACTIVE')
    await waitForStatus(skiff, admin, none, 'ACTIVE')
    assert.deepEqual(Object.keys((await call('2.37', 'GET', `/v2.1/servers/${auto}`)).json().server.addresses), ['private'])
    assert.deepEqual((await call('2.37', 'GET', `/v2.1/servers/${none}`)).json().server.addresses, {})
    // Below 2.37 networks may be left out (the built-in network).
    const old = await create('2.36', { name: 'net-old' })
    await waitForStatus(skiff, admin, old, 'ACTIVE')
    assert.deepEqual(Object.keys((await call('2.36', 'GET', `/v2.1/servers/${old}`)).json().server.addresses), ['private'])
  })

  test('personality is refused from 2.57 (create and rebuild); rebuild takes user_data and key_name (2.54)', async () => {
    const personality = [{ path: '/etc/motd', contents: 'aGk=' }]
    const create57 = await call('2.57', 'POST', '/v2.1/servers', {
      body: { server: { name: 'p', imageRef: baseImage, flavorRef: '1', networks: 'none', personality } },
    })
    assert.equal(create57.statusCode, 400)
    assert.match(message(create57), /Additional properties are not allowed \('personality' was unexpected\)$/)
    const id = await create('2.56', { name: 'p', networks: 'none', personality })
    await waitForStatus(skiff, admin, id, 'ACTIVE')
    const rebuild57 = await call('2.57', 'POST', `/v2.1/servers/${id}/action`, { body: { rebuild: { imageRef: baseImage, personality } } })
    assert.equal(rebuild57.statusCode, 400)
    const kp = await call('2.1', 'POST', '/v2.1/os-keypairs', { body: { keypair: { name: 'mv-key' } } })
    assert.equal(kp.statusCode, 200, kp.body)
    const keyOld = await call('2.53', 'POST', `/v2.1/servers/${id}/action`, {
      body: { rebuild: { imageRef: baseImage, key_name: 'mv-key' } },
    })
    assert.equal(keyOld.statusCode, 400)
    const badKey = await call('2.54', 'POST', `/v2.1/servers/${id}/action`, {
      body: { rebuild: { imageRef: baseImage, key_name: 'nope' } },
    })
    assert.equal(badKey.statusCode, 400)
    assert.equal(message(badKey), 'Invalid key_name provided.')
    const r54 = await call('2.54', 'POST', `/v2.1/servers/${id}/action`, { body: { rebuild: { imageRef: baseImage, key_name: 'mv-key' } } })
    assert.equal(r54.statusCode, 202, r54.body)
    record('2.54', 'rebuild_server_with_admin_pass', r54, 'rebuild 2.54')
    assert.equal(r54.json().server.key_name, 'mv-key')
    assert.equal(r54.json().server.user_data, undefined)
    await waitForStatus(skiff, admin, id, 'ACTIVE')
    const r57 = await call('2.57', 'POST', `/v2.1/servers/${id}/action`, {
      body: { rebuild: { imageRef: baseImage, user_data: 'aGVsbG8=', key_name: null } },
    })
    assert.equal(r57.statusCode, 202, r57.body)
    record('2.57', 'rebuild_server_with_admin_pass', r57, 'rebuild 2.57')
    assert.equal(r57.json().server.user_data, 'aGVsbG8=')
    assert.equal(r57.json().server.key_name, null)
    await waitForStatus(skiff, admin, id, 'ACTIVE')
    const r75 = await call('2.75', 'POST', `/v2.1/servers/${id}/action`, { body: { rebuild: { imageRef: baseImage } } })
    record('2.75', 'rebuild_server_with_admin_pass', r75, 'rebuild 2.75')
    // 2.75: the whole server, with the extension attributes; user_data under its own key only.
    assert.equal(r75.json().server['OS-EXT-STS:vm_state'], 'active')
    assert.equal(r75.json().server['OS-EXT-SRV-ATTR:user_data'], undefined)
    assert.equal(r75.json().server.user_data, 'aGVsbG8=')
    await waitForStatus(skiff, admin, id, 'ACTIVE')
    const shown = await call('2.75', 'GET', `/v2.1/servers/${id}`)
    assert.equal(shown.json().server['OS-EXT-SRV-ATTR:user_data'], 'aGVsbG8=')
  })

  test('trusted_image_certificates (2.63): shown; no Skiff host verifies signatures, so the server finds no valid host', async () => {
    const id = await create('2.63', { name: 'trusted', networks: 'none', trusted_image_certificates: ['cert-1'] })
    const res = await call('2.63', 'GET', `/v2.1/servers/${id}`)
    record('2.63', 'get_server', res, 'show trusted')
    assert.equal(res.json().server.status, 'ERROR')
    assert.deepEqual(res.json().server.trusted_image_certificates, ['cert-1'])
    assert.equal(res.json().server.fault.message, 'No valid host was found. There are not enough hosts available.')
    const dup = await call('2.63', 'POST', '/v2.1/servers', {
      body: { server: { name: 't', imageRef: baseImage, flavorRef: '1', networks: 'none', trusted_image_certificates: ['a', 'a'] } },
    })
    assert.equal(dup.statusCode, 400)
    const old = await call('2.62', 'POST', '/v2.1/servers', {
      body: { server: { name: 't', imageRef: baseImage, flavorRef: '1', networks: 'none', trusted_image_certificates: ['a'] } },
    })
    assert.equal(old.statusCode, 400)
  })

  test('host / hypervisor_hostname at create (2.74): admins only, an existing host', async () => {
    const host = bindings.get('host')!
    const id = await create('2.74', { name: 'on-host', networks: 'none', host })
    await waitForStatus(skiff, admin, id, 'ACTIVE')
    assert.equal((await call('2.74', 'GET', `/v2.1/servers/${id}`)).json().server['OS-EXT-SRV-ATTR:host'], host)
    const unknown = await call('2.74', 'POST', '/v2.1/servers', {
      body: { server: { name: 'x', imageRef: baseImage, flavorRef: '1', networks: 'none', hypervisor_hostname: 'nowhere' } },
    })
    assert.equal(unknown.statusCode, 400)
    assert.equal(message(unknown), 'Compute host nowhere could not be found.')
    const asDemo = await call('2.74', 'POST', '/v2.1/servers', {
      token: demo,
      body: { server: { name: 'x', imageRef: baseImage, flavorRef: '1', networks: 'none', host } },
    })
    assert.equal(asDemo.statusCode, 403)
    assert.equal(message(asDemo), "Policy doesn't allow compute:servers:create:requested_destination to be performed.")
    const old = await call('2.73', 'POST', '/v2.1/servers', {
      body: { server: { name: 'x', imageRef: baseImage, flavorRef: '1', networks: 'none', host } },
    })
    assert.equal(old.statusCode, 400)
  })
})

describe('list per version: 2.38 status, 2.66 changes-before, 2.73 locked, 2.75 unknown parameters, 2.83 filters for all', () => {
  test('an unknown status is an empty list below 2.38, 400 from 2.38', async () => {
    const old = await call('2.37', 'GET', '/v2.1/servers?status=BOGUS')
    assert.deepEqual(old.json(), { servers: [] })
    const res = await call('2.38', 'GET', '/v2.1/servers?status=BOGUS')
    assert.equal(res.statusCode, 400)
    assert.equal(message(res), 'Invalid status value')
  })

  test('changes-before (2.66), and its order with changes-since', async () => {
    const future = '2999-01-01T00:00:00Z'
    const before = await call('2.66', 'GET', `/v2.1/servers?changes-before=${future}&name=^mv-probe$`)
    assert.equal(before.json().servers.length, 1)
    const none = await call('2.66', 'GET', '/v2.1/servers?changes-before=2000-01-01T00:00:00Z&name=^mv-probe$')
    assert.equal(none.json().servers.length, 0)
    const wrong = await call('2.66', 'GET', `/v2.1/servers?changes-since=${future}&changes-before=2000-01-01T00:00:00Z`)
    assert.equal(wrong.statusCode, 400)
    assert.equal(message(wrong), 'The value of changes-since must be less than or equal to changes-before.')
    const bad = await call('2.66', 'GET', '/v2.1/servers?changes-before=yesterday')
    assert.equal(bad.statusCode, 400)
  })

  test('locked filter (2.73) and lock with a reason; unlock clears it', async () => {
    const id = await create('2.73', { name: 'lock-me', networks: 'none' }, demo)
    await waitForStatus(skiff, demo, id, 'ACTIVE')
    const badReason = await call('2.73', 'POST', `/v2.1/servers/${id}/action`, { token: demo, body: { lock: { reason: 'x' } } })
    assert.equal(badReason.statusCode, 400)
    assert.equal(
      (await call('2.73', 'POST', `/v2.1/servers/${id}/action`, { token: demo, body: { lock: { locked_reason: 'mine' } } })).statusCode,
      202,
    )
    const shown = (await call('2.73', 'GET', `/v2.1/servers/${id}`, { token: demo })).json().server
    assert.equal(shown.locked, true)
    assert.equal(shown.locked_reason, 'mine')
    const locked = await call('2.73', 'GET', '/v2.1/servers?locked=true', { token: demo })
    assert.deepEqual(
      locked.json().servers.map((s: { id: string }) => s.id),
      [id],
    )
    const unlocked = await call('2.73', 'GET', '/v2.1/servers?locked=False', { token: demo })
    assert.ok(!unlocked.json().servers.some((s: { id: string }) => s.id === id))
    const bad = await call('2.73', 'GET', '/v2.1/servers?locked=maybe', { token: demo })
    assert.equal(bad.statusCode, 400)
    assert.equal(
      message(bad),
      "Invalid input received: Unrecognized value 'maybe', acceptable values are: '0', '1', 'f', 'false', 'n', 'no', 'off', 'on', 't', 'true', 'y', 'yes'",
    )
    assert.equal((await call('2.73', 'POST', `/v2.1/servers/${id}/action`, { token: demo, body: { unlock: null } })).statusCode, 202)
    const after = (await call('2.73', 'GET', `/v2.1/servers/${id}`, { token: demo })).json().server
    assert.deepEqual([after.locked, after.locked_reason], [false, null])
  })

  test('unknown query parameters: ignored below 2.75, 400 from 2.75', async () => {
    assert.equal((await call('2.74', 'GET', '/v2.1/servers?foo=1')).statusCode, 200)
    const res = await call('2.75', 'GET', '/v2.1/servers?foo=1')
    assert.equal(res.statusCode, 400)
    assert.equal(message(res), "Additional properties are not allowed ('foo' was unexpected)")
    assert.equal((await call('2.75', 'GET', '/v2.1/servers/detail?name=x&tags=a&locked=1')).statusCode, 200)
  })

  test('a non-admin filters by vm_state, key_name, user_id… from 2.83 (below, those filters are dropped)', async () => {
    const id = await create('2.83', { name: 'demo-filter', networks: 'none' }, demo)
    await waitForStatus(skiff, demo, id, 'ACTIVE')
    const ids = async (v: string, q: string) =>
      ((await call(v, 'GET', `/v2.1/servers?${q}`, { token: demo })).json().servers as { id: string }[]).map((s) => s.id)
    assert.ok((await ids('2.82', 'vm_state=stopped')).includes(id))
    assert.ok(!(await ids('2.83', 'vm_state=stopped')).includes(id))
    assert.ok((await ids('2.83', 'vm_state=active')).includes(id))
    assert.ok(!(await ids('2.83', 'user_id=someone-else')).includes(id))
  })
})

describe('topology (2.78) and rescue at 2.87', () => {
  test("GET /servers/{id}/topology: 404 below 2.78, Nova's answer for a server without NUMA topology", async () => {
    const id = bindings.get('server_id')!
    assert.equal((await call('2.77', 'GET', `/v2.1/servers/${id}/topology`)).statusCode, 404)
    const res = await call('2.78', 'GET', `/v2.1/servers/${id}/topology`)
    assert.equal(res.statusCode, 200)
    assert.deepEqual(res.json(), { nodes: [], pagesize_kb: null })
    const other = await call('2.78', 'GET', `/v2.1/servers/${id}/topology`, { token: demo })
    assert.equal(other.statusCode, 404)
  })

  test('rescue at 2.87 of a server that is not volume-backed, with hw_rescue_device/hw_rescue_bus on the image: as at 2.1', async () => {
    // The rescue image gets the stable-device-rescue properties (Nova: they matter only for a
    // volume-backed server, which Skiff never has).
    const rescueImage = await skiff.imageId('skiff-rescue')
    const patched = await skiff.apps.image.inject({
      method: 'PATCH',
      url: `/v2/images/${rescueImage}`,
      headers: { 'x-auth-token': admin, 'content-type': 'application/openstack-images-v2.1-json-patch' },
      payload: JSON.stringify([
        { op: 'add', path: '/hw_rescue_device', value: 'disk' },
        { op: 'add', path: '/hw_rescue_bus', value: 'virtio' },
      ]),
    })
    assert.equal(patched.statusCode, 200, patched.body)
    const id = await create('2.87', { name: 'rescue-87', networks: 'none' })
    await waitForStatus(skiff, admin, id, 'ACTIVE')
    const res = await call('2.87', 'POST', `/v2.1/servers/${id}/action`, { body: { rescue: { rescue_image_ref: rescueImage } } })
    assert.equal(res.statusCode, 200, res.body)
    assert.match(res.json().adminPass, /^[2-9A-HJ-NP-Za-km-z]{12}$/)
    await waitForStatus(skiff, admin, id, 'RESCUE')
    const shown = await call('2.87', 'GET', `/v2.1/servers/${id}`)
    record('2.87', 'get_server', shown, 'show rescued 2.87')
    assert.equal((await call('2.87', 'POST', `/v2.1/servers/${id}/action`, { body: { unrescue: null } })).statusCode, 202)
    await waitForStatus(skiff, admin, id, 'ACTIVE')
  })
})

test("every answer above holds Tempest's response schema for its microversion", () => {
  assert.ok(answers.length >= 30, `${answers.length} answers recorded`)
  const out = execFileSync('/usr/bin/python3', [new URL('../helpers/tempest-schemas.py', import.meta.url).pathname], {
    input: JSON.stringify(answers),
    encoding: 'utf8',
  })
  assert.deepEqual(JSON.parse(out), [])
})
