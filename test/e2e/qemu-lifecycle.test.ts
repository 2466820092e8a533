// The qemu driver beyond rescue, on real VMs: stop/start, soft and hard reboot, pause/unpause,
// rebuild and console output; a rescue VM killed while it boots (safe failure: the server is back
// on its own disk) and while in RESCUE (the server shows it; unrescue recovers); the server VM
// killed while unrescue boots it (the rescue system boots again; a retry works); skiff killed
// during a rescue (the rescue completes after the restart); and a restart of `skiff serve` that
// re-attaches to running VMs, reconciles one that died meanwhile and destroys an orphan directory.
// Skipped where QEMU and the guest packages are absent, except in CI (.ci/run installs them).
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { after, before, describe, test } from 'node:test'
import { guestSkipReason } from '../helpers/qemu.ts'
import { startQemuSkiff, type QemuSkiff } from './helpers/qemu-skiff.ts'
import type { SkiffProcess } from './helpers/skiff-process.ts'
import { qemuPids, ssh, sshOk, type VmApi } from './helpers/vm.ts'

const skip = guestSkipReason()
const BOOT_MS = 240_000

describe('qemu driver: power operations, a killed rescue VM, a restart', { skip, timeout: 25 * 60_000 }, () => {
  let vm: QemuSkiff
  let qemuDir = ''
  let skiff: SkiffProcess
  let api: VmApi
  let imageRef = ''

  before(async () => {
    // Booted rescue systems: their failure paths are what this file kills (a restored one, which
    // falls back to a boot, is qemu-rescue.test.ts's).
    vm = await startQemuSkiff({ sshPorts: '23200-23299', extraArgs: ['--no-qemu-warm-rescue'] })
    ;({ skiff, api, qemuDir, baseImageId: imageRef } = vm)
  })

  after(() => vm?.stop())

  async function create(name: string, adminPass: string, extra: Record<string, unknown> = {}): Promise<{ id: string; port: number }> {
    const res = await api.compute('POST', '/servers', { server: { name, imageRef, flavorRef: '1', adminPass, ...extra } })
    assert.equal(res.status, 202, JSON.stringify(res.body))
    const id = res.body.server.id as string
    await api.waitStatus(id, 'ACTIVE', BOOT_MS)
    return { id, port: (await api.access(id)).port }
  }
  const act = async (id: string, body: unknown, status = 202) => {
    const res = await api.compute('POST', `/servers/${id}/action`, body)
    assert.equal(res.status, status, JSON.stringify(res.body))
    return res.body
  }
  const power = async (id: string) => (await api.compute('GET', `/servers/${id}`)).body.server['OS-EXT-STS:power_state'] as number
  /** The pid of the QEMU now running for the server's own disk (`own`) or its rescue system. */
  const vmPid = (id: string, which: 'own' | 'rescue') => {
    const dir = which === 'own' ? path.join(qemuDir, 's', id) : path.join(qemuDir, 's', id, 'r')
    return qemuPids(`${dir}/qemu.pid`)[0]
  }
  /** A server with /root/marker on its disk, and a rescue of it just asked for. */
  async function rescueMarked(name: string) {
    const p1 = `P1-${randomBytes(6).toString('hex')}`
    const { id, port } = await create(name, p1)
    await sshOk(port, p1, 'echo intact > /root/marker && sync')
    const p2 = `P2-${randomBytes(6).toString('hex')}`
    await act(id, { rescue: { adminPass: p2 } }, 200)
    return { id, port, p1, p2 }
  }
  /** Delete: no QEMU and no files left for the server. */
  async function remove(id: string) {
    assert.equal((await api.compute('DELETE', `/servers/${id}`)).status, 204)
    await api.waitStatus(id, 'DELETED', 60_000)
    assert.deepEqual(qemuPids(path.join(qemuDir, 's', id)), [])
    assert.equal(existsSync(path.join(qemuDir, 's', id)), false)
  }
  const bootId = async (port: number, password: string) => (await sshOk(port, password, 'cat /proc/sys/kernel/random/boot_id')).out.trim()

  /** The file a user-data script writes, once it has run (it runs in the background of the boot). */
  async function userDataRan(port: number, auth: string | { privateKey: string }): Promise<string> {
    for (const deadline = Date.now() + 60_000; ; await sleep(500)) {
      const out = (await sshOk(port, auth, 'cat /root/user-data-ran 2>/dev/null')).out.trim()
      if (out) return out
      assert.ok(Date.now() < deadline, 'the user-data script ran')
    }
  }

  test('key pair and user data at create; stop, start, soft and hard reboot, pause, unpause, rebuild, console', async () => {
    const keypair = await api.compute('POST', '/os-keypairs', { keypair: { name: `e2e-${randomBytes(4).toString('hex')}` } })
    assert.equal(keypair.status, 200, JSON.stringify(keypair.body))
    const key = { privateKey: keypair.body.keypair.private_key as string }
    const script = '#!/bin/sh\necho "ran as $(id -un) on $(hostname)" > /root/user-data-ran\n'
    const p1 = `P1-${randomBytes(6).toString('hex')}`
    const { id, port } = await create('power', p1, {
      key_name: keypair.body.keypair.name,
      user_data: Buffer.from(script).toString('base64'),
    })
    assert.equal(await power(id), 1)
    assert.equal(await userDataRan(port, key), 'ran as root on power', 'the key pair logs in; the user data ran')
    await sshOk(port, p1, 'echo kept > /root/kept && sync')
    const boot0 = await bootId(port, p1)

    await act(id, { 'os-stop': null })
    await api.waitStatus(id, 'SHUTOFF', BOOT_MS)
    assert.equal(await power(id), 4)
    assert.equal(vmPid(id, 'own'), undefined, 'no QEMU for a stopped server')
    await act(id, { 'os-start': null })
    await api.waitStatus(id, 'ACTIVE', BOOT_MS)
    assert.equal((await sshOk(port, p1, 'cat /root/kept')).out.trim(), 'kept')
    const boot1 = await bootId(port, p1)
    assert.notEqual(boot1, boot0)

    for (const type of ['SOFT', 'HARD']) {
      const before = await bootId(port, p1)
      await act(id, { reboot: { type } })
      await api.waitStatus(id, 'ACTIVE', BOOT_MS)
      assert.notEqual(await bootId(port, p1), before, `${type} reboot boots the guest again`)
    }

    const pid = vmPid(id, 'own')
    const beforePause = await bootId(port, p1)
    const status = readFileSync(`/proc/${pid}/status`, 'utf8')
    assert.match(status, /^Seccomp:\s+2$/m, 'QEMU runs under its seccomp sandbox')
    if (process.getuid?.() === 0) assert.match(status, /^Uid:\s+65534\s/m, 'QEMU started by root runs as nobody')
    await act(id, { pause: null })
    await api.waitStatus(id, 'PAUSED', 60_000)
    assert.equal(await power(id), 3)
    await act(id, { unpause: null })
    await api.waitStatus(id, 'ACTIVE', 60_000)
    assert.equal(await bootId(port, p1), beforePause, 'unpause resumes the same boot')
    assert.equal(vmPid(id, 'own'), pid, 'unpause resumes the same QEMU')

    const consoleOut = (await act(id, { 'os-getConsoleOutput': { length: -1 } }, 200)).output as string
    assert.match(consoleOut, new RegExp(`SSH: ssh -p ${port} root@127\\.0\\.0\\.1`), 'the console says where to log in')
    assert.match(consoleOut, /GUEST-READY/)
    assert.doesNotMatch(consoleOut, new RegExp(p1))

    const p3 = `P3-${randomBytes(6).toString('hex')}`
    const rebuilt = await act(id, { rebuild: { imageRef, adminPass: p3 } })
    assert.equal(rebuilt.server.adminPass, p3)
    await api.waitStatus(id, 'ACTIVE', BOOT_MS)
    const fresh = await sshOk(port, p3, 'cat /root/kept 2>/dev/null || echo fresh')
    assert.equal(fresh.out.trim(), 'fresh', 'rebuild starts from a clean image')
    assert.equal(await userDataRan(port, key), 'ran as root on power', 'the key and the user data are kept through rebuild, as in Nova')
    assert.equal((await ssh(port, p1, 'true')).ok, false, 'the old password is gone with the old disk')

    await remove(id)
  })

  test('the rescue VM killed while it boots: the server is back on its own disk', async () => {
    const { id, port, p1 } = await rescueMarked('killed-boot')
    // Kill the rescue system's QEMU as soon as it exists, before the guest is up.
    let killed: number | undefined
    for (const deadline = Date.now() + BOOT_MS; !killed && Date.now() < deadline; await sleep(50)) {
      killed = vmPid(id, 'rescue')
      if (killed) process.kill(killed, 'SIGKILL')
    }
    assert.ok(killed, 'the rescue VM started')
    await api.waitStatus(id, 'ACTIVE', BOOT_MS)
    const events = (await api.compute('GET', `/servers/${id}/os-instance-actions`)).body.instanceActions as {
      action: string
      message: string | null
    }[]
    assert.deepEqual(events.map((e) => [e.action, e.message]).slice(0, 2), [
      ['rescue', 'Error'],
      ['create', null],
    ])
    assert.equal((await sshOk(port, p1, 'cat /root/marker')).out.trim(), 'intact', 'the original password and the disk')
    assert.equal(existsSync(path.join(qemuDir, 's', id, 'r')), false, 'the rescue overlay is gone')
    await remove(id)
  })

  test('the rescue VM killed in RESCUE: the server shows it; unrescue recovers', async () => {
    const { id, port, p1, p2 } = await rescueMarked('killed-rescue')
    await api.waitStatus(id, 'RESCUE', BOOT_MS)
    await sshOk(port, p2, 'true')
    process.kill(vmPid(id, 'rescue')!, 'SIGKILL')
    for (const deadline = Date.now() + 30_000; (await power(id)) !== 4; await sleep(250)) {
      assert.ok(Date.now() < deadline, 'the dead rescue VM shows as powered off')
    }
    assert.equal((await api.compute('GET', `/servers/${id}`)).body.server.status, 'RESCUE')
    await act(id, { unrescue: null })
    await api.waitStatus(id, 'ACTIVE', BOOT_MS)
    assert.equal((await sshOk(port, p1, 'cat /root/marker')).out.trim(), 'intact')
    await remove(id)
  })

  test('the server VM killed while unrescue boots it: the same rescue system boots again; a retry unrescues', async () => {
    const { id, port, p1, p2 } = await rescueMarked('killed-unrescue')
    await api.waitStatus(id, 'RESCUE', BOOT_MS)
    const first = await sshOk(port, p2, 'true')
    await act(id, { unrescue: null })
    // Kill the server's own QEMU as soon as it exists, before its guest is up.
    let killed: number | undefined
    for (const deadline = Date.now() + BOOT_MS; !killed && Date.now() < deadline; await sleep(50)) {
      killed = vmPid(id, 'own')
      if (killed) process.kill(killed, 'SIGKILL')
    }
    assert.ok(killed, 'the server VM started')
    await api.waitStatus(id, 'RESCUE', BOOT_MS)
    const server = (await api.compute('GET', `/servers/${id}`)).body.server
    assert.equal(server['OS-EXT-STS:power_state'], 1, 'the rescue system runs again')
    // Killed before or after QEMU daemonized: either way the server's boot failed.
    assert.match(server.fault.message, /QEMU exited|QEMU did not start/)
    // The same rescue disk: the rescue password and host key of its first boot, the server's disk second.
    const again = await sshOk(port, p2, 'mkdir -p /mnt/vdb && mount /dev/vdb /mnt/vdb && cat /mnt/vdb/root/marker; umount /mnt/vdb')
    assert.equal(again.out.trim(), 'intact')
    assert.equal(again.hostKey, first.hostKey)
    const actions = (await api.compute('GET', `/servers/${id}/os-instance-actions`)).body.instanceActions as {
      action: string
      message: string | null
    }[]
    assert.deepEqual(actions.map((a) => [a.action, a.message]).slice(0, 2), [
      ['unrescue', 'Error'],
      ['rescue', null],
    ])
    await act(id, { unrescue: null })
    await api.waitStatus(id, 'ACTIVE', BOOT_MS)
    assert.equal((await sshOk(port, p1, 'cat /root/marker')).out.trim(), 'intact')
    assert.equal(existsSync(path.join(qemuDir, 's', id, 'r')), false, 'the rescue overlay is gone once the server booted')
    await remove(id)
  })

  test('skiff killed while a rescue boots: after a restart the rescue completes; the disk is intact', async () => {
    const { id, port, p1, p2 } = await rescueMarked('crash-in-rescue')
    for (const deadline = Date.now() + BOOT_MS; !vmPid(id, 'rescue'); await sleep(50)) {
      assert.ok(Date.now() < deadline, 'the rescue VM started')
    }
    process.kill(skiff.pid, 'SIGKILL')
    ;({ skiff, api } = await vm.restart())
    await api.waitStatus(id, 'RESCUE', BOOT_MS)
    const look = await sshOk(port, p2, 'mkdir -p /mnt/vdb && mount /dev/vdb /mnt/vdb && cat /mnt/vdb/root/marker; umount /mnt/vdb')
    assert.equal(look.out.trim(), 'intact', 'the rescue system, with the server disk second')
    assert.equal(qemuPids(path.join(qemuDir, 's', id)).length, 1, 'one QEMU: the rescue VM of the first attempt is gone')
    await act(id, { unrescue: null })
    await api.waitStatus(id, 'ACTIVE', BOOT_MS)
    assert.equal((await sshOk(port, p1, 'cat /root/marker')).out.trim(), 'intact')
    await remove(id)
  })

  test('a restart re-attaches to running VMs, reconciles one that died meanwhile, destroys an orphan', async () => {
    const p1 = `P1-${randomBytes(6).toString('hex')}`
    const survivor = await create('survivor', p1)
    const victim = await create('victim', p1)
    const survivorPid = vmPid(survivor.id, 'own')
    await skiff.stop()
    assert.ok(survivorPid && existsSync(`/proc/${survivorPid}`), 'VMs outlive skiff')
    process.kill(vmPid(victim.id, 'own')!, 'SIGKILL')
    // An instance directory no server is known by: the agent destroys it at its start.
    const orphan = path.join(qemuDir, 's', '00000000-0000-4000-8000-00000000dead')
    mkdirSync(orphan, { recursive: true })
    writeFileSync(path.join(orphan, 'state.json'), '{}')

    ;({ skiff, api } = await vm.restart())
    for (const deadline = Date.now() + 30_000; existsSync(orphan); await sleep(100)) {
      assert.ok(Date.now() < deadline, 'the orphan directory was destroyed')
    }
    assert.equal(vmPid(survivor.id, 'own'), survivorPid, 'the same QEMU, not a new one')
    const s = (await api.compute('GET', `/servers/${survivor.id}`)).body.server
    assert.deepEqual([s.status, s['OS-EXT-STS:power_state']], ['ACTIVE', 1])
    await sshOk(survivor.port, p1, 'true')

    await api.waitStatus(victim.id, 'SHUTOFF', 30_000)
    assert.equal(await power(victim.id), 4)
    const actions = (await api.compute('GET', `/servers/${victim.id}/os-instance-actions`)).body.instanceActions as { action: string }[]
    assert.equal(actions[0]?.action, 'stop', 'stopped by the power-state sync, as Nova does')
    await act(victim.id, { 'os-start': null })
    await api.waitStatus(victim.id, 'ACTIVE', BOOT_MS)
    await sshOk(victim.port, p1, 'true')

    await Promise.all([survivor.id, victim.id].map(remove))
    assert.deepEqual(qemuPids(qemuDir), [], 'no QEMU left')
  })
})
