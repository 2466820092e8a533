import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { startTestSkiff, waitForStatus, type TestSkiff } from '../helpers/skiff.ts'

let skiff: TestSkiff
let demo: string
let admin: string
let serverId: string

const meta = (method: string, path: string, body?: unknown, token = demo) =>
  skiff.compute(method, `/v2.1/servers/${serverId}/metadata${path}`, { token, body })

before(async () => {
  skiff = await startTestSkiff()
  demo = await skiff.token('demo')
  admin = await skiff.token('admin')
  const images = await skiff.apps.image.inject({ method: 'GET', url: '/v2/images?name=skiff-base', headers: { 'x-auth-token': demo } })
  const imageRef = images.json().images[0].id
  const res = await skiff.compute('POST', '/v2.1/servers', {
    token: demo,
    body: { server: { name: 'meta', imageRef, flavorRef: '1', metadata: { a: '1' } } },
  })
  serverId = res.json().server.id
  await waitForStatus(skiff, demo, serverId, 'ACTIVE')
})
after(() => skiff.close())

test('metadata is listed, merged, replaced, read and deleted item by item', async () => {
  assert.deepEqual((await meta('GET', '')).json(), { metadata: { a: '1' } })

  const merged = await meta('POST', '', { metadata: { b: '2' } })
  assert.equal(merged.statusCode, 200)
  assert.deepEqual(merged.json(), { metadata: { a: '1', b: '2' } })

  const replaced = await meta('PUT', '', { metadata: { c: '3', d: '4' } })
  assert.equal(replaced.statusCode, 200)
  assert.deepEqual(replaced.json(), { metadata: { c: '3', d: '4' } })

  const item = await meta('PUT', '/c', { meta: { c: 'x' } })
  assert.equal(item.statusCode, 200)
  assert.deepEqual(item.json(), { meta: { c: 'x' } })
  assert.deepEqual((await meta('GET', '/c')).json(), { meta: { c: 'x' } })

  const del = await meta('DELETE', '/d')
  assert.equal(del.statusCode, 204)
  assert.equal(del.body, '')
  assert.deepEqual((await meta('GET', '')).json(), { metadata: { c: 'x' } })
  // The server view shows the same metadata.
  assert.deepEqual((await skiff.compute('GET', `/v2.1/servers/${serverId}`, { token: demo })).json().server.metadata, { c: 'x' })
})

test('unknown items and servers are 404 with Nova messages', async () => {
  const missing = await meta('GET', '/nope')
  assert.equal(missing.statusCode, 404)
  assert.deepEqual(missing.json(), { itemNotFound: { code: 404, message: 'Metadata item was not found' } })
  assert.equal((await meta('DELETE', '/nope')).statusCode, 404)
  const id = '2a4b8a4c-6f0e-4f8c-9a37-8f7f2b2a1c00'
  const res = await skiff.compute('GET', `/v2.1/servers/${id}/metadata`, { token: demo })
  assert.equal(res.statusCode, 404)
  assert.deepEqual(res.json(), { itemNotFound: { code: 404, message: `Instance ${id} could not be found.` } })
  assert.equal(
    (await skiff.compute('POST', `/v2.1/servers/${id}/metadata`, { token: demo, body: { metadata: { k: 'v' } } })).statusCode,
    404,
  )
})

test('bad bodies are 400: blank key, missing field, key/URI mismatch, two items', async () => {
  const blank = await meta('POST', '', { metadata: { '': 'v' } })
  assert.equal(blank.statusCode, 400)
  assert.match(blank.json().badRequest.message, /^Invalid input for field\/attribute metadata\. /)
  assert.equal((await meta('PUT', '', { meta: { k: 'v' } })).statusCode, 400)
  const mismatch = await meta('PUT', '/key', { meta: { other: 'v' } })
  assert.deepEqual(mismatch.json(), { badRequest: { code: 400, message: 'Request body and URI mismatch' } })
  assert.equal((await meta('PUT', '/a', { meta: { a: '1', b: '2' } })).statusCode, 400)
  assert.equal((await meta('POST', '', { metadata: { k: 'v'.repeat(256) } })).statusCode, 400)
})

test('more than 128 items is 403 (quota), on writes and on create', async () => {
  const many = Object.fromEntries(Array.from({ length: 129 }, (_, i) => [`key${i}`, 'v']))
  for (const method of ['POST', 'PUT']) {
    const res = await meta(method, '', { metadata: many })
    assert.equal(res.statusCode, 403)
    assert.deepEqual(res.json(), { forbidden: { code: 403, message: 'Maximum number of metadata items exceeds 128' } })
  }
  const images = await skiff.apps.image.inject({ method: 'GET', url: '/v2/images?name=skiff-base', headers: { 'x-auth-token': demo } })
  const create = await skiff.compute('POST', '/v2.1/servers', {
    token: demo,
    body: { server: { name: 'm', imageRef: images.json().images[0].id, flavorRef: '1', metadata: many } },
  })
  assert.equal(create.statusCode, 403)
})

test('a locked server refuses metadata writes from its owner (409), not from an admin', async () => {
  assert.equal((await skiff.compute('POST', `/v2.1/servers/${serverId}/action`, { token: demo, body: { lock: null } })).statusCode, 202)
  const refused = await meta('POST', '', { metadata: { z: '1' } })
  assert.equal(refused.statusCode, 409)
  assert.deepEqual(refused.json(), { conflictingRequest: { code: 409, message: `Instance ${serverId} is locked` } })
  assert.equal((await meta('DELETE', '/c')).statusCode, 409)
  assert.equal((await meta('POST', '', { metadata: { z: '1' } }, admin)).statusCode, 200)
  assert.equal((await skiff.compute('POST', `/v2.1/servers/${serverId}/action`, { token: demo, body: { unlock: null } })).statusCode, 202)
  assert.equal((await meta('DELETE', '/z')).statusCode, 204)
})

test("concurrent writers never lose each other's keys", async () => {
  await meta('PUT', '', { metadata: {} })
  await Promise.all(Array.from({ length: 10 }, (_, i) => meta('PUT', `/k${i}`, { meta: { [`k${i}`]: String(i) } })))
  assert.equal(Object.keys((await meta('GET', '')).json().metadata).length, 10)
})
