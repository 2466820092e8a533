// The hypervisor interface the agent drives. Each call returns when the operation is done.
import type { PowerStateValue } from '../compute/states.ts'

export interface ServerSpec {
  id: string
  name: string
  vcpus: number
  ramMb: number
  diskGb: number
  imageId: string
  imageName: string | null
}

export interface RescueSpec {
  imageId: string
  imageName: string | null
}

export type RebootType = 'SOFT' | 'HARD'

export interface VirtDriver {
  readonly name: string
  spawn(server: ServerSpec): Promise<void>
  powerOff(serverId: string, opts: { clean: boolean; timeoutMs: number }): Promise<void>
  powerOn(serverId: string): Promise<void>
  reboot(serverId: string, type: RebootType): Promise<void>
  pause(serverId: string): Promise<void>
  unpause(serverId: string): Promise<void>
  rebuild(server: ServerSpec): Promise<void>
  rescue(serverId: string, rescue: RescueSpec): Promise<void>
  unrescue(serverId: string): Promise<void>
  destroy(serverId: string): Promise<void>
  getInfo(serverId: string): Promise<{ powerState: PowerStateValue }>
  consoleOutput(serverId: string): Promise<string>
  /** After a restart: learn the servers of this host and the power state the database records. */
  adopt(servers: { spec: ServerSpec; powerState: PowerStateValue; rescued: boolean }[]): Promise<void>
}

export class DriverError extends Error {}
export class VmNotFound extends DriverError {
  constructor(id: string) { super(`no VM for server ${id}`) }
}
