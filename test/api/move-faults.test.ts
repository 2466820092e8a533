// Fault injection at every phase of a move (os-simulator/faults): a failure leaves the server on
// its own disk, with its flavor, on its host and in the power state it had, the fault recorded
// and the migration in `error`; where a step can simply be tried again (confirm, revert) the
// server stays in VERIFY_RESIZE; ERROR only where Nova ends there (a failed finish of a revert,
// a failed evacuation).
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { startTestSkiff, waitFor, waitForStatus, type TestSkiff } from '../helpers/skiff.ts'

let skiff: TestSkiff
let admin: string
let demo: string
const PASS = 'Own-Disk-Pass1'

before(async () => {
  skiff = await startTestSkiff({ simulatedHosts: 2 })
  ;[admin, demo] = await Promise.all([skiff.token('admin'), skiff.token('demo')])
})
after(() => skiff.close())

const mv = { 'openstack-api-version': 'compute 2.93' }
const action = (id: string, body: unknown, token = demo) =>
  skiff.compute('POST', `/v2.1/servers/${id}/action`, { token, body, headers: mv })
const view = async (id: string) => (await skiff.compute('GET', `/v2.1/servers/${id}`, { token: admin, headers: mv })).json().server
async function server(name: string): Promise<{ id: string; host: string }> {
  const res = await skiff.compute('POST', '/v2.1/servers', {
    token: demo,
    body: { server: { name, imageRef: await skiff.imageId('skiff-base'), flavorRef: '1', adminPass: PASS } },
  })
  const id = res.json().server.id as string
  await waitForStatus(skiff, demo, id, 'ACTIVE')
  return { id, host: (await view(id))['OS-EXT-SRV-ATTR:host'] }
}
async function fault(operation: string, id: string, error: string, count = 1) {
  const res = await skiff.compute('POST', '/v2.1/os-simulator/faults', {
    token: admin,
    body: { fault: { operation, server_id: id, error, count } },
  })
  assert.equal(res.statusCode, 201, res.body)
}
const settled = (id: string) =>
  waitFor(`server ${id} settled`, async () => {
    const s = await view(id)
    return s['OS-EXT-STS:task_state'] === null && !['RESIZE', 'REVERT_RESIZE', 'MIGRATING', 'REBUILD'].includes(s.status) ? s : undefined
  })
const migration = async (id: string) =>
  (await skiff.compute('GET', `/v2.1/os-migrations?instance_uuid=${id}`, { token: admin, headers: mv })).json().migrations[0]
const eventsOf = async (id: string, name: string) => {
  const list = (await skiff.compute('GET', `/v2.1/servers/${id}/os-instance-actions`, { token: admin })).json().instanceActions
  const a = list.filter((x: { action: string }) => x.action === name)[0]
  const detail = (await skiff.compute('GET', `/v2.1/servers/${id}/os-instance-actions/${a.request_id}`, { token: admin })).json()
    .instanceAction
  return detail.events.map((e: { event: string; result: string }) => `${e.event}:${e.result}`).sort() as string[]
}
/** The server as it was before the move: its host, its flavor, running its own disk. */
async function asBefore(id: string, host: string, flavorName = 'm1.tiny', status = 'ACTIVE', power = 1) {
  const s = await settled(id)
  assert.equal(s.status, status)
  assert.equal(s['OS-EXT-STS:power_state'], power)
  assert.equal(s['OS-EXT-SRV-ATTR:host'], host)
  assert.equal(s.flavor.original_name, flavorName)
  if (power === 1) assert.equal(skiff.driver.canLogin(id, PASS), true, 'the own disk boots, with its password')
  return s
}

for (const phase of ['migrate.power_off', 'migrate.disk', 'migrate']) {
  test(`resize: a failure at ${phase} (source) → ACTIVE on the source, its disk, the fault recorded`, async () => {
    const { id, host } = await server(`f-${phase}`)
    await fault(phase, id, `${phase} broke`)
    assert.equal((await action(id, { resize: { flavorRef: '2' } })).statusCode, 202)
    const s = await asBefore(id, host)
    assert.equal(s.fault.message, `${phase} broke`)
    assert.equal(skiff.driver.size(id)!.ramMb, 512)
    assert.equal((await migration(id)).status, 'error')
    assert.deepEqual(await eventsOf(id, 'resize'), ['compute_prep_resize:Success', 'compute_resize_instance:Error'])
    // The rule was for one call: the next resize goes through.
    assert.equal((await action(id, { resize: { flavorRef: '2' } })).statusCode, 202)
    await waitForStatus(skiff, demo, id, 'VERIFY_RESIZE')
  })
}

test('resize of a stopped server failing at the source: SHUTOFF as it was', async () => {
  const { id, host } = await server('f-stopped')
  await action(id, { 'os-stop': null })
  await waitForStatus(skiff, demo, id, 'SHUTOFF')
  await fault('migrate.disk', id, 'disk copy failed')
  await action(id, { resize: { flavorRef: '2' } })
  await asBefore(id, host, 'm1.tiny', 'SHUTOFF', 4)
})

test('resize: a failure at finishMigration (destination) → rolled back to the source, ACTIVE, fault kept', async () => {
  const { id, host } = await server('f-finish')
  await fault('finishMigration', id, 'destination would not boot')
  await action(id, { resize: { flavorRef: '2' } })
  const s = await asBefore(id, host)
  assert.equal(s.fault.message, 'destination would not boot')
  assert.equal((await migration(id)).status, 'error')
  assert.deepEqual(await eventsOf(id, 'resize'), [
    'compute_finish_resize:Error',
    'compute_prep_resize:Success',
    'compute_resize_instance:Success',
    'compute_rollback_migration:Success',
  ])
})

test('confirm: a failure at confirmMigration leaves VERIFY_RESIZE (fault recorded); confirming again works', async () => {
  const { id } = await server('f-confirm')
  await action(id, { resize: { flavorRef: '2' } })
  await waitForStatus(skiff, demo, id, 'VERIFY_RESIZE')
  await fault('confirmMigration', id, 'old disk busy')
  assert.equal((await action(id, { confirmResize: null })).statusCode, 204)
  // Nova's confirm sets no task state: the migration's status tells when it ended.
  await waitFor('the failed confirm', async () => (await migration(id)).status === 'finished' || undefined)
  const s = await settled(id)
  assert.equal(s.status, 'VERIFY_RESIZE')
  assert.equal(s.fault.message, 'old disk busy')
  assert.equal((await migration(id)).status, 'finished')
  assert.equal((await action(id, { confirmResize: null })).statusCode, 204)
  const ok = await waitForStatus(skiff, demo, id, 'ACTIVE')
  assert.equal(ok.flavor.id, '2')
  assert.equal((await migration(id)).status, 'confirmed')
})

test('revert: a failure at dropMigrationTarget leaves VERIFY_RESIZE; reverting again works', async () => {
  const { id, host } = await server('f-revert')
  await action(id, { resize: { flavorRef: '2' } })
  await waitForStatus(skiff, demo, id, 'VERIFY_RESIZE')
  await fault('dropMigrationTarget', id, 'copy busy')
  assert.equal((await action(id, { revertResize: null })).statusCode, 202)
  const s = await settled(id)
  assert.equal(s.status, 'VERIFY_RESIZE')
  assert.equal(s.fault.message, 'copy busy')
  assert.equal((await action(id, { revertResize: null })).statusCode, 202)
  await asBefore(id, host)
})

test('revert: a failure at finishRevertMigration (source) is ERROR, as Nova', async () => {
  const { id } = await server('f-finish-revert')
  await action(id, { resize: { flavorRef: '2' } })
  await waitForStatus(skiff, demo, id, 'VERIFY_RESIZE')
  await fault('finishRevertMigration', id, 'old disk gone')
  await action(id, { revertResize: null })
  const s = await settled(id)
  assert.equal(s.status, 'ERROR')
  assert.equal(s.fault.message, 'old disk gone')
})

test('live migration: a failure at liveMigrate (source) → ACTIVE on the source, never stopped', async () => {
  const { id, host } = await server('f-live')
  await fault('liveMigrate', id, 'memory copy failed')
  assert.equal((await action(id, { 'os-migrateLive': { host: null, block_migration: 'auto' } }, admin)).statusCode, 202)
  const s = await asBefore(id, host)
  assert.equal(s.fault.message, 'memory copy failed')
  assert.equal((await migration(id)).status, 'error')
  // The destination dropped what it had prepared.
  assert.ok((await eventsOf(id, 'live-migration')).includes('compute_rollback_live_migration_at_destination:Success'))
})

test('live migration: a failure preparing the destination → ACTIVE on the source, never stopped', async () => {
  const { id, host } = await server('f-live-pre')
  await fault('preLiveMigration', id, 'destination cannot start the VM')
  assert.equal((await action(id, { 'os-migrateLive': { host: null, block_migration: 'auto' } }, admin)).statusCode, 202)
  const s = await asBefore(id, host)
  assert.equal(s.fault.message, 'destination cannot start the VM')
  assert.equal((await migration(id)).status, 'error')
  assert.deepEqual(await eventsOf(id, 'live-migration'), [
    'compute_check_can_live_migrate_source:Success',
    'compute_pre_live_migration:Error',
  ])
})

test('live migration: a failure at the destination → back on the source, running', async () => {
  const { id, host } = await server('f-live-dest')
  await fault('finishMigration', id, 'destination refused the guest')
  await action(id, { 'os-migrateLive': { host: null, block_migration: 'auto' } }, admin)
  await asBefore(id, host)
  assert.equal((await migration(id)).status, 'error')
})

test('evacuation: a failure to rebuild on the destination is ERROR (as Nova), migration failed', async () => {
  const { id, host } = await server('f-evac')
  const services = (await skiff.compute('GET', '/v2.1/os-services', { token: admin, headers: mv })).json().services
  const svc = services.find((x: { host: string }) => x.host === host)
  await skiff.compute('PUT', `/v2.1/os-services/${svc.id}`, { token: admin, headers: mv, body: { forced_down: true } })
  try {
    await fault('spawn', id, 'no room for the image')
    assert.equal((await action(id, { evacuate: {} }, admin)).statusCode, 200)
    const s = await settled(id)
    assert.equal(s.status, 'ERROR')
    assert.equal(s.fault.message, 'no room for the image')
    assert.equal((await migration(id)).status, 'failed')
  } finally {
    await skiff.compute('PUT', `/v2.1/os-services/${svc.id}`, { token: admin, headers: mv, body: { forced_down: false } })
  }
})
