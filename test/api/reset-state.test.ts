// os-resetState (admins), as nova/api/openstack/compute/admin_actions.py: vm_state active or
// error, no task state, a 'resetState' instance action; and the stuck task's work ends with it:
// a rescue still running on the agent finds the server moved on and records nothing, so the
// server stays ACTIVE on its own disk.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { activeServer, startTestSkiff, waitFor, type TestSkiff } from '../helpers/skiff.ts'

let skiff: TestSkiff
let admin: string
let demo: string
let alt: string

before(async () => {
  skiff = await startTestSkiff()
  admin = await skiff.token('admin')
  demo = await skiff.token('demo')
  alt = await skiff.token('alt_demo')
})
after(() => skiff.close())

const action = (id: string, body: unknown, token = admin) => skiff.compute('POST', `/v2.1/servers/${id}/action`, { token, body })
const show = async (id: string) => (await skiff.compute('GET', `/v2.1/servers/${id}`, { token: admin })).json().server
const actions = async (id: string) =>
  (await skiff.compute('GET', `/v2.1/servers/${id}/os-instance-actions`, { token: admin })).json().instanceActions as {
    action: string
    request_id: string
  }[]

test('error then active: 202, the states Nova sets, one resetState action each', async () => {
  const id = await activeServer(skiff, demo, 'reset1')
  const res = await action(id, { 'os-resetState': { state: 'error' } })
  assert.equal(res.statusCode, 202, res.body)
  assert.equal(res.body, '')
  let s = await show(id)
  assert.equal(s.status, 'ERROR')
  assert.equal(s['OS-EXT-STS:vm_state'], 'error')
  assert.equal(s['OS-EXT-STS:task_state'], null)
  assert.equal((await action(id, { 'os-resetState': { state: 'active' } })).statusCode, 202)
  s = await show(id)
  assert.equal(s.status, 'ACTIVE')
  assert.deepEqual(
    (await actions(id)).map((a) => a.action),
    ['resetState', 'resetState', 'create'],
  )
})

test("policy and input: members 403, another project's server 404, bad bodies 400 with Nova's messages", async () => {
  const id = await activeServer(skiff, demo, 'reset2')
  const member = await action(id, { 'os-resetState': { state: 'error' } }, demo)
  assert.equal(member.statusCode, 403)
  assert.deepEqual(member.json(), {
    forbidden: { code: 403, message: "Policy doesn't allow os_compute_api:os-admin-actions:reset_state to be performed." },
  })
  const other = await action(id, { 'os-resetState': { state: 'error' } }, alt)
  assert.equal(other.statusCode, 404)
  assert.deepEqual(other.json(), { itemNotFound: { code: 404, message: `Instance ${id} could not be found.` } })
  const wrong = await action(id, { 'os-resetState': { state: 'paused' } })
  assert.equal(wrong.statusCode, 400)
  assert.equal(
    wrong.json().badRequest.message,
    "Invalid input for field/attribute state. Value: paused. 'paused' is not one of ['active', 'error']",
  )
  for (const body of [{ 'os-resetState': null }, { 'os-resetState': {} }, { 'os-resetState': { state: 'active', extra: 1 } }]) {
    assert.equal((await action(id, body)).statusCode, 400, JSON.stringify(body))
  }
  assert.equal((await show(id)).status, 'ACTIVE')
  const ghost = await action('00000000-0000-4000-8000-000000000000', { 'os-resetState': { state: 'active' } })
  assert.equal(ghost.statusCode, 404)
})

test('a rescue stuck on the hypervisor: reset to active ends it; the agent records nothing when it returns, the server stays ACTIVE on its own disk', async () => {
  const id = await activeServer(skiff, demo, 'stuck')
  // The rescue's boot takes long on the simulated hypervisor (a slow host).
  const rule = await skiff.compute('POST', '/v2.1/os-simulator/faults', {
    token: admin,
    body: { fault: { operation: 'rescue.boot', server_id: id, delay_ms: 1500 } },
  })
  assert.equal(rule.statusCode, 201, rule.body)
  assert.equal((await action(id, { rescue: null }, demo)).statusCode, 200)
  const rescue = (await actions(id))[0]!
  assert.equal(rescue.action, 'rescue')
  // The agent is in the middle of it: its event started, not finished.
  const event = () =>
    skiff
      .compute('GET', `/v2.1/servers/${id}/os-instance-actions/${rescue.request_id}`, { token: admin })
      .then((r) => r.json().instanceAction.events[0] as { event: string; finish_time: string | null; result: string | null } | undefined)
  await waitFor('the rescue to start on the agent', async () => (await event())?.event === 'compute_rescue_instance')
  assert.equal((await show(id))['OS-EXT-STS:task_state'], 'rescuing')

  assert.equal((await action(id, { 'os-resetState': { state: 'active' } })).statusCode, 202)
  let s = await show(id)
  assert.equal(s.status, 'ACTIVE')
  assert.equal(s['OS-EXT-STS:task_state'], null)
  // The rescue resource says so too: the server is not in rescue.
  assert.equal((await skiff.compute('GET', `/v2.1/servers/${id}/rescue`, { token: demo })).statusCode, 404)

  // The hypervisor returns; the agent's final compare-and-set finds the server moved on.
  await waitFor('the rescue to return on the agent', async () => (await event())?.finish_time != null, 10_000)
  s = await show(id)
  assert.equal(s.status, 'ACTIVE')
  assert.equal(s['OS-EXT-STS:vm_state'], 'active')
  assert.equal(s['OS-EXT-STS:task_state'], null)
  // The server's own disk is there, whatever the hypervisor did meanwhile.
  assert.ok(skiff.driver.describe(id)?.disks.includes(`server disk ${id}`))
  // As in Nova, the reset changes the database only: the server takes actions again.
  assert.equal((await action(id, { 'os-stop': null }, demo)).statusCode, 202)
  await waitFor('the stop', async () => (await show(id)).status === 'SHUTOFF')
})

test('a task no agent has claimed yet (its agent stopped) is dropped by the reset: the agent, back, does nothing to the server', async () => {
  const id = await activeServer(skiff, demo, 'queued')
  const agent = skiff.agent!
  await agent.stop()
  try {
    // The host still counts as up (its heartbeats are recent): the reboot is accepted and waits.
    assert.equal((await action(id, { reboot: { type: 'HARD' } }, demo)).statusCode, 202)
    assert.equal((await show(id))['OS-EXT-STS:task_state'], 'rebooting_hard')
    assert.equal(await skiff.queue.pending('skiff-1'), 1)
    assert.equal((await action(id, { 'os-resetState': { state: 'error' } })).statusCode, 202)
    assert.equal(await skiff.queue.pending('skiff-1'), 0)
  } finally {
    await agent.start()
  }
  agent.wake()
  await waitFor('the agent to be idle', async () => agent.idle)
  const s = await show(id)
  assert.equal(s.status, 'ERROR')
  assert.equal(s['OS-EXT-STS:task_state'], null)
  assert.deepEqual(
    (await actions(id)).map((a) => a.action),
    ['resetState', 'reboot', 'create'],
  )
})
