// resize, confirmResize, revertResize on two simulated hosts (Nova's allow_resize_to_same_host
// is off, as its default): answers, states, the flavor the server shows, instance actions with
// Nova's event names, the migration record, policy, bad bodies, refusals, and auto-confirm
// after resize_confirm_window (the test's clock).
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
  skiff = await startTestSkiff({ simulatedHosts: 2, resizeConfirmWindowSeconds: 0 })
  ;[admin, demo, alt, reader] = await Promise.all([
    skiff.token('admin'),
    skiff.token('demo'),
    skiff.token('alt_demo'),
    skiff.token('reader_demo'),
  ])
})
after(() => skiff.close())

const action = (id: string, body: unknown, token = demo, headers: Record<string, string> = {}) =>
  skiff.compute('POST', `/v2.1/servers/${id}/action`, { token, body, headers })
const show = async (id: string, token = admin, mv = '2.1') =>
  (await skiff.compute('GET', `/v2.1/servers/${id}`, { token, headers: { 'openstack-api-version': `compute ${mv}` } })).json().server
const migrations = async (query = '', mv = '2.93') =>
  (
    await skiff.compute('GET', `/v2.1/os-migrations${query}`, { token: admin, headers: { 'openstack-api-version': `compute ${mv}` } })
  ).json().migrations as Record<string, unknown>[]
const events = async (id: string, name: string) => {
  const list = (await skiff.compute('GET', `/v2.1/servers/${id}/os-instance-actions`, { token: admin })).json().instanceActions
  const a = list.find((x: { action: string }) => x.action === name)
  assert.ok(a, `no ${name} action in ${JSON.stringify(list)}`)
  const detail = (
    await skiff.compute('GET', `/v2.1/servers/${id}/os-instance-actions/${a.request_id}`, {
      token: admin,
      headers: { 'openstack-api-version': 'compute 2.62' },
    })
  ).json().instanceAction
  return detail as { message: string | null; events: { event: string; result: string; host: string; traceback: string | null }[] }
}
const idle = (id: string) =>
  waitFor(`server ${id} without a task`, async () => {
    const s = await show(id)
    return s['OS-EXT-STS:task_state'] === null && !['RESIZE', 'REVERT_RESIZE', 'MIGRATING'].includes(s.status) ? s : undefined
  })

describe('resize to a larger flavor, then confirm', () => {
  test('RESIZE → VERIFY_RESIZE on the other host with the new flavor; confirm → ACTIVE; the old host is freed', async () => {
    const id = await activeServer(skiff, demo, 'grow')
    const before = await show(id)
    const source = before['OS-EXT-SRV-ATTR:host']
    const res = await action(id, { resize: { flavorRef: '2', 'OS-DCF:diskConfig': 'AUTO' } })
    assert.equal(res.statusCode, 202, res.body)
    assert.equal(res.body, '')
    const verify = await waitForStatus(skiff, demo, id, 'VERIFY_RESIZE')
    assert.equal(verify['OS-EXT-STS:vm_state'], 'resized')
    assert.equal(verify['OS-EXT-STS:power_state'], 1)
    assert.deepEqual(verify.flavor.id, '2')
    const admin247 = await show(id, admin, '2.47')
    assert.equal(admin247.flavor.original_name, 'm1.small')
    assert.equal(admin247.flavor.vcpus, 1)
    assert.notEqual(admin247['OS-EXT-SRV-ATTR:host'], source)
    // What the guest sees: the new flavor's memory and disk.
    assert.deepEqual(skiff.driver.size(id), { vcpus: 1, ramMb: 2048, diskGb: 20 })

    const [m] = await migrations(`?instance_uuid=${id}`)
    assert.equal(m!.status, 'finished')
    assert.equal(m!.migration_type, 'resize')
    assert.equal(m!.source_compute, source)
    assert.equal(m!.dest_compute, admin247['OS-EXT-SRV-ATTR:host'])
    assert.equal(m!.old_instance_type_id, 1)
    assert.equal(m!.new_instance_type_id, 2)
    assert.match(String(m!.uuid), /^[0-9a-f-]{36}$/)

    const resize = await events(id, 'resize')
    assert.deepEqual(resize.events.map((e) => [e.event, e.result]).sort(), [
      ['compute_finish_resize', 'Success'],
      ['compute_prep_resize', 'Success'],
      ['compute_resize_instance', 'Success'],
    ])
    assert.equal(resize.events.find((e) => e.event === 'compute_resize_instance')!.host, source)

    const confirm = await action(id, { confirmResize: null })
    assert.equal(confirm.statusCode, 204, confirm.body)
    const active = await waitForStatus(skiff, demo, id, 'ACTIVE')
    assert.equal(active.flavor.id, '2')
    const [done] = await migrations(`?instance_uuid=${id}`)
    assert.equal(done!.status, 'confirmed')
    assert.deepEqual(
      (await events(id, 'confirmResize')).events.map((e) => [e.event, e.result, e.host]),
      [['compute_confirm_resize', 'Success', source]],
    )
    // A second confirm: no resize waits.
    const again = await action(id, { confirmResize: null })
    assertFault('compute', again, 409)
    assert.equal(again.json().conflictingRequest.message, `Cannot 'confirmResize' instance ${id} while it is in vm_state active`)
  })

  test('a stopped server resized stays SHUTOFF after confirm', async () => {
    const id = await activeServer(skiff, demo, 'stopped-grow')
    await action(id, { 'os-stop': null })
    await waitForStatus(skiff, demo, id, 'SHUTOFF')
    assert.equal((await action(id, { resize: { flavorRef: 2 } })).statusCode, 202)
    const verify = await waitForStatus(skiff, demo, id, 'VERIFY_RESIZE')
    assert.equal(verify['OS-EXT-STS:power_state'], 4)
    assert.equal((await action(id, { confirmResize: null })).statusCode, 204)
    const off = await waitForStatus(skiff, demo, id, 'SHUTOFF')
    assert.equal(off.flavor.id, '2')
  })
})

describe('revert', () => {
  test('revertResize: REVERT_RESIZE → ACTIVE on the old host with the old flavor, figures back', async () => {
    const id = await activeServer(skiff, demo, 'revert')
    const source = (await show(id))['OS-EXT-SRV-ATTR:host']
    assert.equal((await action(id, { resize: { flavorRef: '3' } })).statusCode, 202)
    await waitForStatus(skiff, demo, id, 'VERIFY_RESIZE')
    assert.equal(skiff.driver.size(id)!.ramMb, 4096)
    const res = await action(id, { revertResize: null })
    assert.equal(res.statusCode, 202, res.body)
    const back = await waitForStatus(skiff, demo, id, 'ACTIVE')
    assert.equal(back.flavor.id, '1')
    assert.equal((await show(id))['OS-EXT-SRV-ATTR:host'], source)
    assert.deepEqual(skiff.driver.size(id), { vcpus: 1, ramMb: 512, diskGb: 1 })
    const [m] = await migrations(`?instance_uuid=${id}`)
    assert.equal(m!.status, 'reverted')
    assert.deepEqual((await events(id, 'revertResize')).events.map((e) => e.event).sort(), [
      'compute_finish_revert_resize',
      'compute_revert_resize',
    ])
    const none = await action(id, { revertResize: null })
    assertFault('compute', none, 409)
    assert.equal(none.json().conflictingRequest.message, `Cannot 'revertResize' instance ${id} while it is in vm_state active`)
  })
})

describe("Nova's refusals", () => {
  let id: string
  before(async () => {
    id = await activeServer(skiff, demo, 'refusals')
  })

  test('same flavor, unknown flavor, zero-disk flavor: 400 with Nova’s words', async () => {
    const same = await action(id, { resize: { flavorRef: '1' } })
    assertFault('compute', same, 400)
    assert.equal(same.json().badRequest.message, 'When resizing, instances must change flavor!')
    const unknown = await action(id, { resize: { flavorRef: '999' } })
    assertFault('compute', unknown, 400)
    assert.equal(unknown.json().badRequest.message, 'Flavor 999 could not be found.')
    const zero = await skiff.compute('POST', '/v2.1/flavors', {
      token: admin,
      body: { flavor: { name: 'zero-disk', ram: 512, vcpus: 1, disk: 0, id: 'zero-disk' } },
    })
    assert.equal(zero.statusCode, 200, zero.body)
    const res = await action(id, { resize: { flavorRef: 'zero-disk' } })
    assertFault('compute', res, 400)
    assert.equal(res.json().badRequest.message, 'Server disk was unable to be resized because: Resize to zero disk flavor is not allowed.')
    assert.equal((await show(id)).status, 'ACTIVE')
  })

  test('a smaller disk is refused by the hypervisor: back to ACTIVE, fault recorded, migration error', async () => {
    const small = await skiff.compute('POST', '/v2.1/flavors', {
      token: admin,
      body: { flavor: { name: 'more-ram-less-disk', ram: 1024, vcpus: 1, disk: 1, id: 'less-disk' } },
    })
    assert.equal(small.statusCode, 200, small.body)
    const big = await activeServer(skiff, demo, 'shrink', { flavorRef: '2' })
    assert.equal((await action(big, { resize: { flavorRef: 'less-disk' } })).statusCode, 202)
    const back = await idle(big)
    assert.equal(back.status, 'ACTIVE')
    assert.equal(back.flavor.id, '2')
    const fault = (await show(big)).fault
    assert.equal(fault?.message, 'Resize error: Unable to resize disk down.')
    const [m] = await migrations(`?instance_uuid=${big}`)
    assert.equal(m!.status, 'error')
    const ev = await events(big, 'resize')
    assert.equal(ev.message, 'Error')
    assert.equal(ev.events.find((e) => e.event === 'compute_resize_instance')!.result, 'Error')
  })

  test('bad bodies: 400 before the server is looked at', async () => {
    for (const body of [
      { resize: {} },
      { resize: { flavorRef: '' } },
      { resize: { flavorRef: '2', extra: 1 } },
      { resize: { flavorRef: '2', 'OS-DCF:diskConfig': 'SOMETIMES' } },
      { resize: null },
      { resize: 'm1.small' },
    ]) {
      const res = await action(id, body)
      assertFault('compute', res, 400, JSON.stringify(body))
    }
    const missing = await action(id, { resize: {} })
    assert.equal(
      missing.json().badRequest.message,
      "Invalid input for field/attribute resize. Value: {}. 'flavorRef' is a required property",
    )
  })

  test('policy: reader 403, another project 404, locked 409, wrong state 409', async () => {
    const r = await action(id, { resize: { flavorRef: '2' } }, reader)
    assertFault('compute', r, 403)
    assert.equal(r.json().forbidden.message, "Policy doesn't allow os_compute_api:servers:resize to be performed.")
    for (const body of [{ resize: { flavorRef: '2' } }, { confirmResize: null }, { revertResize: null }]) {
      const other = await action(id, body, alt)
      assertFault('compute', other, 404)
      assert.equal(other.json().itemNotFound.message, `Instance ${id} could not be found.`)
    }
    const rc = await action(id, { confirmResize: null }, reader)
    assert.equal(rc.json().forbidden.message, "Policy doesn't allow os_compute_api:servers:confirm_resize to be performed.")
    const rr = await action(id, { revertResize: null }, reader)
    assert.equal(rr.json().forbidden.message, "Policy doesn't allow os_compute_api:servers:revert_resize to be performed.")

    await skiff.compute('POST', `/v2.1/servers/${id}/action`, { token: admin, body: { lock: null } })
    const locked = await action(id, { resize: { flavorRef: '2' } })
    assertFault('compute', locked, 409)
    assert.equal(locked.json().conflictingRequest.message, `Instance ${id} is locked`)
    await skiff.compute('POST', `/v2.1/servers/${id}/action`, { token: admin, body: { unlock: null } })

    await action(id, { pause: null })
    await waitForStatus(skiff, demo, id, 'PAUSED')
    const paused = await action(id, { resize: { flavorRef: '2' } })
    assertFault('compute', paused, 409)
    assert.equal(paused.json().conflictingRequest.message, `Cannot 'resize' instance ${id} while it is in vm_state paused`)
    await action(id, { unpause: null })
    await waitForStatus(skiff, demo, id, 'ACTIVE')
  })

  test('quota: a resize over the cores quota is 403 with Nova’s message', async () => {
    const tight = await startTestSkiff({ simulatedHosts: 2, quotaCores: 2 })
    try {
      const token = await tight.token('demo')
      const flavor = await tight.compute('POST', '/v2.1/flavors', {
        token: await tight.token('admin'),
        body: { flavor: { name: 'four-cpu', ram: 512, vcpus: 4, disk: 1, id: 'four' } },
      })
      assert.equal(flavor.statusCode, 200)
      const sid = await activeServer(tight, token, 'quota')
      const res = await tight.compute('POST', `/v2.1/servers/${sid}/action`, { token, body: { resize: { flavorRef: 'four' } } })
      assertFault('compute', res, 403)
      assert.equal(res.json().forbidden.message, 'Quota exceeded for cores: Requested 3, but already used 1 of 2 cores')

      // Both over: one line, as Nova's TooManyInstances.
      const admin = await tight.token('admin')
      const big = await tight.compute('POST', '/v2.1/flavors', {
        token: admin,
        body: { flavor: { name: 'big', ram: 2048, vcpus: 4, disk: 1, id: 'big' } },
      })
      assert.equal(big.statusCode, 200)
      const server = (await tight.compute('GET', `/v2.1/servers/${sid}`, { token })).json().server
      const project = server.tenant_id as string
      const ram = await tight.compute('PUT', `/v2.1/os-quota-sets/${project}`, { token: admin, body: { quota_set: { ram: 1000 } } })
      assert.equal(ram.statusCode, 200, ram.body)
      const both = await tight.compute('POST', `/v2.1/servers/${sid}/action`, { token, body: { resize: { flavorRef: 'big' } } })
      assert.equal(both.statusCode, 403)
      assert.equal(
        both.json().forbidden.message,
        // m1.tiny: 1 vCPU, 512 MB.
        'Quota exceeded for cores, ram: Requested 3, 1536, but already used 1, 512 of 2, 1000 cores, ram',
      )

      // The user's own limit within the project counts too (Nova's check_deltas with the user).
      await tight.compute('PUT', `/v2.1/os-quota-sets/${project}`, { token: admin, body: { quota_set: { cores: 20, ram: -1 } } })
      const user = await tight.compute('PUT', `/v2.1/os-quota-sets/${project}?user_id=${server.user_id}`, {
        token: admin,
        body: { quota_set: { cores: 2 } },
      })
      assert.equal(user.statusCode, 200, user.body)
      const byUser = await tight.compute('POST', `/v2.1/servers/${sid}/action`, { token, body: { resize: { flavorRef: 'four' } } })
      assert.equal(byUser.statusCode, 403)
      assert.equal(byUser.json().forbidden.message, 'Quota exceeded for cores: Requested 3, but already used 1 of 2 cores')
    } finally {
      await tight.close()
    }
  })
})

describe('one host, allow_resize_to_same_host', () => {
  test('off (Nova’s default): no other host, the resize fails as Nova’s conductor does; on: it stays on its host', async () => {
    const one = await startTestSkiff({})
    try {
      const token = await one.token('demo')
      const id = await activeServer(one, token, 'alone')
      assert.equal(
        (await one.compute('POST', `/v2.1/servers/${id}/action`, { token, body: { resize: { flavorRef: '2' } } })).statusCode,
        202,
      )
      const s = await waitFor('the failed resize', async () => {
        const v = (await one.compute('GET', `/v2.1/servers/${id}`, { token: await one.token('admin') })).json().server
        return v.status === 'ACTIVE' && v['OS-EXT-STS:task_state'] === null && v.fault ? v : undefined
      })
      assert.equal(s.fault.message, 'No valid host was found. No valid host found for resize')
      assert.equal(s.flavor.id, '1')
      const list = (await one.compute('GET', '/v2.1/os-migrations', { token: await one.token('admin') })).json().migrations
      assert.equal(list[0].status, 'error')
      assert.equal(list[0].dest_compute, null)
    } finally {
      await one.close()
    }
    const same = await startTestSkiff({ allowResizeToSameHost: true })
    try {
      const token = await same.token('demo')
      const id = await activeServer(same, token, 'same-host')
      assert.equal(
        (await same.compute('POST', `/v2.1/servers/${id}/action`, { token, body: { resize: { flavorRef: '2' } } })).statusCode,
        202,
      )
      await waitForStatus(same, token, id, 'VERIFY_RESIZE')
      assert.equal((await same.compute('POST', `/v2.1/servers/${id}/action`, { token, body: { revertResize: null } })).statusCode, 202)
      const back = await waitForStatus(same, token, id, 'ACTIVE')
      assert.equal(back.flavor.id, '1')
      assert.equal(same.driver.size(id)!.ramMb, 512)
      assert.equal(
        (await same.compute('POST', `/v2.1/servers/${id}/action`, { token, body: { resize: { flavorRef: '2' } } })).statusCode,
        202,
      )
      await waitForStatus(same, token, id, 'VERIFY_RESIZE')
      assert.equal((await same.compute('POST', `/v2.1/servers/${id}/action`, { token, body: { confirmResize: null } })).statusCode, 204)
      const grown = await waitForStatus(same, token, id, 'ACTIVE')
      assert.equal(grown.flavor.id, '2')
      assert.equal(same.driver.size(id)!.ramMb, 2048)
    } finally {
      await same.close()
    }
  })
})

describe('auto-confirm (resize_confirm_window)', () => {
  test('a resize waiting longer than the window is confirmed by Skiff; not before', async () => {
    const auto = await startTestSkiff({ simulatedHosts: 2, resizeConfirmWindowSeconds: 600 })
    try {
      const token = await auto.token('demo')
      const id = await activeServer(auto, token, 'auto')
      assert.equal(
        (await auto.compute('POST', `/v2.1/servers/${id}/action`, { token, body: { resize: { flavorRef: '2' } } })).statusCode,
        202,
      )
      await waitForStatus(auto, token, id, 'VERIFY_RESIZE')
      await auto.clock.advance(599_000)
      assert.equal((await auto.compute('GET', `/v2.1/servers/${id}`, { token })).json().server.status, 'VERIFY_RESIZE')
      await auto.clock.advance(2_000)
      const active = await waitForStatus(auto, token, id, 'ACTIVE')
      assert.equal(active.flavor.id, '2')
      const list = (await auto.compute('GET', `/v2.1/servers/${id}/os-instance-actions`, { token: await auto.token('admin') })).json()
        .instanceActions
      const confirm = list.find((a: { action: string }) => a.action === 'confirmResize')
      assert.equal(confirm.user_id, 'skiff-resize-confirm-window')
    } finally {
      await auto.close()
    }
  })
})

describe('room held by a move (placement)', () => {
  test('VERIFY_RESIZE holds the old flavor on the source and the new one on the destination; a delete frees both', async () => {
    // Two hosts of 2100 MB: m1.tiny 512, m1.small 2048.
    const tight = await startTestSkiff({ simulatedHosts: 2, hostRamMb: 2100 })
    try {
      const token = await tight.token('demo')
      const admin = await tight.token('admin')
      const create = async (name: string) => {
        const res = await tight.compute('POST', '/v2.1/servers', {
          token,
          body: { server: { name, imageRef: await tight.imageId('skiff-base'), flavorRef: '2' } },
        })
        const id = res.json().server.id as string
        return waitFor(`${name} settled`, async () => {
          const s = (await tight.compute('GET', `/v2.1/servers/${id}`, { token: admin })).json().server
          return s.status === 'ACTIVE' || s.status === 'ERROR' ? s : undefined
        })
      }
      const id = await activeServer(tight, token, 'mover')
      assert.equal(
        (await tight.compute('POST', `/v2.1/servers/${id}/action`, { token, body: { resize: { flavorRef: '2' } } })).statusCode,
        202,
      )
      await waitForStatus(tight, token, id, 'VERIFY_RESIZE')
      // The source still holds the old 512 MB until confirm or revert: no host has 2048 MB free.
      const refused = await create('no-room')
      assert.equal(refused.status, 'ERROR')
      assert.match(refused.fault.message, /No valid host was found/)
      assert.equal((await tight.compute('DELETE', `/v2.1/servers/${refused.id}`, { token })).statusCode, 204)
      assert.equal((await tight.compute('DELETE', `/v2.1/servers/${id}`, { token })).statusCode, 204)
      await waitFor(
        'the resized server gone',
        async () => (await tight.compute('GET', `/v2.1/servers/${id}`, { token })).statusCode === 404,
      )
      // Both hosts are free again: one m1.small on each.
      assert.equal((await create('one')).status, 'ACTIVE')
      assert.equal((await create('two')).status, 'ACTIVE')
    } finally {
      await tight.close()
    }
  })
})
