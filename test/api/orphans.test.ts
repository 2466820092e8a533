// The agent reconciles what deletes leave behind: VMs whose server is deleted (a delete accepted
// while the host was down is finished by the API alone) or unknown are destroyed; a server that
// exists and is not deleted keeps its VM, rescued ones their rescue system and own disk.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { activeServer, startTestSkiff, waitForStatus, type TestSkiff } from '../helpers/skiff.ts'

let skiff: TestSkiff
let demo: string

before(async () => {
  skiff = await startTestSkiff()
  demo = await skiff.token('demo')
})
after(async () => {
  await skiff.close()
})

test('VMs of deleted and unknown servers are destroyed; live, rescued and building servers keep theirs', async () => {
  const kept = await activeServer(skiff, demo, 'kept')
  const rescued = await activeServer(skiff, demo, 'rescued')
  assert.equal(
    (await skiff.compute('POST', `/v2.1/servers/${rescued}/action`, { token: demo, body: { rescue: { adminPass: 'RescuePass1' } } }))
      .statusCode,
    200,
  )
  await waitForStatus(skiff, demo, rescued, 'RESCUE')
  const gone = await activeServer(skiff, demo, 'gone')
  // As an API finishes a delete alone when the server's host is down: the row is deleted, the VM stays.
  const now = new Date().toISOString()
  await skiff.store.db
    .updateTable('servers')
    .set({ vm_state: 'deleted', deleted: 1, deleted_at: now, updated_at: now })
    .where('id', '=', gone)
    .execute()
  // A VM no server row names (a database restored from an older backup, say).
  const unknown = '00000000-0000-4000-8000-00000000dead'
  await skiff.driver.spawn({ id: unknown, name: 'stray', vcpus: 1, ramMb: 64, diskGb: 1, imageId: 'x', imageName: null })
  // A server being built has its row before its VM: it is left alone too.
  const building = await activeServer(skiff, demo, 'building')
  await skiff.store.db.updateTable('servers').set({ vm_state: 'building', task_state: 'spawning' }).where('id', '=', building).execute()

  const destroyed = await skiff.reconcileOrphans!()
  assert.deepEqual(destroyed.sort(), [gone, unknown].sort())
  assert.deepEqual((await skiff.driver.listVms()).sort(), [kept, rescued, building].sort())
  // The rescued server still runs its rescue system, with its own disk second.
  assert.deepEqual(
    skiff.driver.describe(rescued)!.disks.map((d) => d.split(' ')[0]),
    ['rescue', 'server'],
  )
  assert.equal(skiff.driver.canLogin(rescued, 'RescuePass1'), true)
  assert.deepEqual(await skiff.reconcileOrphans!(), [], 'nothing left to do')
})
