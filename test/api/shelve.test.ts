// suspend/resume, createImage/createBackup and shelve/shelveOffload/unshelve through the simulated
// driver, as Nova answers them: states passed through, instance actions and events, the images
// they make (real images of the image service, which boot), Nova's refusals word for word,
// policy, malformed bodies, backup rotation, shelved_offload_time, and a failure at each phase.
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { activeServer, startTestSkiff, waitFor, waitForStatus, type TestSkiff } from '../helpers/skiff.ts'

let skiff: TestSkiff
let demo: string
let admin: string
let reader: string
let alt: string

before(async () => {
  skiff = await startTestSkiff()
  demo = await skiff.token('demo')
  admin = await skiff.token('admin')
  reader = await skiff.token('reader_demo')
  alt = await skiff.token('alt_demo')
})
after(() => skiff.close())

const action = (s: TestSkiff, id: string, body: unknown, token = demo, version?: string) =>
  s.compute('POST', `/v2.1/servers/${id}/action`, {
    token,
    body,
    ...(version ? { headers: { 'OpenStack-API-Version': `compute ${version}` } } : {}),
  })
const show = async (s: TestSkiff, id: string, token = demo) => (await s.compute('GET', `/v2.1/servers/${id}`, { token })).json().server
const image = async (s: TestSkiff, id: string, token = demo) =>
  s.apps.image.inject({ method: 'GET', url: `/v2/images/${id}`, headers: { 'x-auth-token': token } })
const inject = async (s: TestSkiff, fault: Record<string, unknown>) => {
  const res = await s.compute('POST', '/v2.1/os-simulator/faults', { token: admin, body: { fault } })
  assert.equal(res.statusCode, 201, res.body)
}
const actions = async (s: TestSkiff, id: string, token = demo) =>
  (await s.compute('GET', `/v2.1/servers/${id}/os-instance-actions`, { token })).json().instanceActions as {
    action: string
    request_id: string
    message: string | null
  }[]
const events = async (s: TestSkiff, id: string, requestId: string, token = admin) =>
  (await s.compute('GET', `/v2.1/servers/${id}/os-instance-actions/${requestId}`, { token })).json().instanceAction.events as {
    event: string
    result: string | null
  }[]
const lastEvent = async (s: TestSkiff, id: string, token = demo) => {
  const [a] = await actions(s, id, token)
  return { action: a!, events: await events(s, id, a!.request_id, s === skiff ? admin : await s.token('admin')) }
}
const conflict = (res: { statusCode: number; json: () => unknown }, message: string) => {
  assert.equal(res.statusCode, 409)
  assert.deepEqual(res.json(), { conflictingRequest: { code: 409, message } })
}
const activeImage = (s: TestSkiff, id: string) =>
  waitFor(`image ${id} active`, async () => {
    const res = await image(s, id)
    return res.statusCode === 200 && res.json().status === 'active' ? (res.json() as Record<string, unknown> & { size: number }) : undefined
  })

describe('suspend and resume', () => {
  test('ACTIVE → SUSPENDED (power 7) → ACTIVE, the same boot going on; actions and events as Nova', async () => {
    const id = await activeServer(skiff, demo, 'sus')
    const boots = skiff.driver.bootCount(id)
    const res = await action(skiff, id, { suspend: null })
    assert.equal(res.statusCode, 202)
    assert.equal(res.body, '')
    const suspended = await waitForStatus(skiff, demo, id, 'SUSPENDED')
    assert.equal(suspended['OS-EXT-STS:vm_state'], 'suspended')
    assert.equal(suspended['OS-EXT-STS:power_state'], 7)
    let last = await lastEvent(skiff, id)
    assert.equal(last.action.action, 'suspend')
    assert.deepEqual(
      last.events.map((e) => [e.event, e.result]),
      [['compute_suspend_instance', 'Success']],
    )

    // Nova's refusals from SUSPENDED.
    conflict(await action(skiff, id, { suspend: null }), `Cannot 'suspend' instance ${id} while it is in vm_state suspended`)
    conflict(await action(skiff, id, { rescue: null }), `Cannot 'rescue' instance ${id} while it is in vm_state suspended`)
    conflict(await action(skiff, id, { pause: null }), `Cannot 'pause' instance ${id} while it is in vm_state suspended`)

    assert.equal((await action(skiff, id, { resume: null })).statusCode, 202)
    const active = await waitForStatus(skiff, demo, id, 'ACTIVE')
    assert.equal(active['OS-EXT-STS:power_state'], 1)
    assert.equal(skiff.driver.bootCount(id), boots, 'resume continues the boot: no new one')
    last = await lastEvent(skiff, id)
    assert.equal(last.action.action, 'resume')
    assert.deepEqual(
      last.events.map((e) => e.event),
      ['compute_resume_instance'],
    )
    conflict(await action(skiff, id, { resume: null }), `Cannot 'resume' instance ${id} while it is in vm_state active`)
  })

  test('policy: a reader 403, another project 404, a locked server 409 (not for admins)', async () => {
    const id = await activeServer(skiff, demo, 'sus-policy')
    const r = await action(skiff, id, { suspend: null }, reader)
    assert.equal(r.statusCode, 403)
    assert.deepEqual(r.json(), {
      forbidden: { code: 403, message: "Policy doesn't allow os_compute_api:os-suspend-server:suspend to be performed." },
    })
    const other = await action(skiff, id, { suspend: null }, alt)
    assert.equal(other.statusCode, 404)
    assert.deepEqual(other.json(), { itemNotFound: { code: 404, message: `Instance ${id} could not be found.` } })
    assert.equal((await action(skiff, id, { lock: null })).statusCode, 202)
    conflict(await action(skiff, id, { suspend: null }), `Instance ${id} is locked`)
    assert.equal((await action(skiff, id, { suspend: null }, admin)).statusCode, 202)
    await waitForStatus(skiff, demo, id, 'SUSPENDED')
  })

  test('a failed suspend leaves it ACTIVE and running, a failed resume SUSPENDED; the fault recorded', async () => {
    const id = await activeServer(skiff, demo, 'sus-fail')
    await inject(skiff, { operation: 'suspend', server_id: id, error: 'cannot save memory', count: 1 })
    await action(skiff, id, { suspend: null })
    const back = await waitFor('fault', async () => {
      const s = await show(skiff, id)
      return s.fault && s['OS-EXT-STS:task_state'] === null ? s : undefined
    })
    assert.equal(back.status, 'ACTIVE')
    assert.equal(back['OS-EXT-STS:power_state'], 1)
    assert.equal(back.fault.message, 'cannot save memory')
    assert.equal((await lastEvent(skiff, id)).events[0]!.result, 'Error')

    await action(skiff, id, { suspend: null })
    await waitForStatus(skiff, demo, id, 'SUSPENDED')
    await inject(skiff, { operation: 'resume', server_id: id, error: 'memory image unreadable', count: 1 })
    await action(skiff, id, { resume: null })
    const still = await waitFor('fault', async () => {
      const s = await show(skiff, id)
      return s.fault?.message === 'memory image unreadable' && s['OS-EXT-STS:task_state'] === null ? s : undefined
    })
    assert.equal(still.status, 'SUSPENDED')
    assert.equal(still['OS-EXT-STS:power_state'], 7)
  })
})

describe('createImage', () => {
  test('202 with Location; a real snapshot image (queued → active) that boots the files written before it', async () => {
    const id = await activeServer(skiff, demo, 'snap')
    const base = await skiff.imageId('skiff-base')
    skiff.driver.writeFile(id, '/root/note.txt', 'written before the snapshot')
    const res = await action(skiff, id, { createImage: { name: 'snap-1', metadata: { purpose: 'test' } } })
    assert.equal(res.statusCode, 202)
    assert.equal(res.body, '')
    const location = String(res.headers.location)
    const m = /\/images\/([0-9a-f-]{36})$/.exec(location)
    assert.ok(m, location)
    const imageId = m[1]!
    const img = await activeImage(skiff, imageId)
    assert.equal(img.name, 'snap-1')
    assert.equal(img.image_type, 'snapshot')
    assert.equal(img.instance_uuid, id)
    assert.equal(img.base_image_ref, base)
    assert.equal(img.purpose, 'test')
    assert.equal(img.visibility, 'private')
    assert.equal(img.disk_format, 'raw')
    assert.equal(img.container_format, 'bare')
    assert.equal(img.min_disk, 1, "min_disk: the flavor's root disk")
    assert.ok(img.user_id)
    assert.ok(img.size > 0)
    const s = await waitForStatus(skiff, demo, id, 'ACTIVE')
    assert.equal(s['OS-EXT-STS:power_state'], 1)
    const last = await lastEvent(skiff, id)
    assert.equal(last.action.action, 'createImage')
    assert.deepEqual(
      last.events.map((e) => [e.event, e.result]),
      [['compute_snapshot_instance', 'Success']],
    )

    // A written after the snapshot is not in it; a server booted from the snapshot has the first.
    skiff.driver.writeFile(id, '/root/later.txt', 'after')
    const res2 = await skiff.compute('POST', '/v2.1/servers', {
      token: demo,
      body: { server: { name: 'from-snap', imageRef: imageId, flavorRef: '1' } },
    })
    assert.equal(res2.statusCode, 202, res2.body)
    const child = res2.json().server.id as string
    await waitForStatus(skiff, demo, child, 'ACTIVE')
    assert.equal(skiff.driver.readFile(child, '/root/note.txt'), 'written before the snapshot')
    assert.equal(skiff.driver.readFile(child, '/root/later.txt'), undefined)
  })

  test('2.45: {"image_id"} and no Location; allowed on a locked server; refused while shelved', async () => {
    const id = await activeServer(skiff, demo, 'snap-245')
    await action(skiff, id, { lock: null })
    const res = await action(skiff, id, { createImage: { name: 'snap-245' } }, demo, '2.45')
    assert.equal(res.statusCode, 202)
    assert.equal(res.headers.location, undefined)
    const imageId = res.json().image_id as string
    assert.match(imageId, /^[0-9a-f-]{36}$/)
    await activeImage(skiff, imageId)
    await waitForStatus(skiff, demo, id, 'ACTIVE')
  })

  test("the image proxy (up to 2.35): a snapshot found by server and type; DELETE as Nova's, 403 for another's", async () => {
    const id = await activeServer(skiff, demo, 'snap-proxy')
    const res = await action(skiff, id, { createImage: { name: 'snap-proxy' } }, demo, '2.45')
    const imageId = res.json().image_id as string
    await activeImage(skiff, imageId)
    await waitForStatus(skiff, demo, id, 'ACTIVE')
    const list = async (query: string) =>
      ((await skiff.compute('GET', `/v2.1/images/detail?${query}`, { token: demo })).json().images as { id: string }[]).map((i) => i.id)
    const serverRef = encodeURIComponent(`http://localhost/v2.1/servers/${id}`)
    for (const query of [`server=${id}`, `server=${serverRef}`, 'type=snapshot&name=snap-proxy', 'status=ACTIVE&type=snapshot']) {
      assert.ok((await list(query)).includes(imageId), query)
    }
    const base = await skiff.imageId('skiff-base')
    assert.ok(!(await list('type=snapshot')).includes(base), 'the base image is no snapshot')
    assert.deepEqual(await list(`server=${id}&type=backup`), [])
    assert.deepEqual(await list('changes-since=2999-01-01T00:00:00Z'), [])
    // Only the owner's members delete it: Nova's words for Glance's 403, and its 404.
    const denied = await skiff.compute('DELETE', `/v2.1/images/${base}`, { token: demo })
    assert.deepEqual(denied.json(), { forbidden: { code: 403, message: 'You are not allowed to delete the image.' } })
    const gone = await skiff.compute('DELETE', `/v2.1/images/${imageId}`, { token: demo })
    assert.equal(gone.statusCode, 204, gone.body)
    const again = await skiff.compute('DELETE', `/v2.1/images/${imageId}`, { token: demo })
    assert.deepEqual(again.json(), { itemNotFound: { code: 404, message: 'Image not found.' } })
    const later = await skiff.compute('DELETE', `/v2.1/images/${imageId}`, {
      token: demo,
      headers: { 'OpenStack-API-Version': 'compute 2.36' },
    })
    assert.equal(later.statusCode, 404)
  })

  test('malformed bodies are 400 in Nova words; reader 403; other project 404', async () => {
    const id = await activeServer(skiff, demo, 'snap-bad')
    for (const body of [
      { createImage: {} },
      { createImage: { name: '' } },
      { createImage: { name: 'x', foo: 1 } },
      { createImage: null },
    ]) {
      const res = await action(skiff, id, body)
      assert.equal(res.statusCode, 400, JSON.stringify(body))
      assert.match(res.json().badRequest.message, /^Invalid input for field\/attribute /, res.body)
    }
    // Below 2.39 the metadata counts against metadata_items (128): Nova's 403; from 2.39 it does not.
    const many = Object.fromEntries(Array.from({ length: 129 }, (_, i) => [`k${i}`, 'v']))
    const over = await action(skiff, id, { createImage: { name: 'many', metadata: many } })
    assert.equal(over.statusCode, 403)
    assert.deepEqual(over.json(), { forbidden: { code: 403, message: 'Image metadata limit exceeded' } })
    assert.equal((await action(skiff, id, { createImage: { name: 'x' } }, reader)).statusCode, 403)
    assert.equal((await action(skiff, id, { createImage: { name: 'x' } }, alt)).statusCode, 404)
  })

  test('a failed snapshot leaves the server ACTIVE and running, no image behind, the fault recorded', async () => {
    const id = await activeServer(skiff, demo, 'snap-fail')
    await inject(skiff, { operation: 'snapshot', server_id: id, error: 'disk copy failed', count: 1 })
    const res = await action(skiff, id, { createImage: { name: 'doomed' } }, demo, '2.45')
    const imageId = res.json().image_id as string
    const back = await waitFor('fault', async () => {
      const s = await show(skiff, id)
      return s.fault && s['OS-EXT-STS:task_state'] === null ? s : undefined
    })
    assert.equal(back.status, 'ACTIVE')
    assert.equal(back['OS-EXT-STS:power_state'], 1)
    assert.equal(back.fault.message, 'disk copy failed')
    assert.equal((await image(skiff, imageId)).statusCode, 404)
  })
})

describe('createBackup', () => {
  test('rotation keeps the newest N backups of a type; rotation 0 no Location', async () => {
    const id = await activeServer(skiff, demo, 'bk')
    const ids: string[] = []
    for (let i = 0; i < 3; i++) {
      const res = await action(skiff, id, { createBackup: { name: `bk-${i}`, backup_type: 'daily', rotation: 2 } })
      assert.equal(res.statusCode, 202, res.body)
      const m = /\/images\/([0-9a-f-]{36})$/.exec(String(res.headers.location))
      ids.push(m![1]!)
      await waitForStatus(skiff, demo, id, 'ACTIVE')
      await skiff.clock.advance(1000)
    }
    const img = await activeImage(skiff, ids[2]!)
    assert.equal(img.image_type, 'backup')
    assert.equal(img.backup_type, 'daily')
    assert.equal((await image(skiff, ids[0]!)).statusCode, 404, 'the oldest daily backup is rotated out')
    assert.equal((await image(skiff, ids[1]!)).statusCode, 200)
    const last = await lastEvent(skiff, id)
    assert.equal(last.action.action, 'createBackup')
    assert.deepEqual(
      last.events.map((e) => e.event),
      ['compute_backup_instance'],
    )

    const zero = await action(skiff, id, { createBackup: { name: 'bk-w', backup_type: 'weekly', rotation: 0 } })
    assert.equal(zero.statusCode, 202)
    assert.equal(zero.headers.location, undefined)

    for (const body of [
      { createBackup: { name: 'x', backup_type: 'daily' } },
      { createBackup: { name: 'x', backup_type: 'daily', rotation: -1 } },
      { createBackup: { name: 'x', backup_type: 'daily', rotation: 'a' } },
    ]) {
      assert.equal((await action(skiff, id, body)).statusCode, 400, JSON.stringify(body))
    }
  })
})

describe('shelve', () => {
  test('shelve offloads at once (shelved_offload_time 0): host freed; unshelve boots the files back and drops the image', async () => {
    const id = await activeServer(skiff, demo, 'shelf')
    skiff.driver.writeFile(id, '/etc/motd', 'kept through shelve')
    assert.equal((await action(skiff, id, { shelve: null })).statusCode, 202)
    const off = await waitForStatus(skiff, demo, id, 'SHELVED_OFFLOADED')
    assert.equal(off['OS-EXT-STS:vm_state'], 'shelved_offloaded')
    const adminView = await show(skiff, id, admin)
    assert.equal(adminView['OS-EXT-SRV-ATTR:host'], null)
    assert.deepEqual(await skiff.driver.listVms().then((v) => v.includes(id)), false, 'no VM left on the host')
    // The shelve image, named as Nova names it.
    const images = (
      await skiff.apps.image.inject({ method: 'GET', url: '/v2/images?name=shelf-shelved', headers: { 'x-auth-token': demo } })
    ).json().images as { id: string; status: string; image_type: string; instance_uuid: string }[]
    assert.equal(images.length, 1)
    assert.equal(images[0]!.status, 'active')
    assert.equal(images[0]!.instance_uuid, id)
    const shelveAction = await lastEvent(skiff, id)
    assert.equal(shelveAction.action.action, 'shelve')
    assert.deepEqual(
      shelveAction.events.map((e) => e.event),
      ['compute_shelve_instance'],
    )

    // Every other action answers as Nova does.
    conflict(await action(skiff, id, { rescue: null }), `Cannot 'rescue' instance ${id} while it is in vm_state shelved_offloaded`)
    conflict(await action(skiff, id, { 'os-start': null }), `Cannot 'start' instance ${id} while it is in vm_state shelved_offloaded`)
    conflict(await action(skiff, id, { shelve: null }), `Cannot 'shelve' instance ${id} while it is in vm_state shelved_offloaded`)
    conflict(
      await action(skiff, id, { createImage: { name: 'x' } }),
      `Cannot 'createImage' instance ${id} while it is in vm_state shelved_offloaded`,
    )
    conflict(
      await action(skiff, id, { shelveOffload: null }, admin),
      `Cannot 'shelveOffload' instance ${id} while it is in vm_state shelved_offloaded`,
    )

    assert.equal((await action(skiff, id, { unshelve: null })).statusCode, 202)
    const back = await waitForStatus(skiff, demo, id, 'ACTIVE')
    assert.equal(back['OS-EXT-STS:power_state'], 1)
    assert.ok((await show(skiff, id, admin))['OS-EXT-SRV-ATTR:host'])
    assert.equal(skiff.driver.readFile(id, '/etc/motd'), 'kept through shelve')
    assert.equal((await image(skiff, images[0]!.id)).statusCode, 404, 'the shelve image is deleted after unshelve')
    const un = await lastEvent(skiff, id)
    assert.equal(un.action.action, 'unshelve')
    // Nova's conductor events, then the compute host's.
    assert.deepEqual(un.events.map((e) => [e.event, e.result]).sort(), [
      ['compute_unshelve_instance', 'Success'],
      ['get_image_info', 'Success'],
      ['schedule_instances', 'Success'],
    ])
  })

  test('policy and bodies: shelveOffload is admin only; unshelve 2.77 and 2.91 schemas and their 409/400/403', async () => {
    const id = await activeServer(skiff, demo, 'shelf-policy')
    assert.equal((await action(skiff, id, { shelve: null }, reader)).statusCode, 403)
    assert.equal((await action(skiff, id, { shelve: null }, alt)).statusCode, 404)
    const off = await action(skiff, id, { shelveOffload: null })
    assert.equal(off.statusCode, 403)
    assert.deepEqual(off.json(), {
      forbidden: { code: 403, message: "Policy doesn't allow os_compute_api:os-shelve:shelve_offload to be performed." },
    })
    await action(skiff, id, { shelve: null })
    await waitForStatus(skiff, demo, id, 'SHELVED_OFFLOADED')
    // 2.77: {} is refused (availability_zone required); an unknown zone 400.
    assert.equal((await action(skiff, id, { unshelve: {} }, demo, '2.77')).statusCode, 400)
    const az = await action(skiff, id, { unshelve: { availability_zone: 'elsewhere' } }, demo, '2.77')
    assert.equal(az.statusCode, 400)
    assert.equal(az.json().badRequest.message, 'The requested availability zone is not available')
    // 2.91: host for admins only; an unknown host 400.
    const host = await action(skiff, id, { unshelve: { host: 'skiff-1' } }, demo, '2.91')
    assert.equal(host.statusCode, 403)
    assert.equal(host.json().forbidden.message, "Policy doesn't allow os_compute_api:os-shelve:unshelve_to_host to be performed.")
    const nohost = await action(skiff, id, { unshelve: { host: 'nowhere' } }, admin, '2.91')
    assert.equal(nohost.statusCode, 400)
    assert.equal(nohost.json().badRequest.message, 'Compute host nowhere could not be found.')
    assert.equal((await action(skiff, id, { unshelve: { host: 'x', foo: 1 } }, admin, '2.91')).statusCode, 400)
    assert.equal((await action(skiff, id, { unshelve: { availability_zone: null, host: 'skiff-1' } }, admin, '2.91')).statusCode, 202)
    await waitForStatus(skiff, demo, id, 'ACTIVE')
    // A zone or host with a server not offloaded: Nova's 409.
    const active = await action(skiff, id, { unshelve: { availability_zone: 'nova' } }, demo, '2.77')
    conflict(active, `Cannot 'unshelve' instance ${id} while it is in vm_state active`)
  })

  test('a failed shelve (snapshot phase) leaves it ACTIVE, running, no image; a failed unshelve SHELVED_OFFLOADED, no host', async () => {
    const id = await activeServer(skiff, demo, 'shelf-fail')
    await inject(skiff, { operation: 'snapshot', server_id: id, error: 'snapshot broke', count: 1 })
    await action(skiff, id, { shelve: null })
    const back = await waitFor('fault', async () => {
      const s = await show(skiff, id)
      return s.fault && s['OS-EXT-STS:task_state'] === null ? s : undefined
    })
    assert.equal(back.status, 'ACTIVE')
    assert.equal(back['OS-EXT-STS:power_state'], 1)
    assert.equal(back.fault.message, 'snapshot broke')
    const leftover = (
      await skiff.apps.image.inject({ method: 'GET', url: '/v2/images?name=shelf-fail-shelved', headers: { 'x-auth-token': demo } })
    ).json().images
    assert.deepEqual(leftover, [])

    await action(skiff, id, { shelve: null })
    await waitForStatus(skiff, demo, id, 'SHELVED_OFFLOADED')
    await inject(skiff, { operation: 'spawn', server_id: id, error: 'no room to boot', count: 1 })
    await action(skiff, id, { unshelve: null })
    const still = await waitFor('fault', async () => {
      const s = await show(skiff, id, admin)
      return s.fault?.message === 'no room to boot' && s['OS-EXT-STS:task_state'] === null ? s : undefined
    })
    assert.equal(still.status, 'SHELVED_OFFLOADED')
    assert.equal(still['OS-EXT-SRV-ATTR:host'], null)
    await action(skiff, id, { unshelve: null })
    await waitForStatus(skiff, demo, id, 'ACTIVE')
  })

  test('a failed offload (destroy) leaves it SHELVED on its host, the fault recorded; an admin offload then works', async () => {
    const id = await activeServer(skiff, demo, 'shelf-offload-fail')
    await inject(skiff, { operation: 'destroy', server_id: id, error: 'VM will not go', count: 1 })
    await action(skiff, id, { shelve: null })
    const shelved = await waitFor('fault', async () => {
      const s = await show(skiff, id, admin)
      return s.fault && s['OS-EXT-STS:task_state'] === null ? s : undefined
    })
    assert.equal(shelved.status, 'SHELVED')
    assert.equal(shelved.fault.message, 'VM will not go')
    assert.ok(shelved['OS-EXT-SRV-ATTR:host'])
    assert.equal((await action(skiff, id, { shelveOffload: null }, admin)).statusCode, 202)
    await waitForStatus(skiff, demo, id, 'SHELVED_OFFLOADED')
    const [offload] = await actions(skiff, id)
    assert.equal(offload!.action, 'shelveOffload')
    assert.deepEqual(
      (await events(skiff, id, offload!.request_id)).map((e) => [e.event, e.result]),
      [['compute_shelve_offload_instance', 'Success']],
    )
  })

  test('a failed backup leaves no image and the server as it was (stopped stays stopped)', async () => {
    const id = await activeServer(skiff, demo, 'bk-fail')
    await action(skiff, id, { 'os-stop': null })
    await waitForStatus(skiff, demo, id, 'SHUTOFF')
    await inject(skiff, { operation: 'snapshot', server_id: id, error: 'backup copy failed', count: 1 })
    const res = await action(skiff, id, { createBackup: { name: 'bk-doomed', backup_type: 'daily', rotation: 1 } }, demo, '2.45')
    const imageId = res.json().image_id as string
    const back = await waitFor('fault', async () => {
      const s = await show(skiff, id)
      return s.fault && s['OS-EXT-STS:task_state'] === null ? s : undefined
    })
    assert.equal(back.status, 'SHUTOFF')
    assert.equal(back.fault.message, 'backup copy failed')
    assert.equal((await image(skiff, imageId)).statusCode, 404)
  })

  test('deleting a shelved server deletes its shelve image', async () => {
    const id = await activeServer(skiff, demo, 'shelf-del')
    await action(skiff, id, { shelve: null })
    await waitForStatus(skiff, demo, id, 'SHELVED_OFFLOADED')
    const list = async () =>
      (await skiff.apps.image.inject({ method: 'GET', url: '/v2/images?name=shelf-del-shelved', headers: { 'x-auth-token': demo } })).json()
        .images as unknown[]
    assert.equal((await list()).length, 1)
    assert.equal((await skiff.compute('DELETE', `/v2.1/servers/${id}`, { token: demo })).statusCode, 204)
    assert.deepEqual(await list(), [])
  })
})

describe('shelved_offload_time', () => {
  let s2: TestSkiff
  let token: string
  before(async () => {
    s2 = await startTestSkiff({ shelvedOffloadTimeSeconds: 600 })
    token = await s2.token('demo')
  })
  after(() => s2.close())

  test('SHELVED keeps its host until the time is up, then is offloaded; an unshelve before starts it where it is', async () => {
    const id = await activeServer(s2, token, 'later')
    s2.driver.writeFile(id, '/root/a', 'b')
    await action(s2, id, { shelve: null }, token)
    const shelved = await waitForStatus(s2, token, id, 'SHELVED')
    assert.equal(shelved['OS-EXT-STS:power_state'], 4)
    // Unshelve of a SHELVED server: started on its host (Nova's conductor: start_instance).
    await action(s2, id, { unshelve: null }, token)
    await waitForStatus(s2, token, id, 'ACTIVE')
    const un = await lastEvent(s2, id, token)
    assert.deepEqual(
      un.events.map((e) => e.event),
      ['compute_start_instance'],
    )

    await action(s2, id, { shelve: null }, token)
    await waitForStatus(s2, token, id, 'SHELVED')
    await s2.clock.advance(599_000)
    assert.equal((await show(s2, id, token)).status, 'SHELVED')
    await s2.clock.advance(2_000)
    await waitForStatus(s2, token, id, 'SHELVED_OFFLOADED')
    const [offload] = await actions(s2, id, token)
    assert.equal(offload!.action, 'shelveOffload')
    assert.equal(s2.driver.readFile(id, '/root/a'), undefined, 'offloaded: no VM')
    await action(s2, id, { unshelve: null }, token)
    await waitForStatus(s2, token, id, 'ACTIVE')
    assert.equal(s2.driver.readFile(id, '/root/a'), 'b')
  })
})

describe('capacity', () => {
  let s3: TestSkiff
  let token: string
  before(async () => {
    s3 = await startTestSkiff({ hostVcpus: 1 })
    token = await s3.token('demo')
  })
  after(() => s3.close())

  test("an offloaded server frees its host's room; unshelve with no room: SHELVED_OFFLOADED, Nova's fault", async () => {
    const a = await activeServer(s3, token, 'room-a')
    await action(s3, a, { shelve: null }, token)
    await waitForStatus(s3, token, a, 'SHELVED_OFFLOADED')
    // The one vCPU is free again: another server fits.
    const b = await activeServer(s3, token, 'room-b')
    assert.equal((await action(s3, a, { unshelve: null }, token)).statusCode, 202)
    const still = await show(s3, a, token)
    assert.equal(still.status, 'SHELVED_OFFLOADED')
    assert.equal(still['OS-EXT-STS:task_state'], null)
    assert.equal(still.fault.message, 'No valid host was found. There are not enough hosts available.')
    const un = await lastEvent(s3, a, token)
    assert.equal(un.action.action, 'unshelve')
    assert.deepEqual(
      un.events.map((e) => [e.event, e.result]),
      [['schedule_instances', 'Error']],
    )
    // Room again: the unshelve goes through.
    assert.equal((await s3.compute('DELETE', `/v2.1/servers/${b}`, { token })).statusCode, 204)
    await waitFor('b gone', async () => (await s3.compute('GET', `/v2.1/servers/${b}`, { token })).statusCode === 404)
    await action(s3, a, { unshelve: null }, token)
    await waitForStatus(s3, token, a, 'ACTIVE')
  })
})
