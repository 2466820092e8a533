// Server actions are rate-limited per project; over the limit Nova's legacy 413 fault.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { TokenBuckets } from '../../src/api/rate-limit.ts'
import { freshDatabase, testPostgresUrl } from '../helpers/database.ts'
import { activeServer, startTestSkiff, waitForStatus, type TestSkiff } from '../helpers/skiff.ts'

let skiff: TestSkiff
let demo: string
let imageId: string

before(async () => {
  skiff = await startTestSkiff({ actionRateLimit: 2 })
  demo = await skiff.token('demo')
  const images = await skiff.apps.image.inject({ method: 'GET', url: '/v2/images?name=skiff-base', headers: { 'x-auth-token': demo } })
  imageId = images.json().images[0].id
})
after(() => skiff.close())

test('over the action limit: 413 overLimit with retryAfter and Retry-After, and the server is unchanged', async () => {
  const create = await skiff.compute('POST', '/v2.1/servers', {
    token: demo,
    body: { server: { name: 'limited', imageRef: imageId, flavorRef: '1' } },
  })
  assert.equal(create.statusCode, 202)
  const id = create.json().server.id as string
  await waitForStatus(skiff, demo, id, 'ACTIVE')

  const act = (body: unknown, token = demo, server = id) => skiff.compute('POST', `/v2.1/servers/${server}/action`, { token, body })
  // A reader of the project is refused by policy and spends none of its members' budget.
  const reader = await skiff.token('reader_demo')
  for (let i = 0; i < 5; i++) assert.equal((await act({ lock: null }, reader)).statusCode, 403)
  assert.equal((await act({ lock: null })).statusCode, 202)
  assert.equal((await act({ unlock: null })).statusCode, 202)
  const before = (await skiff.compute('GET', `/v2.1/servers/${id}`, { token: demo })).json().server

  const limited = await act({ rescue: null })
  assert.equal(limited.statusCode, 413)
  // 2 per minute: the next token comes in at most 30 s (less by the time the test took).
  const retryAfter = String(limited.headers['retry-after'])
  assert.ok(Number(retryAfter) >= 25 && Number(retryAfter) <= 30, retryAfter)
  assert.deepEqual(limited.json(), { overLimit: { code: 413, message: 'This request was rate-limited.', retryAfter } })
  assert.equal(limited.headers['openstack-api-version'], 'compute 2.1')

  const after = (await skiff.compute('GET', `/v2.1/servers/${id}`, { token: demo })).json().server
  assert.equal(after.status, 'ACTIVE')
  assert.equal(after['OS-EXT-STS:task_state'], null)
  assert.equal(after.updated, before.updated)
  const actions = (await skiff.compute('GET', `/v2.1/servers/${id}/os-instance-actions`, { token: demo })).json().instanceActions
  assert.ok(!actions.some((a: { action: string }) => a.action === 'rescue'))

  // Reads are not limited, and another project has its own bucket.
  assert.equal((await skiff.compute('GET', `/v2.1/servers/${id}`, { token: demo })).statusCode, 200)
  const alt = await skiff.token('alt_demo')
  assert.equal((await act({ rescue: null }, alt)).statusCode, 404)
})

test('token buckets: a minute of burst, then one token every 60/limit seconds', () => {
  let now = 0
  const buckets = new TokenBuckets(3, () => now)
  assert.deepEqual([buckets.take('p'), buckets.take('p'), buckets.take('p')], [0, 0, 0])
  assert.equal(buckets.take('p'), 20)
  assert.equal(buckets.take('q'), 0)
  now += 15_000
  assert.equal(buckets.take('p'), 5)
  now += 5_000
  assert.equal(buckets.take('p'), 0)
  assert.equal(buckets.take('p'), 20)
  now += 10 * 60_000
  assert.deepEqual([buckets.take('p'), buckets.take('p'), buckets.take('p'), buckets.take('p')], [0, 0, 0, 20])
})

test('0 turns the limit off', async () => {
  const free = await startTestSkiff({ actionRateLimit: 0 })
  try {
    const token = await free.token('demo')
    for (let i = 0; i < 5; i++) {
      const res = await free.compute('POST', '/v2.1/servers/00000000-0000-4000-8000-000000000000/action', {
        token,
        body: { unpause: null },
      })
      assert.equal(res.statusCode, 404)
    }
  } finally {
    await free.close()
  }
})

test(
  'on PostgreSQL two API processes share the limit: not twice as many',
  { skip: testPostgresUrl() ? false : 'needs PostgreSQL' },
  async () => {
    const database = await freshDatabase('postgres')
    const a = await startTestSkiff({ databaseUrl: database.url, actionRateLimit: 3 })
    const b = await startTestSkiff({
      databaseUrl: database.url,
      actionRateLimit: 3,
      agentHost: 'skiff-2',
      secretKeyFile: `${a.dataDir}/secret.key`,
    })
    try {
      const token = await a.token('demo')
      const id = await activeServer(a, token)
      const act = (s: TestSkiff, body: unknown) => s.compute('POST', `/v2.1/servers/${id}/action`, { token, body })
      assert.equal((await act(a, { lock: null })).statusCode, 202)
      assert.equal((await act(b, { unlock: null })).statusCode, 202)
      assert.equal((await act(b, { lock: null })).statusCode, 202)
      // The project's three are spent, through either process.
      const limited = [await act(a, { unlock: null }), await act(b, { unlock: null })]
      assert.deepEqual(
        limited.map((r) => r.statusCode),
        [413, 413],
      )
      const retryAfter = Number(limited[1]!.headers['retry-after'])
      assert.ok(retryAfter >= 15 && retryAfter <= 20, String(retryAfter))
    } finally {
      await b.close()
      await a.close()
      await database.drop()
    }
  },
)
