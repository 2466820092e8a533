// Instance actions tell one coherent story, whatever happened to the agent: a task taken over
// after its agent stopped (the agent restarted and took back what it was running, or the lease
// ran out) leaves the abandoned attempt's event finished with Error and why, beside the event of
// the attempt that took over; no event stays without a finish_time; an action that failed says
// so in its message.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { activeServer, startTestSkiff, waitFor, waitForStatus, type TestSkiff } from '../helpers/skiff.ts'

let skiff: TestSkiff
let demo: string
let admin: string

before(async () => {
  skiff = await startTestSkiff()
  demo = await skiff.token('demo')
  admin = await skiff.token('admin')
})
after(() => skiff.close())

interface Event {
  event: string
  result: string | null
  start_time: string
  finish_time: string | null
  traceback: string | null
}

const action = (id: string, body: unknown) => skiff.compute('POST', `/v2.1/servers/${id}/action`, { token: demo, body })
const latestAction = async (id: string) =>
  (await skiff.compute('GET', `/v2.1/servers/${id}/os-instance-actions`, { token: demo })).json().instanceActions[0] as {
    action: string
    request_id: string
    message: string | null
  }
const detail = async (id: string, requestId: string) =>
  (await skiff.compute('GET', `/v2.1/servers/${id}/os-instance-actions/${requestId}`, { token: admin })).json().instanceAction as {
    message: string | null
    events: Event[]
  }
const openEvents = async () =>
  skiff.store.db.selectFrom('instance_action_events').select(['id', 'event']).where('finish_time', 'is', null).execute()

/** Start `body` on a server whose phase `phase` takes a second this once; resolves once its event is open. */
async function startSlow(id: string, phase: string, body: unknown) {
  const fault = await skiff.compute('POST', '/v2.1/os-simulator/faults', {
    token: admin,
    body: { fault: { operation: phase, server_id: id, delay_ms: 1000, count: 1 } },
  })
  assert.equal(fault.statusCode, 201, fault.body)
  const res = await action(id, body)
  assert.ok(res.statusCode === 200 || res.statusCode === 202, res.body)
  const { request_id } = await latestAction(id)
  await waitFor('the first attempt to start its event', async () => (await detail(id, request_id)).events.length === 1)
  // ... and to be in the slow phase (the one-shot rule is used up): a rule added now is for the next attempt.
  await waitFor('the first attempt to reach the slow phase', async () => {
    const rules = (await skiff.compute('GET', '/v2.1/os-simulator/faults', { token: admin })).json().faults as { id: string }[]
    return !rules.some((r) => r.id === fault.json().fault.id)
  })
  return request_id
}

/** The abandoned attempt's event is an Error that says the agent stopped; the other is the outcome. */
function assertTakenOver(events: Event[], name: string, outcome: 'Success' | 'Error') {
  assert.equal(events.length, 2, JSON.stringify(events))
  for (const e of events) {
    assert.equal(e.event, name)
    assert.ok(e.finish_time, `no event without finish_time: ${JSON.stringify(e)}`)
  }
  const abandoned = events.find((e) => /agent .*stopped/.test(e.traceback ?? ''))
  assert.ok(abandoned, JSON.stringify(events))
  assert.equal(abandoned.result, 'Error')
  assert.match(abandoned.traceback!, /taken over .* \(attempt 2\)/)
  assert.equal(events.find((e) => e !== abandoned)!.result, outcome)
}

test('the agent restarts and takes back the task it was running: the abandoned event ends with Error, the rescue completes', async () => {
  const id = await activeServer(skiff, demo, 'restart')
  const requestId = await startSlow(id, 'rescue.boot', { rescue: null })
  // The agent "dies" with the task claimed and starts again: it takes back what it was running.
  const agent = skiff.agent!
  void agent.stop()
  await agent.start()
  await waitForStatus(skiff, demo, id, 'RESCUE')
  const story = await detail(id, requestId)
  assertTakenOver(story.events, 'compute_rescue_instance', 'Success')
  assert.equal(story.message, null, 'the action succeeded in the end')
  // The first attempt was only slow, not dead (as after a lost lease): when it ends, its late
  // outcome loses the compare-and-set and changes nothing of the story.
  await waitFor('the first attempt to end', async () => agent.idle, 5000, 20)
  assertTakenOver((await detail(id, requestId)).events, 'compute_rescue_instance', 'Success')
  const s = (await skiff.compute('GET', `/v2.1/servers/${id}`, { token: demo })).json().server
  assert.equal(s.status, 'RESCUE')
  assert.equal(s.fault, undefined)
  assert.deepEqual(await openEvents(), [])
})

test('a lease that runs out: another claim takes the task; the abandoned event ends with Error', async () => {
  const id = await activeServer(skiff, demo, 'lease')
  await action(id, { rescue: null })
  await waitForStatus(skiff, demo, id, 'RESCUE')
  const requestId = await startSlow(id, 'unrescue.boot', { unrescue: null })
  // The lease (60 s, renewed every 20 s) runs out: time jumps past it, no renewal comes between.
  await skiff.clock.advance(61_000)
  assert.equal(await skiff.queue.requeueExpired('skiff-1'), 1)
  skiff.agent!.wake()
  await waitForStatus(skiff, demo, id, 'ACTIVE')
  assertTakenOver((await detail(id, requestId)).events, 'compute_unrescue_instance', 'Success')
  await waitFor('the first attempt to end', async () => skiff.agent!.idle, 5000, 20)
  assertTakenOver((await detail(id, requestId)).events, 'compute_unrescue_instance', 'Success')
  assert.deepEqual(await openEvents(), [])
})

test('a task taken over that then fails: two Error events, the fault, the action Error', async () => {
  const id = await activeServer(skiff, demo, 'fails')
  const requestId = await startSlow(id, 'powerOff', { 'os-stop': null })
  await skiff.compute('POST', '/v2.1/os-simulator/faults', {
    token: admin,
    body: { fault: { operation: 'powerOff', server_id: id, error: 'ACPI ignored', count: 1 } },
  })
  const agent = skiff.agent!
  void agent.stop()
  await agent.start()
  const s = await waitForStatus(skiff, demo, id, 'ACTIVE')
  assert.equal(s.fault.message, 'ACPI ignored')
  const story = await detail(id, requestId)
  assertTakenOver(story.events, 'compute_stop_instance', 'Error')
  assert.equal(story.message, 'Error')
  await waitFor('the first attempt to end', async () => agent.idle, 5000, 20)
  assert.deepEqual(await openEvents(), [])
})

test('an abandoned action whose server moved on meanwhile (deleted) ends as an Error, not silent', async () => {
  const id = await activeServer(skiff, demo, 'gone')
  const requestId = await startSlow(id, 'rescue.boot', { rescue: null })
  const agent = skiff.agent!
  void agent.stop()
  // While the agent is away the server is deleted (allowed while rescuing, as in Nova).
  assert.equal((await skiff.compute('DELETE', `/v2.1/servers/${id}`, { token: demo })).statusCode, 204)
  await agent.start()
  await waitFor(
    'the server to be gone',
    async () => (await skiff.compute('GET', `/v2.1/servers/${id}`, { token: demo })).statusCode === 404,
  )
  // The server is gone from the API: read its actions where they are kept. The first attempt
  // has ended when its event has (an idle agent may not have claimed the abandoned task yet).
  await waitFor(
    'the first attempt to end',
    async () =>
      (
        await skiff.store.db
          .selectFrom('instance_action_events as e')
          .innerJoin('instance_actions as a', 'a.id', 'e.action_id')
          .select('e.finish_time')
          .where('a.server_id', '=', id)
          .where('a.request_id', '=', requestId)
          .executeTakeFirst()
      )?.finish_time != null,
    5000,
    20,
  )
  const rescue = await skiff.store.db
    .selectFrom('instance_actions')
    .selectAll()
    .where('server_id', '=', id)
    .where('request_id', '=', requestId)
    .executeTakeFirstOrThrow()
  assert.equal(rescue.message, 'Error')
  const evs = await skiff.store.db.selectFrom('instance_action_events').selectAll().where('action_id', '=', rescue.id).execute()
  assert.deepEqual(
    evs.map((e) => [e.event, e.result]),
    [['compute_rescue_instance', 'Error']],
  )
  assert.match(evs[0]!.traceback ?? '', /agent .*stopped/)
  const del = await skiff.store.db
    .selectFrom('instance_actions')
    .select('id')
    .where('server_id', '=', id)
    .where('action', '=', 'delete')
    .executeTakeFirstOrThrow()
  const delEvents = await skiff.store.db
    .selectFrom('instance_action_events')
    .select(['result', 'finish_time'])
    .where('action_id', '=', del.id)
    .execute()
  assert.deepEqual(
    delEvents.map((e) => e.result),
    ['Success'],
  )
  assert.deepEqual(await openEvents(), [])
})

test("a server that finds no valid host: its create action says Error, with the scheduler's event", async () => {
  // A host with room for one m1.tiny and nothing bigger: m1.small (2048 MB) fits nowhere.
  const small = await startTestSkiff({ hostVcpus: 1, hostRamMb: 512, hostDiskGb: 1 })
  try {
    const token = await small.token('admin')
    const res = await small.compute('POST', '/v2.1/servers', {
      token,
      body: { server: { name: 'big', imageRef: await small.imageId('skiff-base'), flavorRef: '2' } },
    })
    assert.equal(res.statusCode, 202, res.body)
    const id = res.json().server.id as string
    const s = (await small.compute('GET', `/v2.1/servers/${id}`, { token })).json().server
    assert.equal(s.status, 'ERROR')
    assert.match(s.fault.message, /No valid host/)
    const create = (await small.compute('GET', `/v2.1/servers/${id}/os-instance-actions`, { token })).json().instanceActions[0]
    assert.equal(create.action, 'create')
    assert.equal(create.message, 'Error')
    const { events } = (await small.compute('GET', `/v2.1/servers/${id}/os-instance-actions/${create.request_id}`, { token })).json()
      .instanceAction as { events: Event[] }
    assert.deepEqual(
      events.map((e) => [e.event, e.result]),
      [['conductor_schedule_and_build_instances', 'Error']],
    )
    assert.ok(events[0]!.finish_time)
    assert.match(events[0]!.traceback ?? '', /No valid host/)
  } finally {
    await small.close()
  }
})
