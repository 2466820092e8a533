// Volumes of the qemu driver proven in the guest: a real `skiff serve --driver qemu`, the
// `openstack` CLI for what a user asks, SSH with ssh2 for what a user checks.
// volume create → attached to a running server (hot-plugged over QMP): the guest sees a disk
// whose serial is the volume id; a marker written on it; detach (the disk leaves the guest),
// extend, attach again: the marker is there, the disk bigger; extended again in use (3.42): the
// running guest sees the new size; a snapshot of the volume in use
// and a volume made from it hold the marker; rescue with the volume attached: the rescue system sees the
// volume and its marker; unrescue: the server has it again, marker and all; shelved and unshelved
// too. Then a server booted
// from a volume made from the image: its root is the volume.
// Skipped where QEMU and the guest packages are absent, except in CI (.ci/run installs them).
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync, rmSync, statSync } from 'node:fs'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { after, before, describe, test } from 'node:test'
import { guestSkipReason } from '../helpers/qemu.ts'
import { clientGate, Clients } from './helpers/clients.ts'
import { ok } from './helpers/process.ts'
import { startQemuSkiff, type QemuSkiff } from './helpers/qemu-skiff.ts'
import { openrcToken, type SkiffProcess } from './helpers/skiff-process.ts'
import { sshOk, type VmApi } from './helpers/vm.ts'

const skip = guestSkipReason() || (await clientGate(['openstack'])).skip
const BOOT_MS = 240_000

/** A shell line that prints the guest's disk whose serial is `serial` (virtio-blk: its first 20 characters). */
const findDisk = (volumeId: string) =>
  `for d in /sys/block/vd*; do [ "$(cat $d/serial 2>/dev/null)" = "${volumeId.slice(0, 20)}" ] && echo /dev/\${d##*/}; done; true`

describe('qemu driver: volumes attached, detached and rescued, seen in the guest', { skip, timeout: 20 * 60_000 }, () => {
  let vm: QemuSkiff
  let skiff: SkiffProcess
  let api: VmApi
  let cli: Clients
  let qemuDir = ''
  const figures: Record<string, string> = {}

  before(async () => {
    vm = await startQemuSkiff({ sshPorts: '23600-23649', figures })
    ;({ skiff, api, qemuDir } = vm)
    cli = new Clients(skiff)
  })

  after(() => vm?.stop())

  const volumeStatus = async (id: string) => (await cli.openstackJson<{ status: string }>('demo', ['volume', 'show', id])).status
  const waitVolume = async (id: string, want: string, timeoutMs = 180_000) => {
    const deadline = Date.now() + timeoutMs
    let last = ''
    while (Date.now() < deadline) {
      last = await volumeStatus(id)
      if (last === want) return
      if (last.startsWith('error')) break
      await sleep(500)
    }
    throw new Error(`volume ${id} is ${last}, not ${want}\n${skiff.output()}`)
  }
  /** The guest's disk of the volume, polled until it shows (a hot-plugged disk appears once the guest has probed it). */
  const diskOf = async (port: number, password: string, volumeId: string, timeoutMs = 120_000): Promise<string> => {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const dev = (await sshOk(port, password, findDisk(volumeId))).out.trim()
      if (dev) return dev
      if (Date.now() > deadline) throw new Error(`no disk with serial ${volumeId.slice(0, 20)} in the guest`)
      await sleep(1000)
    }
  }
  const readMarker = async (port: number, password: string, dev: string, length: number) =>
    (await sshOk(port, password, `dd if=${dev} bs=512 count=1 2>/dev/null | head -c ${length}`)).out

  test('attach, write, detach, attach again, rescue and unrescue: the marker follows the volume', async () => {
    const marker = `vol-marker-${randomBytes(6).toString('hex')}`
    const created = await cli.openstackJson<{ id: string; adminPass: string }>(
      'demo',
      ['server', 'create', '--image', 'skiff-base', '--flavor', 'm1.tiny', '--wait', 'vm vol'],
      { timeoutMs: BOOT_MS },
    )
    const { id, adminPass: p1 } = created
    const vol = (await cli.openstackJson<{ id: string }>('demo', ['volume', 'create', '--size', '1', 'data'])).id
    await waitVolume(vol, 'available')
    const file = path.join(qemuDir, 'v', `${vol}.qcow2`)
    assert.ok(existsSync(file), 'the volume is a qcow2 file in the agent data dir')
    assert.equal(statSync(file).mode & 0o777, 0o600)
    const { port } = await api.access(id)

    let t = Date.now()
    ok(await cli.openstack('demo', ['server', 'add', 'volume', id, vol]))
    await waitVolume(vol, 'in-use')
    const dev = await diskOf(port, p1, vol)
    figures['attach to a running server (to in-use and seen in the guest)'] = `${((Date.now() - t) / 1000).toFixed(1)} s`
    assert.equal((await sshOk(port, p1, `cat /sys/block/${dev.slice(5)}/size`)).out.trim(), String(2 ** 30 / 512), 'a 1 GiB disk')
    await sshOk(port, p1, `printf '%s' ${marker} | dd of=${dev} bs=512 conv=sync 2>/dev/null; sync`)
    assert.equal(await readMarker(port, p1, dev, marker.length), marker)

    t = Date.now()
    ok(await cli.openstack('demo', ['server', 'remove', 'volume', id, vol]))
    await waitVolume(vol, 'available')
    figures['detach from a running server (device_del acknowledged)'] = `${((Date.now() - t) / 1000).toFixed(1)} s`
    assert.equal((await sshOk(port, p1, findDisk(vol))).out.trim(), '', 'the disk left the guest')

    // Extended while detached: the guest sees the new size once it is attached again.
    ok(await cli.openstack('demo', ['volume', 'set', '--size', '2', vol]))
    await waitVolume(vol, 'available')
    ok(await cli.openstack('demo', ['server', 'add', 'volume', id, vol]))
    await waitVolume(vol, 'in-use')
    const again = await diskOf(port, p1, vol)
    assert.equal(await readMarker(port, p1, again, marker.length), marker, 'attached again: the marker is on it')
    assert.equal((await sshOk(port, p1, `cat /sys/block/${again.slice(5)}/size`)).out.trim(), String((2 * 2 ** 30) / 512), 'now 2 GiB')

    // Extended in use (volume API 3.42, Cinder's extend_attached_volume): QMP block_resize under the
    // running guest, whose kernel sees the new size at once; the volume is in-use again.
    const token = await openrcToken(skiff.urls.identity, skiff.openrc.demo)
    const who = await fetch(`${skiff.urls.identity}/auth/tokens`, { headers: { 'x-auth-token': token, 'x-subject-token': token } })
    const project = ((await who.json()) as { token: { project: { id: string } } }).token.project.id
    const extend = await fetch(`${skiff.urls.volume}/${project}/volumes/${vol}/action`, {
      method: 'POST',
      headers: { 'x-auth-token': token, 'content-type': 'application/json', 'openstack-api-version': 'volume 3.42' },
      body: JSON.stringify({ 'os-extend': { new_size: 3 } }),
    })
    assert.equal(extend.status, 202, await extend.text())
    await waitVolume(vol, 'in-use')
    const grown = String((3 * 2 ** 30) / 512)
    let seen = ''
    for (const t0 = Date.now(); seen !== grown && Date.now() - t0 < 60_000; await sleep(500))
      seen = (await sshOk(port, p1, `cat /sys/block/${again.slice(5)}/size`)).out.trim()
    assert.equal(seen, grown, 'now 3 GiB, seen by the running guest')
    assert.equal(await readMarker(port, p1, again, marker.length), marker)

    // A snapshot of the volume in use (the guest paused for the copy), and a volume made from it: the marker is in the copy.
    const snap = (await cli.openstackJson<{ id: string }>('demo', ['volume', 'snapshot', 'create', '--volume', vol, '--force', 'snap'])).id
    const snapDeadline = Date.now() + 120_000
    while ((await cli.openstackJson<{ status: string }>('demo', ['volume', 'snapshot', 'show', snap])).status !== 'available') {
      assert.ok(Date.now() < snapDeadline, 'the snapshot is available within 2 minutes')
      await sleep(500)
    }
    const copy = (await cli.openstackJson<{ id: string }>('demo', ['volume', 'create', '--snapshot', snap, '--size', '3', 'copy'])).id
    await waitVolume(copy, 'available')
    const head = path.join(qemuDir, `head-${copy}.raw`)
    execFileSync('qemu-img', [
      'dd',
      '-f',
      'qcow2',
      '-O',
      'raw',
      'bs=512',
      'count=1',
      `if=${path.join(qemuDir, 'v', `${copy}.qcow2`)}`,
      `of=${head}`,
    ])
    assert.equal(readFileSync(head).subarray(0, marker.length).toString(), marker, 'the copy made from the snapshot holds the marker')
    rmSync(head)
    ok(await cli.openstack('demo', ['volume', 'delete', copy]))
    ok(await cli.openstack('demo', ['volume', 'snapshot', 'delete', snap]))

    // Rescue with the volume attached: the rescue system has it too.
    const p2 = `P2-${randomBytes(6).toString('hex')}`
    t = Date.now()
    ok(await cli.openstack('demo', ['server', 'rescue', '--password', p2, id]))
    await cli.waitForStatus('demo', id, 'RESCUE', BOOT_MS)
    figures['rescue with a volume attached (to RESCUE, SSH up)'] = `${((Date.now() - t) / 1000).toFixed(1)} s`
    const inRescue = await diskOf(port, p2, vol, 30_000)
    assert.equal(await readMarker(port, p2, inRescue, marker.length), marker, 'the rescue system reads the volume')
    const view = (await api.compute('GET', `/servers/${id}/rescue`)).body.rescue.disks as {
      role: string
      device: string
      volume_id?: string
    }[]
    assert.deepEqual(
      view.filter((d) => d.role === 'volume').map((d) => [d.device, d.volume_id]),
      [[inRescue, vol]],
      'the rescue view says where the rescue system sees the volume',
    )
    assert.equal((await sshOk(port, p2, 'cat /sys/block/vdb/serial')).out.trim(), 'vdb', "the server's own disk is second")

    t = Date.now()
    ok(await cli.openstack('demo', ['server', 'unrescue', id]))
    await cli.waitForStatus('demo', id, 'ACTIVE', BOOT_MS)
    figures['unrescue (to ACTIVE, SSH up)'] = `${((Date.now() - t) / 1000).toFixed(1)} s`
    const back = await diskOf(port, p1, vol, 30_000)
    assert.equal(await readMarker(port, p1, back, marker.length), marker, 'back in the server, the volume with its marker')
    assert.equal(await volumeStatus(vol), 'in-use')

    // A hard reboot keeps it (the command line has it).
    ok(await cli.openstack('demo', ['server', 'reboot', '--hard', '--wait', id], { timeoutMs: BOOT_MS }))
    assert.equal(await readMarker(port, p1, await diskOf(port, p1, vol, 30_000), marker.length), marker, 'after a hard reboot')

    // Shelved (offloaded at once: the VM and its directory go) and unshelved: the server boots its
    // snapshot with the volume on its command line again, served from the same host.
    t = Date.now()
    ok(await cli.openstack('demo', ['server', 'shelve', '--wait', id], { timeoutMs: BOOT_MS }))
    await cli.waitForStatus('demo', id, 'SHELVED_OFFLOADED', BOOT_MS)
    ok(await cli.openstack('demo', ['server', 'unshelve', '--wait', id], { timeoutMs: BOOT_MS }))
    figures['shelve with a volume attached, then unshelve (to ACTIVE)'] = `${((Date.now() - t) / 1000).toFixed(1)} s`
    const unshelved = (await api.access(id)).port
    assert.equal(
      await readMarker(unshelved, p1, await diskOf(unshelved, p1, vol), marker.length),
      marker,
      'unshelved: the volume and its marker',
    )
    assert.equal(await volumeStatus(vol), 'in-use')

    ok(await cli.openstack('demo', ['server', 'remove', 'volume', id, vol]))
    await waitVolume(vol, 'available')
    ok(await cli.openstack('demo', ['server', 'delete', '--wait', id], { timeoutMs: 120_000 }))
    ok(await cli.openstack('demo', ['volume', 'delete', vol]))
    const deadline = Date.now() + 60_000
    while (existsSync(file) && Date.now() < deadline) await sleep(250)
    assert.equal(existsSync(file), false, "the volume's file is gone with it")
  })

  test('boot from a volume; a stable-device rescue at 2.87 sees it first; unrescue boots it again', async () => {
    const marker = `bfv-marker-${randomBytes(6).toString('hex')}`
    let t = Date.now()
    const created = await cli.openstackJson<{ id: string; adminPass: string }>(
      'demo',
      ['server', 'create', '--image', 'skiff-base', '--boot-from-volume', '1', '--flavor', 'm1.tiny', '--wait', 'vm bfv'],
      { timeoutMs: BOOT_MS },
    )
    figures['create booting from a new volume made from the image (to ACTIVE, SSH up)'] = `${((Date.now() - t) / 1000).toFixed(1)} s`
    const { id, adminPass: p1 } = created
    const attachments = (await api.compute('GET', `/servers/${id}/os-volume_attachments`)).body.volumeAttachments as {
      volumeId: string
      device: string
    }[]
    assert.equal(attachments.length, 1)
    const root = attachments[0]!.volumeId
    assert.equal(existsSync(path.join(qemuDir, 's', id, 'disk.qcow2')), false, 'no image overlay: the root is the volume')
    const { port } = await api.access(id)
    const own = await sshOk(port, p1, `cat /sys/block/vda/serial; echo; echo ${marker} > /root/marker && sync`)
    assert.equal(own.out.trim(), root.slice(0, 20), "the root disk is the volume (its serial is the volume's id)")

    // A volume-backed server is rescued from 2.87, with a rescue image that asks for a stable-device rescue.
    ok(
      await cli.openstack('admin', [
        'image',
        'set',
        '--property',
        'hw_rescue_device=disk',
        '--property',
        'hw_rescue_bus=virtio',
        'skiff-rescue',
      ]),
    )
    const p2 = `P2-${randomBytes(6).toString('hex')}`
    t = Date.now()
    ok(
      await cli.openstack('demo', [
        '--os-compute-api-version',
        '2.87',
        'server',
        'rescue',
        '--image',
        'skiff-rescue',
        '--password',
        p2,
        id,
      ]),
    )
    await cli.waitForStatus('demo', id, 'RESCUE', BOOT_MS)
    figures['stable-device rescue of a volume-backed server (to RESCUE, SSH up)'] = `${((Date.now() - t) / 1000).toFixed(1)} s`
    const look = await sshOk(
      port,
      p2,
      'grep -o "root=[^ ]*" /proc/cmdline; cat /sys/block/vda/serial; echo; mkdir -p /mnt/s && mount /dev/vda /mnt/s && cat /mnt/s/root/marker && umount /mnt/s',
    )
    assert.deepEqual(
      look.out.trim().split('\n'),
      ['root=/dev/vdc', root.slice(0, 20), marker],
      'the volume stays first; its files are there',
    )

    t = Date.now()
    ok(await cli.openstack('demo', ['server', 'unrescue', id]))
    await cli.waitForStatus('demo', id, 'ACTIVE', BOOT_MS)
    figures['unrescue of a volume-backed server (to ACTIVE, SSH up)'] = `${((Date.now() - t) / 1000).toFixed(1)} s`
    assert.equal((await sshOk(port, p1, 'cat /root/marker')).out.trim(), marker)

    // Shelved as Nova shelves a volume-backed server: offloaded at once, no image; unshelved, it
    // boots its volume again (the marker, the root's serial).
    t = Date.now()
    ok(await cli.openstack('demo', ['server', 'shelve', id]))
    await cli.waitForStatus('demo', id, 'SHELVED_OFFLOADED', BOOT_MS)
    assert.equal(existsSync(path.join(qemuDir, 'v', `${root}.qcow2`)), true, 'the root volume stays')
    ok(await cli.openstack('demo', ['server', 'unshelve', '--wait', id], { timeoutMs: BOOT_MS }))
    figures['shelve and unshelve of a volume-backed server (to ACTIVE)'] = `${((Date.now() - t) / 1000).toFixed(1)} s`
    const back = (await api.access(id)).port
    assert.deepEqual(
      (await sshOk(back, p1, 'cat /sys/block/vda/serial; echo; cat /root/marker')).out.trim().split('\n'),
      [root.slice(0, 20), marker],
      'unshelved: booted from its volume, the files there',
    )
    ok(await cli.openstack('demo', ['server', 'delete', '--wait', id], { timeoutMs: 120_000 }))
    assert.ok(existsSync(path.join(qemuDir, 'v', `${root}.qcow2`)), 'the volume outlives the server (not delete_on_termination)')
  })
})
