// The schema the migrations leave (SQLite, and PostgreSQL when the tests are given one): every
// table the row types name, and none that nothing uses (0007 dropped settings, server_passwords).
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { openStore, type Store } from '../../src/store/db.ts'
import { freshDatabase, type TestDatabase } from '../helpers/database.ts'

let database: TestDatabase
let store: Store

before(async () => {
  database = await freshDatabase()
  store = await openStore(database.url)
})
after(async () => {
  await store.close()
  await database.drop()
})

test('the unused tables are gone; the others are there', async () => {
  const tables = new Set((await store.db.introspection.getTables()).map((t) => t.name))
  assert.ok(!tables.has('settings'))
  assert.ok(!tables.has('server_passwords'))
  for (const t of ['users', 'projects', 'roles', 'role_assignments', 'tokens', 'flavors', 'keypairs', 'servers', 'hosts', 'task_replies']) {
    assert.ok(tables.has(t), t)
  }
})
