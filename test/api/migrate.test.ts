// migrate (cold), os-migrateLive, evacuate between two simulated hosts, and the migrations APIs
// (os-migrations, /servers/{id}/migrations) per microversion; admin only, as Nova's defaults.
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { assertFault } from '../helpers/faults.ts'
import { activeServer, startTestSkiff, waitFor, waitForStatus, type TestSkiff } from '../helpers/skiff.ts'

let skiff: TestSkiff
let admin: string
let demo: string
let alt: string
let reader: string

before(async () => {
  skiff = await startTestSkiff({ simulatedHosts: 2 })
  ;[admin, demo, alt, reader] = await Promise.all([
    skiff.token('admin'),
    skiff.token('demo'),
    skiff.token('alt_demo'),
    skiff.token('reader_demo'),
  ])
})
after(() => skiff.close())

const mv = (v: string) => ({ 'openstack-api-version': `compute ${v}` })
const action = (id: string, body: unknown, token = admin, version = '2.93') =>
  skiff.compute('POST', `/v2.1/servers/${id}/action`, { token, body, headers: mv(version) })
const hostOf = async (id: string) =>
  (await skiff.compute('GET', `/v2.1/servers/${id}`, { token: admin })).json().server['OS-EXT-SRV-ATTR:host']
const migrations = async (query = '', version = '2.93') => {
  const res = await skiff.compute('GET', `/v2.1/os-migrations${query}`, { token: admin, headers: mv(version) })
  assert.equal(res.statusCode, 200, res.body)
  return res.json() as { migrations: Record<string, unknown>[]; migrations_links?: { rel: string; href: string }[] }
}
const eventsOf = async (id: string, name: string) => {
  const list = (await skiff.compute('GET', `/v2.1/servers/${id}/os-instance-actions`, { token: admin })).json().instanceActions
  const a = list.find((x: { action: string }) => x.action === name)
  assert.ok(a, `no ${name} action`)
  return (await skiff.compute('GET', `/v2.1/servers/${id}/os-instance-actions/${a.request_id}`, { token: admin })).json().instanceAction
    .events as { event: string; result: string }[]
}

describe('cold migration', () => {
  test('admin: RESIZE → VERIFY_RESIZE on the other host, same flavor; confirm; the guest kept its password', async () => {
    const res0 = await skiff.compute('POST', '/v2.1/servers', {
      token: demo,
      body: { server: { name: 'cold', imageRef: await skiff.imageId('skiff-base'), flavorRef: '1', adminPass: 'Before-Move1' } },
    })
    const id = res0.json().server.id as string
    await waitForStatus(skiff, demo, id, 'ACTIVE')
    const source = await hostOf(id)
    const res = await action(id, { migrate: null })
    assert.equal(res.statusCode, 202, res.body)
    const verify = await waitForStatus(skiff, demo, id, 'VERIFY_RESIZE')
    assert.equal(verify.flavor.id, '1')
    const dest = await hostOf(id)
    assert.notEqual(dest, source)
    assert.equal(skiff.driver.canLogin(id, 'Before-Move1'), true)
    const m = (await migrations(`?instance_uuid=${id}`)).migrations[0]!
    assert.equal(m.migration_type, 'migration')
    assert.equal(m.old_instance_type_id, m.new_instance_type_id)
    assert.deepEqual((await eventsOf(id, 'migrate')).map((e) => e.event).sort(), [
      'compute_finish_resize',
      'compute_prep_resize',
      'compute_resize_instance',
    ])
    assert.equal((await action(id, { confirmResize: null }, demo)).statusCode, 204)
    await waitForStatus(skiff, demo, id, 'ACTIVE')
    assert.equal(await hostOf(id), dest)
  })

  test('2.56: to a named host; the same host or an unknown one is 400; below 2.56 the body is not read', async () => {
    const id = await activeServer(skiff, demo, 'cold-host')
    const source = await hostOf(id)
    const same = await action(id, { migrate: { host: source } })
    assertFault('compute', same, 400)
    assert.equal(same.json().badRequest.message, 'Cannot migrate to the host where the server exists.')
    const unknown = await action(id, { migrate: { host: 'nowhere' } })
    assertFault('compute', unknown, 400)
    assert.equal(unknown.json().badRequest.message, 'Compute host nowhere could not be found.')
    const bad = await action(id, { migrate: { host: 'x', extra: 1 } })
    assertFault('compute', bad, 400)
    const other = source.endsWith('-1') ? source.replace(/-1$/, '-2') : source.replace(/-2$/, '-1')
    assert.equal((await action(id, { migrate: { host: other } })).statusCode, 202)
    await waitForStatus(skiff, demo, id, 'VERIFY_RESIZE')
    assert.equal(await hostOf(id), other)
    assert.equal((await action(id, { revertResize: null }, demo)).statusCode, 202)
    await waitForStatus(skiff, demo, id, 'ACTIVE')
    assert.equal(await hostOf(id), source)
    // 2.55: whatever the body says (Nova has no schema there), a plain migration.
    assert.equal((await action(id, { migrate: { whatever: true } }, admin, '2.55')).statusCode, 202)
    await waitForStatus(skiff, demo, id, 'VERIFY_RESIZE')
  })

  test('policy: member and reader 403, another project 404 (before the policy)', async () => {
    const id = await activeServer(skiff, demo, 'cold-policy')
    for (const [token, status] of [
      [demo, 403],
      [reader, 403],
      [alt, 404],
    ] as const) {
      const res = await action(id, { migrate: null }, token)
      assertFault('compute', res, status)
      if (status === 403) {
        assert.equal(res.json().forbidden.message, "Policy doesn't allow os_compute_api:os-migrate-server:migrate to be performed.")
      }
    }
    const withHost = await action(id, { migrate: { host: 'skiff-1-1' } }, demo)
    assert.equal(withHost.json().forbidden.message, "Policy doesn't allow os_compute_api:os-migrate-server:migrate:host to be performed.")
  })
})

describe('live migration', () => {
  test('MIGRATING → ACTIVE on the other host, never stopped; the migration completed', async () => {
    const id = await activeServer(skiff, demo, 'live')
    const source = await hostOf(id)
    const bootsBefore = (await skiff.driver.consoleOutput(id)).match(/booting/g)!.length
    const res = await action(id, { 'os-migrateLive': { host: null, block_migration: 'auto' } })
    assert.equal(res.statusCode, 202, res.body)
    const s = await waitFor('live migration', async () => {
      const v = (await skiff.compute('GET', `/v2.1/servers/${id}`, { token: admin })).json().server
      return v.status === 'ACTIVE' && v['OS-EXT-SRV-ATTR:host'] !== source && v['OS-EXT-STS:task_state'] === null ? v : undefined
    })
    assert.equal(s['OS-EXT-STS:power_state'], 1)
    // The guest was not booted again: it moved running.
    assert.equal((await skiff.driver.consoleOutput(id)).match(/booting/g)!.length, bootsBefore)
    const m = (await migrations(`?instance_uuid=${id}&migration_type=live-migration`)).migrations[0]!
    assert.equal(m.status, 'completed')
    assert.equal(m.links, undefined)
    const events = (await eventsOf(id, 'live-migration')).map((e) => [e.event, e.result])
    assert.deepEqual(events.map((e) => e[0]).sort(), [
      'compute_check_can_live_migrate_source',
      'compute_live_migration',
      'compute_live_migration_cleanup',
      'compute_post_live_migration_at_destination',
      'compute_pre_live_migration',
    ])
    assert.ok(events.every((e) => e[1] === 'Success'))
  })

  test('bodies per microversion: disk_over_commit below 2.25, auto from 2.25, force 2.30–2.67, to self 400', async () => {
    const id = await activeServer(skiff, demo, 'live-bodies')
    const host = await hostOf(id)
    const old = await action(id, { 'os-migrateLive': { host: null, block_migration: 'auto', disk_over_commit: false } }, admin, '2.24')
    assertFault('compute', old, 400)
    const missing = await action(id, { 'os-migrateLive': { host: null, block_migration: false } }, admin, '2.1')
    assertFault('compute', missing, 400)
    assert.match(missing.json().badRequest.message, /'disk_over_commit' is a required property/)
    const gone = await action(id, { 'os-migrateLive': { host: null, block_migration: 'auto', disk_over_commit: false } }, admin, '2.25')
    assertFault('compute', gone, 400)
    const noForce = await action(id, { 'os-migrateLive': { host: null, block_migration: 'auto', force: true } }, admin, '2.68')
    assertFault('compute', noForce, 400)
    const forceNoHost = await action(id, { 'os-migrateLive': { host: null, block_migration: 'auto', force: true } }, admin, '2.30')
    assertFault('compute', forceNoHost, 400)
    assert.equal(forceNoHost.json().badRequest.message, "Can't force to a non-provided destination")
    const self = await action(id, { 'os-migrateLive': { host, block_migration: 'auto' } })
    assertFault('compute', self, 400)
    assert.equal(self.json().badRequest.message, `Unable to migrate instance (${id}) to current host (${host}).`)
    const member = await action(id, { 'os-migrateLive': { host: null, block_migration: 'auto' } }, demo)
    assertFault('compute', member, 403)
    assert.equal(member.json().forbidden.message, "Policy doesn't allow os_compute_api:os-migrate-server:migrate_live to be performed.")
    assert.equal(await hostOf(id), host)
  })
})

describe('a live migration under way: abort and force_complete', () => {
  const inject = async (fault: Record<string, unknown>) => {
    const res = await skiff.compute('POST', '/v2.1/os-simulator/faults', { token: admin, body: { fault } })
    assert.equal(res.statusCode, 201, res.body)
  }
  const liveMigration = async (id: string) => (await migrations(`?instance_uuid=${id}&migration_type=live-migration`)).migrations[0]!
  /** A live migration of a new server, held in `status` (the simulated copy hangs; the destination prepares slowly). */
  const held = async (name: string, status: 'running' | 'preparing') => {
    const id = await activeServer(skiff, demo, name)
    if (status === 'running') await inject({ operation: 'liveMigrate', server_id: id, hang: true, count: 1 })
    else await inject({ operation: 'preLiveMigration', server_id: id, delay_ms: 1500, count: 1 })
    const source = await hostOf(id)
    assert.equal((await action(id, { 'os-migrateLive': { host: null, block_migration: 'auto' } })).statusCode, 202)
    const m = await waitFor(`migration ${status}`, async () => {
      const x = await liveMigration(id)
      return x?.status === status ? x : undefined
    })
    return { id, source, migrationId: m.id as number }
  }
  const abort = (id: string, mid: number | string, version = '2.24') =>
    skiff.compute('DELETE', `/v2.1/servers/${id}/migrations/${mid}`, { token: admin, headers: mv(version) })
  const forceComplete = (id: string, mid: number | string, version = '2.22') =>
    skiff.compute('POST', `/v2.1/servers/${id}/migrations/${mid}/action`, {
      token: admin,
      headers: mv(version),
      body: { force_complete: null },
    })
  const settledOn = (id: string, host: string) =>
    waitFor(`ACTIVE on ${host}`, async () => {
      const v = (await skiff.compute('GET', `/v2.1/servers/${id}`, { token: admin })).json().server
      return v.status === 'ACTIVE' && v['OS-EXT-STS:task_state'] === null && v['OS-EXT-SRV-ATTR:host'] === host ? v : undefined
    })

  test('abort while the copy runs: the guest runs on its source, the migration cancelled, no fault', async () => {
    const { id, source, migrationId } = await held('abort-running', 'running')
    const bootsBefore = (await skiff.driver.consoleOutput(id)).match(/booting/g)!.length
    const res = await abort(id, migrationId)
    assert.equal(res.statusCode, 202, res.body)
    assert.equal(res.body, '')
    const s = await settledOn(id, source)
    assert.equal(s['OS-EXT-STS:power_state'], 1)
    assert.equal(s.fault, undefined)
    assert.equal((await skiff.driver.consoleOutput(id)).match(/booting/g)!.length, bootsBefore, 'never booted again')
    const m = await liveMigration(id)
    assert.equal(m.status, 'cancelled')
    assert.deepEqual(
      (await eventsOf(id, 'live_migration_cancel')).map((e) => [e.event, e.result]),
      [['compute_live_migration_abort', 'Success']],
    )
    // Done: the migration is no longer under way.
    const again = await abort(id, migrationId)
    assertFault('compute', again, 409)
    assert.equal(again.json().conflictingRequest.message, `Cannot 'abort live migration' instance ${id} while it is in task_state None`)
  })

  test('force_complete while the copy runs: the copy ends, the guest runs on the destination', async () => {
    const { id, source, migrationId } = await held('force-running', 'running')
    // Under way: the copy's progress as the source's agent saved it (flavor 1: 512 MB, 1 GB).
    const shown = await waitFor('progress saved', async () => {
      const res = await skiff.compute('GET', `/v2.1/servers/${id}/migrations/${migrationId}`, { token: admin, headers: mv('2.23') })
      const m = res.json().migration
      return m.memory_total_bytes !== null ? m : undefined
    })
    assert.deepEqual(
      [shown.memory_total_bytes, shown.memory_remaining_bytes, shown.disk_total_bytes, shown.disk_processed_bytes],
      [512 * 2 ** 20, 512 * 2 ** 20, 2 ** 30, 0],
    )
    const res = await forceComplete(id, migrationId)
    assert.equal(res.statusCode, 202, res.body)
    const s = await waitFor('moved', async () => {
      const v = (await skiff.compute('GET', `/v2.1/servers/${id}`, { token: admin })).json().server
      return v.status === 'ACTIVE' && v['OS-EXT-STS:task_state'] === null && v['OS-EXT-SRV-ATTR:host'] !== source ? v : undefined
    })
    assert.equal(s['OS-EXT-STS:power_state'], 1)
    assert.match(await skiff.driver.consoleOutput(id), /the guest paused to complete the copy/)
    assert.equal((await liveMigration(id)).status, 'completed')
    assert.deepEqual(
      (await eventsOf(id, 'live_migration_force_complete')).map((e) => [e.event, e.result]),
      [['compute_live_migration_force_complete', 'Success']],
    )
  })

  test("before the copy (preparing): Nova's 400s; from 2.65 an abort ends it at its next step", async () => {
    const { id, source, migrationId } = await held('abort-preparing', 'preparing')
    const old = await abort(id, migrationId)
    assertFault('compute', old, 400)
    assert.equal(
      old.json().badRequest.message,
      `Migration ${migrationId} state of instance ${id} is preparing. Cannot abort live migration while the migration is in this state.`,
    )
    const fc = await forceComplete(id, migrationId)
    assertFault('compute', fc, 400)
    assert.equal(
      fc.json().badRequest.message,
      `Migration ${migrationId} state of instance ${id} is preparing. Cannot force complete while the migration is in this state.`,
    )
    // Not found: a 400 for force_complete, a 404 for an abort (Nova's API).
    const fcMissing = await forceComplete(id, 999999)
    assertFault('compute', fcMissing, 400)
    assert.equal(fcMissing.json().badRequest.message, `Migration 999999 not found for instance ${id}`)
    const abortMissing = await abort(id, 999999)
    assertFault('compute', abortMissing, 404)
    assert.equal(abortMissing.json().itemNotFound.message, `Migration 999999 not found for instance ${id}`)
    assert.equal((await abort(id, migrationId, '2.65')).statusCode, 202)
    const s = await settledOn(id, source)
    assert.equal(s.fault, undefined)
    assert.equal((await liveMigration(id)).status, 'cancelled')
  })
})

describe('os-migrations and /servers/{id}/migrations', () => {
  test('fields per microversion, filters, paging (2.59), user and project (2.80); admin only', async () => {
    const id = await activeServer(skiff, demo, 'listed')
    await action(id, { migrate: null })
    await waitForStatus(skiff, demo, id, 'VERIFY_RESIZE')
    const v21 = (await migrations(`?instance_uuid=${id}`, '2.1')).migrations[0]! as Record<string, unknown> & { id: number }
    assert.deepEqual(Object.keys(v21).sort(), [
      'created_at',
      'dest_compute',
      'dest_host',
      'dest_node',
      'id',
      'instance_uuid',
      'new_instance_type_id',
      'old_instance_type_id',
      'source_compute',
      'source_node',
      'status',
      'updated_at',
    ])
    assert.match(String(v21.created_at), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$/)
    assert.ok(Object.keys((await migrations(`?instance_uuid=${id}`, '2.23')).migrations[0]!).includes('migration_type'))
    const v259 = (await migrations(`?instance_uuid=${id}`, '2.59')).migrations[0]!
    assert.ok('uuid' in v259 && !('user_id' in v259))
    const v280 = (await migrations(`?instance_uuid=${id}`, '2.80')).migrations[0]!
    assert.equal(v280.project_id, (await skiff.compute('GET', `/v2.1/servers/${id}`, { token: demo })).json().server.tenant_id)
    assert.ok(typeof v280.user_id === 'string')
    assert.equal((await migrations(`?project_id=nope`, '2.80')).migrations.length, 0)
    assert.ok((await migrations(`?status=finished&migration_type=migration`)).migrations.some((m) => m.instance_uuid === id))
    assert.equal((await migrations(`?status=finished&migration_type=live-migration&instance_uuid=${id}`)).migrations.length, 0)
    // Paging: newest first, `limit`, a `next` link, a marker by uuid; an unknown marker is 400.
    const page = await migrations('?limit=1', '2.59')
    assert.equal(page.migrations.length, 1)
    assert.match(page.migrations_links![0]!.href, /\/v2\.1\/os-migrations\?limit=1&marker=[0-9a-f-]{36}$/)
    const next = await migrations(`?limit=1&marker=${String(page.migrations[0]!.uuid)}`, '2.59')
    assert.ok((next.migrations[0]!.id as number) < (page.migrations[0]!.id as number))
    const badMarker = await skiff.compute('GET', '/v2.1/os-migrations?marker=nope', { token: admin, headers: mv('2.59') })
    assertFault('compute', badMarker, 400)
    assert.equal(badMarker.json().badRequest.message, 'Marker nope could not be found.')
    const unknownParam = await skiff.compute('GET', '/v2.1/os-migrations?foo=1', { token: admin, headers: mv('2.59') })
    assertFault('compute', unknownParam, 400)
    assert.equal((await skiff.compute('GET', '/v2.1/os-migrations?foo=1', { token: admin, headers: mv('2.58') })).statusCode, 200)
    for (const token of [demo, reader]) {
      const res = await skiff.compute('GET', '/v2.1/os-migrations', { token })
      assertFault('compute', res, 403)
      assert.equal(res.json().forbidden.message, "Policy doesn't allow os_compute_api:os-migrations:index to be performed.")
    }
    // A server's migrations list only live migrations under way: none here.
    const list = await skiff.compute('GET', `/v2.1/servers/${id}/migrations`, { token: admin, headers: mv('2.23') })
    assert.equal(list.statusCode, 200, list.body)
    assert.deepEqual(list.json(), { migrations: [] })
    const show = await skiff.compute('GET', `/v2.1/servers/${id}/migrations/${v21.id}`, { token: admin, headers: mv('2.23') })
    assertFault('compute', show, 404)
    assert.equal(show.json().itemNotFound.message, `Migration ${v21.id} for server ${id} is not live-migration.`)
    const fc = await skiff.compute('POST', `/v2.1/servers/${id}/migrations/${v21.id}/action`, {
      token: admin,
      headers: mv('2.22'),
      body: { force_complete: null },
    })
    assertFault('compute', fc, 409)
    assert.equal(fc.json().conflictingRequest.message, `Cannot 'force_complete' instance ${id} while it is in vm_state resized`)
    const abort = await skiff.compute('DELETE', `/v2.1/servers/${id}/migrations/${v21.id}`, { token: admin, headers: mv('2.24') })
    assertFault('compute', abort, 409)
    for (const [token, status] of [
      [demo, 403],
      [alt, 404],
    ] as const) {
      assertFault('compute', await skiff.compute('GET', `/v2.1/servers/${id}/migrations`, { token, headers: mv('2.23') }), status)
    }
  })
})

describe('evacuate', () => {
  test('refused while the host is up (400); once forced down: REBUILD on the other host from the image, new password below 2.14', async () => {
    const id = await activeServer(skiff, demo, 'evac')
    const source = await hostOf(id)
    const up = await action(id, { evacuate: {} })
    assertFault('compute', up, 400)
    assert.equal(up.json().badRequest.message, `Compute service of ${source} is still in use.`)
    const member = await action(id, { evacuate: {} }, demo)
    assertFault('compute', member, 403)
    assert.equal(member.json().forbidden.message, "Policy doesn't allow os_compute_api:os-evacuate to be performed.")
    const missing = await action(id, { evacuate: {} }, admin, '2.13')
    assertFault('compute', missing, 400)
    assert.match(missing.json().badRequest.message, /'onSharedStorage' is a required property/)
    const sameHost = await action(id, { evacuate: { host: source } })
    assertFault('compute', sameHost, 400)
    assert.equal(sameHost.json().badRequest.message, "The target host can't be the same one.")
    const noHost = await action(id, { evacuate: { host: 'nowhere' } })
    assertFault('compute', noHost, 404)
    assert.equal(noHost.json().itemNotFound.message, 'Compute host nowhere not found.')

    const services = (await skiff.compute('GET', '/v2.1/os-services', { token: admin, headers: mv('2.53') })).json().services
    const svc = services.find((x: { host: string }) => x.host === source)
    const down = await skiff.compute('PUT', `/v2.1/os-services/${svc.id}`, {
      token: admin,
      headers: mv('2.53'),
      body: { forced_down: true },
    })
    assert.equal(down.statusCode, 200, down.body)
    try {
      const shared = await action(id, { evacuate: { onSharedStorage: true, adminPass: 'x' } }, admin, '2.13')
      assertFault('compute', shared, 400)
      assert.equal(shared.json().badRequest.message, "admin password can't be changed on existing disk")
      const res = await action(id, { evacuate: { onSharedStorage: false, adminPass: 'After-Evac1' } }, admin, '2.13')
      assert.equal(res.statusCode, 200, res.body)
      assert.deepEqual(res.json(), { adminPass: 'After-Evac1' })
      const s = await waitFor('evacuation', async () => {
        const v = (await skiff.compute('GET', `/v2.1/servers/${id}`, { token: admin })).json().server
        return v.status === 'ACTIVE' && v['OS-EXT-STS:task_state'] === null ? v : undefined
      })
      assert.notEqual(s['OS-EXT-SRV-ATTR:host'], source)
      assert.equal(skiff.driver.canLogin(id, 'After-Evac1'), true)
      const m = (await migrations(`?instance_uuid=${id}&migration_type=evacuation`)).migrations[0]!
      assert.equal(m.status, 'done')
      assert.deepEqual(
        (await eventsOf(id, 'evacuate')).map((e) => [e.event, e.result]),
        [['compute_rebuild_instance', 'Success']],
      )
    } finally {
      await skiff.compute('PUT', `/v2.1/os-services/${svc.id}`, { token: admin, headers: mv('2.53'), body: { forced_down: false } })
    }
    // From 2.14 the answer has no body.
    const id2 = await activeServer(skiff, demo, 'evac2')
    const src2 = await hostOf(id2)
    const svc2 = services.find((x: { host: string }) => x.host === src2)
    await skiff.compute('PUT', `/v2.1/os-services/${svc2.id}`, { token: admin, headers: mv('2.53'), body: { forced_down: true } })
    try {
      const res = await action(id2, { evacuate: {} }, admin, '2.14')
      assert.equal(res.statusCode, 200, res.body)
      assert.equal(res.body, '')
      await waitFor('evacuation 2', async () => (await hostOf(id2)) !== src2 || undefined)
      await waitForStatus(skiff, demo, id2, 'ACTIVE')
    } finally {
      await skiff.compute('PUT', `/v2.1/os-services/${svc2.id}`, { token: admin, headers: mv('2.53'), body: { forced_down: false } })
    }
  })
})
