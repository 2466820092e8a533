// ServersRepo.cas, on both dialects: one statement compiled per shape (the columns set, the states
// compared) and run again with other values. Each call here is made twice with the same shape and
// different values, so a value put in another's place, or a shape's statement used for another
// shape, changes what is written or whether it is.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { systemClock } from '../../src/clock.ts'
import { openStore, type Store } from '../../src/store/db.ts'
import { ServersRepo } from '../../src/store/servers-repo.ts'
import { freshDatabase, type TestDatabase } from '../helpers/database.ts'
import { serverRow } from '../helpers/rows.ts'

const A = '11111111-2222-4333-8444-aaaaaaaaaaaa'
const B = '11111111-2222-4333-8444-bbbbbbbbbbbb'

let database: TestDatabase
let store: Store
let repo: ServersRepo

before(async () => {
  database = await freshDatabase()
  store = await openStore(database.url)
  repo = new ServersRepo(store.db, systemClock, store.writes)
  await store.db
    .insertInto('servers')
    .values([serverRow(A, { name: 'a', hostname: 'a' }), serverRow(B, { name: 'b', hostname: 'b' })])
    .execute()
})
after(async () => {
  await store?.close()
  await database?.drop()
})

const states = async (id: string) =>
  store.db
    .selectFrom('servers')
    .select(['vm_state', 'task_state', 'power_state', 'metadata', 'locked'])
    .where('id', '=', id)
    .executeTakeFirstOrThrow()

test('the same shape with other values: each server gets its own values, only from the states named', async () => {
  assert.equal(await repo.cas(A, { vmStates: ['active'], taskStates: [null] }, { task_state: 'rescuing' }), true)
  assert.equal(await repo.cas(B, { vmStates: ['active'], taskStates: [null] }, { task_state: 'powering-off' }), true)
  assert.equal((await states(A)).task_state, 'rescuing')
  assert.equal((await states(B)).task_state, 'powering-off')
  // The same shape again: A is no longer idle, so nothing changes.
  assert.equal(await repo.cas(A, { vmStates: ['active'], taskStates: [null] }, { task_state: 'pausing' }), false)
  assert.equal((await states(A)).task_state, 'rescuing')
})

test('several columns, null among the values, task states with and without null', async () => {
  const done = { vm_state: 'rescued' as const, power_state: 4, task_state: null }
  assert.equal(await repo.cas(A, { taskStates: ['rescuing'] }, done), true)
  assert.deepEqual(await states(A), { vm_state: 'rescued', task_state: null, power_state: 4, metadata: '{}', locked: 0 })
  // B is powering-off: the same shape, a state it is not in, then one it is.
  assert.equal(await repo.cas(B, { taskStates: ['rescuing'] }, { ...done, power_state: 1 }), false)
  assert.equal(await repo.cas(B, { taskStates: ['powering-off'] }, { vm_state: 'stopped', power_state: 4, task_state: null }), true)
  assert.deepEqual(await states(B), { vm_state: 'stopped', task_state: null, power_state: 4, metadata: '{}', locked: 0 })
  // null or a state, in one compare: both servers are idle now.
  assert.equal(
    await repo.cas(A, { vmStates: ['rescued', 'stopped'], taskStates: [null, 'unrescuing'] }, { task_state: 'unrescuing' }),
    true,
  )
  assert.equal(
    await repo.cas(B, { vmStates: ['rescued', 'stopped'], taskStates: [null, 'unrescuing'] }, { task_state: 'powering-on' }),
    true,
  )
  assert.equal((await states(A)).task_state, 'unrescuing')
  assert.equal((await states(B)).task_state, 'powering-on')
})

test('undefined values are not set; the metadata and lock compares hold', async () => {
  await store.db.updateTable('servers').set({ task_state: null, vm_state: 'active' }).execute()
  assert.equal(await repo.cas(A, { taskStates: [null] }, { vm_state: undefined, task_state: 'pausing' }), true)
  assert.equal((await states(A)).vm_state, 'active', 'undefined leaves the column as it was')
  assert.equal(await repo.cas(B, { taskStates: [null], metadata: '{"x":"1"}' }, { metadata: '{"x":"2"}' }), false)
  assert.equal(await repo.cas(B, { taskStates: [null], metadata: '{}' }, { metadata: '{"x":"2"}' }), true)
  assert.equal((await states(B)).metadata, '{"x":"2"}')
  await store.db.updateTable('servers').set({ locked: 1 }).where('id', '=', B).execute()
  assert.equal(await repo.cas(B, { taskStates: [null], unlocked: true }, { task_state: 'pausing' }), false)
  await store.db.updateTable('servers').set({ locked: 0 }).where('id', '=', B).execute()
  assert.equal(await repo.cas(B, { taskStates: [null], unlocked: true }, { task_state: 'pausing' }), true)
})

test('a deleted server is never changed', async () => {
  await store.db.updateTable('servers').set({ deleted: 1, task_state: null }).where('id', '=', A).execute()
  assert.equal(await repo.cas(A, { taskStates: [null] }, { task_state: 'pausing' }), false)
  assert.equal((await states(A)).task_state, null)
})
