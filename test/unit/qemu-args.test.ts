import assert from 'node:assert/strict'
import { test } from 'node:test'
import { buildQemuArgs, KERNEL_CMDLINE, optValue, vmFiles, volumeBlockdev, volumeNames } from '../../src/drivers/qemu/qemu-args.ts'
import { metaData } from '../../src/drivers/qemu/config-drive.ts'

const base = {
  dir: '/var/lib/skiff/qemu/s1',
  name: 'skiff-s1',
  accel: 'tcg' as const,
  vcpus: 1,
  memMb: 512,
  kernel: '/g/vmlinuz',
  initrd: '/g/initrd.img',
  sshPort: 22201,
  disks: [
    { id: 'vda', file: '/var/lib/skiff/qemu/s1/disk.qcow2', format: 'qcow2' as const },
    { id: 'config-2', file: '/var/lib/skiff/qemu/s1/config.iso', format: 'raw' as const, readOnly: true },
  ],
}
const after = (args: string[], flag: string) => args.filter((_, i) => args[i - 1] === flag)

test('a server VM: direct kernel boot, disks in order, loopback-only SSH forward, QMP, daemonized', () => {
  const a = buildQemuArgs(base)
  assert.deepEqual(after(a, '-accel'), ['tcg'])
  assert.deepEqual(after(a, '-append'), [KERNEL_CMDLINE])
  assert.match(KERNEL_CMDLINE, /root=\/dev\/vda /)
  assert.deepEqual(
    after(a, '-device').filter((d) => d.startsWith('virtio-blk')),
    ['virtio-blk-pci,drive=vda,serial=vda', 'virtio-blk-pci,drive=config-2,serial=config-2'],
  )
  assert.deepEqual(after(a, '-drive'), [
    'file=/var/lib/skiff/qemu/s1/disk.qcow2,if=none,id=vda,format=qcow2,auto-read-only=off,discard=unmap',
    'file=/var/lib/skiff/qemu/s1/config.iso,if=none,id=config-2,format=raw,readonly=on',
  ])
  assert.deepEqual(after(a, '-netdev'), ['user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:22201-:22'])
  assert.deepEqual(after(a, '-qmp'), [`unix:${vmFiles(base.dir).qmp},server=on,wait=off`])
  assert.deepEqual(after(a, '-pidfile'), [vmFiles(base.dir).pid])
  assert.ok(a.includes('-daemonize') && a.includes('-nodefaults'))
  assert.deepEqual(after(a, '-chardev'), [
    `socket,id=ser0,path=${vmFiles(base.dir).serial},server=on,wait=off,logfile=${vmFiles(base.dir).console},logappend=on`,
  ])
})

test('confined: seccomp without obsolete or resource-control calls; no root once started', () => {
  assert.deepEqual(after(buildQemuArgs(base), '-sandbox'), ['on,obsolete=deny,resourcecontrol=deny'])
  assert.deepEqual(after(buildQemuArgs(base), '-runas'), [])
  assert.deepEqual(after(buildQemuArgs({ ...base, runAs: 'nobody' }), '-runas'), ['nobody'])
})

test('rescue: the rescue disk first, the server disk second; kvm uses the host CPU', () => {
  const a = buildQemuArgs({
    ...base,
    accel: 'kvm',
    disks: [
      { id: 'vda', file: '/q/s1/rescue/disk.qcow2', format: 'qcow2' },
      { id: 'vdb', file: '/q/s1/disk.qcow2', format: 'qcow2' },
      { id: 'config-2', file: '/q/s1/rescue/config.iso', format: 'raw', readOnly: true },
    ],
  })
  assert.deepEqual(
    after(a, '-drive').map((d) => d.split(',')[0]),
    ['file=/q/s1/rescue/disk.qcow2', 'file=/q/s1/disk.qcow2', 'file=/q/s1/rescue/config.iso'],
  )
  assert.deepEqual(after(a, '-accel'), ['kvm'])
  assert.deepEqual(after(a, '-cpu'), ['host'])
})

test('stable-device rescue: the server disk stays first, the rescue disk last on its bus, first in the boot order, the root', () => {
  const disks = (bus: 'virtio' | 'scsi' | 'usb' | 'ide' | 'sata') => [
    { id: 'vda', file: '/q/s/s1/disk.qcow2', format: 'qcow2' as const },
    { id: 'config-2', file: '/q/s/s1/r/config.iso', format: 'raw' as const, readOnly: true },
    { id: 'rescue', file: '/q/s/s1/r/disk.qcow2', format: 'qcow2' as const, bus, bootIndex: 1 },
  ]
  const scsi = buildQemuArgs({ ...base, disks: disks('scsi'), root: '/dev/sda' })
  assert.deepEqual(after(scsi, '-append'), [KERNEL_CMDLINE.replace('root=/dev/vda', 'root=/dev/sda')])
  assert.deepEqual(after(scsi, '-device').slice(0, 4), [
    'virtio-blk-pci,drive=vda,serial=vda',
    'virtio-blk-pci,drive=config-2,serial=config-2',
    'virtio-scsi-pci,id=scsi0',
    'scsi-hd,bus=scsi0.0,drive=rescue,serial=rescue,bootindex=1',
  ])
  assert.deepEqual(
    after(scsi, '-drive').at(-1),
    'file=/q/s/s1/r/disk.qcow2,if=none,id=rescue,format=qcow2,auto-read-only=off,discard=unmap',
  )
  const device = (bus: 'virtio' | 'scsi' | 'usb' | 'ide' | 'sata') =>
    after(buildQemuArgs({ ...base, disks: disks(bus) }), '-device').slice(2, 4)
  assert.deepEqual(device('virtio'), ['virtio-blk-pci,drive=rescue,serial=rescue,bootindex=1', 'virtio-net-pci,netdev=n0'])
  assert.deepEqual(device('usb'), ['qemu-xhci,id=usb0', 'usb-storage,bus=usb0.0,drive=rescue,serial=rescue,bootindex=1'])
  assert.deepEqual(device('sata'), ['ich9-ahci,id=sata0', 'ide-hd,bus=sata0.0,drive=rescue,serial=rescue,bootindex=1'])
  // The pc board's own IDE controller: no controller to add.
  assert.deepEqual(device('ide'), ['ide-hd,bus=ide.0,drive=rescue,serial=rescue,bootindex=1', 'virtio-net-pci,netdev=n0'])
  assert.throws(() => buildQemuArgs({ ...base, root: '/dev/sda quiet init=/bin/sh' }), /bad root device/)
})

test('stable-device rescue from a CD-ROM: the rescue disk read-only in a CD-ROM drive on its bus, booted, the root sr0', () => {
  const cd = (bus: 'virtio' | 'scsi' | 'usb' | 'ide' | 'sata') =>
    buildQemuArgs({
      ...base,
      disks: [
        { id: 'vda', file: '/q/s/s1/disk.qcow2', format: 'qcow2' as const },
        { id: 'rescue', file: '/q/s/s1/r/disk.qcow2', format: 'qcow2' as const, bus, bootIndex: 1, media: 'cdrom' as const },
      ],
      root: '/dev/sr0',
    })
  const ide = cd('ide')
  assert.deepEqual(after(ide, '-drive').at(-1), 'file=/q/s/s1/r/disk.qcow2,if=none,id=rescue,format=qcow2,media=cdrom,readonly=on')
  assert.deepEqual(after(ide, '-append'), [KERNEL_CMDLINE.replace('root=/dev/vda', 'root=/dev/sr0')])
  const device = (bus: 'scsi' | 'usb' | 'ide' | 'sata') => after(cd(bus), '-device').slice(1, 3)
  assert.deepEqual(device('ide'), ['ide-cd,bus=ide.0,drive=rescue,serial=rescue,bootindex=1', 'virtio-net-pci,netdev=n0'])
  assert.deepEqual(device('sata'), ['ich9-ahci,id=sata0', 'ide-cd,bus=sata0.0,drive=rescue,serial=rescue,bootindex=1'])
  assert.deepEqual(device('scsi'), ['virtio-scsi-pci,id=scsi0', 'scsi-cd,bus=scsi0.0,drive=rescue,serial=rescue,bootindex=1'])
  // USB mass storage presents a CD-ROM when its drive is one (media=cdrom).
  assert.deepEqual(device('usb'), ['qemu-xhci,id=usb0', 'usb-storage,bus=usb0.0,drive=rescue,serial=rescue,bootindex=1'])
  assert.throws(() => cd('virtio'), /no CD-ROM on the virtio bus/)
})

test('volumes: a -blockdev node and a virtio-blk device named as a hot plug names them, the volume id as serial', () => {
  const id = '6f1c2a3b-1111-4222-8333-444455556666'
  const args = buildQemuArgs({
    ...base,
    disks: [...base.disks, { id, file: '/q/v/6f1c,x.qcow2', format: 'qcow2' as const, volumeId: id }],
  })
  const { node, device } = volumeNames(id)
  assert.ok(node.length <= 31, 'QEMU node names are at most 31 characters')
  assert.deepEqual(JSON.parse(after(args, '-blockdev')[0]!), volumeBlockdev(node, '/q/v/6f1c,x.qcow2'))
  assert.deepEqual(after(args, '-device').slice(0, 3), [
    'virtio-blk-pci,drive=vda,serial=vda',
    'virtio-blk-pci,drive=config-2,serial=config-2',
    `virtio-blk-pci,drive=${node},id=${device},serial=${id}`,
  ])
  assert.throws(() => volumeNames('../x'), /bad volume id/)
})

test('commas in paths are doubled; bad ports and relative dirs are refused', () => {
  assert.equal(optValue('/a,b/c'), '/a,,b/c')
  const a = buildQemuArgs({ ...base, disks: [{ id: 'vda', file: '/x,y/disk.qcow2', format: 'qcow2' }] })
  assert.ok(after(a, '-drive')[0]!.startsWith('file=/x,,y/disk.qcow2,'))
  assert.throws(() => buildQemuArgs({ ...base, sshPort: 0 }))
  assert.throws(() => buildQemuArgs({ ...base, dir: 'rel/dir' }))
})

test('a resume starts from the saved state: -loadvm with its tag, and nothing of it otherwise', () => {
  assert.deepEqual(after(buildQemuArgs({ ...base, loadVm: 'skiff-suspend' }), '-loadvm'), ['skiff-suspend'])
  assert.ok(!buildQemuArgs(base).includes('-loadvm'))
})

test('a warm rescue machine: the rescue port and a VM generation id; a restore without the SSH forward, with its files as fds', () => {
  const template = buildQemuArgs({ ...base, disks: base.disks.slice(0, 1), rescueChannel: true, sshForward: false })
  assert.deepEqual(after(template, '-netdev'), ['user,id=n0,restrict=on'])
  assert.deepEqual(after(template, '-device').slice(-3), [
    'virtio-serial-pci,id=vser0',
    'virtserialport,bus=vser0.0,chardev=rch0,name=org.skiff.rescue.0',
    'vmgenid,guid=auto',
  ])
  assert.ok(after(template, '-chardev').includes(`socket,id=rch0,path=${vmFiles(base.dir).channel},server=on,wait=off`))
  const restore = buildQemuArgs({
    ...base,
    disks: base.disks.slice(0, 1),
    rescueChannel: true,
    sshForward: false,
    loadVm: 'skiff-warm',
    fdSets: 3,
  })
  assert.deepEqual(after(restore, '-add-fd'), ['fd=3,set=1', 'fd=4,set=2', 'fd=5,set=3'])
  assert.deepEqual(after(restore, '-loadvm'), ['skiff-warm'])
  // The saved machine and the restored one have the same devices, in the same order.
  assert.deepEqual(after(restore, '-device'), after(template, '-device'))
  assert.equal(buildQemuArgs(base).includes('-add-fd'), false)
  assert.equal(
    buildQemuArgs(base).some((a) => a.includes('vmgenid')),
    false,
  )
})

test('config drive metadata is JSON, one key per line, keys under public_keys', () => {
  const text = metaData({ uuid: 'u1', name: 'n', hostname: 'h', adminPass: 'p"w', publicKeys: ['ssh-ed25519 AAAA a@b'] })
  assert.deepEqual(JSON.parse(text), {
    uuid: 'u1',
    name: 'n',
    hostname: 'h',
    launch_index: 0,
    availability_zone: 'nova',
    admin_pass: 'p"w',
    public_keys: { 'key-0': 'ssh-ed25519 AAAA a@b' },
  })
  assert.ok(text.split('\n').some((l) => l.trim() === '"admin_pass": "p\\"w",'))
  assert.deepEqual(JSON.parse(metaData({ uuid: 'u', name: 'n', hostname: 'h' })).public_keys, {})
})

test('the destination of a live migration waits for the guest, paused until told to run', () => {
  const a = buildQemuArgs({ ...base, incoming: true })
  assert.deepEqual(after(a, '-incoming'), ['defer'])
  assert.ok(a.includes('-S'))
  assert.ok(!buildQemuArgs(base).includes('-incoming'))
})

test('a volume in the PCI slot its device has on the source of a live migration', () => {
  const id = '6f1c2a3b-1111-4222-8333-444455556666'
  const a = buildQemuArgs({
    ...base,
    disks: [...base.disks, { id, file: '/q/v/x.qcow2', format: 'qcow2' as const, volumeId: id, pciSlot: 10 }],
  })
  assert.deepEqual(
    after(a, '-device').filter((d) => d.includes(volumeNames(id).device)),
    [`virtio-blk-pci,drive=${volumeNames(id).node},id=${volumeNames(id).device},serial=${id},addr=0xa`],
  )
})
