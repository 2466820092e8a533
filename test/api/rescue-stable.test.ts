// Stable-device rescue (the rescue image's hw_rescue_device / hw_rescue_bus, as Nova's libvirt
// driver) and Skiff's rescue checkpoints (an unrescue that discards what the rescue changed),
// through the simulated driver: layouts, Nova's 400s, the readable state, fault injection per phase.
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { activeServer, startTestSkiff, waitFor, waitForStatus, type TestSkiff } from '../helpers/skiff.ts'

let skiff: TestSkiff
let demo: string
let admin: string
let rescueImage: string

before(async () => {
  skiff = await startTestSkiff()
  demo = await skiff.token('demo')
  admin = await skiff.token('admin')
  const list = await skiff.apps.image.inject({ method: 'GET', url: '/v2/images', headers: { 'x-auth-token': demo } })
  rescueImage = list.json().images.find((i: { name: string }) => i.name === 'skiff-rescue').id as string
})
after(() => skiff.close())

const action = (id: string, body: unknown, token = demo) => skiff.compute('POST', `/v2.1/servers/${id}/action`, { token, body })
const rescueState = async (id: string) => (await skiff.compute('GET', `/v2.1/servers/${id}/rescue`, { token: demo })).json().rescue
const inject = async (fault: Record<string, unknown>) => {
  const res = await skiff.compute('POST', '/v2.1/os-simulator/faults', { token: admin, body: { fault } })
  assert.equal(res.statusCode, 201, res.body)
}

/** As Tempest's _create_server_and_rescue_image: a snapshot of a server, with the rescue properties added. */
async function rescueImageOf(serverId: string, properties: Record<string, string>): Promise<string> {
  const snap = await action(serverId, { createImage: { name: 'rescue-snap' } })
  assert.equal(snap.statusCode, 202, snap.body)
  const imageId = snap.headers.location!.toString().split('/').pop()!
  await waitFor(`image ${imageId} active`, async () => {
    const res = await skiff.apps.image.inject({ method: 'GET', url: `/v2/images/${imageId}`, headers: { 'x-auth-token': demo } })
    return res.json().status === 'active'
  })
  await waitForStatus(skiff, demo, serverId, 'ACTIVE')
  const patch = await skiff.apps.image.inject({
    method: 'PATCH',
    url: `/v2/images/${imageId}`,
    headers: { 'x-auth-token': demo, 'content-type': 'application/openstack-images-v2.1-json-patch' },
    payload: JSON.stringify(Object.entries(properties).map(([k, v]) => ({ op: 'add', path: `/${k}`, value: v }))),
  })
  assert.equal(patch.statusCode, 200, patch.body)
  return imageId
}

describe('stable-device rescue', () => {
  for (const bus of ['virtio', 'scsi', 'usb'] as const) {
    test(`hw_rescue_device=disk, hw_rescue_bus=${bus}: the server's disk stays first, the rescue disk is attached last and booted`, async () => {
      const id = await activeServer(skiff, demo, `stable-${bus}`)
      const imageId = await rescueImageOf(id, { hw_rescue_device: 'disk', hw_rescue_bus: bus })
      const res = await action(id, { rescue: { rescue_image_ref: imageId, adminPass: 'StablePw1' } })
      assert.equal(res.statusCode, 200, res.body)
      await waitForStatus(skiff, demo, id, 'RESCUE')
      assert.deepEqual(skiff.driver.describe(id)!.disks, [`server disk ${id}`, `rescue image ${imageId} (disk on ${bus}, boot order 1)`])
      assert.equal(skiff.driver.canLogin(id, 'StablePw1'), true)
      const state = await rescueState(id)
      assert.equal(state.stable_device_rescue, true)
      assert.deepEqual(
        state.disks.map((d: { role: string; device: string; bus: string; boot_index: number | null }) => [
          d.role,
          d.device,
          d.bus,
          d.boot_index,
        ]),
        [
          ['server', '/dev/vda', 'virtio', null],
          ['config_drive', '/dev/vdb', 'virtio', null],
          ['rescue', bus === 'virtio' ? '/dev/vdc' : '/dev/sda', bus, 1],
        ],
      )
      assert.equal(state.disks[2].image_id, imageId)
      assert.equal((await action(id, { unrescue: null })).statusCode, 202)
      await waitForStatus(skiff, demo, id, 'ACTIVE')
      assert.deepEqual(skiff.driver.describe(id)!.disks, [`server disk ${id}`])
    })
  }

  test('without the properties the layout is the legacy one: the rescue disk first', async () => {
    const id = await activeServer(skiff, demo, 'legacy')
    assert.equal((await action(id, { rescue: { rescue_image_ref: rescueImage } })).statusCode, 200)
    await waitForStatus(skiff, demo, id, 'RESCUE')
    assert.deepEqual(skiff.driver.describe(id)!.disks, [`rescue image ${rescueImage}`, `server disk ${id}`])
    const state = await rescueState(id)
    assert.equal(state.stable_device_rescue, false)
    assert.deepEqual(
      state.disks.map((d: { role: string; device: string }) => [d.role, d.device]),
      [
        ['rescue', '/dev/vda'],
        ['server', '/dev/vdb'],
        ['config_drive', '/dev/vdc'],
      ],
    )
    assert.equal(state.checkpoint, null)
  })

  test("a bus or device Nova's libvirt driver does not know is a 400 with its message, and nothing changes", async () => {
    const id = await activeServer(skiff, demo, 'badbus')
    const xen = await rescueImageOf(id, { hw_rescue_bus: 'xen' })
    const res = await action(id, { rescue: { rescue_image_ref: xen } })
    assert.equal(res.statusCode, 400)
    assert.deepEqual(res.json(), {
      badRequest: { code: 400, message: "Requested rescue bus 'xen' is not supported by the 'qemu' virt driver" },
    })
    const tape = await rescueImageOf(id, { hw_rescue_device: 'tape' })
    assert.deepEqual((await action(id, { rescue: { rescue_image_ref: tape } })).json(), {
      badRequest: { code: 400, message: "Requested rescue device 'tape' is not supported" },
    })
    const bdm = await rescueImageOf(id, { img_block_device_mapping: '[]' })
    assert.deepEqual((await action(id, { rescue: { rescue_image_ref: bdm } })).json(), {
      badRequest: { code: 400, message: `Requested rescue image '${bdm}' is not supported` },
    })
    const s = (await skiff.compute('GET', `/v2.1/servers/${id}`, { token: demo })).json().server
    assert.equal(s.status, 'ACTIVE')
    assert.equal(s['OS-EXT-STS:task_state'], null)
  })

  test("a device its bus cannot hold fails on the host in libvirt's words; the server is back on its own disk", async () => {
    const id = await activeServer(skiff, demo, 'nocd')
    for (const [properties, message] of [
      [
        { hw_rescue_device: 'cdrom', hw_rescue_bus: 'virtio' },
        "unsupported configuration: disk type of 'vdc' does not support ejectable media",
      ],
      [{ hw_rescue_device: 'floppy', hw_rescue_bus: 'scsi' }, "Invalid bus type 'scsi' for floppy disk"],
      [{ hw_rescue_device: 'cdrom', hw_rescue_bus: 'fdc' }, "Invalid bus type 'fdc' for disk"],
      [{ hw_rescue_device: 'lun' }, "unsupported configuration: disk device='lun' is only valid for block type disk source"],
    ] as const) {
      const imageId = await rescueImageOf(id, properties)
      assert.equal((await action(id, { rescue: { rescue_image_ref: imageId } })).statusCode, 200)
      const back = await waitFor('the rescue failed', async () => {
        const s = (await skiff.compute('GET', `/v2.1/servers/${id}`, { token: demo })).json().server
        return s.status === 'ACTIVE' && s['OS-EXT-STS:task_state'] === null && s.fault?.message.includes(message) ? s : undefined
      })
      assert.equal(back.status, 'ACTIVE', JSON.stringify(properties))
      assert.deepEqual(skiff.driver.describe(id)!.disks, [`server disk ${id}`])
    }
  })
})

describe('rescue checkpoints', () => {
  test('discard: the disk is back as it was when the rescue began; keep (the default): the changes stay', async () => {
    const id = await activeServer(skiff, demo, 'ckpt')
    skiff.driver.writeFile(id, '/etc/fstab', 'good')
    const res = await skiff.compute('POST', `/v2.1/servers/${id}/rescue`, { token: demo, body: { rescue: { checkpoint: true } } })
    assert.equal(res.statusCode, 202, res.body)
    assert.deepEqual(res.json().rescue.checkpoint, { status: 'pending', taken_at: null })
    await waitForStatus(skiff, demo, id, 'RESCUE')
    const held = (await rescueState(id)).checkpoint
    assert.equal(held.status, 'held')
    assert.match(held.taken_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/)
    // A repair that made things worse...
    skiff.driver.writeFile(id, '/etc/fstab', 'broken')
    skiff.driver.writeFile(id, '/new-file', 'x')
    assert.equal((await skiff.compute('DELETE', `/v2.1/servers/${id}/rescue?discard_changes=true`, { token: demo })).statusCode, 202)
    await waitForStatus(skiff, demo, id, 'ACTIVE')
    assert.equal(skiff.driver.readFile(id, '/etc/fstab'), 'good')
    assert.equal(skiff.driver.readFile(id, '/new-file'), undefined)

    // Again, kept this time (through Nova's action: its schema is unchanged, and it keeps the changes).
    await skiff.compute('POST', `/v2.1/servers/${id}/rescue`, { token: demo, body: { rescue: { checkpoint: true } } })
    await waitForStatus(skiff, demo, id, 'RESCUE')
    skiff.driver.writeFile(id, '/etc/fstab', 'repaired')
    assert.equal((await action(id, { unrescue: null })).statusCode, 202)
    await waitForStatus(skiff, demo, id, 'ACTIVE')
    assert.equal(skiff.driver.readFile(id, '/etc/fstab'), 'repaired')
  })

  test('the body form; a rescue without a checkpoint cannot discard (409, nothing changes); bad bodies are 400', async () => {
    const id = await activeServer(skiff, demo, 'nockpt')
    await action(id, { rescue: null })
    await waitForStatus(skiff, demo, id, 'RESCUE')
    const refused = await skiff.compute('DELETE', `/v2.1/servers/${id}/rescue`, {
      token: demo,
      body: { unrescue: { discard_changes: true } },
    })
    assert.equal(refused.statusCode, 409)
    assert.deepEqual(refused.json(), {
      conflictingRequest: {
        code: 409,
        message: `The rescue of server ${id} holds no checkpoint of its disk: its changes cannot be discarded.`,
      },
    })
    const s = (await skiff.compute('GET', `/v2.1/servers/${id}`, { token: demo })).json().server
    assert.equal(s.status, 'RESCUE')
    assert.equal(s['OS-EXT-STS:task_state'], null)
    for (const body of [{ unrescue: { discard_changes: 'yes' } }, { unrescue: { other: 1 } }, { discard_changes: true }, [1]]) {
      assert.equal(
        (await skiff.compute('DELETE', `/v2.1/servers/${id}/rescue`, { token: demo, body })).statusCode,
        400,
        JSON.stringify(body),
      )
    }
    assert.equal((await skiff.compute('DELETE', `/v2.1/servers/${id}/rescue?discard_changes=maybe`, { token: demo })).statusCode, 400)
    const both = await skiff.compute('DELETE', `/v2.1/servers/${id}/rescue?discard_changes=false`, {
      token: demo,
      body: { unrescue: { discard_changes: true } },
    })
    assert.equal(both.statusCode, 400)
    assert.equal(
      (await skiff.compute('POST', `/v2.1/servers/${id}/rescue`, { token: demo, body: { rescue: { checkpoint: 'yes' } } })).statusCode,
      400,
      'the body is checked first',
    )
    assert.equal((await skiff.compute('DELETE', `/v2.1/servers/${id}/rescue`, { token: demo, body: { unrescue: null } })).statusCode, 202)
    await waitForStatus(skiff, demo, id, 'ACTIVE')
  })

  test('a failed keep leaves the rescue with its checkpoint held: the next unrescue may still discard', async () => {
    const id = await activeServer(skiff, demo, 'keepfault')
    skiff.driver.writeFile(id, '/data', 'v1')
    await skiff.compute('POST', `/v2.1/servers/${id}/rescue`, { token: demo, body: { rescue: { checkpoint: true } } })
    await waitForStatus(skiff, demo, id, 'RESCUE')
    skiff.driver.writeFile(id, '/data', 'v2')
    await inject({ operation: 'unrescue.keep', server_id: id, error: 'rebase failed', count: 1 })
    assert.equal((await action(id, { unrescue: null })).statusCode, 202)
    await waitFor('back in rescue with the fault', async () => {
      const s = (await skiff.compute('GET', `/v2.1/servers/${id}`, { token: demo })).json().server
      return s.status === 'RESCUE' && s['OS-EXT-STS:task_state'] === null && s.fault ? s : undefined
    })
    assert.equal((await rescueState(id)).checkpoint.status, 'held')
    assert.equal((await skiff.compute('DELETE', `/v2.1/servers/${id}/rescue?discard_changes=1`, { token: demo })).statusCode, 202)
    await waitForStatus(skiff, demo, id, 'ACTIVE')
    assert.equal(skiff.driver.readFile(id, '/data'), 'v1')
  })

  test('a failed checkpoint fails the rescue safely; a failed discard leaves the rescue and its checkpoint, to try again', async () => {
    const id = await activeServer(skiff, demo, 'ckfault')
    skiff.driver.writeFile(id, '/data', 'v1')
    await inject({ operation: 'rescue.checkpoint', server_id: id, error: 'no room for the overlay', count: 1 })
    await skiff.compute('POST', `/v2.1/servers/${id}/rescue`, { token: demo, body: { rescue: { checkpoint: true } } })
    const back = await waitFor('the fault recorded', async () => {
      const s = (await skiff.compute('GET', `/v2.1/servers/${id}`, { token: demo })).json().server
      return s.status === 'ACTIVE' && s.fault ? s : undefined
    })
    assert.match(back.fault.message, /no room for the overlay/)
    assert.equal(skiff.driver.readFile(id, '/data'), 'v1')

    await skiff.compute('POST', `/v2.1/servers/${id}/rescue`, { token: demo, body: { rescue: { checkpoint: true } } })
    await waitForStatus(skiff, demo, id, 'RESCUE')
    skiff.driver.writeFile(id, '/data', 'v2')
    await inject({ operation: 'unrescue.discard', server_id: id, error: 'overlay busy', count: 1 })
    await skiff.compute('DELETE', `/v2.1/servers/${id}/rescue?discard_changes=true`, { token: demo })
    await waitFor('back in rescue with the fault', async () => {
      const s = (await skiff.compute('GET', `/v2.1/servers/${id}`, { token: demo })).json().server
      return s.status === 'RESCUE' && s['OS-EXT-STS:task_state'] === null && s.fault ? s : undefined
    })
    assert.equal((await rescueState(id)).checkpoint.status, 'held')
    assert.equal(skiff.driver.readFile(id, '/data'), 'v2', 'the rescue system runs again on the changed disk')
    // A boot failure after the discard: the changes are gone as asked, the rescue system boots again.
    await inject({ operation: 'unrescue.boot', server_id: id, error: 'own disk does not boot', count: 1 })
    await skiff.compute('DELETE', `/v2.1/servers/${id}/rescue?discard_changes=true`, { token: demo })
    await waitFor('back in rescue', async () => {
      const s = (await skiff.compute('GET', `/v2.1/servers/${id}`, { token: demo })).json().server
      return s.status === 'RESCUE' && s['OS-EXT-STS:task_state'] === null ? s : undefined
    })
    assert.equal((await rescueState(id)).checkpoint.status, 'discarded')
    assert.equal(skiff.driver.readFile(id, '/data'), 'v1')
    assert.equal((await skiff.compute('DELETE', `/v2.1/servers/${id}/rescue`, { token: demo })).statusCode, 202)
    await waitForStatus(skiff, demo, id, 'ACTIVE')
    assert.equal(skiff.driver.readFile(id, '/data'), 'v1')
  })
})
