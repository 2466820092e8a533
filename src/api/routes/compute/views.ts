// Response shapes of the compute API at 2.1, exactly the keys Nova sends (Tempest validates
// them with additionalProperties: false).
import { createHash } from 'node:crypto'
import { isoMicrosNoZone, isoSeconds } from '../../../clock.ts'
import { statusOf } from '../../../compute/states.ts'
import type { AuthContext } from '../../../identity/identity-service.ts'
import type { Server } from '../../../compute/server.ts'

export const NETWORK_NAME = 'private'

export interface Fault {
  code: number
  message: string
  details: string
  created_at: string
  /** Recorded at or after the start of the server's latest instance action (see ServerService.latestFaults). */
  ofLastAction?: boolean
}

/** Nova's hostId: sha224 of project id and host, so it differs per project. Few pairs exist: remembered. */
const hostIds = new Map<string, string>()
export function hostId(projectId: string, host: string | null): string {
  if (!host) return ''
  const key = `${projectId} ${host}`
  let id = hostIds.get(key)
  if (id === undefined) {
    id = createHash('sha224')
      .update(projectId + host)
      .digest('hex')
    if (hostIds.size > 10_000) hostIds.clear()
    hostIds.set(key, id)
  }
  return id
}

const bookmark = (base: string, kind: string, id: string) => [{ rel: 'bookmark', href: `${base}/${kind}/${id}` }]

export function serverLinks(base: string, id: string) {
  return [
    { rel: 'self', href: `${base}/v2.1/servers/${id}` },
    { rel: 'bookmark', href: `${base}/servers/${id}` },
  ]
}

/** Progress is shown only in the statuses where Nova computes it. */
const PROGRESS_STATUSES = new Set(['ACTIVE', 'BUILD', 'REBUILD', 'RESIZE', 'VERIFY_RESIZE', 'MIGRATING'])

export interface ServerViewOptions {
  base: string
  ctx: AuthContext
  ips: { address: string; mac: string }[]
  fault?: Fault
  /** PUT /servers/{id} at 2.1 answers without the extension attributes (Nova < 2.75). */
  core?: boolean
}

export function serverDetail(s: Server, o: ServerViewOptions): Record<string, unknown> {
  const status = statusOf(s.vm_state, s.task_state)
  const v: Record<string, unknown> = {
    id: s.id,
    name: s.name,
    status,
    tenant_id: s.project_id,
    user_id: s.user_id,
    metadata: JSON.parse(s.metadata) as Record<string, string>,
    hostId: hostId(s.project_id, s.host),
    image: s.image_id ? { id: s.image_id, links: bookmark(o.base, 'images', s.image_id) } : '',
    flavor: { id: s.flavor_id, links: bookmark(o.base, 'flavors', s.flavor_id) },
    created: isoSeconds(s.created_at),
    updated: isoSeconds(s.updated_at),
    // Nova hides the addresses while the server builds; PUT and rebuild (o.core) show them
    // without the OS-EXT-IPS extension keys below 2.75.
    addresses: s.vm_state === 'building' ? {} : addressesView(o.ips, !o.core),
    accessIPv4: s.access_ipv4,
    accessIPv6: s.access_ipv6,
    links: serverLinks(o.base, s.id),
    'OS-DCF:diskConfig': 'MANUAL',
  }
  if (PROGRESS_STATUSES.has(status)) v.progress = 0
  // Nova shows the fault in ERROR and DELETED. Skiff also shows it while it tells why the server
  // is not where its last action meant to take it (a failed unrescue left it in RESCUE, a VM
  // died): until the next action. Tempest's schema allows `fault` in any status.
  if (o.fault && (status === 'ERROR' || status === 'DELETED' || o.fault.ofLastAction)) {
    const fault: Record<string, unknown> = { code: o.fault.code, created: isoSeconds(o.fault.created_at), message: o.fault.message }
    // Details (a traceback in Nova) only for admins, or for non-500 faults.
    if (o.ctx.isAdmin || o.fault.code !== 500) fault.details = o.fault.details
    v.fault = fault
  }
  if (o.core) return v
  v['OS-EXT-AZ:availability_zone'] = s.availability_zone
  v.config_drive = s.config_drive
  v.key_name = s.key_name
  v['OS-SRV-USG:launched_at'] = s.launched_at ? isoMicrosNoZone(s.launched_at) : null
  v['OS-SRV-USG:terminated_at'] = s.terminated_at ? isoMicrosNoZone(s.terminated_at) : null
  if (o.ips.length) v.security_groups = [{ name: 'default' }]
  if (o.ctx.isAdmin) {
    v['OS-EXT-SRV-ATTR:host'] = s.host
    v['OS-EXT-SRV-ATTR:instance_name'] = `instance-${s.id.slice(0, 8)}`
    v['OS-EXT-SRV-ATTR:hypervisor_hostname'] = s.host
  }
  v['OS-EXT-STS:task_state'] = s.task_state
  v['OS-EXT-STS:vm_state'] = s.vm_state
  v['OS-EXT-STS:power_state'] = s.power_state
  v['os-extended-volumes:volumes_attached'] = []
  return v
}

/** Addresses by network name (Nova's addresses view builder); `extended` adds OS-EXT-IPS keys. */
export function addressesView(ips: { address: string; mac: string }[], extended: boolean): Record<string, unknown[]> {
  if (ips.length === 0) return {}
  return {
    [NETWORK_NAME]: ips.map((ip) =>
      extended
        ? { version: 4, addr: ip.address, 'OS-EXT-IPS:type': 'fixed', 'OS-EXT-IPS-MAC:mac_addr': ip.mac }
        : { version: 4, addr: ip.address },
    ),
  }
}

export function serverSummary(s: Server, base: string) {
  return { id: s.id, name: s.name, links: serverLinks(base, s.id) }
}
