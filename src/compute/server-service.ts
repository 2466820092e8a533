// The compute API's server operations: create, read, update, delete, lock, and the lifecycle
// actions (through server-actions.ts: checks in Nova's order, then compare-and-set + task).
// Rescue has its own module (rescue-service.ts).
import type { BlockDeviceRequest, BootVolumes } from './volume-attachments.ts'
import { randomBytes, randomUUID } from 'node:crypto'
import { BadRequest, Forbidden, PolicyNotAuthorized } from '../errors.ts'
import type { Sealer } from '../secrets.ts'
import type { HostRegistry } from '../tasks/hosts.ts'
import type { Scheduler } from './scheduler.ts'
import type { AuthContext } from '../identity/identity-service.ts'
import type { InstanceActionsRepo } from '../store/instance-actions-repo.ts'
import type { ImageRow } from '../store/schema.ts'
import type { ServerDetailsRepo } from '../store/server-details-repo.ts'
import type { ServerFilter, ServersRepo, Usage } from '../store/servers-repo.ts'
import { InstanceInvalidState, InstanceIsLocked, InstanceNotFound, InstanceNotReady, InvalidImageRef } from './errors.ts'
import type { FlavorService } from './flavor-service.ts'
import type { KeypairService } from './keypair-service.ts'
import { canonicalIPv6 } from './access-ips.ts'
import { generateInstancePassword } from './admin-pass.ts'
import type { ExtrasWanted, FixedIp, LatestFault, Server, ServerAccess, ServerExtras, ServerRef } from './server.ts'
import type { ServerTaskQueue } from './server-tasks.ts'
import type { ServerGroupService } from './server-group-service.ts'
import { RULES, type ServerActions } from './server-actions.ts'
import type { QuotaService } from './quota-service.ts'
import { DEFAULT_ZONE, type AggregateService } from './aggregate-service.ts'
import { authorize, hasRole } from './policy.ts'
import { isDefaultSort, processSort, REGEX_COLUMNS, safeRegex, sortServers } from './server-list.ts'
import { PowerState, statesForStatus, type TaskState, type VmState } from './states.ts'

/** What compute needs from the image service. */
export interface ImageLookup {
  usableImage(id: string, projectId: string, isAdmin: boolean): Promise<ImageRow | undefined>
  /** The oldest active image of that name. */
  findByName(name: string): Promise<ImageRow | undefined>
  /** Any image, whatever its status or owner (names shown beside a server's rescue). */
  get(id: string): Promise<ImageRow | undefined>
}

export interface ServerServiceDeps {
  repo: ServersRepo
  actionsRepo: InstanceActionsRepo
  queue: ServerTaskQueue
  flavors: FlavorService
  keypairs: KeypairService
  images: ImageLookup
  quotas: QuotaService
  enableInstancePassword: boolean
  /** Seals the passwords that travel to the agent inside tasks. */
  sealer: Sealer
  hosts: HostRegistry
  scheduler: Scheduler
  actions: ServerActions
  /** Server groups: the `group` scheduler hint's checks, placement rule and membership. */
  groups: Pick<ServerGroupService, 'place' | 'addMember'>
  /** Tags, groups and user data of the views (server-details-repo.ts). */
  details: ServerDetailsRepo
  /** Availability zones (aggregates' availability_zone): where a create that names one may go. */
  zones: Pick<AggregateService, 'hostZones' | 'zones'>
  /** A shelved server's image goes with the server (Nova's _delete); shelve-service.ts. */
  shelved?: { dropImage(serverId: string): Promise<void> }
  /** Block device mapping v2 at create (boot from volume); volume-attachments.ts. */
  bootVolumes?: BootVolumes
}

export interface CreateServer {
  name: string
  /** '' when the server boots from a volume (block_device_mapping_v2 with boot_index 0). */
  imageRef: string
  blockDevices?: BlockDeviceRequest[]
  flavorRef: string
  adminPass?: string
  keyName?: string
  /** Base64, handed to the guest on its config drive. */
  userData?: string
  metadata?: Record<string, string>
  accessIPv4?: string
  accessIPv6?: string
  availabilityZone?: string
  /** 'none': no address on the built-in network (microversion 2.37+ only). */
  networks?: 'none' | 'default'
  minCount: number
  maxCount: number
  /** Scheduler hint `group`: the server group the new servers join. */
  group?: string
  /** Security groups by name; Skiff has only 'default'. */
  securityGroups?: string[]
  configDrive?: boolean
  /** null: none (2.19+ without one); below 2.19 Nova sets the name. */
  description?: string | null
  /** 2.90: the guest's hostname; otherwise derived from the name (Nova's sanitize_hostname). */
  hostname?: string
  /** 2.52. */
  tags?: string[]
  /** 2.63. */
  trustedCerts?: string[]
  /** 2.74 (admins): the host (Skiff's host and hypervisor node are one name). */
  host?: string
  hypervisorHostname?: string
}

export interface ListQuery {
  detail: boolean
  name?: string
  status?: string[]
  image?: string
  flavor?: string
  ip?: string
  changesSince?: string
  reservationId?: string
  allTenants?: boolean
  projectId?: string
  limit?: number
  marker?: string
  changesBefore?: string
  /** 2.38: a status that names no state is 400, not an empty list. */
  unknownStatusRefused?: boolean
  locked?: boolean
  tags?: string[]
  tagsAny?: string[]
  notTags?: string[]
  notTagsAny?: string[]
  /** Filters Nova allows admins at every version and everyone from 2.83. */
  userId?: string
  vmState?: string[]
  taskState?: string[]
  powerState?: string
  keyName?: string
  availabilityZone?: string
  configDrive?: string
  hostname?: string
  /** Admins only (the route drops them for others): `host` and `node`, exact names. */
  host?: string
  node?: string
  /** Nova's other regular-expression filters, by instance column (server-list.ts REGEX_COLUMNS). */
  regex?: Record<string, string>
  /** Exact: the server's id (`uuid`), its image (`image_ref`, image's alias). */
  uuid?: string
  /** IPv6 addresses, as Python's re.match (2.5 for everyone; admins always). */
  ip6?: string
  /** Admins: deleted servers (`deleted`, or `vm_state=deleted`). */
  deleted?: boolean
  /** The sort asked for: keys (ignored ones taken out) and directions, as given. */
  sortKeys?: string[]
  sortDirs?: string[]
}

const lastSegment = (ref: string) => ref.replace(/\/+$/, '').split('/').pop() ?? ref

/** The rebuild action's body, as Nova's schemas take it up to 2.93 (each key from its version). */
export interface RebuildRequest {
  imageRef: string
  name?: string
  adminPass?: string
  metadata?: Record<string, string>
  accessIPv4?: string
  accessIPv6?: string
  /** 2.19; null clears. */
  description?: string | null
  /** 2.54; null unsets. */
  key_name?: string | null
  /** 2.57; null clears. */
  user_data?: string | null
  /** 2.63; null resets. */
  trusted_image_certificates?: string[] | null
  /** 2.90. */
  hostname?: string
}

/** Nova's utils.sanitize_hostname: what a guest's hostname is made of its display name. */
export function sanitizeHostname(name: string): string {
  let h = [...name].filter((c) => c.codePointAt(0)! <= 0xff).join('')
  h = h.slice(0, 63)
  h = h.replace(/[ _.]/g, '-')
  h = h.replace(/[^\p{L}\p{N}_.-]+/gu, '')
  h = h.toLowerCase()
  return h.replace(/^[.-]+|[.-]+$/g, '')
}

export class ServerService {
  readonly #d: ServerServiceDeps

  constructor(deps: ServerServiceDeps) {
    this.#d = deps
  }

  /** The server as the caller may see it: another project's server is 404, not 403. */
  get(ctx: AuthContext, id: string): Promise<Server> {
    return this.#d.actions.get(ctx, id)
  }

  async show(ctx: AuthContext, id: string): Promise<Server> {
    const s = await this.get(ctx, id)
    authorize(ctx, 'os_compute_api:servers:show', 'reader')
    return s
  }

  /** What GET /servers/{id} shows: the server as `show` gives it, with its addresses and latest fault (one read). */
  async showDetail(ctx: AuthContext, id: string): Promise<{ server: Server; ips: FixedIp[]; fault: LatestFault | undefined }> {
    const shown = await this.#d.repo.getShown(id)
    // As `get`: another project's server is 404, not 403; then the policy, as `show`.
    if (!shown || (shown.server.project_id !== ctx.projectId && !ctx.isAdmin)) throw new InstanceNotFound(id)
    authorize(ctx, 'os_compute_api:servers:show', 'reader')
    return shown
  }

  /** A server deleted or not, unchecked: for callers that decided already who may see it. */
  getIncludingDeleted(id: string): Promise<Server | undefined> {
    return this.#d.repo.getAny(id)
  }

  /** The addresses of servers the caller was given. */
  fixedIps(serverIds: string[]): Promise<Map<string, FixedIp[]>> {
    return this.#d.repo.fixedIps(serverIds)
  }

  /** The latest fault of servers the caller was given. */
  latestFaults(serverIds: string[]): Promise<Map<string, LatestFault>> {
    return this.#d.repo.latestFaults(serverIds)
  }

  /** What the views at the caller's microversion show beyond the rows (views.ts extrasWanted). */
  async extras(servers: Pick<Server, 'id' | 'flavor_id' | 'host'>[], wanted: ExtrasWanted): Promise<Map<string, ServerExtras>> {
    const ids = servers.map((s) => s.id)
    const [tags, groups, userData, hosts, flavors, volumes] = await Promise.all([
      wanted.tags ? this.#d.details.tags(ids) : undefined,
      wanted.groups ? this.#d.details.groups(ids) : undefined,
      wanted.userData ? this.#d.details.userData(ids) : undefined,
      wanted.hostStatus ? this.#d.hosts.list() : undefined,
      wanted.flavor
        ? Promise.all([...new Set(servers.map((s) => s.flavor_id))].map((id) => this.#d.flavors.getIncludingDeleted(id)))
        : undefined,
      wanted.volumes ? this.#d.details.volumes(ids) : undefined,
    ])
    const up = new Map(hosts?.map((h) => [h.name, h.up]))
    const out = new Map<string, ServerExtras>()
    for (const s of servers) {
      out.set(s.id, {
        tags: tags?.get(s.id) ?? [],
        groupId: groups?.get(s.id),
        userData: userData?.get(s.id) ?? null,
        // Nova: '' without a host, UP or DOWN by its service (UNKNOWN when it cannot tell).
        hostStatus: hosts ? (s.host === null ? '' : up.get(s.host) ? 'UP' : up.has(s.host) ? 'DOWN' : 'UNKNOWN') : undefined,
        flavor: flavors?.find((f) => f?.id === s.flavor_id),
        volumes: volumes?.get(s.id) ?? [],
      })
    }
    return out
  }

  /** Where a server the caller was given is reached by SSH (recorded by its agent). */
  access(serverId: string): Promise<ServerAccess | undefined> {
    return this.#d.repo.access(serverId)
  }

  /** What a project's servers take of its quotas. */
  usage(projectId: string): Promise<Usage> {
    return this.#d.repo.usage(projectId)
  }

  async list(ctx: AuthContext, q: ListQuery): Promise<Server[]> {
    return (await this.#list(ctx, q, false)) as Server[]
  }

  /**
   * The servers `list` gives, as ServerRefs (whole rows where a filter applied here needed
   * them): what finds each one's view built before (views are memoized by the API).
   */
  listRefs(ctx: AuthContext, q: ListQuery): Promise<ServerRef[]> {
    return this.#list(ctx, q, true)
  }

  /** The ServerRef of the server GET /servers/{id} shows, checked as showDetail checks it. */
  async showRef(ctx: AuthContext, id: string): Promise<ServerRef> {
    const ref = await this.#d.repo.ref(id)
    if (!ref || (ref.project_id !== ctx.projectId && !ctx.isAdmin)) throw new InstanceNotFound(id)
    authorize(ctx, 'os_compute_api:servers:show', 'reader')
    return ref
  }

  /**
   * showRef's answer when it needs no read and no refusal: the ref kept in memory of a server the
   * caller may see; undefined otherwise (showRef then reads, or refuses).
   */
  keptShowRef(ctx: AuthContext, id: string): ServerRef | undefined {
    const ref = this.#d.repo.keptRef(id)
    if (!ref || (ref.project_id !== ctx.projectId && !ctx.isAdmin) || !hasRole(ctx, 'reader')) return undefined
    return ref
  }

  /** Servers the caller was given (by listRefs), deleted or not, in no particular order. */
  byIds(ids: string[]): Promise<Server[]> {
    return this.#d.repo.byIds(ids)
  }

  async #list(ctx: AuthContext, q: ListQuery, refs: boolean): Promise<ServerRef[]> {
    authorize(ctx, q.detail ? 'os_compute_api:servers:detail' : 'os_compute_api:servers:index', 'reader')
    const f: ServerFilter = {
      projectId: q.allTenants && ctx.isAdmin ? q.projectId || undefined : (ctx.projectId ?? ''),
      changesSince: q.changesSince || undefined,
      changesBefore: q.changesBefore || undefined,
      locked: q.locked,
      userId: q.userId,
      tags: q.tags,
      tagsAny: q.tagsAny,
      notTags: q.notTags,
      notTagsAny: q.notTagsAny,
    }
    if (q.host !== undefined || q.node !== undefined) {
      // Each node is its host's only one: both given must name the same.
      if (q.host !== undefined && q.node !== undefined && q.host !== q.node) return []
      f.host = q.host ?? q.node
    }
    if (q.powerState !== undefined) {
      // Nova matches the number; anything else matches no server.
      if (!/^\d+$/.test(q.powerState)) return []
      f.powerState = Number(q.powerState)
    }
    if (q.status) {
      const vm = new Set<VmState>(),
        tasks = new Set<TaskState>()
      let anyTask = false
      for (const st of q.status) {
        const m = statesForStatus(st)
        if (!m) continue
        m.vmStates.forEach((v) => vm.add(v))
        if (m.taskStates === 'any') anyTask = true
        else m.taskStates.forEach((t) => tasks.add(t))
      }
      if (vm.size === 0) {
        if (q.unknownStatusRefused) throw new BadRequest('Invalid status value')
        return []
      }
      f.vmStates = [...vm]
      if (!anyTask && tasks.size) f.taskStates = [...tasks].filter((t) => t !== null)
    }
    if (q.image) f.imageId = lastSegment(q.image)
    if (q.flavor) f.flavorId = lastSegment(q.flavor)
    if (q.reservationId) f.reservationId = q.reservationId
    // vm_state / task_state as given (exact), on top of the status filter.
    if (q.vmState) f.vmStates = f.vmStates ? f.vmStates.filter((x) => q.vmState!.includes(x)) : (q.vmState as VmState[])
    if (q.taskState)
      f.taskStates = f.taskStates ? f.taskStates.filter((x) => q.taskState!.includes(String(x))) : (q.taskState as TaskState[])
    if (f.vmStates?.length === 0 || f.taskStates?.length === 0) return []
    if (q.deleted !== undefined) f.deleted = q.deleted
    if (q.uuid !== undefined) f.id = q.uuid
    // Nova: vm_state=deleted lists deleted servers, for admins only.
    if (q.vmState?.length === 1 && q.vmState[0] === 'deleted') {
      if (!ctx.isAdmin) throw new Forbidden('Only administrators may list deleted instances')
      f.deleted = true
    }
    const sort = processSort(q.sortKeys ?? ['created_at'], q.sortDirs ?? ['desc'], ctx.isAdmin)
    // The regular-expression filters (Nova's REGEXP on the column).
    const regex: [string | undefined, (r: Server) => string | null][] = [
      [q.name, (r) => r.name],
      [q.keyName, (r) => r.key_name],
      [q.availabilityZone, (r) => r.availability_zone],
      [q.configDrive, (r) => r.config_drive],
      [q.hostname, (r) => r.hostname],
      ...Object.entries(q.regex ?? {}).map(
        ([column, pattern]) => [pattern, REGEX_COLUMNS[column]!] as [string, (r: Server) => string | null],
      ),
    ]
    const regexFilters = regex.filter(([p]) => p !== undefined) as [string, (r: Server) => string | null][]
    const defaultSort = isDefaultSort(sort)
    if (regexFilters.length === 0 && q.ip === undefined && q.ip6 === undefined && defaultSort) {
      // Every filter is SQL: the page is read by keyset from the marker.
      const page = await (refs
        ? this.#d.repo.list(f, { marker: q.marker, limit: q.limit }, true)
        : this.#d.repo.list(f, { marker: q.marker, limit: q.limit }))
      if (!page) throw new BadRequest(`marker [${q.marker}] not found`)
      return page
    }
    // Name, IP, the other regular-expression filters and any other sort are applied here.
    let rows = (await this.#d.repo.list(f)) ?? []
    for (const [pattern, column] of regexFilters) {
      const re = safeRegex(pattern)
      rows = rows.filter((r) => {
        const value = column(r)
        return value !== null && re.test(value)
      })
    }
    if (q.ip !== undefined || q.ip6 !== undefined) {
      // Nova with Neutron asks for the ports whose address holds the text (ip_address_substr), for
      // `ip` and `ip6` alike, and lists the servers of either answer; as before Skiff matches the
      // text as a regular expression (the same for an address or part of one).
      const patterns = [q.ip, q.ip6].filter((p) => p !== undefined).map((p) => safeRegex(p))
      const ips = await this.#d.repo.fixedIps(rows.map((r) => r.id))
      rows = rows.filter((r) => (ips.get(r.id) ?? []).some((a) => patterns.some((re) => re.test(a.address))))
    }
    if (!defaultSort) rows = sortServers(rows, sort)
    if (q.marker !== undefined) {
      const i = rows.findIndex((r) => r.id === q.marker)
      if (i < 0) throw new BadRequest(`marker [${q.marker}] not found`)
      rows = rows.slice(i + 1)
    }
    return q.limit !== undefined ? rows.slice(0, q.limit) : rows
  }

  async create(
    ctx: AuthContext,
    req: CreateServer,
    requestId: string,
  ): Promise<{ servers: Server[]; adminPass: string | undefined; reservationId: string }> {
    authorize(ctx, 'os_compute_api:servers:create', 'member')
    const projectId = ctx.projectId
    if (!projectId) throw new Forbidden('A project-scoped token is required.')
    const flavor = await this.#d.flavors.getIncludingDeleted(lastSegment(req.flavorRef))
    if (!flavor || flavor.deleted || !(await this.#d.flavors.visible(flavor, ctx))) throw new BadRequest('Invalid flavorRef provided.')
    // Block devices (boot from volume): checked now, reserved in the create's transaction.
    const plan =
      req.blockDevices?.length && this.#d.bootVolumes
        ? await this.#d.bootVolumes.plan(ctx, req.imageRef ? lastSegment(req.imageRef) : undefined, req.blockDevices, req.maxCount)
        : undefined
    if (!plan && !req.imageRef) throw new BadRequest('Missing imageRef attribute')
    const imageId = plan ? plan.imageId : lastSegment(req.imageRef)
    const image = imageId === undefined ? undefined : await this.#d.images.usableImage(imageId, projectId, ctx.isAdmin)
    if (imageId !== undefined && !image) throw new InvalidImageRef(imageId)
    if (image && image.min_ram > flavor.ram) throw new BadRequest("Flavor's memory is too small for requested image.")
    // A volume-backed server's root is its volume: the flavor's disk does not bound it.
    if (image && image.min_disk > flavor.disk && flavor.disk > 0) throw new BadRequest("Flavor's disk is too small for requested image.")
    const keypair = req.keyName === undefined ? undefined : await this.#d.keypairs.find(ctx.userId, req.keyName)
    if (req.keyName !== undefined && !keypair) throw new BadRequest('Invalid key_name provided.')
    if (req.minCount > req.maxCount) throw new BadRequest('min_count must be <= max_count')
    // 'zone', or 'zone:host[:node]' (the host part is the admins' forced host; its zone is what is checked).
    const zone = req.availabilityZone === undefined ? undefined : req.availabilityZone.split(':')[0]!
    if (zone !== undefined && zone !== DEFAULT_ZONE && !(await this.#d.zones.zones()).has(zone)) {
      throw new BadRequest(`The requested availability zone is not available`)
    }
    const zoneOf = await this.#d.zones.hostZones()
    // Skiff's built-in network has one security group: Nova's SecurityGroupNotFound for others.
    const unknownGroup = (req.securityGroups ?? []).find((g) => g !== 'default')
    if (unknownGroup !== undefined) throw new BadRequest(`Security group ${unknownGroup} not found for project ${projectId}.`)
    await this.#d.quotas.checkMetadata(projectId, ctx.userId, Object.keys(req.metadata ?? {}).length)
    const forcedHost = req.host ?? req.hypervisorHostname
    if (forcedHost !== undefined) {
      authorize(ctx, 'compute:servers:create:requested_destination', 'admin')
      if (req.host !== undefined && req.hypervisorHostname !== undefined && req.host !== req.hypervisorHostname) {
        throw new BadRequest(`Compute host ${req.host} could not be found.`)
      }
      if (!(await this.#d.hosts.list()).some((h) => h.name === forcedHost)) {
        throw new BadRequest(`Compute host ${forcedHost} could not be found.`)
      }
    }
    if (req.hostname !== undefined && req.maxCount > 1) {
      throw new BadRequest('Unable to allocate a single hostname to multiple instances')
    }
    let count = await this.#d.quotas.checkInstances(undefined, projectId, ctx.userId, flavor, req.minCount, req.maxCount)

    const adminPass = req.adminPass ?? (this.#d.enableInstancePassword ? generateInstancePassword() : undefined)
    const reservationId = 'r-' + randomBytes(6).toString('base64url').replace(/[-_]/g, 'x').slice(0, 8).toLowerCase()
    // Hosts with room for the flavor, best first; a group's policy filters them server by server
    // (anti-affinity: never a host a member is on, this request's included; affinity: theirs).
    const demand = { vcpus: flavor.vcpus, ramMb: flavor.ram, diskGb: flavor.disk }
    const candidates = await this.#d.scheduler.candidates(demand)
    const placement = req.group !== undefined ? await this.#d.groups.place(ctx, req.group, count) : undefined
    const taken = [...(placement?.memberHosts ?? [])]
    const hostsToWake = new Set<string>()
    const now = this.#d.repo.now()
    const servers: Server[] = []
    await this.#d.repo.transaction(async (trx) => {
      // Counted again under the project's lock, with the inserts: the last slot is given once.
      count = await this.#d.quotas.checkInstances(trx, projectId, ctx.userId, flavor, req.minCount, count)
      for (let i = 0; i < count; i++) {
        // No room on a live host: the server is recorded in ERROR with Nova's fault, as its scheduler does.
        // No Skiff host verifies image signatures (Nova's COMPUTE_TRUSTED_CERTS trait): a server
        // that asks for trusted certificates finds no valid host, as it would on such a cloud.
        const host = req.trustedCerts?.length
          ? null
          : await this.#d.scheduler.claim(trx, candidates, demand, (h) => {
              if (forcedHost !== undefined && h !== forcedHost) return false
              // Nova's AvailabilityZoneFilter: only the hosts of the zone asked for.
              if (zone !== undefined && (zoneOf.get(h) ?? DEFAULT_ZONE) !== zone) return false
              return placement ? placement.allows(h, taken) : true
            })
        if (host !== null) taken.push(host)
        const id = randomUUID()
        const volumesOverQuota = plan && host !== null ? await this.#d.bootVolumes!.overQuota(trx, projectId, plan) : undefined
        const placeable = host !== null && volumesOverQuota === undefined
        const row: Server = {
          id,
          name: count > 1 ? `${req.name}-${i + 1}` : req.name,
          project_id: projectId,
          user_id: ctx.userId,
          image_id: image?.id ?? null,
          flavor_id: flavor.id,
          key_name: req.keyName ?? null,
          vm_state: placeable ? 'building' : 'error',
          task_state: placeable ? 'scheduling' : null,
          power_state: PowerState.NOSTATE,
          host: placeable ? host : null,
          metadata: JSON.stringify(req.metadata ?? {}),
          access_ipv4: req.accessIPv4 ?? '',
          access_ipv6: canonicalIPv6(req.accessIPv6 ?? ''),
          // The host's zone (Nova sets the instance's zone from its host once scheduled).
          availability_zone: host !== null ? (zoneOf.get(host) ?? DEFAULT_ZONE) : (zone ?? DEFAULT_ZONE),
          config_drive: req.configDrive ? 'True' : '',
          locked: 0,
          locked_by: null,
          locked_reason: null,
          description: req.description === undefined ? req.name : req.description,
          hostname:
            req.hostname ??
            (sanitizeHostname(req.name) === '' ? `Server-${id}` : sanitizeHostname(req.name) + (count > 1 ? `-${i + 1}` : '')),
          trusted_certs: req.trustedCerts?.length ? JSON.stringify(req.trustedCerts) : null,
          launch_index: i,
          launched_at: null,
          terminated_at: null,
          reservation_id: reservationId,
          created_at: now,
          updated_at: now,
          deleted_at: null,
          deleted: 0,
          version: 0,
        }
        await this.#d.repo.insert(row, trx)
        if (keypair || req.userData !== undefined) {
          await this.#d.repo.insertBootData(row.id, { keyData: keypair?.public_key ?? null, userData: req.userData ?? null }, trx)
        }
        if (placement) await this.#d.groups.addMember(placement.groupId, row.id, trx)
        if (plan && volumesOverQuota === undefined) await this.#d.bootVolumes!.reserve(trx, ctx, plan, row.id, host)
        if (req.tags?.length) await this.#d.details.setTags(row.id, [...new Set(req.tags)].sort(), trx)
        if (req.networks !== 'none') await this.#d.repo.allocateFixedIp(row.id, trx)
        await this.#d.actionsRepo.record(
          { server_id: row.id, action: 'create', request_id: requestId, user_id: ctx.userId, project_id: projectId },
          trx,
        )
        if (volumesOverQuota !== undefined) {
          // As Nova's compute host records it when Cinder refuses the volumes over quota.
          const aborted = `Build of instance ${row.id} aborted: ${volumesOverQuota}`
          await this.#d.repo.recordFault(row.id, 500, aborted, '', trx)
          await this.#d.actionsRepo.recordFailedEvent(row.id, requestId, 'compute__do_build_and_run_instance', aborted, trx)
        } else if (host !== null) {
          await this.#d.queue.enqueue(trx, {
            kind: 'server.create',
            subjectId: row.id,
            host,
            payload: { sealed: this.#d.sealer.seal({ adminPass }) },
            requestId,
          })
          hostsToWake.add(host)
        } else {
          const noHost = 'No valid host was found. There are not enough hosts available.'
          await this.#d.repo.recordFault(row.id, 500, noHost, '', trx)
          // As Nova's conductor records it: the create action failed, with its event.
          await this.#d.actionsRepo.recordFailedEvent(row.id, requestId, 'conductor_schedule_and_build_instances', noHost, trx)
        }
        servers.push(row)
      }
    })
    for (const host of hostsToWake) this.#d.queue.notify(host)
    return { servers, adminPass, reservationId }
  }

  async update(
    ctx: AuthContext,
    id: string,
    change: { name?: string; accessIPv4?: string; accessIPv6?: string; description?: string | null; hostname?: string },
  ): Promise<Server> {
    const s = await this.get(ctx, id)
    authorize(ctx, 'os_compute_api:servers:update', 'member')
    const set: Partial<Server> = {}
    if (change.name !== undefined) set.name = change.name
    if (change.accessIPv4 !== undefined) set.access_ipv4 = change.accessIPv4
    if (change.accessIPv6 !== undefined) set.access_ipv6 = canonicalIPv6(change.accessIPv6)
    if (change.description !== undefined) set.description = change.description
    if (change.hostname !== undefined) set.hostname = change.hostname
    // Deleted meanwhile: the answer shows the server as it was read (it is gone at the next read).
    await this.#d.repo.update(s.id, set)
    return (await this.#d.repo.get(s.id)) ?? s
  }

  /** DELETE: allowed in every state (not while locked); the agent destroys and soft-deletes. */
  async delete(ctx: AuthContext, id: string, requestId: string): Promise<void> {
    const s = await this.get(ctx, id)
    authorize(ctx, 'os_compute_api:servers:delete', 'member')
    if (s.locked && !ctx.isAdmin) throw new InstanceIsLocked(s.id)
    if (s.task_state === 'deleting') return
    if (s.vm_state === 'shelved' || s.vm_state === 'shelved_offloaded') await this.#d.shelved?.dropImage(s.id)
    const host = s.host
    if (!host || !(await this.#d.hosts.isUp(host))) return this.#deleteLocally(ctx, s, requestId)
    await this.#d.repo.transaction(async (trx) => {
      const won = await this.#casOnce(
        s,
        'delete',
        (from) => this.#d.repo.cas(s.id, from, { task_state: 'deleting' }, trx),
        async () => this.#d.repo.get(s.id, trx),
      )
      if (!won) return
      await this.#d.actionsRepo.record(
        { server_id: s.id, action: 'delete', request_id: requestId, user_id: ctx.userId, project_id: s.project_id },
        trx,
      )
      await this.#d.queue.enqueue(trx, { kind: 'server.delete', subjectId: s.id, host, payload: {}, requestId })
    })
    this.#d.queue.notify(host)
  }

  /**
   * Nova's "local delete": with no live agent for the server's host, the record is deleted at once
   * (what is left on the host is the agent's to clean up when it comes back).
   */
  async #deleteLocally(ctx: AuthContext, s: Server, requestId: string): Promise<void> {
    await this.#d.repo.transaction(async (trx) => {
      const won = await this.#casOnce(
        s,
        'delete',
        (from) => this.#d.repo.softDelete(s.id, from, trx),
        async () => this.#d.repo.get(s.id, trx),
      )
      if (!won) return
      await this.#d.actionsRepo.record(
        { server_id: s.id, action: 'delete', request_id: requestId, user_id: ctx.userId, project_id: s.project_id },
        trx,
      )
    })
  }

  /**
   * Delete is allowed in every task state: a compare-and-set on the task state seen, and when
   * the server changed under us, once more on the fresh one. False: a delete is already under
   * way (nothing to do); lost twice: 409 with the state it is in.
   */
  async #casOnce(
    s: Server,
    action: string,
    write: (from: { taskStates: TaskState[] }) => Promise<boolean>,
    reread: () => Promise<Server | undefined>,
  ): Promise<boolean> {
    if (await write({ taskStates: [s.task_state] })) return true
    const fresh = await reread()
    if (!fresh) throw new InstanceNotFound(s.id)
    if (fresh.task_state === 'deleting') return false
    if (await write({ taskStates: [fresh.task_state] })) return true
    throw new InstanceInvalidState(s.id, action, 'task_state', fresh.task_state)
  }

  /** forceDelete: deletes at once whatever the state (Nova's force_delete, must_have_launched=False). */
  async forceDelete(ctx: AuthContext, id: string, requestId: string): Promise<void> {
    await this.get(ctx, id)
    authorize(ctx, 'os_compute_api:os-deferred-delete:force', 'member')
    await this.delete(ctx, id, requestId)
  }

  /**
   * restore: brings back a soft-deleted server. Skiff deletes at once (Nova's default
   * reclaim_instance_interval = 0), so no server is ever soft-deleted: the answer is Nova's 409.
   */
  async restore(ctx: AuthContext, id: string): Promise<never> {
    const s = await this.get(ctx, id)
    authorize(ctx, 'os_compute_api:os-deferred-delete:restore', 'member')
    if (s.locked && !ctx.isAdmin) throw new InstanceIsLocked(s.id)
    throw new InstanceInvalidState(s.id, 'restore', 'vm_state', s.vm_state)
  }

  stop(ctx: AuthContext, id: string, requestId: string) {
    return this.#d.actions.start(ctx, id, RULES.stop, {}, requestId)
  }
  start(ctx: AuthContext, id: string, requestId: string) {
    return this.#d.actions.start(ctx, id, RULES.start, {}, requestId)
  }
  pause(ctx: AuthContext, id: string, requestId: string) {
    return this.#d.actions.start(ctx, id, RULES.pause, {}, requestId)
  }
  unpause(ctx: AuthContext, id: string, requestId: string) {
    return this.#d.actions.start(ctx, id, RULES.unpause, {}, requestId)
  }

  reboot(ctx: AuthContext, id: string, type: 'SOFT' | 'HARD', requestId: string) {
    return this.#d.actions.start(ctx, id, type === 'HARD' ? RULES.hardReboot : RULES.softReboot, { type }, requestId)
  }

  async rebuild(ctx: AuthContext, id: string, req: RebuildRequest, requestId: string) {
    const s = await this.#d.actions.check(ctx, id, RULES.rebuild)
    const imageId = lastSegment(req.imageRef)
    const image = await this.#d.images.usableImage(imageId, s.project_id, ctx.isAdmin)
    if (!image) throw new InvalidImageRef(imageId)
    const adminPass = req.adminPass ?? (this.#d.enableInstancePassword ? generateInstancePassword() : undefined)
    const set: Partial<Server> = { image_id: image.id }
    if (req.name !== undefined) set.name = req.name
    if (req.metadata !== undefined) {
      await this.#d.quotas.checkMetadata(s.project_id, undefined, Object.keys(req.metadata).length)
      set.metadata = JSON.stringify(req.metadata)
    }
    if (req.accessIPv4 !== undefined) set.access_ipv4 = req.accessIPv4
    if (req.accessIPv6 !== undefined) set.access_ipv6 = canonicalIPv6(req.accessIPv6)
    if (req.description !== undefined) set.description = req.description
    if (req.hostname !== undefined) set.hostname = req.hostname
    if (req.trusted_image_certificates !== undefined) {
      set.trusted_certs = req.trusted_image_certificates?.length ? JSON.stringify(req.trusted_image_certificates) : null
    }
    // 2.54: a key pair of the caller's, or null for none; the rebuilt guest is given its key.
    let keyData: string | null | undefined
    if (req.key_name !== undefined) {
      const keypair = req.key_name === null ? undefined : await this.#d.keypairs.find(ctx.userId, req.key_name)
      if (req.key_name !== null && !keypair) throw new BadRequest('Invalid key_name provided.')
      set.key_name = req.key_name
      keyData = keypair?.public_key ?? null
    }
    if (keyData !== undefined || req.user_data !== undefined) {
      await this.#d.details.updateBootData(s.id, { keyData, userData: req.user_data })
    }
    await this.#d.actions.begin(
      ctx,
      s,
      RULES.rebuild,
      { previousVmState: s.vm_state, sealed: this.#d.sealer.seal({ adminPass }) },
      requestId,
      set,
    )
    const server = (await this.#d.repo.get(s.id)) ?? s
    const userData = (await this.#d.details.userData([s.id])).get(s.id) ?? null
    return { server, adminPass, userData }
  }

  async lock(ctx: AuthContext, id: string, reason?: string): Promise<void> {
    const s = await this.get(ctx, id)
    authorize(ctx, 'os_compute_api:os-lock-server:lock', 'member')
    await this.#d.repo.update(s.id, {
      locked: 1,
      locked_by: s.locked ? s.locked_by : ctx.isAdmin && ctx.projectId !== s.project_id ? 'admin' : 'owner',
      locked_reason: reason ?? null,
    })
  }

  async unlock(ctx: AuthContext, id: string): Promise<void> {
    const s = await this.get(ctx, id)
    authorize(ctx, 'os_compute_api:os-lock-server:unlock', 'member')
    if (s.locked && s.locked_by === 'admin' && !ctx.isAdmin)
      throw new PolicyNotAuthorized('os_compute_api:os-lock-server:unlock:unlock_override')
    await this.#d.repo.update(s.id, { locked: 0, locked_by: null, locked_reason: null })
  }

  /**
   * os-resetState (admins): the server's vm_state becomes `state` with no task, whatever it was
   * doing, as Nova's admin_actions reset_state; recorded as a 'resetState' action. The work it
   * was waiting for ends too: its queued tasks are dropped, and a task an agent is running finds
   * the server moved on at its final compare-and-set and records nothing (server-worker.ts).
   */
  async resetState(ctx: AuthContext, id: string, state: 'active' | 'error', requestId: string): Promise<void> {
    const s = await this.get(ctx, id)
    authorize(ctx, 'os_compute_api:os-admin-actions:reset_state', 'admin')
    await this.#d.repo.transaction(async (trx) => {
      if (!(await this.#d.repo.resetState(s.id, state, trx))) throw new InstanceNotFound(s.id)
      await this.#d.actionsRepo.record(
        { server_id: s.id, action: 'resetState', request_id: requestId, user_id: ctx.userId, project_id: s.project_id },
        trx,
      )
      // Console output is a call another request waits for: it is not the server's state to reset.
      await this.#d.queue.cancelQueued(trx, s.id, ['server.console'])
    })
  }

  /** GET /servers/{id}/topology: the server, then the policy (Nova's order). */
  async topology(ctx: AuthContext, id: string): Promise<Server> {
    const s = await this.get(ctx, id)
    authorize(ctx, 'compute:server:topology:index', 'reader')
    return s
  }

  /**
   * GET /servers/{id}/diagnostics (admins): the server, on a host (check_instance_host) and
   * running (the compute manager's power-state check), with its flavor and addresses.
   */
  async diagnostics(ctx: AuthContext, id: string): Promise<{ server: Server; extras: ServerExtras | undefined; ips: FixedIp[] }> {
    const s = await this.get(ctx, id)
    authorize(ctx, 'os_compute_api:os-server-diagnostics', 'admin')
    if (!s.host) throw new InstanceNotReady(s.id)
    if (s.power_state !== PowerState.RUNNING) {
      throw new InstanceInvalidState(s.id, 'get_diagnostics', 'power_state', POWER_STATE_NAMES[s.power_state] ?? 'pending')
    }
    const wanted = { flavor: true, tags: false, groups: false, hostStatus: false, userData: false, volumes: false }
    const [extras, ips] = await Promise.all([this.extras([s], wanted), this.fixedIps([s.id])])
    return { server: s, extras: extras.get(s.id), ips: ips.get(s.id) ?? [] }
  }

  /** Console output is read by the API from the agent's driver when both share the process. */
  async checkConsole(ctx: AuthContext, id: string): Promise<Server> {
    const s = await this.get(ctx, id)
    authorize(ctx, 'os_compute_api:os-console-output', 'member')
    if (s.vm_state === 'building' || !s.launched_at) throw new InstanceNotReady(s.id)
    return s
  }
}

/** nova.compute.power_state.STATE_MAP. */
const POWER_STATE_NAMES: Record<number, string> = {
  [PowerState.NOSTATE]: 'pending',
  [PowerState.RUNNING]: 'running',
  [PowerState.PAUSED]: 'paused',
  [PowerState.SHUTDOWN]: 'shutdown',
  [PowerState.CRASHED]: 'crashed',
  [PowerState.SUSPENDED]: 'suspended',
}
