import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { startTestSkiff, waitForStatus, type TestSkiff } from '../helpers/skiff.ts'

let skiff: TestSkiff
let demo: string
let imageId: string

before(async () => {
  skiff = await startTestSkiff()
  demo = await skiff.token('demo')
  imageId = await skiff.imageId('skiff-base')
})
after(() => skiff.close())

test('a server is created, goes ACTIVE, stops, starts and is deleted', async () => {
  const create = await skiff.compute('POST', '/v2.1/servers', {
    token: demo,
    body: { server: { name: 'life', imageRef: imageId, flavorRef: '1' } },
  })
  assert.equal(create.statusCode, 202)
  assert.ok(create.headers['x-openstack-request-id'])
  assert.match(String(create.headers.location), /\/v2\.1\/servers\/[0-9a-f-]{36}$/)
  const body = create.json().server
  assert.deepEqual(Object.keys(body).sort(), ['OS-DCF:diskConfig', 'adminPass', 'id', 'links', 'security_groups'])
  assert.match(body.adminPass, /^[2-9A-HJ-NP-Za-km-z]{12}$/)

  const active = await waitForStatus(skiff, demo, body.id, 'ACTIVE')
  assert.equal(active['OS-EXT-STS:vm_state'], 'active')
  assert.equal(active['OS-EXT-STS:power_state'], 1)

  assert.equal((await skiff.compute('POST', `/v2.1/servers/${body.id}/action`, { token: demo, body: { 'os-stop': null } })).statusCode, 202)
  const off = await waitForStatus(skiff, demo, body.id, 'SHUTOFF')
  assert.equal(off['OS-EXT-STS:power_state'], 4)
  assert.equal(
    (await skiff.compute('POST', `/v2.1/servers/${body.id}/action`, { token: demo, body: { 'os-start': null } })).statusCode,
    202,
  )
  await waitForStatus(skiff, demo, body.id, 'ACTIVE')

  const del = await skiff.compute('DELETE', `/v2.1/servers/${body.id}`, { token: demo })
  assert.equal(del.statusCode, 204)
  assert.equal(del.body, '')
})
