// Suspend/resume, snapshot and shelve/unshelve with real VMs, proved by logging in over SSH:
// a file written before each operation is there after it; resume continues the same boot (same
// boot id, uptime not reset); a server booted from the snapshot has the file; a shelved server
// has no QEMU and no overlay left, and unshelve brings the file back. One server carries the
// whole story (TCG guests are slow); the snapshot's server is the only other boot.
// Skipped where QEMU and the guest packages are absent, except in CI (.ci/run installs them).
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { guestSkipReason } from '../helpers/qemu.ts'
import { startQemuSkiff, type QemuSkiff } from './helpers/qemu-skiff.ts'
import { openrcToken, type SkiffProcess } from './helpers/skiff-process.ts'
import { qemuPids, sshOk, type VmApi } from './helpers/vm.ts'

const skip = guestSkipReason()
const BOOT_MS = 240_000

describe('qemu driver: suspend/resume, snapshot, shelve/unshelve', { skip, timeout: 20 * 60_000 }, () => {
  let vm: QemuSkiff
  let qemuDir = ''
  let skiff: SkiffProcess
  let api: VmApi
  let token = ''
  let imageRef = ''
  const password = `P-${randomBytes(6).toString('hex')}`
  let id = ''
  let port = 0

  before(async () => {
    vm = await startQemuSkiff({ sshPorts: '23900-23999' })
    ;({ skiff, api, qemuDir, baseImageId: imageRef } = vm)
    token = await openrcToken(skiff.urls.identity, skiff.openrc.demo)
  })

  after(() => vm?.stop())

  const act = async (serverId: string, body: unknown, status = 202) => {
    const res = await api.compute('POST', `/servers/${serverId}/action`, body)
    assert.equal(res.status, status, JSON.stringify(res.body))
    return res.body
  }
  /** The internal snapshots of the server's overlay (where suspend saves the guest's memory). */
  const savedStates = (serverId: string) =>
    execFileSync('qemu-img', ['snapshot', '-l', '-U', path.join(qemuDir, 's', serverId, 'disk.qcow2')], { encoding: 'utf8' })
  const ownQemu = (serverId: string) => qemuPids(path.join(qemuDir, 's', serverId, 'qemu.pid'))
  async function create(name: string, ref: string): Promise<{ id: string; port: number }> {
    const res = await api.compute('POST', '/servers', { server: { name, imageRef: ref, flavorRef: '1', adminPass: password } })
    assert.equal(res.status, 202, JSON.stringify(res.body))
    const sid = res.body.server.id as string
    const t = await api.waitStatus(sid, 'ACTIVE', BOOT_MS)
    console.log(`# ${name}: create → ACTIVE ${t.toFixed(1)} s`)
    return { id: sid, port: (await api.access(sid)).port }
  }
  const bootState = async (p: number) => {
    const { out } = await sshOk(
      p,
      password,
      'cat /proc/sys/kernel/random/boot_id; cut -d" " -f1 /proc/uptime; cat /root/marker 2>/dev/null',
    )
    const [bootId, uptime, marker] = out.trim().split('\n')
    return { bootId: bootId!, uptime: Number(uptime), marker }
  }

  test('suspend saves the memory and stops QEMU; resume continues the same boot', async () => {
    ;({ id, port } = await create('shelf-e2e', imageRef))
    await sshOk(port, password, 'echo before-everything > /root/marker && sync')
    const before = await bootState(port)
    assert.equal(before.marker, 'before-everything')

    await act(id, { suspend: null })
    const ts = await api.waitStatus(id, 'SUSPENDED', 120_000)
    console.log(`# suspend → SUSPENDED ${ts.toFixed(1)} s`)
    assert.equal((await api.compute('GET', `/servers/${id}`)).body.server['OS-EXT-STS:power_state'], 7)
    assert.deepEqual(ownQemu(id), [], 'no QEMU while suspended')
    assert.match(savedStates(id), /skiff-suspend/, 'the memory is saved with the disk')

    await act(id, { resume: null })
    const tr = await api.waitStatus(id, 'ACTIVE', 120_000)
    console.log(`# resume → ACTIVE ${tr.toFixed(1)} s`)
    const after = await bootState(port)
    assert.equal(after.bootId, before.bootId, 'the same boot')
    assert.ok(after.uptime >= before.uptime, `uptime continues: ${before.uptime} s before, ${after.uptime} s after`)
    assert.equal(after.marker, 'before-everything')
    assert.doesNotMatch(savedStates(id), /skiff-suspend/, 'the saved state is dropped once resumed')
  })

  test('a snapshot is a standalone image that boots with the files written before it', async () => {
    await sshOk(port, password, 'echo in-the-snapshot > /root/marker && sync')
    const res = await fetch(`${skiff.urls.compute}/servers/${id}/action`, {
      method: 'POST',
      headers: { 'x-auth-token': token, 'content-type': 'application/json', 'openstack-api-version': 'compute 2.45' },
      body: JSON.stringify({ createImage: { name: 'shelf-e2e-snap' } }),
    })
    assert.equal(res.status, 202)
    const snapId = ((await res.json()) as { image_id: string }).image_id
    const t = await api.waitStatus(id, 'ACTIVE', 300_000)
    console.log(`# createImage → ACTIVE ${t.toFixed(1)} s`)
    const img = (await api.image('GET', `/v2/images/${snapId}`)).body
    assert.equal(img.status, 'active')
    assert.equal(img.disk_format, 'qcow2')
    assert.equal(img.image_type, 'snapshot')
    assert.equal(img.instance_uuid, id)
    assert.equal(img.base_image_ref, imageRef)
    // The guest ran on through the snapshot (paused, not rebooted).
    assert.equal((await bootState(port)).marker, 'in-the-snapshot')
    await sshOk(port, password, 'echo after-the-snapshot > /root/marker && sync')

    const child = await create('shelf-e2e-child', snapId)
    assert.equal((await bootState(child.port)).marker, 'in-the-snapshot')
    assert.equal((await api.compute('DELETE', `/servers/${child.id}`)).status, 204)
    await api.waitStatus(child.id, 'DELETED', 60_000)
  })

  test('shelve removes the VM and its overlay; unshelve boots the files back and drops the shelve image', async () => {
    await sshOk(port, password, 'echo before-shelve > /root/marker && sync')
    await act(id, { shelve: null })
    const t = await api.waitStatus(id, 'SHELVED_OFFLOADED', 300_000)
    console.log(`# shelve → SHELVED_OFFLOADED ${t.toFixed(1)} s`)
    assert.deepEqual(ownQemu(id), [], 'no QEMU')
    assert.equal(existsSync(path.join(qemuDir, 's', id)), false, 'no instance directory, no overlay')
    const shelved = (await api.image('GET', '/v2/images?name=shelf-e2e-shelved')).body.images as { id: string; status: string }[]
    assert.equal(shelved.length, 1)
    assert.equal(shelved[0]!.status, 'active')

    await act(id, { unshelve: null })
    const tu = await api.waitStatus(id, 'ACTIVE', BOOT_MS)
    console.log(`# unshelve → ACTIVE ${tu.toFixed(1)} s`)
    port = (await api.access(id)).port
    assert.equal((await bootState(port)).marker, 'before-shelve')
    assert.equal((await api.image('GET', `/v2/images/${shelved[0]!.id}`)).status, 404, 'the shelve image is deleted')
    assert.equal((await api.compute('DELETE', `/servers/${id}`)).status, 204)
    await api.waitStatus(id, 'DELETED', 60_000)
  })
})
