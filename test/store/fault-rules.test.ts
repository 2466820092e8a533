// The simulated hypervisor's fault rules in the database (SQLite, and PostgreSQL when the tests
// are given one): shared by every process that opens it, the version moving with each change,
// and the last use of a counted rule taken by one agent only, however many ask at once.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { systemClock } from '../../src/clock.ts'
import { SimulatedDriver } from '../../src/drivers/simulated/simulated-driver.ts'
import { openStore, type Store } from '../../src/store/db.ts'
import { FaultRulesRepo } from '../../src/store/fault-rules-repo.ts'
import { freshDatabase, type TestDatabase } from '../helpers/database.ts'

let database: TestDatabase
let store: Store
let other: Store | undefined

before(async () => {
  database = await freshDatabase()
  store = await openStore(database.url)
  // A second pool on PostgreSQL: another process's view of the same rules.
  if (store.dialect === 'postgres') other = await openStore(database.url)
})
after(async () => {
  await other?.close()
  await store.close()
  await database.drop()
})

test('add, list in order, remove and clear move the version; taking a use does not', async () => {
  const repo = new FaultRulesRepo(store.db, systemClock)
  const v0 = await repo.version()
  const a = await repo.add({ operation: 'rescue.boot', serverId: 'ABC', error: 'boom', count: 2 })
  const b = await repo.add({ operation: 'spawn', delayMs: 5, hang: false })
  assert.equal(a.serverId, 'abc', 'server ids are matched in lower case')
  assert.deepEqual(
    (await repo.list()).map((f) => f.id),
    [a.id, b.id],
  )
  assert.ok((await repo.version()) > v0)
  const v1 = await repo.version()
  assert.deepEqual(
    (await repo.take([a.id, b.id])).map((f) => [f.id, f.count]),
    [
      [a.id, 1],
      [b.id, undefined],
    ],
  )
  assert.equal(await repo.version(), v1)
  assert.equal((await repo.take([a.id])).length, 1)
  assert.deepEqual(
    (await repo.list()).map((f) => f.id),
    [b.id],
    'a rule used up is gone',
  )
  assert.deepEqual(await repo.take([a.id]), [])
  assert.equal(await repo.remove(b.id), true)
  assert.equal(await repo.remove(b.id), false)
  await repo.add({ operation: 'destroy' })
  await repo.clear()
  assert.deepEqual(await repo.list(), [])
  assert.ok((await repo.version()) > v1)
})

test('the last use of a rule is taken once, by one of many takers at once', async () => {
  const repos = [store, other ?? store].map((s) => new FaultRulesRepo(s.db, systemClock))
  const rule = await repos[0]!.add({ operation: 'rescue.boot', error: 'once', count: 3 })
  const taken = await Promise.all(Array.from({ length: 12 }, (_, i) => repos[i % 2]!.take([rule.id])))
  assert.equal(taken.filter((t) => t.length === 1).length, 3)
  assert.deepEqual(await repos[1]!.list(), [])
})

test('a driver applies a rule created elsewhere to its next operation, and lists nothing while none change', async () => {
  const repo = new FaultRulesRepo(store.db, systemClock)
  let lists = 0
  const counting = Object.assign(Object.create(repo) as FaultRulesRepo, {
    version: () => repo.version(),
    take: (ids: string[]) => repo.take(ids),
    list: () => {
      lists++
      return repo.list()
    },
  })
  const driver = new SimulatedDriver({ delayMs: 0, faults: counting })
  try {
    const spec = (id: string) => ({ id, name: id, vcpus: 1, ramMb: 64, diskGb: 1, imageId: 'i', imageName: null })
    await driver.spawn(spec('s1'))
    await driver.spawn(spec('s2'))
    assert.equal(lists, 1, 'listed once, then only the version is read')
    // Through "another process": the rule applies to the next operation.
    await new FaultRulesRepo((other ?? store).db, systemClock).add({ operation: 'spawn', serverId: 's3', error: 'no room', count: 1 })
    await assert.rejects(driver.spawn(spec('s3')), /no room/)
    await driver.spawn(spec('s3'))
  } finally {
    driver.close()
  }
})
