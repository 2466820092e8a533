// Stable-device rescue's rules, from Nova's libvirt driver (blockinfo.py) and compute/api.py.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { checkRescuable, rescueDisks, stableRescueOf } from '../../src/compute/rescue-layout.ts'

test('either property asks for a stable-device rescue (hardware.check_hw_rescue_props); none: legacy', () => {
  assert.equal(stableRescueOf({}), null)
  assert.equal(stableRescueOf({ hw_disk_bus: 'scsi' }), null)
  assert.deepEqual(stableRescueOf({ hw_rescue_device: 'disk', hw_rescue_bus: 'usb' }), { device: 'disk', bus: 'usb' })
  assert.deepEqual(stableRescueOf({ hw_rescue_bus: 'scsi' }), { device: 'disk', bus: 'scsi' })
  // A device alone takes blockinfo's default bus for it on a pc machine.
  assert.deepEqual(stableRescueOf({ hw_rescue_device: 'disk' }), { device: 'disk', bus: 'virtio' })
  assert.deepEqual(stableRescueOf({ hw_rescue_device: 'disk', hw_disk_bus: 'sata' }), { device: 'disk', bus: 'sata' })
  assert.deepEqual(stableRescueOf({ hw_rescue_device: 'cdrom' }), { device: 'cdrom', bus: 'ide' })
  assert.deepEqual(stableRescueOf({ hw_rescue_device: 'floppy' }), { device: 'floppy', bus: 'fdc' })
  assert.deepEqual(stableRescueOf({ hw_rescue_device: 'lun' }), { device: 'lun', bus: 'scsi' })
})

test("bad values are Nova's UnsupportedRescueDevice and UnsupportedRescueBus, as 400s", () => {
  assert.throws(
    () => stableRescueOf({ hw_rescue_device: 'tape' }),
    (e: Error) => e.message === "Requested rescue device 'tape' is not supported",
  )
  assert.throws(
    () => stableRescueOf({ hw_rescue_bus: 'xen' }),
    (e: Error) => e.message === "Requested rescue bus 'xen' is not supported by the 'qemu' virt driver",
  )
  assert.throws(() => stableRescueOf({ hw_rescue_bus: 7 }), /Requested rescue bus '7'/)
})

test('the disks: legacy puts the rescue disk first; stable keeps the server disk first and the rescue disk last, booted', () => {
  assert.deepEqual(
    rescueDisks(null).map((d) => [d.role, d.device, d.boot_index]),
    [
      ['rescue', '/dev/vda', 1],
      ['server', '/dev/vdb', null],
      ['config_drive', '/dev/vdc', null],
    ],
  )
  assert.deepEqual(
    rescueDisks({ device: 'disk', bus: 'virtio' }).map((d) => [d.role, d.device, d.bus, d.boot_index]),
    [
      ['server', '/dev/vda', 'virtio', null],
      ['config_drive', '/dev/vdb', 'virtio', null],
      ['rescue', '/dev/vdc', 'virtio', 1],
    ],
  )
  assert.equal(rescueDisks({ device: 'disk', bus: 'scsi' }).at(-1)!.device, '/dev/sda')
  assert.equal(rescueDisks({ device: 'disk', bus: 'usb' }).at(-1)!.device, '/dev/sda')
  assert.equal(rescueDisks({ device: 'cdrom', bus: 'ide' }).at(-1)!.device, '/dev/sr0')
})

test('attached volumes keep their places: after the config drive, before a stable rescue disk', () => {
  const row = (d: ReturnType<typeof rescueDisks>[number]) => [d.role, d.device, d.volume_id ?? null]
  assert.deepEqual(rescueDisks(null, ['v1', 'v2']).slice(3).map(row), [
    ['volume', '/dev/vdd', 'v1'],
    ['volume', '/dev/vde', 'v2'],
  ])
  assert.deepEqual(rescueDisks({ device: 'disk', bus: 'virtio' }, ['v1']).map(row), [
    ['server', '/dev/vda', null],
    ['config_drive', '/dev/vdb', null],
    ['volume', '/dev/vdc', 'v1'],
    ['rescue', '/dev/vdd', null],
  ])
  assert.equal(rescueDisks({ device: 'disk', bus: 'scsi' }, ['v1']).at(-1)!.device, '/dev/sda')
})

test("Nova's checks at rescue: a volume snapshot image refused; a volume-backed server only from 2.87 with both properties", () => {
  const base = { serverId: 's1', imageRef: 'img', properties: {}, volumeBacked: false, allowVolumeBackedRescue: false }
  assert.doesNotThrow(() => checkRescuable(base))
  assert.throws(
    () => checkRescuable({ ...base, properties: { img_block_device_mapping: '[]' } }),
    (e: Error) => e.message === "Requested rescue image 'img' is not supported",
  )
  const bfv = { ...base, volumeBacked: true }
  const refused = (e: Error) => e.message === 'Instance s1 cannot be rescued: Cannot rescue a volume-backed instance'
  assert.throws(() => checkRescuable(bfv), refused)
  assert.throws(() => checkRescuable({ ...bfv, properties: { hw_rescue_bus: 'virtio', hw_rescue_device: 'disk' } }), refused)
  assert.throws(() => checkRescuable({ ...bfv, allowVolumeBackedRescue: true, properties: { hw_rescue_bus: 'virtio' } }), refused)
  assert.doesNotThrow(() =>
    checkRescuable({ ...bfv, allowVolumeBackedRescue: true, properties: { hw_rescue_bus: 'virtio', hw_rescue_device: 'disk' } }),
  )
})
