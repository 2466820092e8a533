// The QEMU command line of a Skiff VM, built from plain values (no I/O: unit-tested).
// Direct kernel boot, virtio disks in a fixed PCI order, user-mode networking restricted to the
// one forwarded SSH port on 127.0.0.1, serial console to a log, QMP on a unix socket,
// daemonized with a pidfile so VMs outlive a restart of Skiff; seccomp on, and no root once
// started (-runas) when Skiff runs as root.
import path from 'node:path'
import { RESCUE_PORT_NAME } from './rescue-channel.ts'

export type Accel = 'kvm' | 'tcg'

/**
 * The guest contract (see guest-image.ts): root is the FIRST virtio disk by device name, never
 * by UUID or label: in rescue both disks come from the same image and share them.
 * `no_timer_check` keeps starved TCG vCPUs from panicking at boot; `panic=-1` reboots at once.
 * A starved TCG vCPU also makes RCU report stalls at KERN_ERR and the soft-lockup watchdog at
 * KERN_EMERG (`nowatchdog`), which `quiet` still prints: their
 * lines land in the middle of the guest's marker lines on the shared serial console (a host key
 * lost, seen under load), and say nothing about the guest.
 */
export const KERNEL_CMDLINE = 'console=ttyS0 root=/dev/vda rw quiet no_timer_check panic=-1 rcupdate.rcu_cpu_stall_suppress=1 nowatchdog'

/** The buses a disk can be attached on (Nova's hw_rescue_bus for the qemu virt type, but fdc). */
export type DiskBus = 'virtio' | 'scsi' | 'usb' | 'ide' | 'sata'

export interface DiskArg {
  /** QEMU drive id; also the disk's serial (`/sys/block/vdX/serial` in the guest). */
  id: string
  file: string
  format: 'qcow2' | 'raw'
  readOnly?: boolean
  /** virtio (the default: virtio-blk-pci), or a controller of that bus and a disk on it. */
  bus?: DiskBus
  /**
   * `cdrom`: a CD-ROM drive with this image in it (ide-cd, scsi-cd, or a USB storage device
   * holding a CD), read-only; not on virtio (QEMU has no virtio CD-ROM). Default: a hard disk.
   */
  media?: 'disk' | 'cdrom'
  /** Firmware boot order (`bootindex`), lowest first; the direct kernel boot comes before any disk. */
  bootIndex?: number
  /**
   * A volume (virtio only): a `-blockdev` node and a device named as a hot-plug names them
   * (volumeNames), so that it can be unplugged whether it was plugged in at boot or later; its
   * serial is the volume id (the guest's /sys/block/vdX/serial, /dev/disk/by-id/virtio-<its first 20 characters>).
   */
  volumeId?: string
  /**
   * The PCI slot a volume's device takes (else the next free one): on the destination of a live
   * migration, where the source has it (a volume hot-plugged there took a later slot than the
   * command line gives it), since the migrated device state must land on the same layout.
   */
  pciSlot?: number
}

/** The QEMU names of a volume's block node (at most 31 characters) and device. */
export function volumeNames(volumeId: string): { node: string; device: string } {
  if (!/^[A-Za-z0-9-]{1,64}$/.test(volumeId)) throw new Error(`bad volume id ${volumeId}`)
  return { node: `vol${volumeId.replace(/-/g, '').slice(0, 28)}`, device: `vol-${volumeId}` }
}

/** A volume's block node as `-blockdev` and QMP `blockdev-add` take it (a standalone qcow2 file). */
export function volumeBlockdev(node: string, file: string) {
  return { driver: 'qcow2', 'node-name': node, discard: 'unmap', file: { driver: 'file', filename: file } }
}

export interface VmArgs {
  /** Instance directory: pidfile, QMP socket, serial socket and log live here. */
  dir: string
  name: string
  accel: Accel
  vcpus: number
  memMb: number
  kernel: string
  initrd: string
  cmdline?: string
  /** In guest order: vda, vdb, ... (the order of the -device flags is the PCI order). */
  disks: DiskArg[]
  sshPort: number
  /** Drop to this user once the files are open (QEMU started as root). */
  runAs?: string
  /** Resume: start from this internal snapshot of the first disk (memory and devices, `savevm`). */
  loadVm?: string
  /** The guest's root device when not /dev/vda (stable-device rescue: the rescue disk, attached last). */
  root?: string
  /**
   * The destination of a live migration: no boot; QEMU waits (`-incoming defer`, then QMP
   * `migrate-incoming`) and stays paused once the guest has arrived (`-S`) until told `cont`.
   */
  incoming?: boolean
  /**
   * A warm rescue system's machine (rescue-channel.ts): the rescue port (virtio-serial, its host
   * side `rescue.sock`), and a VM generation id, new at every start, so that a guest restored
   * from a saved state reseeds its random number generator.
   */
  rescueChannel?: boolean
  /** false: no SSH port forward yet (a restored rescue system gets it once its server's QEMU has let go of the port). */
  sshForward?: boolean
  /** Files handed to QEMU as open descriptors (`-add-fd`: fd 3 onwards, in this order), each in its own fd set (1, 2, ...). */
  fdSets?: number
}

/** The controller each non-virtio bus needs, added once before its first disk (`ide` is the `pc` board's own). */
const CONTROLLERS: Partial<Record<DiskBus, string>> = {
  scsi: 'virtio-scsi-pci,id=scsi0',
  usb: 'qemu-xhci,id=usb0',
  sata: 'ich9-ahci,id=sata0',
}

/** The -device of a disk on its bus. */
function diskDevice(d: DiskArg): string {
  const boot = d.bootIndex === undefined ? '' : `,bootindex=${d.bootIndex}`
  if (d.media === 'cdrom') {
    switch (d.bus ?? 'virtio') {
      case 'virtio':
        throw new Error(`${d.id}: no CD-ROM on the virtio bus`)
      case 'scsi':
        return `scsi-cd,bus=scsi0.0,drive=${d.id},serial=${d.id}${boot}`
      // A USB mass storage device presents a CD-ROM when its drive is one (media=cdrom).
      case 'usb':
        return `usb-storage,bus=usb0.0,drive=${d.id},serial=${d.id}${boot}`
      case 'ide':
        return `ide-cd,bus=ide.0,drive=${d.id},serial=${d.id}${boot}`
      case 'sata':
        return `ide-cd,bus=sata0.0,drive=${d.id},serial=${d.id}${boot}`
    }
  }
  switch (d.bus ?? 'virtio') {
    case 'virtio':
      return `virtio-blk-pci,drive=${d.id},serial=${d.id}${boot}`
    case 'scsi':
      return `scsi-hd,bus=scsi0.0,drive=${d.id},serial=${d.id}${boot}`
    case 'usb':
      return `usb-storage,bus=usb0.0,drive=${d.id},serial=${d.id}${boot}`
    case 'ide':
      return `ide-hd,bus=ide.0,drive=${d.id},serial=${d.id}${boot}`
    case 'sata':
      return `ide-hd,bus=sata0.0,drive=${d.id},serial=${d.id}${boot}`
  }
}

/** The files QEMU keeps in an instance dir. */
export function vmFiles(dir: string) {
  return {
    pid: path.join(dir, 'qemu.pid'),
    qmp: path.join(dir, 'qmp.sock'),
    serial: path.join(dir, 'serial.sock'),
    console: path.join(dir, 'console.log'),
    channel: path.join(dir, 'rescue.sock'),
  }
}

/** QEMU option values separate with commas; a comma inside a value is written twice. */
export const optValue = (s: string) => s.replace(/,/g, ',,')

export function buildQemuArgs(v: VmArgs): string[] {
  if (!Number.isInteger(v.sshPort) || v.sshPort < 1 || v.sshPort > 65535) throw new Error(`bad SSH port ${v.sshPort}`)
  if (!path.isAbsolute(v.dir)) throw new Error(`instance dir must be absolute: ${v.dir}`)
  const f = vmFiles(v.dir)
  const args = [
    '-name',
    optValue(v.name),
    ...(v.accel === 'kvm' ? ['-accel', 'kvm', '-cpu', 'host'] : ['-accel', 'tcg']),
    '-machine',
    'pc',
    '-smp',
    String(Math.max(1, v.vcpus)),
    '-m',
    String(Math.max(64, v.memMb)),
    '-nodefaults',
    '-no-user-config',
    '-display',
    'none',
    '-kernel',
    v.kernel,
    '-initrd',
    v.initrd,
    '-append',
    v.cmdline ?? (v.root === undefined ? KERNEL_CMDLINE : KERNEL_CMDLINE.replace('root=/dev/vda', `root=${v.root}`)),
  ]
  if (v.root !== undefined && !/^\/dev\/[a-z0-9]+$/.test(v.root)) throw new Error(`bad root device ${v.root}`)
  const controllers = new Set<string>()
  for (const d of v.disks) {
    if (d.volumeId !== undefined) {
      const { node, device } = volumeNames(d.volumeId)
      const boot = d.bootIndex === undefined ? '' : `,bootindex=${d.bootIndex}`
      args.push(
        '-blockdev',
        JSON.stringify(volumeBlockdev(node, d.file)),
        '-device',
        `virtio-blk-pci,drive=${node},id=${device},serial=${d.volumeId}${boot}${d.pciSlot === undefined ? '' : `,addr=0x${d.pciSlot.toString(16)}`}`,
      )
      continue
    }
    const drive = [`file=${optValue(d.file)}`, 'if=none', `id=${d.id}`, `format=${d.format}`]
    if (d.media === 'cdrom') drive.push('media=cdrom', 'readonly=on')
    else if (d.readOnly) drive.push('readonly=on')
    // auto-read-only=off: a writable disk keeps the read-write file it was opened with. Else
    // QEMU reopens it by name when a live migration hands it over (read-only on the source,
    // read-write again on the destination or a rollback), which fails once it runs as `nobody`.
    else drive.push('auto-read-only=off', ...(d.format === 'qcow2' ? ['discard=unmap'] : []))
    const controller = CONTROLLERS[d.bus ?? 'virtio']
    if (controller && !controllers.has(controller)) {
      controllers.add(controller)
      args.push('-device', controller)
    }
    args.push('-drive', drive.join(','), '-device', diskDevice(d))
  }
  args.push(
    // restrict=on: no guest traffic leaves slirp; only the hostfwd rule below reaches the guest.
    '-netdev',
    `user,id=n0,restrict=on${v.sshForward === false ? '' : `,hostfwd=tcp:127.0.0.1:${v.sshPort}-:22`}`,
    '-device',
    'virtio-net-pci,netdev=n0',
    '-device',
    'virtio-rng-pci',
    '-chardev',
    `socket,id=ser0,path=${optValue(f.serial)},server=on,wait=off,logfile=${optValue(f.console)},logappend=on`,
    '-serial',
    'chardev:ser0',
    '-qmp',
    `unix:${optValue(f.qmp)},server=on,wait=off`,
    '-pidfile',
    f.pid,
    '-daemonize',
    // seccomp: no obsolete or resource-control syscalls. Not spawn=deny (-daemonize forks) nor
    // elevateprivileges=deny (-runas needs setuid once).
    '-sandbox',
    'on,obsolete=deny,resourcecontrol=deny',
  )
  if (v.rescueChannel) {
    args.push(
      '-device',
      'virtio-serial-pci,id=vser0',
      '-chardev',
      `socket,id=rch0,path=${optValue(f.channel)},server=on,wait=off`,
      '-device',
      `virtserialport,bus=vser0.0,chardev=rch0,name=${RESCUE_PORT_NAME}`,
      '-device',
      'vmgenid,guid=auto',
    )
  }
  for (let i = 0; i < (v.fdSets ?? 0); i++) args.push('-add-fd', `fd=${3 + i},set=${1 + i}`)
  if (v.runAs) args.push('-runas', v.runAs)
  if (v.loadVm !== undefined) args.push('-loadvm', optValue(v.loadVm))
  if (v.incoming) args.push('-incoming', 'defer', '-S')
  return args
}
