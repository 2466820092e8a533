import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { startTestSkiff, waitForStatus, type TestSkiff } from '../helpers/skiff.ts'

let skiff: TestSkiff
let demo: string
let alt: string
let imageRef: string

const createGroup = (name: string, policies: unknown, token = demo) =>
  skiff.compute('POST', '/v2.1/os-server-groups', { token, body: { server_group: { name, policies } } })
const createServer = (name: string, group: string) =>
  skiff.compute('POST', '/v2.1/servers', {
    token: demo,
    body: { server: { name, imageRef, flavorRef: '1' }, 'os:scheduler_hints': { group } },
  })

before(async () => {
  skiff = await startTestSkiff()
  demo = await skiff.token('demo')
  alt = await skiff.token('alt_demo')
  const images = await skiff.apps.image.inject({ method: 'GET', url: '/v2/images?name=skiff-base', headers: { 'x-auth-token': demo } })
  imageRef = images.json().images[0].id
})
after(() => skiff.close())

test('a group is created (200, exactly the 2.1 keys), listed, shown and deleted (204)', async () => {
  const res = await createGroup('web', ['anti-affinity'])
  assert.equal(res.statusCode, 200)
  const g = res.json().server_group
  assert.deepEqual(Object.keys(g).sort(), ['id', 'members', 'metadata', 'name', 'policies'])
  assert.deepEqual({ ...g, id: undefined }, { id: undefined, name: 'web', policies: ['anti-affinity'], members: [], metadata: {} })

  assert.deepEqual((await skiff.compute('GET', `/v2.1/os-server-groups/${g.id}`, { token: demo })).json(), { server_group: g })
  assert.deepEqual(
    (await skiff.compute('GET', '/v2.1/os-server-groups', { token: demo })).json().server_groups.map((x: { id: string }) => x.id),
    [g.id],
  )
  // Another project neither sees nor reaches it.
  assert.deepEqual((await skiff.compute('GET', '/v2.1/os-server-groups', { token: alt })).json(), { server_groups: [] })
  const hidden = await skiff.compute('GET', `/v2.1/os-server-groups/${g.id}`, { token: alt })
  assert.deepEqual(hidden.json(), { itemNotFound: { code: 404, message: `Instance group ${g.id} could not be found.` } })
  assert.equal((await skiff.compute('DELETE', `/v2.1/os-server-groups/${g.id}`, { token: alt })).statusCode, 404)

  const del = await skiff.compute('DELETE', `/v2.1/os-server-groups/${g.id}`, {
    token: demo,
    headers: { 'content-type': 'application/json' },
  })
  assert.equal(del.statusCode, 204)
  assert.equal((await skiff.compute('GET', `/v2.1/os-server-groups/${g.id}`, { token: demo })).statusCode, 404)
})

test('policies must be exactly one of the 2.1 ones', async () => {
  const soft = await createGroup('x', ['soft-affinity'])
  assert.deepEqual(soft.json(), {
    badRequest: {
      code: 400,
      message: "Invalid input for field/attribute 0. Value: soft-affinity. 'soft-affinity' is not one of ['anti-affinity', 'affinity']",
    },
  })
  assert.equal((await createGroup('x', ['affinity', 'anti-affinity'])).statusCode, 400)
  assert.equal((await createGroup('x', [])).statusCode, 400)
  assert.equal((await createGroup('', ['affinity'])).statusCode, 400)
  const limit = await skiff.compute('GET', '/v2.1/os-server-groups?limit=-1', { token: demo })
  assert.deepEqual(limit.json(), {
    badRequest: { code: 400, message: "Invalid input for query parameters limit. Value: -1. '-1' does not match '^[0-9]*$'" },
  })
})

test('limit 0 means no limit; all_projects from a non-admin lists its own groups', async () => {
  const mine = (await createGroup('mine', ['affinity'])).json().server_group
  await createGroup('theirs', ['affinity'], alt)
  const ids = (res: { json(): { server_groups: { id: string }[] } }) => res.json().server_groups.map((g) => g.id)
  assert.ok(ids(await skiff.compute('GET', '/v2.1/os-server-groups?limit=0', { token: demo })).includes(mine.id))
  const all = ids(await skiff.compute('GET', '/v2.1/os-server-groups?all_projects=True', { token: demo }))
  assert.ok(all.includes(mine.id))
  assert.equal(all.length, ids(await skiff.compute('GET', '/v2.1/os-server-groups', { token: demo })).length)
  const admin = await skiff.token('admin')
  assert.ok(ids(await skiff.compute('GET', '/v2.1/os-server-groups?all_projects=True', { token: admin })).length > all.length)
})

test('the group hint adds members; anti-affinity leaves a second server no host (ERROR)', async () => {
  const g = (await createGroup('pair', ['anti-affinity'])).json().server_group
  const first = (await createServer('one', g.id)).json().server.id
  await waitForStatus(skiff, demo, first, 'ACTIVE')
  const second = (await createServer('two', g.id)).json().server.id
  const failed = await waitForStatus(skiff, demo, second, 'ERROR')
  assert.match(failed.fault.message, /^No valid host was found/)
  assert.deepEqual((await skiff.compute('GET', `/v2.1/os-server-groups/${g.id}`, { token: demo })).json().server_group.members, [
    first,
    second,
  ])

  // A deleted server leaves its group.
  await skiff.compute('DELETE', `/v2.1/servers/${second}`, { token: demo })
  await waitForGone(second)
  assert.deepEqual((await skiff.compute('GET', `/v2.1/os-server-groups/${g.id}`, { token: demo })).json().server_group.members, [first])
})

test('affinity keeps every member on the one host', async () => {
  const g = (await createGroup('together', ['affinity'])).json().server_group
  const a = (await createServer('a', g.id)).json().server.id
  const b = (await createServer('b', g.id)).json().server.id
  await waitForStatus(skiff, demo, a, 'ACTIVE')
  await waitForStatus(skiff, demo, b, 'ACTIVE')
})

test('an unknown or invalid group hint is 400', async () => {
  const unknown = '0b8c4f5e-3a7e-4a55-9e57-3c1f8e5a9b21'
  const res = await createServer('x', unknown)
  assert.deepEqual(res.json(), { badRequest: { code: 400, message: `Instance group ${unknown} could not be found.` } })
  assert.equal((await createServer('x', 'not-a-uuid')).statusCode, 400)
  const altGroup = (await createGroup('theirs', ['affinity'], alt)).json().server_group
  assert.equal((await createServer('x', altGroup.id)).statusCode, 400)
})

async function waitForGone(id: string) {
  for (let i = 0; i < 500; i++) {
    if ((await skiff.compute('GET', `/v2.1/servers/${id}`, { token: demo })).statusCode === 404) return
    await new Promise((r) => setTimeout(r, 5))
  }
  throw new Error(`server ${id} was not deleted`)
}
