// Rescue proven by logging in: a real `skiff serve --driver qemu`, real VMs, the `openstack` CLI
// for what a user asks, SSH with ssh2 for what a user checks.
// create → SSH with the create password, write a file, make the disk unbootable (no /sbin/init);
// rescue with a password → SSH with it (the original refused), the file is on the second disk,
// repair it there, the host key differs; unrescue → the repaired disk boots, with the original
// password, the file and the original host key; delete → no QEMU, no files. Then a stable-device
// rescue (the rescue disk on SCSI, attached last) with a checkpoint: a bad repair discarded, and
// a checkpoint kept. Then a stable-device rescue from a CD-ROM (IDE): booted from the read-only
// disc, the server's disk found at vda, unchanged after unrescue; a floppy refused.
// Skipped where QEMU and the guest packages are absent, except in CI (.ci/run installs them).
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { guestSkipReason } from '../helpers/qemu.ts'
import { clientGate, Clients } from './helpers/clients.ts'
import { ok } from './helpers/process.ts'
import { startQemuSkiff, type QemuSkiff } from './helpers/qemu-skiff.ts'
import type { SkiffProcess } from './helpers/skiff-process.ts'
import { qemuPids, ssh, sshOk, type VmApi } from './helpers/vm.ts'

/** A warm rescue system saved under the driver's dir (warm-rescue.ts). */
const warmSaved = (qemuDir: string) =>
  existsSync(path.join(qemuDir, 'warm')) &&
  readdirSync(path.join(qemuDir, 'warm')).some((d) => existsSync(path.join(qemuDir, 'warm', d, 'meta.json')))

async function waitFor(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 250))
  }
}

const skip = guestSkipReason() || (await clientGate(['openstack'])).skip
const BOOT_MS = 240_000

describe('qemu driver: rescue proven by logging in', { skip, timeout: 15 * 60_000 }, () => {
  let vm: QemuSkiff
  let skiff: SkiffProcess
  let api: VmApi
  let cli: Clients
  let qemuDir = ''
  const figures: Record<string, string> = {}

  before(async () => {
    vm = await startQemuSkiff({ sshPorts: '23100-23199', figures })
    figures['first start (guest build, accelerator probe)'] = `${vm.startSeconds.toFixed(1)} s`
    ;({ skiff, api, qemuDir } = vm)
    cli = new Clients(skiff)
  })

  after(() => vm?.stop())

  test('create, break, rescue, repair from the rescue system, unrescue, delete', async () => {
    const marker = `marker-${randomBytes(6).toString('hex')}`
    let t = Date.now()
    const created = await cli.openstackJson<{ id: string; adminPass: string; status: string }>(
      'demo',
      ['server', 'create', '--image', 'skiff-base', '--flavor', 'm1.tiny', '--wait', 'vm one'],
      { timeoutMs: BOOT_MS },
    )
    figures['openstack server create --wait (boot to SSH)'] = `${((Date.now() - t) / 1000).toFixed(1)} s`
    assert.equal(created.status, 'ACTIVE')
    const { id, adminPass: p1 } = created
    assert.ok(p1, 'the create answer carries the password')

    const access = await api.access(id)
    assert.equal(access.host, '127.0.0.1')
    assert.match(access.host_key_fingerprint ?? '', /^SHA256:/)
    const own = await sshOk(access.port, p1, `echo ${marker} > /root/marker && sync && cat /root/marker`)
    assert.equal(own.out.trim(), marker)
    assert.equal(own.hostKey, access.host_key_fingerprint, 'the host key Skiff shows is the one SSH presents')

    // Break it: the running system goes on, the next boot cannot (the initramfs finds no init).
    assert.equal((await sshOk(access.port, p1, 'rm /sbin/init && sync && test -e /sbin/init || echo gone')).out.trim(), 'gone')

    // Rescue with a chosen password.
    const p2 = `P2-${randomBytes(6).toString('hex')}`
    t = Date.now()
    ok(await cli.openstack('demo', ['server', 'rescue', '--password', p2, id]))
    await cli.waitForStatus('demo', id, 'RESCUE', BOOT_MS)
    figures['rescue (to RESCUE, SSH up)'] = `${((Date.now() - t) / 1000).toFixed(1)} s`
    const inRescue = await api.access(id)
    // From the moment the server shows RESCUE: the rescue system's host key, never null.
    assert.match(inRescue.host_key_fingerprint ?? '', /^SHA256:/, 'the host key is shown as the server shows RESCUE')
    assert.equal(inRescue.port, access.port, 'the same address through rescue')
    assert.notEqual(inRescue.host_key_fingerprint, access.host_key_fingerprint, 'the host key differs in rescue')
    const readable = await api.compute('GET', `/servers/${id}/rescue`)
    assert.equal(
      readable.body.rescue.access.ssh.host_key_fingerprint,
      inRescue.host_key_fingerprint,
      'the rescue state shows the rescue host key',
    )
    assert.equal(readable.body.rescue.access.ssh.port, access.port)
    assert.equal((await ssh(access.port, p1, 'true')).ok, false, 'the original password is refused by the rescue system')
    const look = await sshOk(
      access.port,
      p2,
      'cat /sys/block/vdb/serial; echo; mkdir -p /mnt/vdb && mount /dev/vdb /mnt/vdb && cat /mnt/vdb/root/marker && (test -e /mnt/vdb/sbin/init || echo no-init); umount /mnt/vdb',
    )
    assert.deepEqual(look.out.trim().split('\n'), ['vdb', marker, 'no-init'], 'the broken server disk, with the file, is the second disk')
    assert.equal(look.hostKey, inRescue.host_key_fingerprint)
    // Repair: put init back on the server's disk.
    const repair = await sshOk(
      access.port,
      p2,
      'mount /dev/vdb /mnt/vdb && ln -s /bin/busybox /mnt/vdb/sbin/init && readlink /mnt/vdb/sbin/init; umount /mnt/vdb && sync',
    )
    assert.equal(repair.out.trim(), '/bin/busybox')

    // Unrescue: the repaired disk boots, with its own password and host key.
    t = Date.now()
    ok(await cli.openstack('demo', ['server', 'unrescue', id]))
    await cli.waitForStatus('demo', id, 'ACTIVE', BOOT_MS)
    figures['unrescue (to ACTIVE, SSH up)'] = `${((Date.now() - t) / 1000).toFixed(1)} s`
    const back = await sshOk(access.port, p1, 'readlink /sbin/init; cat /root/marker')
    assert.deepEqual(back.out.trim().split('\n'), ['/bin/busybox', marker], 'the repair and the file are there')
    assert.equal(back.hostKey, access.host_key_fingerprint, 'the original host key is back')
    assert.equal((await ssh(access.port, p2, 'true')).ok, false, 'the rescue password no longer works')
    const consoleLog = ok(await cli.openstack('demo', ['console', 'log', 'show', '--lines', '50', id])).stdout
    assert.match(consoleLog, /GUEST-READY/)
    assert.doesNotMatch(consoleLog, new RegExp(`${p1}|${p2}`))

    // The first rescue booted the rescue system; its warm state is saved after it (in the
    // background), and the next rescue restores it instead of booting.
    await waitFor(() => warmSaved(qemuDir), BOOT_MS, 'the warm rescue system to be saved')
    const keys = new Set([access.host_key_fingerprint, inRescue.host_key_fingerprint])
    for (const round of [1, 2]) {
      const p3 = `P3-${randomBytes(6).toString('hex')}`
      t = Date.now()
      ok(await cli.openstack('demo', ['server', 'rescue', '--password', p3, id]))
      await cli.waitForStatus('demo', id, 'RESCUE', BOOT_MS)
      figures[`warm rescue ${round} (to RESCUE, SSH up)`] = `${((Date.now() - t) / 1000).toFixed(1)} s`
      const rescueConsole = readFileSync(path.join(qemuDir, 's', id, 'r', 'console.log'), 'utf8')
      assert.match(rescueConsole, /^SKIFF: the rescue system is restored/, 'restored from the saved state, not booted')
      const warm = await api.access(id)
      assert.match(warm.host_key_fingerprint ?? '', /^SHA256:/, 'the host key is shown as the server shows RESCUE')
      assert.ok(!keys.has(warm.host_key_fingerprint), "a host key of its own: not the server's, not an earlier rescue's")
      keys.add(warm.host_key_fingerprint)
      assert.equal((await ssh(access.port, p1, 'true')).ok, false, 'the original password is refused by the rescue system')
      const inWarm = await sshOk(
        access.port,
        p3,
        'cat /sys/block/vdb/serial; echo; cat /sys/block/vdc/serial; echo; mkdir -p /mnt/vdb && mount /dev/vdb /mnt/vdb && cat /mnt/vdb/root/marker; umount /mnt/vdb; hostname',
      )
      assert.equal(inWarm.hostKey, warm.host_key_fingerprint, 'the host key Skiff shows is the one SSH presents')
      assert.deepEqual(
        inWarm.out.trim().split('\n'),
        ['vdb', 'config-2', marker, 'vm-one'],
        "the server's disk is the second disk, with its file",
      )
      t = Date.now()
      ok(await cli.openstack('demo', ['server', 'unrescue', id]))
      await cli.waitForStatus('demo', id, 'ACTIVE', BOOT_MS)
      figures[`unrescue after warm rescue ${round} (to ACTIVE, SSH up)`] = `${((Date.now() - t) / 1000).toFixed(1)} s`
      const own2 = await sshOk(access.port, p1, 'cat /root/marker')
      assert.equal(own2.out.trim(), marker)
      assert.equal(own2.hostKey, access.host_key_fingerprint, 'the original host key is back')
      assert.equal((await ssh(access.port, p3, 'true')).ok, false, 'the rescue password no longer works')
    }

    // A saved state QEMU cannot restore (its snapshot gone): the rescue boots instead, says why,
    // and the state is dropped (saved again after this boot).
    const warmDir = path.join(
      qemuDir,
      'warm',
      readdirSync(path.join(qemuDir, 'warm')).find((d) => !d.includes('.'))!,
    )
    const savedAt = readFileSync(path.join(warmDir, 'meta.json'), 'utf8')
    execFileSync('qemu-img', ['snapshot', '-d', 'skiff-warm', path.join(warmDir, 'disk.qcow2')])
    const p4 = `P4-${randomBytes(6).toString('hex')}`
    ok(await cli.openstack('demo', ['server', 'rescue', '--password', p4, id]))
    // Read while it is in the output's tail (the polls of the wait push it out).
    await waitFor(() => /warm rescue system not restored: booting it instead/.test(skiff.output()), BOOT_MS, 'the reason logged')
    await cli.waitForStatus('demo', id, 'RESCUE', BOOT_MS)
    assert.match(readFileSync(path.join(qemuDir, 's', id, 'r', 'console.log'), 'utf8'), /^SKIFF: the rescue system boots/)
    const metaNow = existsSync(path.join(warmDir, 'meta.json')) ? readFileSync(path.join(warmDir, 'meta.json'), 'utf8') : null
    assert.notEqual(metaNow, savedAt, 'the state that failed is dropped (saved anew after this boot)')
    const cold = await api.access(id)
    assert.ok(!keys.has(cold.host_key_fingerprint))
    const inCold = await sshOk(access.port, p4, 'cat /sys/block/vdb/serial')
    assert.equal(inCold.out.trim(), 'vdb')
    assert.equal(inCold.hostKey, cold.host_key_fingerprint)

    // Delete: no QEMU process, no files.
    ok(await cli.openstack('demo', ['server', 'delete', '--wait', id], { timeoutMs: 120_000 }))
    assert.deepEqual(qemuPids(id), [])
    assert.equal(existsSync(path.join(qemuDir, 's', id)), false)
  })

  test('stable-device rescue on scsi with a checkpoint: a bad repair discarded; then a checkpoint kept', async () => {
    const before = `before-${randomBytes(6).toString('hex')}`
    const created = await cli.openstackJson<{ id: string; adminPass: string }>(
      'demo',
      ['server', 'create', '--image', 'skiff-base', '--flavor', 'm1.tiny', '--wait', 'vm two'],
      { timeoutMs: BOOT_MS },
    )
    const { id, adminPass: p1 } = created
    const access = await api.access(id)
    await sshOk(access.port, p1, `echo ${before} > /root/marker && sync`)
    // The rescue image asks for a stable-device rescue, its disk on the SCSI bus.
    ok(
      await cli.openstack('admin', [
        'image',
        'set',
        '--property',
        'hw_rescue_device=disk',
        '--property',
        'hw_rescue_bus=scsi',
        'skiff-rescue',
      ]),
    )
    const rescueImage = (await cli.openstackJson<{ id: string }>('demo', ['image', 'show', 'skiff-rescue'])).id

    const p2 = `P2-${randomBytes(6).toString('hex')}`
    let t = Date.now()
    const res = await api.compute('POST', `/servers/${id}/rescue`, { rescue: { image_ref: rescueImage, admin_pass: p2, checkpoint: true } })
    assert.equal(res.status, 202, JSON.stringify(res.body))
    await api.waitStatus(id, 'RESCUE', BOOT_MS)
    figures['stable-device rescue with a checkpoint (to RESCUE, SSH up)'] = `${((Date.now() - t) / 1000).toFixed(1)} s`
    const state = (await api.compute('GET', `/servers/${id}/rescue`)).body.rescue
    assert.equal(state.stable_device_rescue, true)
    assert.equal(state.checkpoint.status, 'held')
    assert.deepEqual(
      state.disks.map((d: { role: string; device: string }) => `${d.role} ${d.device}`),
      ['server /dev/vda', 'config_drive /dev/vdb', 'rescue /dev/sda'],
    )
    // In the rescue system: booted from the SCSI disk attached last; the server's disk is still vda.
    const look = await sshOk(
      access.port,
      p2,
      'grep -o "root=[^ ]*" /proc/cmdline; cat /sys/block/vda/serial; echo; readlink -f /sys/block/sda/device | grep -c virtio; ' +
        'mkdir -p /mnt/s && mount /dev/vda /mnt/s && cat /mnt/s/root/marker',
    )
    assert.deepEqual(look.out.trim().split('\n'), ['root=/dev/sda', 'vda', '1', before])
    // A repair that makes things worse: the marker overwritten, init gone.
    await sshOk(access.port, p2, 'echo worse > /mnt/s/root/marker; rm /mnt/s/sbin/init; sync; umount /mnt/s; sync')

    t = Date.now()
    assert.equal((await api.compute('DELETE', `/servers/${id}/rescue?discard_changes=true`)).status, 202)
    await api.waitStatus(id, 'ACTIVE', BOOT_MS)
    figures['unrescue discarding the changes (to ACTIVE, SSH up)'] = `${((Date.now() - t) / 1000).toFixed(1)} s`
    const back = await sshOk(access.port, p1, 'cat /root/marker; test -e /sbin/init && echo init')
    assert.deepEqual(back.out.trim().split('\n'), [before, 'init'], 'the disk as it was when the rescue began')
    assert.equal(existsSync(path.join(qemuDir, 's', id, 'rescue-changes.qcow2')), false)

    // A checkpoint kept (the legacy layout: the server's own image): the repair stays.
    await api.compute('POST', `/servers/${id}/rescue`, { rescue: { admin_pass: p2, checkpoint: true } })
    await api.waitStatus(id, 'RESCUE', BOOT_MS)
    await sshOk(access.port, p2, 'mkdir -p /mnt/s && mount /dev/vdb /mnt/s && echo repaired > /mnt/s/root/marker && sync && umount /mnt/s')
    t = Date.now()
    assert.equal((await api.compute('DELETE', `/servers/${id}/rescue`)).status, 202)
    await api.waitStatus(id, 'ACTIVE', BOOT_MS)
    figures['unrescue keeping the changes (to ACTIVE, SSH up)'] = `${((Date.now() - t) / 1000).toFixed(1)} s`
    assert.equal((await sshOk(access.port, p1, 'cat /root/marker')).out.trim(), 'repaired')
    assert.equal(existsSync(path.join(qemuDir, 's', id, 'rescue-changes.qcow2')), false)
    ok(await cli.openstack('demo', ['server', 'delete', '--wait', id], { timeoutMs: 120_000 }))
  })

  test('stable-device rescue from a CD-ROM on IDE: booted from the read-only disc, the server disk vda untouched; a floppy refused', async () => {
    const marker = `cd-${randomBytes(6).toString('hex')}`
    const created = await cli.openstackJson<{ id: string; adminPass: string }>(
      'demo',
      ['server', 'create', '--image', 'skiff-base', '--flavor', 'm1.tiny', '--wait', 'vm three'],
      { timeoutMs: BOOT_MS },
    )
    const { id, adminPass: p1 } = created
    const access = await api.access(id)
    const own = await sshOk(access.port, p1, `echo ${marker} > /root/marker && sync && md5sum /root/marker`)
    ok(
      await cli.openstack('admin', [
        'image',
        'set',
        '--property',
        'hw_rescue_device=cdrom',
        '--property',
        'hw_rescue_bus=ide',
        'skiff-rescue',
      ]),
    )
    const rescueImage = (await cli.openstackJson<{ id: string }>('demo', ['image', 'show', 'skiff-rescue'])).id
    const p2 = `P2-${randomBytes(6).toString('hex')}`
    let t = Date.now()
    ok(await cli.openstack('demo', ['server', 'rescue', '--image', rescueImage, '--password', p2, id]))
    await cli.waitForStatus('demo', id, 'RESCUE', BOOT_MS)
    figures['stable-device rescue from a CD-ROM (to RESCUE, SSH up)'] = `${((Date.now() - t) / 1000).toFixed(1)} s`
    const state = (await api.compute('GET', `/servers/${id}/rescue`)).body.rescue
    assert.deepEqual(
      state.disks.map((d: { role: string; device: string; type: string }) => `${d.role} ${d.device} ${d.type}`),
      ['server /dev/vda disk', 'config_drive /dev/vdb disk', 'rescue /dev/sr0 cdrom'],
    )
    // In the rescue system: root from the CD-ROM (SCSI type 5, read-only), its writes in memory;
    // the server's disk is still vda, with its file.
    const look = await sshOk(
      access.port,
      p2,
      'grep -o "root=[^ ]*" /proc/cmdline; cat /sys/block/sr0/device/type; cat /sys/block/sr0/ro; awk \'$2 == "/" { print $3 }\' /proc/mounts; ' +
        'touch /root/written-in-rescue && echo writable; cat /sys/block/vda/serial; echo; ' +
        'mkdir -p /mnt/s && mount -o ro /dev/vda /mnt/s && cat /mnt/s/root/marker && umount /mnt/s',
    )
    assert.deepEqual(look.out.trim().split('\n'), ['root=/dev/sr0', '5', '1', 'overlay', 'writable', 'vda', marker])
    assert.notEqual(look.hostKey, access.host_key_fingerprint, 'the rescue system has its own host key')

    t = Date.now()
    ok(await cli.openstack('demo', ['server', 'unrescue', id]))
    await cli.waitForStatus('demo', id, 'ACTIVE', BOOT_MS)
    figures['unrescue from the CD-ROM rescue (to ACTIVE, SSH up)'] = `${((Date.now() - t) / 1000).toFixed(1)} s`
    const back = await sshOk(access.port, p1, 'md5sum /root/marker')
    assert.equal(back.out, own.out, "the server's file unchanged")
    assert.equal(back.hostKey, access.host_key_fingerprint, 'its own host key')

    // A floppy holds 2.88 MB: the rescue image cannot be one. The rescue fails before the server
    // is touched, and the server stays up on its own disk.
    ok(
      await cli.openstack('admin', [
        'image',
        'set',
        '--property',
        'hw_rescue_device=floppy',
        '--property',
        'hw_rescue_bus=fdc',
        'skiff-rescue',
      ]),
    )
    assert.equal((await api.compute('POST', `/servers/${id}/action`, { rescue: { rescue_image_ref: rescueImage } })).status, 200)
    await waitForFault(api, id, /does not fit a floppy/)
    assert.equal((await sshOk(access.port, p1, 'md5sum /root/marker')).out, own.out, 'the server still runs, untouched')
    ok(await cli.openstack('admin', ['image', 'unset', '--property', 'hw_rescue_device', '--property', 'hw_rescue_bus', 'skiff-rescue']))
    ok(await cli.openstack('demo', ['server', 'delete', '--wait', id], { timeoutMs: 120_000 }))
  })
})

/** Until the server is ACTIVE again with a fault saying `message` (a rescue that failed on the host). */
async function waitForFault(api: VmApi, id: string, message: RegExp): Promise<void> {
  const deadline = Date.now() + 60_000
  for (;;) {
    const s = (await api.compute('GET', `/servers/${id}`)).body.server
    if (s.status === 'ACTIVE' && s['OS-EXT-STS:task_state'] === null && message.test(s.fault?.message ?? '')) return
    if (Date.now() > deadline) throw new Error(`no fault ${message} on ${id}: ${JSON.stringify(s.fault ?? s.status)}`)
    await new Promise((resolve) => setTimeout(resolve, 250))
  }
}
