// Response shapes of the compute API at each microversion, exactly the keys Nova sends (Tempest validates
// them with additionalProperties: false).
import { createHash } from 'node:crypto'
import { isoMicrosNoZone, isoSeconds } from '../../../clock.ts'
import { statusOf } from '../../../compute/states.ts'
import type { AuthContext } from '../../../identity/identity-service.ts'
import type { ExtrasWanted, Server, ServerExtras } from '../../../compute/server.ts'
import type { Microversion } from '../../microversion.ts'
import { has } from '../../microversion-changes.ts'

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
  v: Microversion
  ips: { address: string; mac: string }[]
  fault?: Fault
  extras?: ServerExtras
  /**
   * GET of one (show) or of a list (detail), or the answer to PUT / rebuild: below 2.75 they answer without the
   * extension attributes (Nova's show_all_attributes), and rebuild's user data is its own key.
   */
  answering?: 'show' | 'detail' | 'update' | 'rebuild'
}

/** Which extras a view at `v` shows (so that a list reads no more than it shows). */
export function extrasWanted(v: Microversion, ctx: AuthContext): ExtrasWanted {
  return {
    flavor: has(v, 'flavorInServer'),
    tags: has(v, 'serverTags'),
    groups: has(v, 'serverGroupsInServer'),
    hostStatus: has(v, 'hostStatus') && ctx.isAdmin,
    userData: has(v, 'extendedServerAttributes') && ctx.isAdmin,
    volumes: true,
  }
}

/** Nova's root disk name once the server has booted (virtio: the first disk is vda). */
const ROOT_DEVICE_NAME = '/dev/vda'

/** The server as Nova's ViewBuilder.show builds it at `o.v` (views/servers.py). */
export function serverDetail(s: Server, o: ServerViewOptions): Record<string, unknown> {
  const status = statusOf(s.vm_state, s.task_state)
  const answering = o.answering ?? 'show'
  // Nova's show_all_attributes: PUT and rebuild answer like GET from 2.75.
  const all = answering === 'show' || answering === 'detail' || has(o.v, 'consistentServerViews')
  const x = o.extras
  const v: Record<string, unknown> = {
    id: s.id,
    name: s.name,
    status,
    tenant_id: s.project_id,
    user_id: s.user_id,
    metadata: JSON.parse(s.metadata) as Record<string, string>,
    hostId: hostId(s.project_id, s.host),
    image: s.image_id ? { id: s.image_id, links: bookmark(o.base, 'images', s.image_id) } : '',
    flavor: flavorOfServer(s, o),
    created: isoSeconds(s.created_at),
    updated: isoSeconds(s.updated_at),
    // Nova hides the addresses while the server builds; PUT and rebuild show them without the
    // OS-EXT-IPS extension keys below 2.75.
    addresses: s.vm_state === 'building' ? {} : addressesView(o.ips, all),
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
  if (all) {
    v['OS-EXT-AZ:availability_zone'] = s.availability_zone
    v.config_drive = s.config_drive
  }
  // Rebuild shows the key name from 2.54 (it may change it), PUT from 2.75.
  if (all || (answering === 'rebuild' && has(o.v, 'rebuildKeyName'))) v.key_name = s.key_name
  if (all) {
    v['OS-SRV-USG:launched_at'] = s.launched_at ? isoMicrosNoZone(s.launched_at) : null
    v['OS-SRV-USG:terminated_at'] = s.terminated_at ? isoMicrosNoZone(s.terminated_at) : null
    if (o.ips.length) v.security_groups = [{ name: 'default' }]
  }
  // The extended server attributes: admins only (Nova's policy), in every view from 2.75.
  const extended = all && o.ctx.isAdmin
  if (extended) {
    v['OS-EXT-SRV-ATTR:host'] = s.host
    v['OS-EXT-SRV-ATTR:instance_name'] = `instance-${s.id.slice(0, 8)}`
    v['OS-EXT-SRV-ATTR:hypervisor_hostname'] = s.host
    if (has(o.v, 'extendedServerAttributes')) {
      v['OS-EXT-SRV-ATTR:reservation_id'] = s.reservation_id
      v['OS-EXT-SRV-ATTR:launch_index'] = s.launch_index
      v['OS-EXT-SRV-ATTR:hostname'] = s.hostname
      v['OS-EXT-SRV-ATTR:kernel_id'] = ''
      v['OS-EXT-SRV-ATTR:ramdisk_id'] = ''
      v['OS-EXT-SRV-ATTR:root_device_name'] = s.launched_at ? ROOT_DEVICE_NAME : null
      // Rebuild (2.57+) shows user_data under its own key instead.
      if (answering !== 'rebuild') v['OS-EXT-SRV-ATTR:user_data'] = x?.userData ?? null
    }
  }
  if (all) {
    v['OS-EXT-STS:task_state'] = s.task_state
    v['OS-EXT-STS:vm_state'] = s.vm_state
    v['OS-EXT-STS:power_state'] = s.power_state
    // Nova's views/servers.py: each attached volume's id; its delete_on_termination from 2.3.
    v['os-extended-volumes:volumes_attached'] = (x?.volumes ?? []).map((a) =>
      has(o.v, 'extendedServerAttributes') ? { id: a.id, delete_on_termination: a.deleteOnTermination } : { id: a.id },
    )
  }
  if (has(o.v, 'hostStatus') && all && o.ctx.isAdmin && x?.hostStatus !== undefined) v.host_status = x.hostStatus
  if (has(o.v, 'serverLocked')) v.locked = !!s.locked
  if (has(o.v, 'lockedReason')) v.locked_reason = s.locked_reason
  if (has(o.v, 'serverDescription')) v.description = s.description
  if (has(o.v, 'serverTags')) v.tags = x?.tags ?? []
  if (has(o.v, 'trustedImageCertificates'))
    v.trusted_image_certificates = s.trusted_certs ? (JSON.parse(s.trusted_certs) as string[]) : null
  // 2.90 shows the hostname to everyone (admins have it among the extended attributes).
  if (has(o.v, 'serverHostname') && !extended) v['OS-EXT-SRV-ATTR:hostname'] = s.hostname
  // One server's answers (show, PUT, rebuild) name its group; the detail list does not.
  if (has(o.v, 'serverGroupsInServer') && answering !== 'detail') v.server_groups = x?.groupId ? [x.groupId] : []
  return v
}

/** Below 2.47 a link to the flavor; from 2.47 the flavor itself, as the server was given it. */
function flavorOfServer(s: Server, o: ServerViewOptions): Record<string, unknown> {
  if (!has(o.v, 'flavorInServer')) return { id: s.flavor_id, links: bookmark(o.base, 'flavors', s.flavor_id) }
  const f = o.extras?.flavor
  // Nova: {} when the instance's flavor is gone.
  if (!f) return {}
  return {
    vcpus: f.vcpus,
    ram: f.ram,
    disk: f.disk,
    ephemeral: f.ephemeral,
    swap: f.swap,
    original_name: f.name,
    // servers:show:flavor-extra-specs is PROJECT_READER_OR_ADMIN: whoever sees the server.
    extra_specs: JSON.parse(f.extra_specs) as Record<string, string>,
  }
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
