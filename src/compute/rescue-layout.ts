// Which disks a rescue attaches, and where (pure: unit-tested). Two modes, as Nova's libvirt
// driver has them (nova/virt/libvirt/driver.py `rescue`, blockinfo.py):
//   legacy        the rescue disk first (booted), the server's disk second;
//   stable device when the rescue image has `hw_rescue_device` and/or `hw_rescue_bus`
//                 (hardware.check_hw_rescue_props: either one), every disk of the server keeps
//                 its place, its own disk first, and the rescue disk is attached LAST, on the
//                 bus and as the device type the image asks for, and booted (boot order 1).
// The API checks the properties before anything changes (Nova's compute manager finds a bad
// bus or device only on the host, and leaves the server in ERROR): a 400 with Nova's messages.
import { BadRequest } from '../errors.ts'

/** nova/virt/libvirt/blockinfo.py SUPPORTED_DEVICE_TYPES. */
export const RESCUE_DEVICE_TYPES = ['disk', 'cdrom', 'floppy', 'lun'] as const
export type RescueDeviceType = (typeof RESCUE_DEVICE_TYPES)[number]
/** blockinfo.py SUPPORTED_DEVICE_BUSES['qemu'] (and 'kvm'): Skiff's hosts are QEMU's. */
export const RESCUE_BUSES = ['virtio', 'scsi', 'ide', 'usb', 'fdc', 'sata'] as const
export type RescueBus = (typeof RESCUE_BUSES)[number]

/** A stable-device rescue: the rescue disk's device type and bus. */
export interface StableRescue {
  device: RescueDeviceType
  bus: RescueBus
}

export interface RescueDisk {
  /** The server's own disk, the config drive the rescue system reads, an attached volume, or the rescue image's disk. */
  role: 'server' | 'config_drive' | 'volume' | 'rescue'
  /** An attached volume's id (its disk's serial). */
  volume_id?: string
  /** What the guest's Linux names it. */
  device: string
  bus: RescueBus
  type: RescueDeviceType
  /** Firmware boot order (1 first); null: not a boot device. */
  boot_index: number | null
}

const isOneOf = <T extends string>(list: readonly T[], v: unknown): v is T =>
  typeof v === 'string' && (list as readonly string[]).includes(v)

/**
 * The stable-device rescue an image's properties ask for, or null (legacy rescue). A device
 * without a bus takes blockinfo.get_disk_bus_for_device_type's default on a `pc` machine (a disk:
 * the image's `hw_disk_bus`, else virtio; a cdrom: ide; a floppy: fdc; a LUN: scsi); a bus
 * without a device is a disk.
 */
export function stableRescueOf(properties: Record<string, unknown>): StableRescue | null {
  const device = properties.hw_rescue_device
  const bus = properties.hw_rescue_bus
  if (device === undefined && bus === undefined) return null
  const d = device ?? 'disk'
  // nova.exception.UnsupportedRescueDevice
  if (!isOneOf(RESCUE_DEVICE_TYPES, d)) throw new BadRequest(`Requested rescue device '${String(d)}' is not supported`)
  let b: unknown = bus
  if (b === undefined) {
    const diskBus = properties.hw_disk_bus
    b = d === 'cdrom' ? 'ide' : d === 'floppy' ? 'fdc' : d === 'lun' ? 'scsi' : isOneOf(RESCUE_BUSES, diskBus) ? diskBus : 'virtio'
  }
  // nova.exception.UnsupportedRescueBus, for the virt type Skiff's hosts are.
  if (!isOneOf(RESCUE_BUSES, b)) throw new BadRequest(`Requested rescue bus '${String(b)}' is not supported by the 'qemu' virt driver`)
  return { device: d, bus: b }
}

/**
 * Nova's checks in compute/api.py `rescue`, after the image: an image of a volume snapshot is
 * refused; a volume-backed server only from 2.87 with both properties on the rescue image
 * (`allow_bfv_rescue`); Skiff's hosts all support it (Nova's COMPUTE_RESCUE_BFV trait).
 */
export function checkRescuable(opts: {
  serverId: string
  imageRef: string | undefined
  properties: Record<string, unknown>
  volumeBacked: boolean
  allowVolumeBackedRescue: boolean
}): void {
  if (opts.imageRef !== undefined && opts.properties.img_block_device_mapping !== undefined) {
    throw new BadRequest(`Requested rescue image '${opts.imageRef}' is not supported`)
  }
  if (!opts.volumeBacked) return
  const both = opts.properties.hw_rescue_bus !== undefined && opts.properties.hw_rescue_device !== undefined
  if (!(opts.allowVolumeBackedRescue && both)) {
    throw new BadRequest(`Instance ${opts.serverId} cannot be rescued: Cannot rescue a volume-backed instance`)
  }
}

const deviceName = (bus: RescueBus, type: RescueDeviceType, index: number): string => {
  if (type === 'cdrom') return `/dev/sr${index}`
  if (type === 'floppy' || bus === 'fdc') return `/dev/fd${index}`
  // libata names IDE and SATA disks as SCSI ones; USB storage is SCSI too.
  return `/dev/${bus === 'virtio' ? 'vd' : 'sd'}${String.fromCharCode(97 + index)}`
}

/**
 * The disks of a rescue in the order they are attached, as the guest sees them. Legacy: the
 * rescue disk vda (booted), the server's disk vdb, the config drive vdc, then the attached
 * volumes (`volumeIds`, in attach order). Stable device: the server's disk vda, the config drive
 * vdb and the volumes where they always are, then the rescue disk, last, booted first.
 */
export function rescueDisks(stable: StableRescue | null, volumeIds: string[] = []): RescueDisk[] {
  const volumes = (first: number): RescueDisk[] =>
    volumeIds.map((id, i) => ({
      role: 'volume',
      volume_id: id,
      device: deviceName('virtio', 'disk', first + i),
      bus: 'virtio',
      type: 'disk',
      boot_index: null,
    }))
  if (!stable) {
    return [
      { role: 'rescue', device: '/dev/vda', bus: 'virtio', type: 'disk', boot_index: 1 },
      { role: 'server', device: '/dev/vdb', bus: 'virtio', type: 'disk', boot_index: null },
      { role: 'config_drive', device: '/dev/vdc', bus: 'virtio', type: 'disk', boot_index: null },
      ...volumes(3),
    ]
  }
  // The only disk of its bus but on virtio, where it comes after the server's disk, the config drive and the volumes.
  const index = stable.bus === 'virtio' && stable.device !== 'cdrom' ? 2 + volumeIds.length : 0
  return [
    { role: 'server', device: '/dev/vda', bus: 'virtio', type: 'disk', boot_index: null },
    { role: 'config_drive', device: '/dev/vdb', bus: 'virtio', type: 'disk', boot_index: null },
    ...volumes(2),
    { role: 'rescue', device: deviceName(stable.bus, stable.device, index), bus: stable.bus, type: stable.device, boot_index: 1 },
  ]
}
