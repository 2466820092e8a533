// What compute hands up to its callers (the API): servers and what belongs to them, as the
// repositories read them. Routes depend on these names, never on the store.
import type { InstanceActionEventRow, InstanceActionRow, RescueRow, ServerRow } from '../store/schema.ts'

export type Server = ServerRow
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
