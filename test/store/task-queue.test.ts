// The task queue against a real database (SQLite, and PostgreSQL when the tests are given one):
// claims in order and one at a time per subject, claimers that never take the same task, leases
// that run out and put a task back, and an old attempt that cannot finish its successor.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { openStore, type Store } from '../../src/store/db.ts'
import { HostRegistry } from '../../src/tasks/hosts.ts'
import { TaskQueue } from '../../src/tasks/queue.ts'
import { TestClock } from '../helpers/clock.ts'
import { freshDatabase, type TestDatabase } from '../helpers/database.ts'

let database: TestDatabase
let store: Store
let queue: TaskQueue
// Rows order by created_at and leases run out by this clock: the tests move it, never wait.
const clock = new TestClock()

before(async () => {
  database = await freshDatabase()
  store = await openStore(database.url)
  queue = new TaskQueue(store, clock)
})
after(async () => {
  await queue.close()
  await store.close()
  await database.drop()
})

const add = (host: string, subjectId: string, kind = 'server.rescue') =>
  queue.enqueue(store.db, { kind, subjectId, host, payload: {}, requestId: `req-${subjectId}-${kind}` })

test('claims go oldest first, one running task per subject, and only for their host', async () => {
  const first = await add('h1', 's1', 'server.rescue')
  await clock.advance(1) // created_at orders them
  const second = await add('h1', 's1', 'server.unrescue')
  const other = await add('h2', 's2')
  const a = await queue.claim('h1', 60_000)
  assert.equal(a?.id, first)
  assert.equal(a?.attempts, 1)
  assert.equal(await queue.claim('h1', 60_000), undefined, 'the second task of s1 waits for the first')
  await queue.finish(a!)
  assert.equal((await queue.claim('h1', 60_000))?.id, second)
  assert.equal((await queue.claim('h2', 60_000))?.id, other)
  await store.db.deleteFrom('tasks').execute()
})

test('many claimers at once never take the same task', async () => {
  const ids = new Set<string>()
  for (let i = 0; i < 30; i++) ids.add(await add('h3', `c${i}`))
  const claimed = (await Promise.all(Array.from({ length: 60 }, () => queue.claim('h3', 60_000)))).filter((t) => t !== undefined)
  const seen = claimed.map((t) => t.id)
  assert.equal(new Set(seen).size, seen.length, 'a task was claimed twice')
  // Whatever a claimer missed (it lost a race) is still there for the next claim.
  for (;;) {
    const t = await queue.claim('h3', 60_000)
    if (!t) break
    seen.push(t.id)
  }
  assert.deepEqual(new Set(seen), ids)
  await store.db.deleteFrom('tasks').execute()
})

test('a lease that runs out puts the task back; the old attempt can neither renew nor finish it', async () => {
  const id = await add('h4', 'l1')
  const old = await queue.claim('h4', 60_000)
  assert.equal(old?.id, id)
  await clock.advance(59_000)
  assert.equal(await queue.requeueExpired('h4'), 0, 'not before its lease runs out')
  await clock.advance(1_001)
  assert.equal(await queue.requeueExpired('h4'), 1)
  const next = await queue.claim('h4', 60_000)
  assert.equal(next?.id, id)
  assert.equal(next?.attempts, 2)
  assert.equal(await queue.renewLease(old!, 60_000), false)
  await queue.finish(old!)
  assert.equal(await queue.pending('h4'), 1, 'the old attempt removed the new one')
  assert.equal(await queue.renewLease(next!, 60_000), true)
  await queue.finish(next!)
  assert.equal(await queue.pending('h4'), 0)
})

test('an agent that restarts takes back what it was running', async () => {
  await add('h5', 'r1')
  assert.ok(await queue.claim('h5', 60_000))
  assert.equal(await queue.requeueAllRunning('h5'), 1)
  assert.equal((await queue.claim('h5', 60_000))?.attempts, 2)
  await store.db.deleteFrom('tasks').execute()
})

test('an agent of many hosts claims the tasks of the hosts whose lease it holds, and only those', async () => {
  const hosts = new HostRegistry(store.db, clock, 30_000)
  const capacity = { vcpus: 8, ramMb: 8192, diskGb: 100 }
  for (const h of ['m1', 'm2']) await hosts.register(h, 'simulated', capacity, 'agent-a')
  await hosts.register('m3', 'simulated', capacity, 'agent-b')
  const onM1 = await add('m1', 'ma')
  await clock.advance(1)
  const onM3 = await add('m3', 'mb')
  await clock.advance(1)
  const onM2 = await add('m2', 'mc')
  const a = { agentId: 'agent-a' }
  assert.equal((await queue.claim(a, 60_000))?.id, onM1)
  assert.equal((await queue.claim(a, 60_000))?.id, onM2, "m3's task belongs to agent-b")
  assert.equal(await queue.claim(a, 60_000), undefined)
  assert.equal((await queue.claim({ agentId: 'agent-b' }, 60_000))?.id, onM3)
  // agent-a comes back after a crash: it takes back both of its running tasks, not agent-b's.
  assert.equal(await queue.requeueAllRunning(a), 2)
  // m2's lease taken over by agent-b (agent-a's heartbeats stopped): its task is no longer agent-a's.
  await store.db.updateTable('hosts').set({ agent_id: 'agent-b' }).where('name', '=', 'm2').execute()
  assert.equal((await queue.claim(a, 60_000))?.id, onM1)
  assert.equal(await queue.claim(a, 60_000), undefined)
  assert.equal((await queue.claim({ agentId: 'agent-b' }, 60_000))?.id, onM2)
  await store.db.deleteFrom('tasks').execute()
})

test('an enqueue is heard by listeners (on PostgreSQL, through NOTIFY, by another connection)', async () => {
  // PostgreSQL: another queue object, as another process would have, hears it only by NOTIFY.
  // SQLite: one process owns the database; its one queue wakes its listeners in memory.
  const other = store.dialect === 'postgres' ? new TaskQueue(store, clock) : queue
  const heard: string[] = []
  const unlisten = await other.onNotify((host) => heard.push(host))
  try {
    await store.db.transaction().execute(async (trx) => {
      await queue.enqueue(trx, { kind: 'k', subjectId: 'n1', host: 'h6', payload: {}, requestId: 'r' })
    })
    queue.notify('h6') // in process, as the API does after its commit
    const hear = async (host: string) => {
      const deadline = Date.now() + 5000
      while (!heard.includes(host) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10))
      assert.ok(heard.includes(host), `${host} heard`)
    }
    await hear('h6')
    if (store.dialect === 'postgres') {
      // A rolled-back enqueue notifies nobody. A listener gets notifications in commit order: once
      // it has heard an enqueue committed after the rollback, it would have heard the rolled-back one.
      heard.length = 0
      await store.db
        .transaction()
        .execute(async (trx) => {
          await queue.enqueue(trx, { kind: 'k', subjectId: 'n2', host: 'h7', payload: {}, requestId: 'r' })
          throw new Error('roll back')
        })
        .catch(() => {})
      await store.db.transaction().execute(async (trx) => {
        await queue.enqueue(trx, { kind: 'k', subjectId: 'n3', host: 'h8', payload: {}, requestId: 'r' })
      })
      await hear('h8')
      assert.deepEqual(
        heard.filter((h) => h === 'h7'),
        [],
      )
    }
  } finally {
    await unlisten()
    if (other !== queue) await other.close()
  }
})
