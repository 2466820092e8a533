// Safe failure, both ways: a failed rescue puts the server back on its own disk (rescue.test.ts),
// and a failed unrescue boots the rescue system again, so the user is back in RESCUE with the
// same rescue password and can retry; ERROR only if even that fails. The fault shows on the
// server and in the instance action. And the simulator's fault rules: every rule that matches a
// phase applies, so none is skipped.
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
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

const action = (s: TestSkiff, id: string, body: unknown, token = demo) => s.compute('POST', `/v2.1/servers/${id}/action`, { token, body })
const show = async (s: TestSkiff, id: string, token = demo) => (await s.compute('GET', `/v2.1/servers/${id}`, { token })).json().server
const inject = async (s: TestSkiff, fault: Record<string, unknown>) => {
  const res = await s.compute('POST', '/v2.1/os-simulator/faults', { token: admin, body: { fault } })
  assert.equal(res.statusCode, 201, res.body)
  return res.json().fault as { id: string }
}
const actions = async (s: TestSkiff, id: string) =>
  (await s.compute('GET', `/v2.1/servers/${id}/os-instance-actions`, { token: demo })).json().instanceActions as {
    action: string
    request_id: string
    message: string | null
  }[]
const events = async (s: TestSkiff, id: string, requestId: string) =>
  (await s.compute('GET', `/v2.1/servers/${id}/os-instance-actions/${requestId}`, { token: admin })).json().instanceAction.events as {
    event: string
    result: string | null
    finish_time: string | null
    traceback: string | null
  }[]

/** An ACTIVE server with a known password, rescued with a known rescue password. */
async function rescued(s: TestSkiff, token: string) {
  const id = await activeServer(s, token, 'sf', { adminPass: 'Orig1nalPass' })
  const res = await action(s, id, { rescue: { adminPass: 'RescuePass1' } }, token)
  assert.equal(res.statusCode, 200, res.body)
  await waitForStatus(s, token, id, 'RESCUE')
  return id
}

describe('a failed unrescue boots the rescue system again', () => {
  test('unrescue.boot fails: RESCUE, power 1, the same rescue password; the fault on the server and in the action; a retry works', async () => {
    const id = await rescued(skiff, demo)
    await inject(skiff, { operation: 'unrescue.boot', server_id: id, error: 'the server disk does not boot', count: 1 })
    assert.equal((await action(skiff, id, { unrescue: null })).statusCode, 202)

    const back = await waitForStatus(skiff, demo, id, 'RESCUE')
    assert.equal(back['OS-EXT-STS:power_state'], 1, 'the rescue system runs again')
    assert.equal(back['OS-EXT-STS:vm_state'], 'rescued')
    assert.equal(skiff.driver.canLogin(id, 'RescuePass1'), true, 'the rescue password still logs in')
    assert.equal(skiff.driver.canLogin(id, 'Orig1nalPass'), false)
    assert.deepEqual(
      skiff.driver.describe(id)!.disks.map((d) => d.split(' ')[0]),
      ['rescue', 'server'],
    )
    // The fault as Nova shows one: code, message, created (details only for admins when 500).
    assert.equal(back.fault.code, 500)
    assert.equal(back.fault.message, 'the server disk does not boot')
    assert.match(back.fault.created, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/)
    assert.equal(back.fault.details, undefined)
    assert.equal(typeof (await show(skiff, id, admin)).fault.details, 'string')
    const listed = (await skiff.compute('GET', '/v2.1/servers/detail', { token: demo }))
      .json()
      .servers.find((s: { id: string }) => s.id === id)
    assert.equal(listed.fault.message, 'the server disk does not boot')
    // Still rescued, as the rescue resource says.
    const state = await skiff.compute('GET', `/v2.1/servers/${id}/rescue`, { token: demo })
    assert.equal(state.statusCode, 200)
    assert.equal(state.json().rescue.status, 'rescued')
    // The instance action records it.
    const [unrescue] = await actions(skiff, id)
    assert.equal(unrescue!.action, 'unrescue')
    assert.equal(unrescue!.message, 'Error')
    const [event] = await events(skiff, id, unrescue!.request_id)
    assert.equal(event!.event, 'compute_unrescue_instance')
    assert.equal(event!.result, 'Error')
    assert.ok(event!.finish_time)
    assert.match(event!.traceback ?? '', /the server disk does not boot/)

    // The user retries: the server's own disk, its own password; the fault belongs to the past.
    assert.equal((await action(skiff, id, { unrescue: null })).statusCode, 202)
    const active = await waitForStatus(skiff, demo, id, 'ACTIVE')
    assert.equal(active['OS-EXT-STS:power_state'], 1)
    assert.equal(active.fault, undefined)
    assert.equal(skiff.driver.canLogin(id, 'Orig1nalPass'), true)
    assert.equal(skiff.driver.canLogin(id, 'RescuePass1'), false)
    assert.equal((await skiff.compute('GET', `/v2.1/servers/${id}/rescue`, { token: demo })).statusCode, 404)
    assert.deepEqual(
      (await actions(skiff, id)).map((a) => [a.action, a.message]),
      [
        ['unrescue', null],
        ['unrescue', 'Error'],
        ['rescue', null],
        ['create', null],
      ],
    )
  })

  test('unrescue.stop_rescue fails: the rescue system never stopped; RESCUE, power 1, with the fault', async () => {
    const id = await rescued(skiff, demo)
    await inject(skiff, { operation: 'unrescue.stop_rescue', server_id: id, error: 'rescue VM will not stop', count: 1 })
    await action(skiff, id, { unrescue: null })
    const back = await waitForStatus(skiff, demo, id, 'RESCUE')
    assert.equal(back['OS-EXT-STS:power_state'], 1)
    assert.equal(back.fault.message, 'rescue VM will not stop')
    assert.equal(skiff.driver.canLogin(id, 'RescuePass1'), true)
    await action(skiff, id, { unrescue: null })
    await waitForStatus(skiff, demo, id, 'ACTIVE')
  })

  test('ERROR only when the rescue system does not boot again either; a rescue from ERROR gets it back', async () => {
    const id = await rescued(skiff, demo)
    await inject(skiff, { operation: 'unrescue.boot', server_id: id, error: 'the server disk does not boot', count: 1 })
    await inject(skiff, { operation: 'restoreRescue', server_id: id, error: 'nor does the rescue disk', count: 1 })
    await action(skiff, id, { unrescue: null })
    const broken = await waitForStatus(skiff, demo, id, 'ERROR')
    assert.equal(broken['OS-EXT-STS:vm_state'], 'error')
    assert.equal(broken['OS-EXT-STS:power_state'], 4)
    assert.equal(broken.fault.message, 'the server disk does not boot')
    assert.equal((await skiff.compute('GET', `/v2.1/servers/${id}/rescue`, { token: demo })).statusCode, 404)
    const [unrescue] = await actions(skiff, id)
    assert.equal(unrescue!.message, 'Error')
    assert.equal((await events(skiff, id, unrescue!.request_id))[0]!.result, 'Error')
    // From ERROR a new rescue is allowed (as Nova), then unrescue works.
    assert.equal((await action(skiff, id, { rescue: null })).statusCode, 200)
    await waitForStatus(skiff, demo, id, 'RESCUE')
    await action(skiff, id, { unrescue: null })
    await waitForStatus(skiff, demo, id, 'ACTIVE')
    assert.equal(skiff.driver.canLogin(id, 'Orig1nalPass'), true)
  })

  test('an auto-exit that fails leaves the server in RESCUE and tries again a rescue period later, not at every sweep', async () => {
    const id = await activeServer(skiff, demo, 'auto')
    await inject(skiff, { operation: 'unrescue.boot', server_id: id, error: 'still broken' })
    const res = await skiff.compute('POST', `/v2.1/servers/${id}/rescue`, { token: demo, body: { rescue: { auto_unrescue_after: 60 } } })
    assert.equal(res.statusCode, 202, res.body)
    await waitForStatus(skiff, demo, id, 'RESCUE')
    await skiff.clock.advance(60_000)
    await waitFor(
      'the auto-exit to fail',
      async () => (await actions(skiff, id)).find((a) => a.action === 'unrescue' && a.message === 'Error'),
      10_000,
      50,
    )
    const failedAt = skiff.clock.now().getTime()
    const s = await waitForStatus(skiff, demo, id, 'RESCUE')
    assert.equal(s['OS-EXT-STS:power_state'], 1)
    const state = (await skiff.compute('GET', `/v2.1/servers/${id}/rescue`, { token: demo })).json().rescue
    // Not moved on, it would be due already (at most failedAt); moved on, it is about a minute later.
    assert.ok(Date.parse(state.expires_at) > failedAt + 30_000, `expires_at ${state.expires_at} was moved on`)
    // The next sweeps leave it alone while the new expiry has not come.
    await skiff.clock.advance(30_000)
    assert.deepEqual((await actions(skiff, id)).filter((a) => a.action === 'unrescue').length, 1, 'one try, not one a sweep')
    await skiff.compute('DELETE', '/v2.1/os-simulator/faults', { token: admin })
    await skiff.clock.advance(30_000)
    await waitForStatus(skiff, demo, id, 'ACTIVE')
  })
})

describe('fault rules: every rule that matches a phase applies', () => {
  test('a delay on all of unrescue, registered first, does not hide an unrescue.boot failure (with the default 100 ms per phase)', async () => {
    const slow = await startTestSkiff({ simulatedDelayMs: 100 })
    try {
      const token = await slow.token('demo')
      const adminToken = await slow.token('admin')
      const id = await rescued(slow, token)
      const add = async (fault: Record<string, unknown>) =>
        (await slow.compute('POST', '/v2.1/os-simulator/faults', { token: adminToken, body: { fault } })).json().fault as { id: string }
      const delay = await add({ operation: 'unrescue', delay_ms: 20 })
      await add({ operation: 'unrescue.boot', server_id: id, error: 'boot failed', count: 1 })
      await action(slow, id, { unrescue: null }, token)
      const back = await waitForStatus(slow, token, id, 'RESCUE', 10_000)
      assert.equal(back.fault?.message, 'boot failed', 'the unrescue.boot rule was consulted')
      const rules = (await slow.compute('GET', '/v2.1/os-simulator/faults', { token: adminToken })).json().faults as {
        id: string
        remaining: number | null
      }[]
      assert.deepEqual(
        rules.map((r) => [r.id, r.remaining]),
        [[delay.id, null]],
        'the one-shot rule was used up; the delay stays',
      )

      // A rule for one server given in upper case still matches it (ids are lower case).
      await add({ operation: 'unrescue.boot', server_id: id.toUpperCase(), error: 'boot failed again', count: 1 })
      await action(slow, id, { unrescue: null }, token)
      assert.equal((await waitForStatus(slow, token, id, 'RESCUE', 10_000)).fault?.message, 'boot failed again')
      await action(slow, id, { unrescue: null }, token)
      await waitForStatus(slow, token, id, 'ACTIVE', 10_000)
    } finally {
      await slow.close()
    }
  })
})
