// The compute API on the wire, compared with what real Nova answered (anchors/nova/transcripts).
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { activeServer as createActive, startTestSkiff, waitForStatus, type TestSkiff } from '../helpers/skiff.ts'

let skiff: TestSkiff
let demo: string

before(async () => {
  skiff = await startTestSkiff()
  demo = await skiff.token('demo')
})
after(() => skiff.close())

const activeServer = (token = demo, name = 'wire') => createActive(skiff, token, name)

test('version documents: root without version headers, /v2.1 with them', async () => {
  const root = await skiff.compute('GET', '/')
  assert.equal(root.statusCode, 200)
  assert.equal(root.headers['openstack-api-version'], undefined)
  assert.deepEqual(
    root.json().versions.map((v: { id: string }) => v.id),
    ['v2.0', 'v2.1'],
  )
  const v21 = await skiff.compute('GET', '/v2.1')
  assert.equal(v21.json().version.min_version, '2.1')
  assert.equal(v21.headers['openstack-api-version'], 'compute 2.1')
  assert.equal(v21.headers['x-openstack-nova-api-version'], '2.1')
})

test('microversions: echoed, 406 outside the range (echoing the request), 400 when malformed', async () => {
  const ok = await skiff.compute('GET', '/v2.1/servers', { token: demo, headers: { 'openstack-api-version': 'compute 2.1' } })
  assert.equal(ok.statusCode, 200)
  assert.equal(ok.headers['openstack-api-version'], 'compute 2.1')
  assert.ok(String(ok.headers.vary).includes('OpenStack-API-Version'))
  assert.equal(ok.headers['x-compute-request-id'], ok.headers['x-openstack-request-id'])
  assert.match(String(ok.headers['x-openstack-request-id']), /^req-[0-9a-f-]{36}$/)

  const high = await skiff.compute('GET', '/v2.1/servers', { token: demo, headers: { 'openstack-api-version': 'compute 2.96' } })
  assert.equal(high.statusCode, 406)
  assert.deepEqual(high.json(), {
    computeFault: { code: 406, message: 'Version 2.96 is not supported by the API. Minimum is 2.1 and maximum is 2.93.' },
  })
  assert.equal(high.headers['openstack-api-version'], 'compute 2.96')

  const legacy = await skiff.compute('GET', '/v2.1/servers', { token: demo, headers: { 'x-openstack-nova-api-version': '3.0' } })
  assert.equal(legacy.statusCode, 406)

  const bad = await skiff.compute('GET', '/v2.1/servers', { token: demo, headers: { 'openstack-api-version': 'compute 2.latest' } })
  assert.equal(bad.statusCode, 400)
  assert.equal(bad.json().badRequest.message, 'API Version String 2.latest is of invalid format. Must be of format MajorNum.MinorNum.')
  assert.equal(bad.headers['openstack-api-version'], undefined)
})

test('no token or a bad token: 401 in Keystone shape, with WWW-Authenticate, without version headers', async () => {
  for (const token of [undefined, 'bogus']) {
    const res = await skiff.compute('POST', '/v2.1/servers/x/action', { token, body: { rescue: null } })
    assert.equal(res.statusCode, 401)
    assert.deepEqual(res.json(), {
      error: { code: 401, title: 'Unauthorized', message: 'The request you have made requires authentication.' },
    })
    assert.ok(res.headers['www-authenticate'])
    assert.equal(res.headers['openstack-api-version'], undefined)
  }
})

test('unknown server: 404 itemNotFound with Nova message, for uuids and other ids', async () => {
  for (const id of ['3e0fbb1c-3a0e-4b2f-9d4a-0c9f5b0c8d11', 'not-a-server']) {
    const res = await skiff.compute('POST', `/v2.1/servers/${id}/action`, { token: demo, body: { rescue: null } })
    assert.equal(res.statusCode, 404)
    assert.deepEqual(res.json(), { itemNotFound: { code: 404, message: `Instance ${id} could not be found.` } })
    assert.match(String(res.headers['content-type']), /^application\/json/)
  }
})

test('action bodies: malformed, not one key, unknown action, and other methods', async () => {
  const id = await activeServer()
  const raw = await skiff.apps.compute.inject({
    method: 'POST',
    url: `/v2.1/servers/${id}/action`,
    headers: { 'x-auth-token': demo, 'content-type': 'application/json' },
    payload: '{"rescue": ',
  })
  assert.deepEqual(raw.json(), { badRequest: { code: 400, message: 'Malformed request body' } })
  for (const body of [[], {}, { rescue: null, foo: 1 }, { rescue: null, unrescue: null }]) {
    const res = await skiff.compute('POST', `/v2.1/servers/${id}/action`, { token: demo, body })
    assert.deepEqual(res.json(), { badRequest: { code: 400, message: 'Malformed request body' } }, JSON.stringify(body))
  }
  const unknown = await skiff.compute('POST', `/v2.1/servers/${id}/action`, { token: demo, body: { rescueX: null } })
  assert.deepEqual(unknown.json(), { badRequest: { code: 400, message: 'There is no such action: rescueX' } })
  const get = await skiff.compute('GET', `/v2.1/servers/${id}/action`, { token: demo })
  assert.equal(get.statusCode, 405)
  assert.equal(get.headers.allow, 'POST')
  assert.equal(get.json().badMethod.code, 405)
})

test('a JSON body is read whatever its Content-Type says, as Nova does', async () => {
  const id = await activeServer()
  for (const contentType of ['text/plain', undefined]) {
    const headers: Record<string, string> = { 'x-auth-token': demo }
    if (contentType) headers['content-type'] = contentType
    const res = await skiff.apps.compute.inject({ method: 'POST', url: `/v2.1/servers/${id}/action`, headers, payload: '{"pause": null}' })
    assert.equal(res.statusCode, 202, `${contentType}: ${res.body}`)
    await waitForStatus(skiff, demo, id, 'PAUSED')
    await skiff.compute('POST', `/v2.1/servers/${id}/action`, { token: demo, body: { unpause: null } })
    await waitForStatus(skiff, demo, id, 'ACTIVE')
  }
})

test('a body over the limit is 413 overLimit, decided before authentication', async () => {
  const big = JSON.stringify({ server: { name: 'x'.repeat(2_000_000) } })
  const res = await skiff.apps.compute.inject({
    method: 'POST',
    url: '/v2.1/servers',
    headers: { 'content-type': 'application/json' },
    payload: big,
  })
  assert.equal(res.statusCode, 413)
  assert.equal(res.json().overLimit.code, 413)
})

test('rescue answers 200 with the password, then RESCUE; unrescue 202 then ACTIVE', async () => {
  const id = await activeServer()
  const rescue = await skiff.compute('POST', `/v2.1/servers/${id}/action`, { token: demo, body: { rescue: { adminPass: 'MyPass123' } } })
  assert.equal(rescue.statusCode, 200)
  assert.deepEqual(rescue.json(), { adminPass: 'MyPass123' })
  const during = (await skiff.compute('GET', `/v2.1/servers/${id}`, { token: demo })).json().server
  // The API sets task_state before answering: the first GET sees it (unless already done).
  assert.ok(during['OS-EXT-STS:task_state'] === 'rescuing' || during.status === 'RESCUE')
  const rescued = await waitForStatus(skiff, demo, id, 'RESCUE')
  assert.equal(rescued['OS-EXT-STS:vm_state'], 'rescued')

  const again = await skiff.compute('POST', `/v2.1/servers/${id}/action`, { token: demo, body: { rescue: null } })
  assert.equal(again.statusCode, 409)
  assert.deepEqual(again.json(), {
    conflictingRequest: { code: 409, message: `Cannot 'rescue' instance ${id} while it is in vm_state rescued` },
  })
  const reboot = await skiff.compute('POST', `/v2.1/servers/${id}/action`, { token: demo, body: { reboot: { type: 'HARD' } } })
  assert.equal(reboot.statusCode, 409)

  const unrescue = await skiff.compute('POST', `/v2.1/servers/${id}/action`, { token: demo, body: { unrescue: null } })
  assert.equal(unrescue.statusCode, 202)
  assert.equal(unrescue.body, '')
  await waitForStatus(skiff, demo, id, 'ACTIVE')
  const notRescued = await skiff.compute('POST', `/v2.1/servers/${id}/action`, { token: demo, body: { unrescue: null } })
  assert.equal(notRescued.json().conflictingRequest.message, `Cannot 'unrescue' instance ${id} while it is in vm_state active`)
})

test('a generated rescue password follows Nova; an unknown rescue image is 400 and changes nothing', async () => {
  const id = await activeServer()
  const bad = await skiff.compute('POST', `/v2.1/servers/${id}/action`, {
    token: demo,
    body: { rescue: { rescue_image_ref: '3e0fbb1c-3a0e-4b2f-9d4a-0c9f5b0c8d11' } },
  })
  assert.deepEqual(bad.json(), {
    badRequest: { code: 400, message: "Requested rescue image '3e0fbb1c-3a0e-4b2f-9d4a-0c9f5b0c8d11' is not supported" },
  })
  const still = (await skiff.compute('GET', `/v2.1/servers/${id}`, { token: demo })).json().server
  assert.equal(still.status, 'ACTIVE')
  assert.equal(still['OS-EXT-STS:task_state'], null)
  const ok = await skiff.compute('POST', `/v2.1/servers/${id}/action`, { token: demo, body: { rescue: {} } })
  assert.match(ok.json().adminPass, /^[2-9A-HJ-NP-Za-km-z]{12}$/)
})

test("another project's server is 404, not 403", async () => {
  const id = await activeServer()
  const alt = await skiff.token('alt_demo')
  for (const [method, url, body] of [
    ['GET', `/v2.1/servers/${id}`, undefined],
    ['POST', `/v2.1/servers/${id}/action`, { rescue: null }],
    ['DELETE', `/v2.1/servers/${id}`, undefined],
  ] as const) {
    const res = await skiff.compute(method, url, { token: alt, body })
    assert.equal(res.statusCode, 404, `${method} ${url}`)
  }
})

test('a locked server refuses its owner (409) but not an admin', async () => {
  const id = await activeServer()
  assert.equal((await skiff.compute('POST', `/v2.1/servers/${id}/action`, { token: demo, body: { lock: null } })).statusCode, 202)
  const stop = await skiff.compute('POST', `/v2.1/servers/${id}/action`, { token: demo, body: { 'os-stop': null } })
  assert.deepEqual(stop.json(), { conflictingRequest: { code: 409, message: `Instance ${id} is locked` } })
  const admin = await skiff.token('admin')
  assert.equal((await skiff.compute('POST', `/v2.1/servers/${id}/action`, { token: admin, body: { pause: null } })).statusCode, 202)
})

test('anything unexpected is 500 computeFault with the request id and no internals', async () => {
  const fresh = await startTestSkiff()
  try {
    // A route that fails the way a bug would: the message must not reach the client.
    fresh.apps.compute.get('/v2.1/test-crash', async () => {
      throw new TypeError('internal detail /var/lib/secret at line 42')
    })
    const res = await fresh.compute('GET', '/v2.1/test-crash', { token: await fresh.token('demo') })
    assert.equal(res.statusCode, 500)
    const fault = res.json().computeFault
    assert.equal(fault.code, 500)
    assert.ok(fault.message.includes(String(res.headers['x-openstack-request-id'])), fault.message)
    assert.ok(!res.body.includes('/var/lib/secret') && !res.body.includes('TypeError'), res.body)
  } finally {
    await fresh.close()
  }
})
