// Idempotency-Key on server create and server actions: retries answer the first answer again.
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { after, before, test } from 'node:test'
import { activeServer as createActive, startTestSkiff, waitForStatus, type TestSkiff } from '../helpers/skiff.ts'

let skiff: TestSkiff
let demo: string
let imageId: string

before(async () => {
  skiff = await startTestSkiff()
  demo = await skiff.token('demo')
  imageId = await skiff.imageId('skiff-base')
})
after(() => skiff.close())

const activeServer = (token = demo, name = 'idem') => createActive(skiff, token, name)

const action = (id: string, body: unknown, key?: string, token = demo) =>
  skiff.compute('POST', `/v2.1/servers/${id}/action`, { token, body, headers: key === undefined ? {} : { 'idempotency-key': key } })

async function actionNames(id: string): Promise<string[]> {
  const res = await skiff.compute('GET', `/v2.1/servers/${id}/os-instance-actions`, { token: demo })
  return res.json().instanceActions.map((a: { action: string }) => a.action)
}

test('rescue twice with the same key: both 200 with the same generated password, rescued once', async () => {
  const id = await activeServer()
  const key = randomUUID()
  const first = await action(id, { rescue: null }, key)
  assert.equal(first.statusCode, 200, first.body)
  const { adminPass } = first.json()
  assert.match(adminPass, /^[2-9A-HJ-NP-Za-km-z]{12}$/)
  assert.equal(first.headers['idempotent-replayed'], undefined)

  const again = await action(id, { rescue: null }, key)
  assert.equal(again.statusCode, 200, again.body)
  assert.deepEqual(again.json(), { adminPass })
  assert.equal(again.headers['idempotent-replayed'], 'true')
  // Still a compute answer: its own request id, the version headers.
  assert.equal(again.headers['openstack-api-version'], 'compute 2.1')
  assert.notEqual(again.headers['x-openstack-request-id'], first.headers['x-openstack-request-id'])

  await waitForStatus(skiff, demo, id, 'RESCUE')
  const third = await action(id, { rescue: null }, key)
  assert.equal(third.statusCode, 200)
  assert.deepEqual(third.json(), { adminPass })
  assert.deepEqual(
    (await actionNames(id)).filter((a) => a === 'rescue'),
    ['rescue'],
  )
})

test('without a key a second rescue is refused with 409, as Nova does', async () => {
  const id = await activeServer()
  assert.equal((await action(id, { rescue: null })).statusCode, 200)
  await waitForStatus(skiff, demo, id, 'RESCUE')
  const second = await action(id, { rescue: null })
  assert.equal(second.statusCode, 409)
  assert.deepEqual(second.json(), {
    conflictingRequest: { code: 409, message: `Cannot 'rescue' instance ${id} while it is in vm_state rescued` },
  })
})

test('the same key with a different body: 400, and nothing runs', async () => {
  const id = await activeServer()
  const key = randomUUID()
  assert.equal((await action(id, { rescue: { adminPass: 'FirstPass1' } }, key)).statusCode, 200)
  const other = await action(id, { rescue: { adminPass: 'OtherPass2' } }, key)
  assert.equal(other.statusCode, 400)
  assert.deepEqual(other.json(), {
    badRequest: { code: 400, message: 'This Idempotency-Key was already used with a different request; use a new key for a new request.' },
  })
  const otherAction = await action(id, { 'os-stop': null }, key)
  assert.equal(otherAction.statusCode, 400)
  // Key order does not make a body different.
  const reordered = await skiff.apps.compute.inject({
    method: 'POST',
    url: `/v2.1/servers/${id}/action`,
    headers: { 'x-auth-token': demo, 'idempotency-key': key, 'content-type': 'application/json' },
    payload: '{ "rescue": { "adminPass": "FirstPass1" } }',
  })
  assert.equal(reordered.statusCode, 200)
  assert.equal(reordered.headers['idempotent-replayed'], 'true')
  assert.deepEqual(
    (await actionNames(id)).filter((a) => a === 'rescue'),
    ['rescue'],
  )
})

test('the stored row holds neither the key nor the password in plain text', async () => {
  const id = await activeServer()
  const key = `rescue-${randomUUID()}`
  const res = await action(id, { rescue: null }, key)
  assert.equal(res.statusCode, 200)
  const { adminPass } = res.json()
  const rows = await skiff.store.db.selectFrom('idempotency_keys').selectAll().execute()
  assert.ok(rows.length > 0)
  for (const row of rows) {
    const text = JSON.stringify(row)
    assert.ok(!text.includes(adminPass), 'the password is stored in plain text')
    assert.ok(!text.includes(key), 'the key is stored in plain text')
    assert.match(row.key_hash, /^[0-9a-f]{64}$/)
  }
  const mine = rows.find((r) => r.status === 200 && JSON.parse(r.response).body?.adminPass?.sealed)
  assert.ok(mine, 'the rescue answer is stored with its password sealed')
  assert.ok(Date.parse(mine.expires_at) - Date.parse(mine.created_at) === 24 * 3600 * 1000)
})

test('a failed first attempt leaves the key free: the retry runs', async () => {
  const id = await activeServer()
  assert.equal((await action(id, { lock: null })).statusCode, 202)
  const key = randomUUID()
  const refused = await action(id, { rescue: null }, key)
  assert.equal(refused.statusCode, 409)
  assert.match(refused.json().conflictingRequest.message, /locked/)
  // Errors are not stored: the same key, once the cause is gone, runs the rescue.
  assert.equal((await action(id, { unlock: null })).statusCode, 202)
  const retried = await action(id, { rescue: null }, key)
  assert.equal(retried.statusCode, 200, retried.body)
  assert.equal(retried.headers['idempotent-replayed'], undefined)
  assert.deepEqual((await action(id, { rescue: null }, key)).json(), retried.json())
  await waitForStatus(skiff, demo, id, 'RESCUE')
})

test('concurrent requests with one key run the action once; the others wait their turn with 409 or replay', async () => {
  const id = await activeServer()
  const key = randomUUID()
  const answers = await Promise.all(Array.from({ length: 5 }, () => action(id, { rescue: null }, key)))
  const ok = answers.filter((a) => a.statusCode === 200)
  assert.ok(ok.length >= 1)
  assert.equal(new Set(ok.map((a) => a.json().adminPass)).size, 1)
  for (const a of answers.filter((x) => x.statusCode !== 200)) {
    assert.equal(a.statusCode, 409)
    assert.deepEqual(a.json(), { conflictingRequest: { code: 409, message: 'A request with this Idempotency-Key is still in progress.' } })
  }
  assert.deepEqual(
    (await actionNames(id)).filter((a) => a === 'rescue'),
    ['rescue'],
  )
})

test('server create with a key: one server, the same answer (and Location) replayed', async () => {
  const key = randomUUID()
  const body = { server: { name: 'idem-create', imageRef: imageId, flavorRef: '1' } }
  const first = await skiff.compute('POST', '/v2.1/servers', { token: demo, body, headers: { 'idempotency-key': key } })
  const second = await skiff.compute('POST', '/v2.1/servers', { token: demo, body, headers: { 'idempotency-key': key } })
  assert.equal(first.statusCode, 202)
  assert.equal(second.statusCode, 202)
  assert.deepEqual(second.json(), first.json())
  assert.equal(second.headers.location, first.headers.location)
  assert.equal(second.headers['idempotent-replayed'], 'true')
  const list = await skiff.compute('GET', '/v2.1/servers?name=^idem-create$', { token: demo })
  assert.equal(list.json().servers.length, 1)
})

test('keys belong to a project: the same key from another project is another key', async () => {
  const alt = await skiff.token('alt_demo')
  const mine = await activeServer()
  const theirs = await activeServer(alt, 'idem-alt')
  const key = randomUUID()
  const a = await action(mine, { rescue: null }, key)
  const b = await action(theirs, { rescue: null }, key, alt)
  assert.equal(a.statusCode, 200)
  assert.equal(b.statusCode, 200)
  assert.equal(b.headers['idempotent-replayed'], undefined)
  assert.notEqual(a.json().adminPass, b.json().adminPass)
})

test('a malformed Idempotency-Key is refused with 400 before anything runs', async () => {
  const id = await activeServer()
  for (const key of ['', 'x'.repeat(256), 'clé', 'tab\there']) {
    const res = await skiff.apps.compute.inject({
      method: 'POST',
      url: `/v2.1/servers/${id}/action`,
      headers: { 'x-auth-token': demo, 'content-type': 'application/json', 'idempotency-key': key },
      payload: { 'os-stop': null },
    })
    assert.equal(res.statusCode, 400, `key ${JSON.stringify(key)}: ${res.body}`)
    assert.deepEqual(res.json(), {
      badRequest: { code: 400, message: 'Invalid Idempotency-Key header: it must be 1 to 255 printable ASCII characters.' },
    })
  }
  assert.equal((await action(id, { 'os-stop': null }, 'k'.repeat(255))).statusCode, 202)
})
