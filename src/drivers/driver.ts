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
}

export interface RescueSpec {
  imageId: string
  imageName: string | null
  /** Root password of the rescue system (the server's own disk keeps its own). */
  adminPass: string
  /** Public keys authorized in the rescue system. */
  authorizedKeys: string[]
}

export type RebootType = 'SOFT' | 'HARD'

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
   * after that boot: a failed unrescue must leave it for restoreRescue.
   */
  unrescue(serverId: string): Promise<void>
  /**
   * After a failed unrescue: the rescue system again, from the same rescue disk (so with the
   * same root password and keys), the server's disk second. Nothing to do if it still runs.
   */
  restoreRescue(serverId: string): Promise<void>
  /** After a failed rescue: the server's own disk, in the power state it had before. */
  restore(serverId: string, powerState: PowerStateValue): Promise<void>
  destroy(serverId: string): Promise<void>
  getInfo(serverId: string): Promise<{ powerState: PowerStateValue }>
  consoleOutput(serverId: string): Promise<string>
  /** The SSH host key fingerprint of the system booted now, where the driver knows it. */
  hostKeyFingerprint?(serverId: string): string | null
  /** Where a user reaches the booted system's SSH, where the driver forwards it (qemu: 127.0.0.1:port). */
  sshAccess?(serverId: string): { host: string; port: number; hostKeyFingerprint: string | null } | null
  /**
   * The servers this driver holds a VM for, in any state (qemu: instance directories and the QEMU
   * processes of its dir; simulated: its records). The agent reconciles them with the database:
   * a VM whose server is deleted or unknown is destroyed.
   */
  listVms(): Promise<string[]>
  /** After a restart: learn the servers of this host and the power state the database records. */
  adopt(servers: { spec: ServerSpec; powerState: PowerStateValue; rescued: boolean }[]): Promise<void>
}

export class DriverError extends Error {}
export class VmNotFound extends DriverError {
  constructor(id: string) {
    super(`no VM for server ${id}`)
  }
}
