// The API side of suspend, resume, createImage, createBackup, shelve, shelveOffload and unshelve,
// as nova/api/openstack/compute/{suspend_server,servers,create_backup,shelve}.py and
// nova/compute/api.py do them: checks in Nova's order, then ServerActions' one compare-and-set,
// instance action and task. Snapshots, backups and shelves first create their image (queued),
// as Nova's compute_utils.create_image; the agent fills it (worker-shelve.ts).
import { BadRequest, Conflict, Forbidden } from '../errors.ts'
import type { AuthContext } from '../identity/identity-service.ts'
import type { InstanceActionsRepo } from '../store/instance-actions-repo.ts'
import type { ServersRepo } from '../store/servers-repo.ts'
import type { ShelvesRepo } from '../store/shelves-repo.ts'
import type { HostRegistry } from '../tasks/hosts.ts'
import { InstanceInvalidState, InstanceIsLocked, InstanceNotFound } from './errors.ts'
import type { FlavorService } from './flavor-service.ts'
import { authorize } from './policy.ts'
import type { Scheduler } from './scheduler.ts'
import { assertState, RULES, type ActionRule, type ServerActions } from './server-actions.ts'
import type { Server } from './server.ts'
import type { ServerTaskPayloads, ServerTaskQueue } from './server-tasks.ts'

/** An image record as compute needs it (the image service's ImageRow, structurally). */
export interface ImageRecord {
  id: string
  min_disk: number
  min_ram: number
  disk_format: string | null
  container_format: string | null
  properties: string
}

/** What compute asks of the image service for these actions (main.ts wires ImageService). */
export interface ServerImages {
  find(id: string): Promise<ImageRecord | undefined>
  createForServer(spec: {
    name: string
    owner: string | null
    visibility: 'private' | 'shared'
    minDisk: number
    minRam: number
    diskFormat: string | null
    containerFormat: string | null
    properties: Record<string, string>
  }): Promise<ImageRecord>
  deleteForServer(id: string): Promise<void>
}

export interface ShelveServiceDeps {
  actions: ServerActions
  repo: ServersRepo
  actionsRepo: InstanceActionsRepo
  queue: ServerTaskQueue
  scheduler: Scheduler
  hosts: HostRegistry
  flavors: FlavorService
  images: ServerImages
  shelves: ShelvesRepo
  /**
   * The hosts serving the data of a server's attached volumes: an offloaded server unshelves on
   * one of them (a volume's data lives on its host's disk; Cinder's is reachable from any).
   */
  volumeHosts?: (serverId: string) => Promise<string[]>
}

// nova/compute/utils.py NON_INHERITABLE_IMAGE_PROPERTIES and _NAMESPACES, plus what the snapshot sets anew.
const NOT_INHERITED = new Set([
  'cinder_encryption_key_id',
  'cinder_encryption_key_deletion_policy',
  'img_signature',
  'img_signature_hash_method',
  'img_signature_key_type',
  'img_signature_certificate_uuid',
  'bdm_v2',
  'block_device_mapping',
  'image_type',
  'backup_type',
  'instance_uuid',
  'user_id',
  'base_image_ref',
  'instance_owner',
])
const NOT_INHERITED_PREFIXES = ['os_glance', 'trait:']

export interface UnshelveRequest {
  /** 2.77: present (a string; from 2.91 also null, which unpins the server from its zone). */
  availabilityZone?: string | null
  /** 2.91, admins. */
  host?: string
}

/** Below 2.39, Nova's common.check_img_metadata_properties_quota (metadata_items, 128 by default). */
function checkImageMetadataQuota(metadata: Record<string, string>): void {
  if (Object.keys(metadata).length > 128) throw new Forbidden('Image metadata limit exceeded')
}

export class ShelveService {
  readonly #d: ShelveServiceDeps

  constructor(deps: ShelveServiceDeps) {
    this.#d = deps
  }

  suspend(ctx: AuthContext, id: string, requestId: string): Promise<void> {
    return this.#d.actions.start(ctx, id, RULES.suspend, {}, requestId)
  }

  resume(ctx: AuthContext, id: string, requestId: string): Promise<void> {
    return this.#d.actions.start(ctx, id, RULES.resume, {}, requestId)
  }

  /** createImage: the image's id (2.45's body; below, its URL goes in Location). */
  async createImage(
    ctx: AuthContext,
    id: string,
    req: { name: string; metadata?: Record<string, string> },
    requestId: string,
    opts: { checkMetadataQuota?: boolean } = {},
  ): Promise<string> {
    // Nova's order: 404, policy, the metadata quota (below 2.39), then lock and state.
    await this.#d.actions.get(ctx, id)
    authorize(ctx, RULES.createImage.policy, 'member')
    if (opts.checkMetadataQuota) checkImageMetadataQuota(req.metadata ?? {})
    const s = await this.#d.actions.check(ctx, id, RULES.createImage)
    const image = await this.#createImage(ctx, s, req.name.trim(), 'snapshot', req.metadata ?? {})
    await this.#beginOrDrop(ctx, s, RULES.createImage, image.id, { imageId: image.id }, requestId)
    return image.id
  }

  /** createBackup: a backup image of the server; the oldest of its type beyond `rotation` go once it is done. */
  async createBackup(
    ctx: AuthContext,
    id: string,
    req: { name: string; backup_type: string; rotation: number | string; metadata?: Record<string, string> },
    requestId: string,
    opts: { checkMetadataQuota?: boolean } = {},
  ): Promise<string> {
    await this.#d.actions.get(ctx, id)
    authorize(ctx, RULES.createBackup.policy, 'member')
    if (opts.checkMetadataQuota) checkImageMetadataQuota(req.metadata ?? {})
    const s = await this.#d.actions.check(ctx, id, RULES.createBackup)
    const rotation = Number(req.rotation)
    const props = { ...(req.metadata ?? {}), backup_type: req.backup_type }
    const image = await this.#createImage(ctx, s, req.name.trim(), 'backup', props)
    await this.#beginOrDrop(
      ctx,
      s,
      RULES.createBackup,
      image.id,
      { imageId: image.id, backup: { type: req.backup_type, rotation } },
      requestId,
    )
    return image.id
  }

  async shelve(ctx: AuthContext, id: string, requestId: string): Promise<void> {
    const s = await this.#d.actions.check(ctx, id, RULES.shelve)
    // Volume-backed: no image (Nova's shelve goes straight to shelve_offload_instance); the root
    // stays its volume, and unshelve boots it again.
    if (s.image_id === null) {
      const payload = { imageId: null, previousVmState: s.vm_state, previousPowerState: s.power_state }
      return this.#d.actions.begin(ctx, s, RULES.shelve, payload, requestId)
    }
    const image = await this.#createImage(ctx, s, `${s.name}-shelved`, 'snapshot', {})
    await this.#beginOrDrop(
      ctx,
      s,
      RULES.shelve,
      image.id,
      { imageId: image.id, previousVmState: s.vm_state, previousPowerState: s.power_state },
      requestId,
    )
  }

  /** shelveOffload: admins only by Nova's default policy. */
  async shelveOffload(ctx: AuthContext, id: string, requestId: string): Promise<void> {
    const s = await this.#d.actions.get(ctx, id)
    authorize(ctx, RULES.shelveOffload.policy, 'admin')
    if (s.locked && !ctx.isAdmin) throw new InstanceIsLocked(s.id)
    assertState(s, RULES.shelveOffload)
    await this.#d.actions.assertHostUp(s.host)
    await this.#d.actions.begin(ctx, s, RULES.shelveOffload, {}, requestId)
  }

  /** A shelved server is deleted: its shelve image goes too (Nova's _delete); a missing one is no error. */
  async dropImage(serverId: string): Promise<void> {
    const shelf = await this.#d.shelves.get(serverId)
    if (!shelf) return
    await this.#d.images.deleteForServer(shelf.image_id).catch(() => undefined)
    await this.#d.shelves.remove(serverId)
  }

  /** The offload sweep (shelved_offload_time > 0): Skiff itself, through the same path. */
  offloadDue(ctx: AuthContext, id: string, requestId: string): Promise<void> {
    return this.shelveOffload(ctx, id, requestId)
  }

  async unshelve(ctx: AuthContext, id: string, req: UnshelveRequest, requestId: string): Promise<void> {
    const rule = RULES.unshelve
    const s = await this.#d.actions.get(ctx, id)
    authorize(ctx, rule.policy, 'member')
    if (s.locked && !ctx.isAdmin) throw new InstanceIsLocked(s.id)
    assertState(s, rule)
    const azPassed = req.availabilityZone !== undefined
    if ((azPassed || req.host) && s.vm_state !== 'shelved_offloaded') {
      throw new Conflict(
        `Specifying an availability zone or a host when unshelving server "${s.id}" with status "${s.vm_state}" is not supported. The server status must be SHELVED_OFFLOADED.`,
      )
    }
    // Skiff's hosts are all in one zone, Nova's default `nova`.
    if (azPassed && req.availabilityZone && req.availabilityZone !== 'nova')
      throw new BadRequest('The requested availability zone is not available')
    if (req.host) {
      authorize(ctx, 'os_compute_api:os-shelve:unshelve_to_host', 'admin')
      if (!(await this.#d.hosts.list()).some((h) => h.name === req.host))
        throw new BadRequest(`Compute host ${req.host} could not be found.`)
    }
    if (s.vm_state === 'shelved') {
      await this.#d.actions.assertHostUp(s.host)
      return this.#d.actions.begin(ctx, s, rule, { offloaded: false }, requestId)
    }
    await this.#unshelveOffloaded(ctx, s, req.host, requestId)
  }

  /**
   * An offloaded server has no host: one with room for its flavor is claimed, under the host
   * row's lock, in the transaction that sets the task state, and the task goes to it. None: the
   * server stays SHELVED_OFFLOADED with Nova's fault, as its conductor leaves it.
   */
  async #unshelveOffloaded(ctx: AuthContext, s: Server, forcedHost: string | undefined, requestId: string): Promise<void> {
    const d = this.#d
    const rule = RULES.unshelve
    const flavor = await d.flavors.getIncludingDeleted(s.flavor_id)
    const demand = { vcpus: flavor?.vcpus ?? 1, ramMb: flavor?.ram ?? 512, diskGb: flavor?.disk ?? 1 }
    const volumeHosts = (await d.volumeHosts?.(s.id)) ?? []
    const candidates = (await d.scheduler.candidates(demand)).filter(
      (c) => (forcedHost === undefined || c.name === forcedHost) && (volumeHosts.length === 0 || volumeHosts.includes(c.name)),
    )
    const host = await d.repo.transaction(async (trx) => {
      const chosen = await d.scheduler.claim(trx, candidates, demand)
      const ok = await d.repo.cas(
        s.id,
        { vmStates: ['shelved_offloaded'], taskStates: [null] },
        chosen === null ? {} : { task_state: rule.taskState, host: chosen },
        trx,
      )
      if (!ok) {
        const fresh = await d.repo.get(s.id, trx)
        if (!fresh) throw new InstanceNotFound(s.id)
        assertState(fresh, rule)
        throw new InstanceInvalidState(s.id, rule.action, 'task_state', fresh.task_state)
      }
      await d.actionsRepo.record(
        { server_id: s.id, action: rule.action, request_id: requestId, user_id: ctx.userId, project_id: s.project_id },
        trx,
      )
      if (chosen === null) {
        const noHost = 'No valid host was found. There are not enough hosts available.'
        await d.repo.recordFault(s.id, 500, noHost, '', trx)
        await d.actionsRepo.recordFailedEvent(s.id, requestId, 'schedule_instances', noHost, trx)
        return null
      }
      await d.queue.enqueue(trx, { kind: rule.kind, subjectId: s.id, host: chosen, payload: { offloaded: true }, requestId })
      return chosen
    })
    if (host === null) return
    // As Nova's conductor reports them: the shelve image looked up, the host scheduled.
    for (const event of ['get_image_info', 'schedule_instances']) {
      await d.actionsRepo.finishEvent(await d.actionsRepo.startEvent(s.id, requestId, event, null), 'Success')
    }
    d.queue.notify(host)
  }

  /** The compare-and-set; lost (the server moved on meanwhile), the image made for it goes (as Nova's snapshot). */
  async #beginOrDrop<K extends 'server.snapshot' | 'server.shelve'>(
    ctx: AuthContext,
    s: Server,
    rule: ActionRule<K>,
    imageId: string,
    payload: ServerTaskPayloads[K],
    requestId: string,
  ): Promise<void> {
    try {
      await this.#d.actions.begin(ctx, s, rule, payload, requestId)
    } catch (err) {
      await this.#d.images.deleteForServer(imageId).catch(() => undefined)
      throw err
    }
  }

  /** Nova's compute_utils.create_image: the base image's properties inherited, the server's added. */
  async #createImage(
    ctx: AuthContext,
    s: Server,
    name: string,
    type: 'snapshot' | 'backup',
    extra: Record<string, string>,
  ): Promise<ImageRecord> {
    const base = s.image_id ? await this.#d.images.find(s.image_id) : undefined
    const flavor = await this.#d.flavors.getIncludingDeleted(s.flavor_id)
    const inherited = Object.fromEntries(
      Object.entries(base ? (JSON.parse(base.properties) as Record<string, string>) : {}).filter(
        ([k]) => !NOT_INHERITED.has(k) && !NOT_INHERITED_PREFIXES.some((p) => k.startsWith(p)),
      ),
    )
    const sameProject = ctx.projectId === s.project_id
    const properties: Record<string, string> = {
      ...inherited,
      ...(s.image_id ? { base_image_ref: s.image_id } : {}),
      instance_uuid: s.id,
      user_id: ctx.userId,
      image_type: type,
      // An admin's snapshot of another project's server: shared, naming the server's project.
      ...(sameProject ? {} : { instance_owner: s.project_id }),
      ...extra,
    }
    return this.#d.images.createForServer({
      name,
      owner: ctx.projectId,
      visibility: sameProject ? 'private' : 'shared',
      // Nova's system metadata at build: min_disk at least the flavor's root disk.
      minDisk: Math.max(base?.min_disk ?? 0, flavor?.disk ?? 0),
      minRam: base?.min_ram ?? 0,
      // A snapshot's formats are the copy's, set at upload; a backup keeps the base image's.
      diskFormat: type === 'backup' ? (base?.disk_format ?? null) : null,
      containerFormat: type === 'backup' ? (base?.container_format ?? null) : null,
      properties,
    })
  }
}
