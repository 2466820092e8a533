// One Ajv configuration for every body: the listeners' route schemas and the server actions
// dispatched by hand check Nova's formats alike. Nova's 'uuid' is oslo's is_uuid_like (dashes
// optional, any case, braces, urn:uuid:), its ipv6 Python's ipaddress (no zone).
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { isUuidLike } from '../../src/api/formats.ts'
import { activeServer, startTestSkiff, type TestSkiff } from '../helpers/skiff.ts'

let skiff: TestSkiff
let token: string
let imageId: string

before(async () => {
  skiff = await startTestSkiff()
  token = await skiff.token('admin')
  const images = await skiff.apps.image.inject({ method: 'GET', url: '/v2/images?name=skiff-base', headers: { 'x-auth-token': token } })
  imageId = images.json().images[0].id
})
after(async () => {
  await skiff?.close()
})

const fault = async (method: string, url: string, body: unknown) => {
  const res = await skiff.compute(method, url, { token, body })
  return [res.statusCode, (res.json() as { badRequest?: { message: string } }).badRequest?.message ?? res.body]
}

// What oslo.utils' is_uuid_like answers for each (checked with Python).
test("isUuidLike is oslo's is_uuid_like", () => {
  const yes = [
    '12345678-1234-5678-1234-567812345678',
    '12345678123456781234567812345678',
    'ABCDEF78-1234-5678-1234-567812345678',
    '{12345678-1234-5678-1234-567812345678}',
    'urn:uuid:12345678-1234-5678-1234-567812345678',
    'uuid:12345678123456781234567812345678',
    '1-2345678123456781234567812345678-',
    '{{12345678123456781234567812345678}}',
    'urn:{12345678123456781234567812345678}',
  ]
  const no = [
    '12345678-1234-5678-1234-56781234567',
    '12345678_123456781234567812345678',
    ' 12345678123456781234567812345678',
    '12345678123456781234567812345678\n',
    'uRn:uuid:12345678123456781234567812345678',
    'not-a-uuid',
    '',
  ]
  for (const s of yes) assert.equal(isUuidLike(s), true, s)
  for (const s of no) assert.equal(isUuidLike(s), false, s)
})

test('a uuid without dashes passes the body schema of a route (listener) and of an action (dispatch), as in Nova', async () => {
  const noDashes = imageId.replaceAll('-', '')
  // Past the schema, the image is looked up by that string and not found: Nova's answer for it.
  assert.deepEqual(await fault('POST', '/v2.1/servers', { server: { name: 'a', imageRef: noDashes, flavorRef: '1' } }), [
    400,
    `Image ${noDashes} could not be found.`,
  ])
  assert.deepEqual(await fault('POST', '/v2.1/servers', { server: { name: 'a', imageRef: `{${imageId}}`, flavorRef: '1' } }), [
    400,
    `Image {${imageId}} could not be found.`,
  ])
  assert.deepEqual(await fault('POST', '/v2.1/servers', { server: { name: 'a', imageRef: 'not-a-uuid', flavorRef: '1' } }), [
    400,
    "Invalid input for field/attribute imageRef. Value: not-a-uuid. 'not-a-uuid' is not a 'uuid'",
  ])
  assert.deepEqual(
    await fault('POST', '/v2.1/servers', {
      server: { name: 'a', imageRef: imageId, flavorRef: '1' },
      'os:scheduler_hints': { group: '0123456789abcdef0123456789abcdef' },
    }),
    [400, 'Instance group 0123456789abcdef0123456789abcdef could not be found.'],
  )

  const id = await activeServer(skiff, token, 'formats')
  assert.deepEqual(await fault('POST', `/v2.1/servers/${id}/action`, { rescue: { rescue_image_ref: `urn:uuid:${imageId}` } }), [
    400,
    `Requested rescue image 'urn:uuid:${imageId}' is not supported`,
  ])
  assert.deepEqual(await fault('POST', `/v2.1/servers/${id}/action`, { rescue: { rescue_image_ref: `${noDashes}0` } }), [
    400,
    `Invalid input for field/attribute rescue_image_ref. Value: ${noDashes}0. '${noDashes}0' is not a 'uuid'`,
  ])
})

test('ipv6 is checked alike on a route and in an action: no zone, no stray colons', async () => {
  const id = await activeServer(skiff, token, 'formats-ipv6')
  for (const [method, url, body] of [
    ['PUT', `/v2.1/servers/${id}`, { server: { accessIPv6: ':::::' } }],
    ['POST', `/v2.1/servers/${id}/action`, { rebuild: { imageRef: imageId, accessIPv6: ':::::' } }],
  ] as const) {
    assert.deepEqual(await fault(method, url, body), [
      400,
      "Invalid input for field/attribute accessIPv6. Value: :::::. ':::::' is not a 'ipv6'",
    ])
  }
  assert.deepEqual(await fault('PUT', `/v2.1/servers/${id}`, { server: { accessIPv6: 'fe80::1%eth0' } }), [
    400,
    "Invalid input for field/attribute accessIPv6. Value: fe80::1%eth0. 'fe80::1%eth0' is not a 'ipv6'",
  ])
  assert.equal(
    (await skiff.compute('PUT', `/v2.1/servers/${id}`, { token, body: { server: { accessIPv6: '::ffff:1.2.3.4' } } })).statusCode,
    200,
  )
})
