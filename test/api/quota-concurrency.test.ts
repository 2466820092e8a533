// The last quota slot under parallel creates (several connections on PostgreSQL): the count and
// the insert run in one transaction under the project's lock, so of twenty creates racing for
// the last three instances, exactly three pass and the others get Nova's 403. Server groups too.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { startTestSkiff, type TestSkiff } from '../helpers/skiff.ts'

let skiff: TestSkiff
let admin: string
let demo: string
let project: string

before(async () => {
  skiff = await startTestSkiff({ actionRateLimit: 0 })
  admin = await skiff.token('admin')
  demo = await skiff.token('demo')
  project = (
    await skiff.apps.identity.inject({ method: 'GET', url: '/v3/auth/tokens', headers: { 'x-auth-token': demo, 'x-subject-token': demo } })
  ).json().token.project.id
})
after(async () => {
  await skiff?.close()
})

test('20 creates at once for the last 3 instances: 3 accepted, 17 refused with the quota message, 3 servers exist', async () => {
  const imageRef = await skiff.imageId('skiff-base')
  const one = await skiff.compute('POST', '/v2.1/servers', { token: demo, body: { server: { name: 'first', imageRef, flavorRef: '1' } } })
  assert.equal(one.statusCode, 202)
  const set = await skiff.compute('PUT', `/v2.1/os-quota-sets/${project}`, { token: admin, body: { quota_set: { instances: 4 } } })
  assert.equal(set.statusCode, 200, set.body)
  const results = await Promise.all(
    Array.from({ length: 20 }, (_, i) =>
      skiff.compute('POST', '/v2.1/servers', { token: demo, body: { server: { name: `race${i}`, imageRef, flavorRef: '1' } } }),
    ),
  )
  const accepted = results.filter((r) => r.statusCode === 202)
  const refused = results.filter((r) => r.statusCode === 403)
  assert.equal(accepted.length, 3, results.map((r) => r.statusCode).join(','))
  assert.equal(refused.length, 17)
  for (const r of refused)
    assert.deepEqual(r.json(), {
      forbidden: { code: 403, message: 'Quota exceeded for instances: Requested 1, but already used 4 of 4 instances' },
    })
  const servers = (await skiff.compute('GET', '/v2.1/servers', { token: demo })).json().servers
  assert.equal(servers.length, 4)
  const detail = (await skiff.compute('GET', `/v2.1/os-quota-sets/${project}/detail`, { token: demo })).json().quota_set
  assert.deepEqual(detail.instances, { limit: 4, in_use: 4, reserved: 0 })
})

test('10 server groups created at once for the last 2: 2 created', async () => {
  await skiff.compute('PUT', `/v2.1/os-quota-sets/${project}`, { token: admin, body: { quota_set: { server_groups: 2 } } })
  const results = await Promise.all(
    Array.from({ length: 10 }, (_, i) =>
      skiff.compute('POST', '/v2.1/os-server-groups', { token: demo, body: { server_group: { name: `g${i}`, policies: ['affinity'] } } }),
    ),
  )
  assert.equal(results.filter((r) => r.statusCode === 200).length, 2)
  assert.equal(results.filter((r) => r.statusCode === 403).length, 8)
})
