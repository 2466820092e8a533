// The server change feed against a real database: the rows it delivers, the ones it must not
// lose (same millisecond, late commits within the lookback), and its timer's lifecycle.
import assert from 'node:assert/strict'
import { after, before, beforeEach, test } from 'node:test'
import pino from 'pino'
import { systemClock } from '../../src/clock.ts'
import { ServerChangeFeed, type ServerWatch } from '../../src/compute/server-change-feed.ts'
import type { ServerRow } from '../../src/store/schema.ts'
import { ServersRepo } from '../../src/store/servers-repo.ts'
import { startTestSkiff, waitFor, waitForStatus, type TestSkiff } from '../helpers/skiff.ts'

let skiff: TestSkiff
const ids: string[] = []
let project = ''

before(async () => {
  skiff = await startTestSkiff()
  const demo = await skiff.token('demo')
  const images = await skiff.apps.image.inject({ method: 'GET', url: '/v2/images?name=skiff-base', headers: { 'x-auth-token': demo } })
  for (const name of ['feed-a', 'feed-b', 'feed-c']) {
    const res = await skiff.compute('POST', '/v2.1/servers', {
      token: demo,
      body: { server: { name, imageRef: images.json().images[0].id, flavorRef: '1' } },
    })
    assert.equal(res.statusCode, 202, res.body)
    ids.push(res.json().server.id)
  }
  for (const id of ids) project = (await waitForStatus(skiff, demo, id, 'ACTIVE')).tenant_id
})
after(() => skiff.close())
// Each test writes timestamps in the future; put them back in the past so that they do not
// show up as fresh changes in the next test's feed.
beforeEach(() =>
  skiff.store.db
    .updateTable('servers')
    .set({ updated_at: new Date(Date.now() - 600_000).toISOString() })
    .execute(),
)

const feed = (lookbackMs: number) =>
  new ServerChangeFeed({
    servers: new ServersRepo(skiff.store.db, systemClock),
    clock: systemClock,
    logger: pino({ level: 'silent' }),
    intervalMs: 5,
    lookbackMs,
  })

/** Write a server row as another process would: any updated_at, no API in between. */
const write = (id: string, updatedAt: string, set: Partial<ServerRow> = {}) =>
  skiff.store.db
    .updateTable('servers')
    .set({ ...set, updated_at: updatedAt })
    .where('id', '=', id)
    .execute()

function collect(f: ServerChangeFeed, watch: ServerWatch) {
  const rows: ServerRow[] = []
  const unsubscribe = f.subscribe(watch, (r) => rows.push(r))
  const seen = (what: string, check: (r: ServerRow) => boolean) => waitFor(what, async () => rows.some(check))
  return { rows, unsubscribe, seen }
}

test('rows written in the same millisecond as the newest one seen are not lost; the row is the version', async () => {
  const f = feed(0)
  const all = collect(f, { allProjects: true })
  const [a, b] = [ids[0]!, ids[1]!]
  // In the future, so that the feed's cursor jumps to it and the next query starts exactly there.
  const t = new Date(Date.now() + 60_000).toISOString()
  await write(a, t, { name: 'a1' })
  await all.seen('a at t', (r) => r.id === a && r.name === 'a1')
  await write(b, t, { name: 'b1' })
  await all.seen('b at the same millisecond', (r) => r.id === b && r.name === 'b1')
  // A second write of a in that same millisecond is a change too.
  await write(a, t, { name: 'a2' })
  await all.seen('a again at the same millisecond', (r) => r.id === a && r.name === 'a2')
  // Each version once: the rows read again on every tick are dropped.
  await write(b, new Date(Date.parse(t) + 1).toISOString(), { name: 'b2' })
  await all.seen('b later', (r) => r.id === b && r.name === 'b2')
  assert.deepEqual(
    all.rows.map((r) => r.name),
    ['a1', 'b1', 'a2', 'b2'],
  )
  f.close()
})

test('a row committed late, behind the newest one seen, is delivered within the lookback', async () => {
  const f = feed(1000)
  const all = collect(f, { allProjects: true })
  const t = Date.now() + 120_000
  await write(ids[0]!, new Date(t).toISOString(), { name: 'newest' })
  await all.seen('the newest row', (r) => r.name === 'newest')
  await write(ids[1]!, new Date(t - 500).toISOString(), { name: 'late' })
  await all.seen('the late row', (r) => r.name === 'late')
  f.close()
})

test('subscribers get only what they watch; a failing listener does not stop the others', async () => {
  const f = feed(0)
  f.subscribe({ allProjects: true }, () => {
    throw new Error('a broken listener')
  })
  const one = collect(f, { serverId: ids[2]! })
  const mine = collect(f, { projectId: project })
  const others = collect(f, { projectId: 'another-project' })
  const t = Date.now() + 180_000
  await write(ids[0]!, new Date(t).toISOString(), { name: 'x0' })
  await write(ids[2]!, new Date(t + 1).toISOString(), { name: 'x2' })
  await mine.seen('x2 in the project', (r) => r.name === 'x2')
  await one.seen('x2 for its watcher', (r) => r.name === 'x2')
  assert.deepEqual(
    one.rows.map((r) => r.name),
    ['x2'],
  )
  assert.deepEqual(
    mine.rows.map((r) => r.name),
    ['x0', 'x2'],
  )
  assert.deepEqual(others.rows, [])
  f.close()
})

test('the timer runs only while someone listens', async () => {
  const f = feed(0)
  assert.equal(f.running, false)
  const first = f.subscribe({ serverId: ids[0]! }, () => {})
  const second = f.subscribe({ projectId: project }, () => {})
  assert.equal(f.running, true)
  first()
  first() // twice is harmless
  assert.equal(f.subscriberCount, 1)
  second()
  assert.equal(f.subscriberCount, 0)
  assert.equal(f.running, false)
  // And again, from a fresh cursor.
  const again = collect(f, { serverId: ids[0]! })
  assert.equal(f.running, true)
  await write(ids[0]!, new Date(Date.now() + 240_000).toISOString(), { name: 'again' })
  await again.seen('a change after a restart', (r) => r.name === 'again')
  again.unsubscribe()
  assert.equal(f.running, false)
  f.close()
  assert.throws(() => f.subscribe({ allProjects: true }, () => {}), /closed/)
})
