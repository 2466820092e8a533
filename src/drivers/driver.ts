// The hypervisor interface the agent drives. Each call returns when the operation is done.
// Only agents hold drivers; drivers import nothing from compute/, store/ or api/ (what they need
// of the database comes in through small interfaces that main.ts wires).

/** nova.compute.power_state */
export const PowerState = { NOSTATE: 0, RUNNING: 1, PAUSED: 3, SHUTDOWN: 4, CRASHED: 6, SUSPENDED: 7 } as const
export type PowerStateValue = (typeof PowerState)[keyof typeof PowerState]

export interface ServerSpec {
  id: string
  name: string
  vcpus: number
  ramMb: number
  diskGb: number
  imageId: string
  imageName: string | null
  /** The root password set at first boot (spawn and rebuild only). */
  adminPass?: string
  authorizedKeys?: string[]
  /** User data for the first boot (the config drive's openstack/latest/user_data). */
  userData?: Buffer
  /** Volume-backed (spawn): the boot volume, the root disk, and the image it was made from (null: none known). */
  bootVolume?: { id: string; imageId: string | null } | null
  /** Volumes attached besides the root, in attach order (unshelve: a server that has them already). */
  volumes?: string[]
}

export interface RescueSpec {
  imageId: string
  imageName: string | null
  /** Root password of the rescue system (the server's own disk keeps its own). */
  adminPass: string
  /** Public keys authorized in the rescue system. */
  authorizedKeys: string[]
  /**
   * Stable-device rescue (the rescue image's hw_rescue_device / hw_rescue_bus): the server's
   * disks keep their places, its own disk first, and the rescue disk is attached last, as this
   * device type on this bus, and booted. Absent or null: the rescue disk first, the server's second.
   */
  stable?: { device: 'disk' | 'cdrom' | 'floppy' | 'lun'; bus: 'virtio' | 'scsi' | 'ide' | 'usb' | 'fdc' | 'sata' } | null
  /**
   * Keep the server's disk as it is now (a checkpoint): what the rescue system writes to it goes
   * on top, and unrescue keeps it or discards it. The disk as it was is never lost meanwhile.
   */
  checkpoint?: boolean
}

/**
 * Why a stable-device rescue's disk cannot be attached as asked, in libvirt's words (Nova's
 * libvirt driver fails the rescue with them: `InstanceNotRescuable`, "Driver Error: ..."), or
 * null. `volumes`: the server's attached volumes (the rescue disk comes after them).
 */
export function stableRescueRefusal(stable: NonNullable<RescueSpec['stable']>, volumes = 0): string | null {
  const { device, bus } = stable
  // libvirt's virDomainDiskDefValidate, in its order. The rescue disk is a file (its own
  // overlay of the image), never a host block device.
  if (device === 'lun') return "unsupported configuration: disk device='lun' is only valid for block type disk source"
  if (device === 'floppy' && bus !== 'fdc') return `Invalid bus type '${bus}' for floppy disk`
  if (device !== 'floppy' && bus === 'fdc') return `Invalid bus type '${bus}' for disk`
  // QEMU has no virtio CD-ROM; libvirt's qemu driver names the disk (vda the server's, vdb the config drive, the volumes).
  if (device === 'cdrom' && bus === 'virtio') {
    return `unsupported configuration: disk type of 'vd${String.fromCharCode(99 + volumes)}' does not support ejectable media`
  }
  return null
}

export type RebootType = 'SOFT' | 'HARD'

/**
 * What the source of a move hands its destination (it travels in a task): the simulated guest's
 * state, or where the qemu disk was put (a path both hosts' agents reach on this machine).
 */
export type MigratedDisk =
  | { kind: 'simulated'; state: string }
  /**
   * Qemu, cold: the disk's copy at `path`; the attached volumes' copies beside it, at
   * `<dir of path>/v/<volume id>.qcow2`, in attach order (they follow the server to its new host).
   * Volume-backed: `rootVolume`, whose copy is beside them (no disk at `path`), with the kernel
   * and initrd it boots with at `<dir of path>/kernel` and `/initrd`.
   */
  | { kind: 'local'; path: string; volumes?: string[]; rootVolume?: string }
  /** Live (qemu): the guest's memory and disk are in the destination's waiting QEMU; `running`: resume it. */
  | { kind: 'incoming'; running: boolean }
/**
 * What the destination of a live migration must know of the source's VM before it prepares
 * (Nova's check_can_live_migrate_source): qemu, the size of the server's disk, which the
 * destination's copy must match.
 */
export type LiveMigrationSource =
  | { kind: 'simulated' }
  /**
   * `volumes`: the attached volumes in attach order, each with its size (the destination makes a
   * blank file of it to receive it) and the PCI slot of its device in the running VM.
   */
  /**
   * Volume-backed: `rootVolume`, its root disk (mirrored whole, as the volumes; `diskBytes` 0), and
   * the kernel and initrd it boots with (`boot`: the source's files, read by the destination's
   * agent on this machine, as a cold move's hand-over).
   */
  | {
      kind: 'qemu'
      diskBytes: number
      volumes?: { id: string; bytes: number; pciSlot?: number }[]
      rootVolume?: { id: string; bytes: number }
      boot?: { kernel: string; initrd: string }
    }
/**
 * Where the destination of a live migration waits for the guest (Nova's migrate_data): qemu, an
 * address of the destination host with the port its QEMU takes the migration stream on and the
 * port of the NBD server its disk is written through (no shared storage between hosts).
 */
export type LiveMigrationTarget = { kind: 'simulated' } | { kind: 'qemu'; address: string; migrationPort: number; nbdPort: number }
/** A copy of a server's disk (snapshot, backup, shelve), for the worker to upload as an image. */
export interface DiskSnapshot {
  diskFormat: 'qcow2' | 'raw'
  /** Its bytes, read once. */
  data: AsyncIterable<Uint8Array> | Iterable<Uint8Array>
  /** Remove what the copy left on the host (a temp file); called once uploaded or abandoned. */
  cleanup(): Promise<void>
}

export interface VirtDriver {
  readonly name: string
  spawn(server: ServerSpec): Promise<void>
  powerOff(serverId: string, opts: { clean: boolean; timeoutMs: number }): Promise<void>
  powerOn(serverId: string): Promise<void>
  reboot(serverId: string, type: RebootType): Promise<void>
  pause(serverId: string): Promise<void>
  unpause(serverId: string): Promise<void>
  rebuild(server: ServerSpec): Promise<void>
  /** Save the guest's memory and stop its VM (power state SUSPENDED); resume continues the same boot. */
  suspend(serverId: string): Promise<void>
  resume(serverId: string): Promise<void>
  /**
   * A standalone copy of the server's disk as image `imageId` will hold it (Nova's cold snapshot:
   * a running guest is paused while its disk is read, then runs on). The server is left in the
   * power state it had, whether the copy succeeds or not. Spawning a server from that image
   * boots what the disk held.
   */
  snapshot(serverId: string, imageId: string): Promise<DiskSnapshot>
  /** Shut the server's VM down and boot the rescue image with the server's disk second. */
  rescue(serverId: string, rescue: RescueSpec): Promise<void>
  /**
   * Stop the rescue VM and boot the server's own disk again. The rescue disk is dropped only
   * after that boot: a failed unrescue must leave it for restoreRescue. With a checkpoint, what
   * the rescue changed on the server's disk is kept or (`discardChanges`) dropped first: the
   * server boots its disk with the changes, or as it was when the rescue began.
   */
  unrescue(serverId: string, opts?: { discardChanges?: boolean }): Promise<void>
  /**
   * Whether the server's disk still holds the checkpoint of its rescue (the rescue's changes
   * on top, neither kept nor discarded yet): after a failed unrescue, whether it got that far.
   */
  hasCheckpoint(serverId: string): Promise<boolean>
  /**
   * After a failed unrescue: the rescue system again, from the same rescue disk (so with the
   * same root password and keys), the server's disk second. Nothing to do if it still runs.
   */
  restoreRescue(serverId: string): Promise<void>
  /** After a failed rescue: the server's own disk, in the power state it had before. */
  restore(serverId: string, powerState: PowerStateValue): Promise<void>
  destroy(serverId: string): Promise<void>
  // Moves (resize, cold and live migration), in Nova's order: the source powers off and hands its
  // disk over (migrateDiskAndPowerOff), the destination boots it with the new flavor
  // (finishMigration); the source keeps its VM and disk until confirmMigration, or boots them
  // again (finishRevertMigration) once the destination dropped its copy (dropMigrationTarget).
  /**
   * Source: power off and hand the disk over; refuses a smaller root disk ("Unable to resize disk
   * down."). The attached volumes go with it to another host (`sameHost`: a resize on this host,
   * they stay where they are); the source keeps its own copies until confirm or revert.
   */
  migrateDiskAndPowerOff(serverId: string, to: ServerSpec, opts?: { sameHost?: boolean }): Promise<MigratedDisk>
  /** Destination: the server from the handed disk, with `spec`'s flavor (its disk grown to it). */
  finishMigration(spec: ServerSpec, disk: MigratedDisk, powerOn: boolean): Promise<void>
  /** Source, once confirmed: drop the old VM and disk. */
  confirmMigration(serverId: string): Promise<void>
  /** Destination of a revert (or of a failed finish): drop the copy, never the source's disk. */
  dropMigrationTarget(serverId: string): Promise<void>
  /** Source: the server's own VM and disk, as before the move (revert, or a failure mid-way). */
  finishRevertMigration(serverId: string, powerOn: boolean): Promise<void>
  // Live migration, in Nova's order: the source says what the destination needs
  // (checkLiveMigrationSource), the destination gets ready to receive (preLiveMigration), the
  // source hands the running guest over (liveMigrate), the destination runs it (finishMigration
  // with what liveMigrate returned) and the source drops its VM (confirmMigration). A failure
  // anywhere leaves the guest running on the source (finishRevertMigration makes sure of it) and
  // the destination's copy is dropped (dropMigrationTarget).
  /** Source of a live migration: what the destination must prepare; refuses a server it cannot move live. */
  checkLiveMigrationSource(serverId: string): Promise<LiveMigrationSource>
  /** Destination of a live migration: be ready to receive the guest (dropMigrationTarget undoes it). */
  preLiveMigration(spec: ServerSpec, source: LiveMigrationSource): Promise<LiveMigrationTarget>
  /**
   * Source of a live migration: hand the running guest over to `target` (finishMigration resumes
   * it there). A failure leaves it running here, as it was. `control`: polled during the copy
   * for what an admin asked (Nova's libvirt driver: an abort cancels the copy, the guest runs on
   * here, LiveMigrationCancelled; a force-complete pauses the guest so that the copy converges,
   * and the destination runs it as it ran here).
   */
  liveMigrate(serverId: string, target: LiveMigrationTarget, control?: LiveMigrationControl): Promise<MigratedDisk>
  getInfo(serverId: string): Promise<{ powerState: PowerStateValue }>
  consoleOutput(serverId: string): Promise<string>
  /** The SSH host key fingerprint of the system booted now, where the driver knows it. */
  hostKeyFingerprint?(serverId: string): string | null
  /**
   * Where a user reaches the booted system's SSH, where the driver forwards it (qemu: 127.0.0.1:port),
   * and where this host reaches the VM's serial port (`unix:<path>`; the serial proxy connects to it).
   */
  sshAccess?(serverId: string): { host: string; port: number; hostKeyFingerprint: string | null; serialEndpoint?: string | null } | null
  /**
   * The servers this driver holds a VM for, in any state (qemu: instance directories and the QEMU
   * processes of its dir; simulated: its records). The agent reconciles them with the database:
   * a VM whose server is deleted or unknown is destroyed.
   */
  listVms(): Promise<string[]>
  /** After a restart: learn the servers of this host and the power state the database records. */
  adopt(servers: { spec: ServerSpec; powerState: PowerStateValue; rescued: boolean }[]): Promise<void>
}

/** What a volume is made from: nothing (blank), an image, a snapshot or another volume. */
export interface VolumeSpec {
  id: string
  sizeGb: number
  imageId: string | null
  snapshotId: string | null
  /** A clone of this volume (on the same host). */
  sourceVolid?: string | null
}

/**
 * Block storage on an agent's host: the volumes whose data this host serves, and attaching them to
 * the servers it runs. Each call returns when the operation is done. The simulated driver keeps
 * records (with fault injection); a driver without volumes of its own is given RecordVolumes.
 */
export interface VolumeDriver {
  createVolume(spec: VolumeSpec): Promise<void>
  deleteVolume(volumeId: string): Promise<void>
  extendVolume(volumeId: string, sizeGb: number): Promise<void>
  createVolumeSnapshot(volumeId: string, snapshotId: string): Promise<void>
  deleteVolumeSnapshot(snapshotId: string): Promise<void>
  /** Hot-plug the volume into the server's VM as `device` (or record it for its next boot if it is off). */
  attachVolume(serverId: string, volumeId: string, device: string): Promise<void>
  detachVolume(serverId: string, volumeId: string): Promise<void>
  /** The volumes whose data this host holds (the agent deletes the data of those the database no longer has). */
  listVolumes?(): Promise<string[]>
  /**
   * A copy of a detached volume's data for another host's agent to take in (an attach to one of
   * its servers): a path that agent reads. Drivers whose volume data is not per host have none.
   */
  handOverVolume?(volumeId: string): Promise<string>
  /** Take in the volume's data handed over at `from` (then this host serves it); the hand-over's copy goes either way. */
  takeVolume?(volumeId: string, from: string): Promise<void>
}

export const isVolumeDriver = (d: object): d is VolumeDriver =>
  typeof (d as Partial<VolumeDriver>).createVolume === 'function' && typeof (d as Partial<VolumeDriver>).attachVolume === 'function'

/** Volumes as records only, no data: for a hypervisor driver that has no volumes of its own. */
export class RecordVolumes implements VolumeDriver {
  async createVolume(): Promise<void> {}
  async deleteVolume(): Promise<void> {}
  async extendVolume(): Promise<void> {}
  async createVolumeSnapshot(): Promise<void> {}
  async deleteVolumeSnapshot(): Promise<void> {}
  async attachVolume(): Promise<void> {}
  async detachVolume(): Promise<void> {}
}

export class DriverError extends Error {}
/** A live migration an admin aborted: the guest runs on its source, as before. */
export class LiveMigrationCancelled extends DriverError {
  constructor() {
    super('Live migration cancelled: the guest runs on its source')
  }
}

/** What an admin asked of a live migration under way, as its copy polls it; where the copy reports how far it is. */
export interface LiveMigrationControl {
  requested(): Promise<'abort' | 'force-complete' | null>
  progress?(p: LiveMigrationProgress): void
}

/** How far a live migration's copy is, in bytes (Nova's migration memory_* and disk_*, libvirt's job info). */
export interface LiveMigrationProgress {
  memory_total: number
  memory_processed: number
  memory_remaining: number
  disk_total: number
  disk_processed: number
  disk_remaining: number
}
export class VmNotFound extends DriverError {
  constructor(id: string) {
    super(`no VM for server ${id}`)
  }
}
