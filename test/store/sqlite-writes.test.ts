// Store.writes (SQLite): every statement that may change the database is counted before it runs,
// reads are not; ServersRepo keeps a server's ref only while the count stands, so a change made
// by any write (the API's, the agent's, plain SQL) is seen by the next read.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { sql } from 'kysely'
import { openStore } from '../../src/store/db.ts'
import { ServersRepo } from '../../src/store/servers-repo.ts'
import { systemClock } from '../../src/clock.ts'
import { activeServer, startTestSkiff } from '../helpers/skiff.ts'

test('writes are counted, reads are not; PostgreSQL has no count', async () => {
  const store = await openStore('sqlite::memory:')
  try {
    const count = store.writes!
    await sql`create table t (id integer primary key, v text)`.execute(store.db)
    const afterCreate = count()
    await sql`select * from t`.execute(store.db)
    assert.equal(count(), afterCreate, 'a read')
    await sql`insert into t (v) values ('a')`.execute(store.db)
    assert.equal(count(), afterCreate + 1, 'an insert')
    await sql`insert into t (v) values ('b') returning id`.execute(store.db)
    assert.equal(count(), afterCreate + 2, 'an insert that returns rows')
    await sql`update t set v = 'c' where id = 1`.execute(store.db)
    await sql`delete from t where id = 2`.execute(store.db)
    assert.equal(count(), afterCreate + 4)
    await sql`select v from t where id = 1`.execute(store.db)
    assert.equal(count(), afterCreate + 4)
  } finally {
    await store.close()
  }
})

test(
  "a server's kept ref follows every write: through the API and in plain SQL",
  { skip: process.env.DATABASE_URL ? 'SQLite only' : false },
  async () => {
    const skiff = await startTestSkiff({ databaseUrl: 'sqlite::memory:' })
    try {
      const demo = await skiff.token('demo')
      const id = await activeServer(skiff, demo, 'kept')
      const repo = new ServersRepo(skiff.store.db, systemClock, skiff.store.writes)
      const first = await repo.ref(id)
      assert.equal(await repo.ref(id), first, 'kept while nothing is written')
      await skiff.store.db.updateTable('servers').set({ host: 'elsewhere' }).where('id', '=', id).execute()
      const moved = await repo.ref(id)
      assert.equal(moved?.host, 'elsewhere')
      assert.ok(moved!.version > first!.version)
      const put = await skiff.compute('PUT', `/v2.1/servers/${id}`, { token: demo, body: { server: { name: 'renamed' } } })
      assert.equal(put.statusCode, 200)
      assert.ok((await repo.ref(id))!.version > moved!.version)
      await skiff.compute('DELETE', `/v2.1/servers/${id}`, { token: demo })
      await skiff.store.db.updateTable('servers').set({ deleted: 1 }).where('id', '=', id).execute()
      assert.equal(await repo.ref(id), undefined, 'deleted: no ref')
    } finally {
      await skiff.close()
    }
  },
)
