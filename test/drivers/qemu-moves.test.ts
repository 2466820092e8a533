// A cold move of a server with an attached volume between two qemu drivers (two hosts' data dirs
// on this machine), without a guest: the server is stopped (no QEMU), so the move is the files
// alone (qemu-img and qemu-io). The volume's file goes with the disk; the source keeps its own
// copy aside until confirm (then nothing of it is left there) or revert (then it is served from
// the source again, and the destination has nothing). A destination that loses the copy mid-way
// fails its finish, and the revert puts everything back on the source, the data as written. The
// same for a volume-backed server, whose root disk is its boot volume (no overlay): the volume
// moves, with the kernel and initrd it boots with. And the hand-over of a detached volume to another host's agent (an attach to one of its servers).
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import pino from 'pino'
import { PowerState, type MigratedDisk, type ServerSpec } from '../../src/drivers/driver.ts'
import { QemuDriver, type QemuImage } from '../../src/drivers/qemu/qemu-driver.ts'
import { guestSkipReason } from '../helpers/qemu.ts'

/** qemu-io writes and reads the volume's data (Debian's qemu-utils). */
function qemuIoMissing(): string | false {
  try {
    execFileSync('qemu-io', ['--version'], { stdio: 'ignore' })
    return false
  } catch {
    return 'qemu-io is not installed (apt-get install --no-install-recommends qemu-utils)'
  }
}

const VOL = '7e57ab1e-0000-4000-8000-00000000beef'

describe('qemu driver: a cold move takes the attached volumes along', { skip: guestSkipReason() || qemuIoMissing() }, () => {
  let root: string
  let image: QemuImage
  const drivers: QemuDriver[] = []
  const img = (...args: string[]) => execFileSync('qemu-img', args, { stdio: 'pipe' }).toString()
  /** Whether the volume's file at `file` holds the marker pattern where it was written. */
  const holdsMarker = (file: string) => {
    try {
      execFileSync('qemu-io', ['-r', '-U', '-c', 'read -P 0x5a 64k 64k', file], { stdio: 'pipe' })
      return true
    } catch {
      return false
    }
  }
  /** Every file under a host's data dir that names the volume. */
  const volumeFiles = (dir: string) =>
    readdirSync(dir, { recursive: true })
      .map(String)
      .filter((f) => f.includes(VOL))

  before(() => {
    root = mkdtempSync(path.join(tmpdir(), 'skiff-moves-'))
    const base = path.join(root, 'image.qcow2')
    img('create', '-q', '-f', 'qcow2', base, String(64 * 2 ** 20))
    const kernel = path.join(root, 'vmlinuz')
    const initrd = path.join(root, 'initrd')
    writeFileSync(kernel, 'kernel')
    writeFileSync(initrd, 'initrd')
    image = { disk: base, format: 'qcow2', kernel, initrd }
  })
  after(() => {
    for (const d of drivers) d.close()
    rmSync(root, { recursive: true, force: true })
  })

  const driver = (name: string) => {
    const d = new QemuDriver({
      dir: path.join(root, name),
      resolveImage: async () => image,
      accel: 'tcg',
      sshPortMin: 24100,
      sshPortMax: 24199,
      bootTimeoutMs: 1000,
      stopTimeoutMs: 0,
      watchIntervalMs: 0,
      logger: pino({ level: 'silent' }),
    })
    drivers.push(d)
    return d
  }

  /** A stopped server on `dir`'s host with the volume attached (as a boot and an attach leave them), adopted by a fresh driver. */
  const stoppedServerWithVolume = async (name: string): Promise<{ source: QemuDriver; dir: string; spec: ServerSpec }> => {
    const dir = path.join(root, name)
    const id = `${name}-0000-4000-8000-000000000001`.slice(-36)
    const spec: ServerSpec = { id, name, vcpus: 1, ramMb: 64, diskGb: 1, imageId: 'img', imageName: null }
    const vmDir = path.join(dir, 's', id)
    mkdirSync(vmDir, { recursive: true })
    img('create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', image.disk, path.join(vmDir, 'disk.qcow2'), String(64 * 2 ** 20))
    writeFileSync(path.join(vmDir, 'config.iso'), 'iso')
    const state = { id, name, port: 24100, vcpus: 1, memMb: 64, own: { kernel: image.kernel, initrd: image.initrd } }
    writeFileSync(
      path.join(vmDir, 'state.json'),
      JSON.stringify({ ...state, hostKey: null, rescue: null, running: false, volumes: [VOL], rootVolume: null }),
    )
    const source = driver(name)
    await source.createVolume({ id: VOL, sizeGb: 1, imageId: null, snapshotId: null, sourceVolid: null })
    execFileSync('qemu-io', ['-c', 'write -P 0x5a 64k 64k', path.join(dir, 'v', `${VOL}.qcow2`)], { stdio: 'pipe' })
    await source.adopt([{ spec, powerState: PowerState.SHUTDOWN, rescued: false }])
    return { source, dir, spec }
  }

  test('confirmed: the volume is on the destination only, its data as written', async () => {
    const { source, dir: a, spec } = await stoppedServerWithVolume('a1')
    const b = path.join(root, 'b1')
    const dest = driver('b1')
    const handed = await source.migrateDiskAndPowerOff(spec.id, spec)
    assert.deepEqual((handed as { volumes?: string[] }).volumes, [VOL])
    assert.equal(existsSync(path.join(a, 'v', `${VOL}.qcow2`)), false, 'not served from the source during the move')
    await dest.finishMigration(spec, handed, false)
    assert.ok(holdsMarker(path.join(b, 'v', `${VOL}.qcow2`)))
    await source.confirmMigration(spec.id)
    assert.deepEqual(volumeFiles(a), [], 'nothing of the volume left on the source')
    assert.deepEqual(volumeFiles(b), [`v/${VOL}.qcow2`])
  })

  test('reverted: the destination drops its copy, the source serves the volume again', async () => {
    const { source, dir: a, spec } = await stoppedServerWithVolume('a2')
    const b = path.join(root, 'b2')
    const dest = driver('b2')
    await dest.finishMigration(spec, await source.migrateDiskAndPowerOff(spec.id, spec), false)
    await dest.dropMigrationTarget(spec.id)
    await source.finishRevertMigration(spec.id, false)
    assert.deepEqual(volumeFiles(b), [], 'nothing of the volume left on the destination')
    assert.deepEqual(volumeFiles(a), [`v/${VOL}.qcow2`])
    assert.ok(holdsMarker(path.join(a, 'v', `${VOL}.qcow2`)))
  })

  test('the destination loses the copy mid-way: its finish fails, and everything is back on the source', async () => {
    const { source, dir: a, spec } = await stoppedServerWithVolume('a3')
    const b = path.join(root, 'b3')
    const dest = driver('b3')
    const handed = (await source.migrateDiskAndPowerOff(spec.id, spec)) as Extract<MigratedDisk, { kind: 'local' }>
    // The copy cut short: what the destination would have read is gone.
    rmSync(path.join(path.dirname(handed.path), 'v', `${VOL}.qcow2`))
    await assert.rejects(dest.finishMigration(spec, handed, false), /could not be taken in/)
    // The worker's recovery: the destination drops what it made, the source takes its server back.
    await dest.dropMigrationTarget(spec.id)
    await source.finishRevertMigration(spec.id, false)
    assert.deepEqual(volumeFiles(b), [], 'nothing of the volume on the destination')
    assert.deepEqual(volumeFiles(a), [`v/${VOL}.qcow2`])
    assert.ok(holdsMarker(path.join(a, 'v', `${VOL}.qcow2`)), 'the data as written')
  })

  test('a resize on the same host moves nothing', async () => {
    const { source, dir: a, spec } = await stoppedServerWithVolume('a4')
    const handed = await source.migrateDiskAndPowerOff(spec.id, { ...spec, diskGb: 2 }, { sameHost: true })
    assert.equal((handed as { volumes?: string[] }).volumes, undefined)
    await source.finishMigration({ ...spec, diskGb: 2 }, handed, false)
    await source.confirmMigration(spec.id)
    assert.deepEqual(volumeFiles(a), [`v/${VOL}.qcow2`])
    assert.ok(holdsMarker(path.join(a, 'v', `${VOL}.qcow2`)))
  })

  /** A stopped volume-backed server on `name`'s host: its root disk the boot volume (no overlay), booted with the image's kernel and initrd. */
  const stoppedVolumeBackedServer = async (name: string): Promise<{ source: QemuDriver; dir: string; spec: ServerSpec }> => {
    const dir = path.join(root, name)
    const id = `${name}-0000-4000-8000-000000000002`.slice(-36)
    const spec: ServerSpec = { id, name, vcpus: 1, ramMb: 64, diskGb: 0, imageId: '', imageName: null }
    const vmDir = path.join(dir, 's', id)
    mkdirSync(vmDir, { recursive: true })
    writeFileSync(path.join(vmDir, 'config.iso'), 'iso')
    const state = { id, name, port: 24100, vcpus: 1, memMb: 64, own: { kernel: image.kernel, initrd: image.initrd } }
    writeFileSync(
      path.join(vmDir, 'state.json'),
      JSON.stringify({ ...state, hostKey: null, rescue: null, running: false, volumes: [], rootVolume: VOL }),
    )
    const source = driver(name)
    await source.createVolume({ id: VOL, sizeGb: 1, imageId: null, snapshotId: null, sourceVolid: null })
    execFileSync('qemu-io', ['-c', 'write -P 0x5a 64k 64k', path.join(dir, 'v', `${VOL}.qcow2`)], { stdio: 'pipe' })
    await source.adopt([{ spec, powerState: PowerState.SHUTDOWN, rescued: false }])
    return { source, dir, spec }
  }
  /** The destination's state of the server: its root volume, and the kernel and initrd it boots (files of its own dir). */
  const stateOn = (dir: string, id: string) =>
    JSON.parse(readFileSync(path.join(dir, 's', id, 'state.json'), 'utf8')) as {
      rootVolume: string | null
      volumes: string[]
      own: { kernel: string; initrd: string }
    }

  test('volume-backed, confirmed: the root volume is on the destination only, its data as written, booted with the same kernel and initrd', async () => {
    const { source, dir: a, spec } = await stoppedVolumeBackedServer('a6')
    const b = path.join(root, 'b6')
    const dest = driver('b6')
    const handed = (await source.migrateDiskAndPowerOff(spec.id, spec)) as Extract<MigratedDisk, { kind: 'local' }>
    assert.equal(handed.rootVolume, VOL)
    assert.equal(handed.volumes, undefined, 'no attached volume besides the root')
    assert.equal(existsSync(path.join(a, 'v', `${VOL}.qcow2`)), false, 'not served from the source during the move')
    await dest.finishMigration(spec, handed, false)
    assert.ok(holdsMarker(path.join(b, 'v', `${VOL}.qcow2`)))
    const there = stateOn(b, spec.id)
    assert.equal(there.rootVolume, VOL)
    assert.deepEqual(there.volumes, [])
    for (const f of ['kernel', 'initrd'] as const) {
      assert.ok(there.own[f].startsWith(path.join(b, 'base')), there.own[f])
      assert.equal(readFileSync(there.own[f], 'utf8'), f)
    }
    assert.deepEqual(
      readdirSync(path.join(b, 's', spec.id)).sort(),
      ['config.iso', 'state.json'],
      'no overlay: the root disk is the volume',
    )
    assert.equal(existsSync(path.dirname(handed.path)), false, 'the hand-over dir is gone')
    await source.confirmMigration(spec.id)
    assert.deepEqual(volumeFiles(a), [], 'nothing of the volume left on the source')
    assert.deepEqual(volumeFiles(b), [`v/${VOL}.qcow2`])
  })

  test('volume-backed, reverted: the destination drops its copy, the source serves the root volume again', async () => {
    const { source, dir: a, spec } = await stoppedVolumeBackedServer('a7')
    const b = path.join(root, 'b7')
    const dest = driver('b7')
    await dest.finishMigration(spec, await source.migrateDiskAndPowerOff(spec.id, spec), false)
    await dest.dropMigrationTarget(spec.id)
    await source.finishRevertMigration(spec.id, false)
    assert.deepEqual(volumeFiles(b), [], 'nothing of the volume left on the destination')
    assert.equal(existsSync(path.join(b, 's', spec.id)), false)
    assert.deepEqual(volumeFiles(a), [`v/${VOL}.qcow2`])
    assert.ok(holdsMarker(path.join(a, 'v', `${VOL}.qcow2`)))
    assert.equal(stateOn(a, spec.id).rootVolume, VOL)
  })

  test('volume-backed, the destination loses the copy mid-way: its finish fails, and the root volume is back on the source', async () => {
    const { source, dir: a, spec } = await stoppedVolumeBackedServer('a8')
    const b = path.join(root, 'b8')
    const dest = driver('b8')
    const handed = (await source.migrateDiskAndPowerOff(spec.id, spec)) as Extract<MigratedDisk, { kind: 'local' }>
    rmSync(path.join(path.dirname(handed.path), 'v', `${VOL}.qcow2`))
    await assert.rejects(dest.finishMigration(spec, handed, false), /could not be taken in/)
    await dest.dropMigrationTarget(spec.id)
    await source.finishRevertMigration(spec.id, false)
    assert.deepEqual(volumeFiles(b), [], 'nothing of the volume on the destination')
    assert.deepEqual(volumeFiles(a), [`v/${VOL}.qcow2`])
    assert.ok(holdsMarker(path.join(a, 'v', `${VOL}.qcow2`)), 'the data as written')
  })

  test('volume-backed: a resize on its own host moves nothing; confirm keeps the new flavor, a revert the old one', async () => {
    const { source, dir: a, spec } = await stoppedVolumeBackedServer('a9')
    const bigger = { ...spec, vcpus: 2, ramMb: 128 }
    const handed = await source.migrateDiskAndPowerOff(spec.id, bigger, { sameHost: true })
    assert.equal((handed as { rootVolume?: string }).rootVolume, undefined, 'the root volume stays where it is')
    assert.deepEqual(volumeFiles(a), [`v/${VOL}.qcow2`])
    await source.finishMigration(bigger, handed, false)
    assert.equal(stateOn(a, spec.id).rootVolume, VOL)
    assert.equal((stateOn(a, spec.id) as unknown as { vcpus: number }).vcpus, 2)
    await source.confirmMigration(spec.id)
    assert.deepEqual(readdirSync(path.join(a, 's', spec.id)).sort(), ['config.iso', 'state.json'], 'the old state dropped')
    assert.deepEqual(volumeFiles(a), [`v/${VOL}.qcow2`])
    assert.ok(holdsMarker(path.join(a, 'v', `${VOL}.qcow2`)))
    // A second resize, reverted: the flavor before it, the same volume.
    await source.finishMigration(spec, await source.migrateDiskAndPowerOff(spec.id, spec, { sameHost: true }), false)
    assert.equal((stateOn(a, spec.id) as unknown as { vcpus: number }).vcpus, 1)
    await source.dropMigrationTarget(spec.id)
    await source.finishRevertMigration(spec.id, false)
    assert.equal((stateOn(a, spec.id) as unknown as { vcpus: number }).vcpus, 2)
    assert.equal(stateOn(a, spec.id).rootVolume, VOL)
    assert.deepEqual(volumeFiles(a), [`v/${VOL}.qcow2`])
    assert.ok(holdsMarker(path.join(a, 'v', `${VOL}.qcow2`)))
  })

  test('an attach across hosts: the copy handed over is taken in whole, the hand-over dir gone; the source drops its own after', async () => {
    const a = path.join(root, 'a5')
    const b = path.join(root, 'b5')
    const source = driver('a5')
    const dest = driver('b5')
    await source.createVolume({ id: VOL, sizeGb: 1, imageId: null, snapshotId: null, sourceVolid: null })
    execFileSync('qemu-io', ['-c', 'write -P 0x5a 64k 64k', path.join(a, 'v', `${VOL}.qcow2`)], { stdio: 'pipe' })
    const handed = await source.handOverVolume(VOL)
    assert.ok(handed.startsWith(path.join(a, 'handoff')), handed)
    await dest.takeVolume(VOL, handed)
    assert.equal(existsSync(path.dirname(handed)), false, 'the hand-over dir is gone')
    assert.ok(holdsMarker(path.join(b, 'v', `${VOL}.qcow2`)))
    // Until the attach is recorded the source keeps its own (a failed attach leaves the volume there).
    assert.deepEqual(volumeFiles(a), [`v/${VOL}.qcow2`])
    await source.deleteVolume(VOL)
    assert.deepEqual(volumeFiles(a), [])
    assert.deepEqual(await dest.listVolumes(), [VOL])
  })
})
