// What compute hands up to its callers (the API): servers and what belongs to them, as the
// repositories read them. Routes depend on these names, never on the store.
import type { FlavorRow, InstanceActionEventRow, InstanceActionRow, RescueRow, ServerRow } from '../store/schema.ts'

export type Server = ServerRow
/** What finds a server's view built before (see ServersRepo's ServerRef). */
export type { ServerRef } from '../store/servers-repo.ts'
export type InstanceAction = InstanceActionRow
export type InstanceActionEvent = InstanceActionEventRow
export type Rescue = RescueRow

/** An address of the built-in network. */
export interface FixedIp {
  address: string
  mac: string
}

/** Where a server's SSH is reached, as its agent recorded it. */
export interface ServerAccess {
  ssh_host: string
  ssh_port: number
  host_key_fingerprint: string | null
}

/** A server's latest fault, and whether it is about its latest action (see ServersRepo.latestFaults). */
export interface LatestFault {
  code: number
  message: string
  details: string
  created_at: string
  ofLastAction: boolean
}

/** What a server view shows besides the row, read only where the microversion shows it. */
export interface ServerExtras {
  /** The server's flavor (2.47 embeds it); absent if its record is gone. */
  flavor?: FlavorRow
  tags: string[]
  /** The server group it belongs to (2.71). */
  groupId?: string
  /** UP, DOWN, UNKNOWN, or '' without a host (2.16, admins). */
  hostStatus?: string
  /** Base64 user data given at create (2.3, admins). */
  userData: string | null
  /** The volumes attached (os-extended-volumes:volumes_attached), oldest first. */
  volumes?: { id: string; deleteOnTermination: boolean }[]
}

/** Which extras a view needs read (the API decides by microversion and caller). */
export interface ExtrasWanted {
  flavor: boolean
  tags: boolean
  groups: boolean
  hostStatus: boolean
  userData: boolean
  volumes: boolean
}
