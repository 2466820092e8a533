// os-getConsoleOutput: the API holds no driver and asks the agent of the server's host (a
// server.console task and its answer through the database), as Nova asks the compute host.
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { activeServer, startTestSkiff, waitFor, waitForStatus, type TestSkiff } from '../helpers/skiff.ts'

let skiff: TestSkiff
let demo: string

before(async () => {
  skiff = await startTestSkiff()
  demo = await skiff.token('demo')
})
after(async () => {
  await skiff.close()
})

const consoleOf = (id: string, body: Record<string, unknown> = {}) =>
  skiff.compute('POST', `/v2.1/servers/${id}/action`, { token: demo, body: { 'os-getConsoleOutput': body } })

describe('console output', () => {
  test('the live console of the VM, its last `length` lines, and no task left behind', async () => {
    const id = await activeServer(skiff, demo, 'console')
    const all = await consoleOf(id)
    assert.equal(all.statusCode, 200, all.body)
    const expected = (await skiff.driver.consoleOutput(id)).replace(/\n$/, '')
    assert.equal(all.json().output, expected)
    assert.match(expected, /booting image skiff-base/)
    const last = await consoleOf(id, { length: 2 })
    assert.equal(last.json().output, expected.split('\n').slice(-2).join('\n'))
    assert.equal((await consoleOf(id, { length: '1' })).json().output, expected.split('\n').slice(-1).join('\n'))
    // The agent answers, then finishes the task: the caller may be back before the second step.
    await waitFor('the call task to be finished', async () => (await skiff.queue.pending()) === 0)
    assert.equal((await skiff.store.db.selectFrom('task_replies').select('task_id').execute()).length, 0, 'and its answer read and removed')
  })

  test('answered while a long rescue of the same server runs (a call does not queue behind it)', async () => {
    const id = await activeServer(skiff, demo, 'console-busy')
    await skiff.driver.injectFault({ operation: 'rescue.boot', serverId: id, delayMs: 1500, count: 1 })
    assert.equal((await skiff.compute('POST', `/v2.1/servers/${id}/action`, { token: demo, body: { rescue: null } })).statusCode, 200)
    // The rescue task runs: its VM is powered off, and the rescue boot is held.
    await waitFor('the rescue to power the VM off', async () => (await skiff.driver.getInfo(id)).powerState === 4)
    const started = Date.now()
    const res = await consoleOf(id)
    assert.equal(res.statusCode, 200)
    assert.ok(Date.now() - started < 1000, `answered in ${Date.now() - started} ms`)
    assert.match(res.json().output, /Power down \(entering rescue\)/)
    await waitForStatus(skiff, demo, id, 'RESCUE')
  })

  test('a server whose host has no VM for it: 409, as Nova for an instance not ready', async () => {
    const id = await activeServer(skiff, demo, 'console-novm')
    await skiff.driver.destroy(id)
    const res = await consoleOf(id)
    assert.deepEqual([res.statusCode, res.json()], [409, { conflictingRequest: { code: 409, message: `Instance ${id} is not ready` } }])
  })
})
