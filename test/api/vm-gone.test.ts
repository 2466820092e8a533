// A VM that died under an idle server (the qemu driver's watcher reports it): what the user sees
// afterwards, as after Nova's power-state sync. The report is made here the way the driver makes it.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { systemClock } from '../../src/clock.ts'
import { recordVmGone } from '../../src/compute/server-worker.ts'
import { InstanceActionsRepo } from '../../src/store/instance-actions-repo.ts'
import { ServersRepo } from '../../src/store/servers-repo.ts'
import { activeServer, startTestSkiff, waitForStatus, type TestSkiff } from '../helpers/skiff.ts'

let skiff: TestSkiff
let demo: string
let repo: { servers: ServersRepo; actions: InstanceActionsRepo }
before(async () => {
  skiff = await startTestSkiff()
  repo = { servers: new ServersRepo(skiff.store.db, systemClock), actions: new InstanceActionsRepo(skiff.store.db, systemClock) }
  demo = await skiff.token('demo')
})
after(() => skiff.close())

const show = async (id: string) => (await skiff.compute('GET', `/v2.1/servers/${id}`, { token: demo })).json().server
const action = (id: string, body: unknown) => skiff.compute('POST', `/v2.1/servers/${id}/action`, { token: demo, body })

test('an active server whose VM died is SHUTOFF, with a stop action, and starts again', async () => {
  const id = await activeServer(skiff, demo, 'died')
  assert.equal(await recordVmGone(repo, id, { rescued: false, reason: "the VM's QEMU is gone" }), true)
  const s = await show(id)
  assert.equal(s.status, 'SHUTOFF')
  assert.equal(s['OS-EXT-STS:power_state'], 4)
  const actions = (await skiff.compute('GET', `/v2.1/servers/${id}/os-instance-actions`, { token: demo })).json().instanceActions
  assert.deepEqual(
    actions.map((a: { action: string }) => a.action),
    ['stop', 'create'],
  )
  assert.equal((await action(id, { 'os-start': null })).statusCode, 202)
  await waitForStatus(skiff, demo, id, 'ACTIVE')
})

test('a rescued server whose rescue VM died stays RESCUE, powered off; unrescue brings it back', async () => {
  const id = await activeServer(skiff, demo, 'rescue-died')
  assert.equal((await action(id, { rescue: null })).statusCode, 200)
  await waitForStatus(skiff, demo, id, 'RESCUE')
  assert.equal(await recordVmGone(repo, id, { rescued: true, reason: "the rescue VM's QEMU is gone" }), true)
  const s = await show(id)
  assert.equal(s.status, 'RESCUE')
  assert.equal(s['OS-EXT-STS:power_state'], 4)
  assert.equal((await action(id, { unrescue: null })).statusCode, 202)
  await waitForStatus(skiff, demo, id, 'ACTIVE')
})

test('a server with a task running is left alone', async () => {
  const id = await activeServer(skiff, demo, 'busy')
  await repo.servers.cas(id, { taskStates: [null] }, { task_state: 'rebooting' })
  assert.equal(await recordVmGone(repo, id, { rescued: false, reason: 'gone' }), false)
  assert.equal((await show(id))['OS-EXT-STS:power_state'], 1)
  await repo.servers.cas(id, { taskStates: ['rebooting'] }, { task_state: null })
})
