// The qemu driver's volumes without a guest: the qcow2 files (qemu-img), and the hot plug over
// QMP into a real QEMU that boots nothing (`-machine pc -S`): the file handed over open (QEMU
// runs as `nobody` when the test runs as root), a virtio-blk disk with the volume id as serial;
// an unplug the guest never acknowledges fails and leaves the disk.
import assert from 'node:assert/strict'
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { after, before, describe, test } from 'node:test'
import { DriverError } from '../../src/drivers/driver.ts'
import { buildQemuArgs, volumeNames } from '../../src/drivers/qemu/qemu-args.ts'
import { QmpClient } from '../../src/drivers/qemu/qmp.ts'
import { blockdevAddOpen, deviceAdd, unplug } from '../../src/drivers/qemu/volume-hotplug.ts'
import { VolumeStore } from '../../src/drivers/qemu/volume-store.ts'
import { guestSkipReason, qemuSkipReason } from '../helpers/qemu.ts'

const GiB = 2 ** 30
const V1 = '6f1c2a3b-1111-4222-8333-444455556666'
const V2 = '0a0b0c0d-aaaa-4bbb-8ccc-dddddddddddd'

describe('volume files (qemu-img)', { skip: guestSkipReason() }, () => {
  let dir: string
  let store: VolumeStore
  before(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'skiff-vols-'))
    store = new VolumeStore(path.join(dir, 'v'))
  })
  after(() => rmSync(dir, { recursive: true, force: true }))

  test('blank at its size, 0600; extend; snapshot; a volume from the snapshot; delete', async () => {
    await store.create(V1, 1, { kind: 'blank' })
    assert.equal(statSync(store.file(V1)).mode & 0o777, 0o600)
    assert.equal(await store.virtualSize(store.file(V1)), GiB)
    execFileSync('qemu-io', ['-c', 'write -P 0x5a 0 64k', store.file(V1)], { stdio: 'ignore' })
    await store.extend(V1, 2)
    assert.equal(await store.virtualSize(store.file(V1)), 2 * GiB)
    await store.snapshot(V1, 'snap-1', false)
    await store.create(V2, 3, { kind: 'file', file: store.snapshotFile('snap-1') })
    assert.equal(await store.virtualSize(store.file(V2)), 3 * GiB)
    const read = execFileSync('qemu-io', ['-c', 'read -P 0x5a 0 64k', store.file(V2)]).toString()
    assert.match(read, /read 65536\/65536 bytes/, 'the copy holds what the volume held')
    await store.delete(V1)
    await store.deleteSnapshot('snap-1')
    assert.equal(existsSync(store.file(V1)), false)
    assert.equal(existsSync(store.snapshotFile('snap-1')), false)
    assert.deepEqual(await store.list(), [V2], 'the volumes held here, by id')
  })

  test('from an image, grown to the size; a source larger than the volume is refused', async () => {
    const raw = path.join(dir, 'image.raw')
    writeFileSync(raw, Buffer.alloc(1024 * 1024, 7))
    const id = '11111111-2222-4333-8444-555555555555'
    await store.create(id, 1, { kind: 'image', file: raw, format: 'raw' })
    assert.equal(await store.virtualSize(store.file(id)), GiB)
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', path.join(dir, 'big.qcow2'), '3G'])
    await assert.rejects(
      store.create('22222222-2222-4333-8444-555555555555', 1, { kind: 'file', file: path.join(dir, 'big.qcow2') }),
      DriverError,
    )
    assert.equal(existsSync(store.file('22222222-2222-4333-8444-555555555555')), false, 'nothing half made is left')
  })
})

describe('volume hot plug into a real QEMU (no guest)', { skip: qemuSkipReason() || guestSkipReason() }, () => {
  let dir: string
  let sock: string
  let qemu: ChildProcess
  let store: VolumeStore

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'skiff-hotplug-'))
    store = new VolumeStore(path.join(dir, 'v'))
    await store.create(V1, 1, { kind: 'blank' })
    await store.create(V2, 1, { kind: 'blank' })
    sock = path.join(dir, 'qmp.sock')
    // As the driver starts VMs: dropped to nobody when root, the data dir 0700 (mkdtemp's mode).
    const runAs = process.getuid?.() === 0 ? ['-runas', 'nobody'] : []
    // V2 on the command line, as at a boot with it attached.
    const args = buildQemuArgs({
      dir,
      name: 't',
      accel: 'tcg',
      vcpus: 1,
      memMb: 64,
      kernel: '/k',
      initrd: '/i',
      sshPort: 22,
      disks: [{ id: V2, file: store.file(V2), format: 'qcow2', volumeId: V2 }],
    })
    const disks = args.slice(args.indexOf('-blockdev'), args.indexOf('-blockdev') + 4)
    qemu = spawn(
      'qemu-system-x86_64',
      [
        '-machine',
        'pc',
        '-accel',
        'tcg',
        '-nodefaults',
        '-no-user-config',
        '-display',
        'none',
        '-S',
        ...disks,
        ...runAs,
        '-qmp',
        `unix:${sock},server=on,wait=off`,
      ],
      { stdio: 'ignore' },
    )
    const deadline = Date.now() + 15_000
    while (!existsSync(sock)) {
      if (Date.now() > deadline) throw new Error('QEMU did not create its QMP socket within 15 s')
      await sleep(20)
    }
  })

  after(() => {
    if (qemu.exitCode === null) qemu.kill('SIGKILL')
    rmSync(dir, { recursive: true, force: true })
  })

  const devices = async () => {
    const q = await QmpClient.connect(sock)
    try {
      const blocks = await q.execute<{ qdev: string; inserted?: { 'node-name': string } }[]>('query-block')
      return blocks.map((b) => b.inserted?.['node-name'] ?? '').filter(Boolean)
    } finally {
      q.close()
    }
  }

  test('plugged in: a virtio-blk disk named for the volume, its serial the volume id', async () => {
    await blockdevAddOpen(sock, V1, store.file(V1))
    const q = await QmpClient.connect(sock)
    try {
      await deviceAdd(q, V1)
      const serial = await q.execute<string>('qom-get', { path: `/machine/peripheral/${volumeNames(V1).device}`, property: 'serial' })
      assert.equal(serial, V1)
    } finally {
      q.close()
    }
    assert.ok((await devices()).includes(volumeNames(V1).node))
    assert.ok((await devices()).includes(volumeNames(V2).node), 'the one from the command line is there, named alike')
  })

  test('an unplug the guest does not acknowledge fails, and the disk stays', async () => {
    const q = await QmpClient.connect(sock)
    try {
      await assert.rejects(unplug(q, V1, 1000), /did not release volume/)
    } finally {
      q.close()
    }
    assert.ok((await devices()).includes(volumeNames(V1).node))
  })
})
