// GET /servers/{id}/access and the rescue state's SSH address: what the agent running the server
// recorded, so that any API process answers, whichever host the server is on. The simulated
// driver forwards nothing (ssh: null); here it is given the forwarding a qemu host has (a port,
// the booted system's host key), so that what the worker records can be checked over the API.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { activeServer, startTestSkiff, waitFor, waitForStatus, type TestSkiff } from '../helpers/skiff.ts'

let skiff: TestSkiff
let demo: string
before(async () => {
  skiff = await startTestSkiff()
  demo = await skiff.token('demo')
})
after(() => skiff.close())

const access = async (id: string) => {
  const res = await skiff.compute('GET', `/v2.1/servers/${id}/access`, { token: demo })
  assert.equal(res.statusCode, 200, res.body)
  return res.json().access.ssh as { host: string; port: number; host_key_fingerprint: string } | null
}

test('a driver that forwards nothing: ssh is null', async () => {
  const id = await activeServer(skiff, demo, 'no-forward')
  assert.equal(await access(id), null)
})

test("the address and the booted system's host key, through rescue, from the database", async () => {
  const driver = skiff.driver as typeof skiff.driver & {
    sshAccess?: (id: string) => { host: string; port: number; hostKeyFingerprint: string | null } | null
  }
  driver.sshAccess = (id) => ({ host: '127.0.0.1', port: 22555, hostKeyFingerprint: driver.hostKeyFingerprint(id) })
  try {
    const id = await activeServer(skiff, demo, 'forwarded')
    const own = await access(id)
    assert.deepEqual(own, { host: '127.0.0.1', port: 22555, host_key_fingerprint: driver.describe(id)!.hostKeyFingerprint })

    const rescue = await skiff.compute('POST', `/v2.1/servers/${id}/action`, { token: demo, body: { rescue: null } })
    assert.equal(rescue.statusCode, 200, rescue.body)
    await waitForStatus(skiff, demo, id, 'RESCUE')
    const inRescue = await access(id)
    assert.equal(inRescue?.port, 22555, 'the same address through rescue')
    assert.notEqual(inRescue?.host_key_fingerprint, own?.host_key_fingerprint, 'the rescue system has its own host key')
    const state = (await skiff.compute('GET', `/v2.1/servers/${id}/rescue`, { token: demo })).json().rescue
    assert.deepEqual(state.access.ssh, { host: '127.0.0.1', port: 22555, host_key_fingerprint: inRescue?.host_key_fingerprint })

    // Read without the driver: another API process has only the database.
    delete driver.sshAccess
    assert.deepEqual(await access(id), inRescue)

    driver.sshAccess = (sid) => ({ host: '127.0.0.1', port: 22555, hostKeyFingerprint: driver.hostKeyFingerprint(sid) })
    assert.equal((await skiff.compute('POST', `/v2.1/servers/${id}/action`, { token: demo, body: { unrescue: null } })).statusCode, 202)
    await waitForStatus(skiff, demo, id, 'ACTIVE')
    assert.deepEqual(await access(id), own, "the server's own host key again")

    assert.equal((await skiff.compute('DELETE', `/v2.1/servers/${id}`, { token: demo })).statusCode, 204)
    await waitFor(
      'the server to be deleted',
      async () => (await skiff.compute('GET', `/v2.1/servers/${id}`, { token: demo })).statusCode === 404,
    )
    const rows = await skiff.store.db.selectFrom('server_access').selectAll().where('server_id', '=', id).execute()
    assert.deepEqual(rows, [], 'deleted with the server')
  } finally {
    delete driver.sshAccess
  }
})
