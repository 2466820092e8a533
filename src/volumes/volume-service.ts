// Block storage, API side (Cinder's volume API): check the request as Cinder does (its order, its
// messages), change the state by compare-and-set, and hand the slow part to the agent of the
// volume's host through the task queue (volume-worker.ts). Quotas are counted from the rows under
// the project's lock, in the transaction that inserts.
import { randomUUID } from 'node:crypto'
import { BadRequest } from '../errors.ts'
import type { AuthContext } from '../identity/identity-service.ts'
import type { HostRegistry } from '../tasks/hosts.ts'
import type { Sort, VolumeFilter, VolumesRepo } from '../store/volumes-repo.ts'
import type { Tx } from '../store/schema.ts'
import {
  InvalidInput,
  InvalidSnapshot,
  InvalidVolume,
  SnapshotMetadataNotFound,
  SnapshotNotFound,
  VolumeNotFound,
  VolumeMetadataNotFound,
  VolumePolicyNotAuthorized,
  VolumeQuotaExceeded,
  VolumeTypeNotFound,
  VolumeTypeNotFoundByName,
} from './errors.ts'
import { editMetadata, hasKey, parseMetadata, withMetadata, type Metadata } from './metadata.ts'
import { authorize, sees } from './policy.ts'
import {
  DEFAULT_VOLUME_TYPE,
  VOLUME_QUOTA_DEFAULTS,
  VOLUME_QUOTA_RESOURCES,
  VOLUME_ZONE,
  type Volume,
  type VolumeAttachment,
  type VolumeQuotaResource,
  type VolumeSnapshot,
  type VolumeStatus,
  type VolumeType,
} from './volume.ts'
import type { VolumeTaskKind, VolumeTaskPayloads, VolumeTaskQueue } from './volume-tasks.ts'

/** What the service needs of images: one the caller may use (active, visible), with its properties. */
export interface VolumeImages {
  usableImage(
    id: string,
    projectId: string,
    isAdmin: boolean,
  ): Promise<
    | {
        id: string
        size: number | string | null
        min_disk: number
        properties: string
        name: string | null
        disk_format: string | null
        container_format: string | null
        checksum: string | null
      }
    | undefined
  >
}

export interface VolumeServiceDeps {
  repo: VolumesRepo
  queue: VolumeTaskQueue
  hosts: HostRegistry
  images: VolumeImages
}

export interface NewVolume {
  size?: number | string | null
  name?: string | null
  description?: string | null
  volumeType?: string | null
  metadata?: Record<string, string> | null
  snapshotId?: string | null
  sourceVolid?: string | null
  imageRef?: string | null
  availabilityZone?: string | null
  multiattach?: boolean | string | null
}

/** A list query as the client sent it (`?a=1&a=2` gives an array). */
export type RawQuery = Record<string, string | string[] | undefined>

export interface Page<T> {
  items: T[]
  /** The marker of the next page, when this one is full. */
  next?: string
}

/** Cinder's osapi_max_limit. */
export const MAX_LIMIT = 1000
const GiB = 1024 ** 3

/** The filters a non-admin may use (cinder's etc/resource_filters.json), besides the paging and sorting keys. */
const VOLUME_FILTERS = new Set([
  'name',
  'status',
  'metadata',
  'bootable',
  'migration_status',
  'availability_zone',
  'group_id',
  'size',
  'created_at',
  'updated_at',
  'consumes_quota',
])
const SNAPSHOT_FILTERS = new Set(['name', 'status', 'volume_id', 'metadata', 'availability_zone', 'consumes_quota'])
const PAGING = new Set([
  'limit',
  'marker',
  'offset',
  'sort',
  'sort_key',
  'sort_dir',
  'with_count',
  'all_tenants',
  'project_id',
  'is_public',
])

/** What a create asks of the quotas; `largestGb`: its largest volume, when it makes several. */
export interface QuotaWant {
  volumes?: number
  gigabytes?: number
  snapshots?: number
  largestGb?: number
}

/** An edit that removes `key`, or throws `missing()` when the metadata has no such key. */
const without =
  (key: string, missing: () => Error) =>
  (m: Metadata): Metadata => {
    if (!hasKey(m, key)) throw missing()
    const { [key]: _, ...rest } = m
    return rest
  }

const one = (v: string | string[] | undefined) => (Array.isArray(v) ? v[v.length - 1] : v)

/** Cinder's bool_from_string for `bootable` and friends. */
const truthy = (v: string) => ['1', 't', 'true', 'on', 'y', 'yes'].includes(v.toLowerCase())

export class VolumeService {
  readonly #d: VolumeServiceDeps

  constructor(deps: VolumeServiceDeps) {
    this.#d = deps
  }

  // ---- volumes ----

  /** The volume as the caller may see it: another project's volume is not found. */
  async get(ctx: AuthContext, id: string): Promise<Volume> {
    const v = await this.#d.repo.get(id)
    if (!v || !sees(ctx, v.project_id)) throw new VolumeNotFound(id)
    authorize(ctx, 'volume:get', 'reader')
    return v
  }

  /** For compute (attach, detach): the volume if the caller's project may use it, unchecked by volume policy. */
  async forServer(ctx: AuthContext, id: string): Promise<Volume> {
    const v = await this.#d.repo.get(id)
    if (!v || !sees(ctx, v.project_id)) throw new VolumeNotFound(id)
    return v
  }

  /** The attachment of each volume (one at most). */
  attachments(volumeIds: string[]): Promise<Map<string, VolumeAttachment>> {
    return this.#d.repo.attachmentsOfVolumes(volumeIds)
  }

  async list(ctx: AuthContext, q: RawQuery): Promise<Page<Volume>> {
    authorize(ctx, 'volume:get_all', 'reader')
    const filters = this.#filters(ctx, q, VOLUME_FILTERS)
    const f: VolumeFilter = { projectId: this.#scope(ctx, q) }
    const name = one(filters.name)
    if (name !== undefined) f.name = name
    const status = one(filters.status)
    if (status !== undefined) f.status = status
    const az = one(filters.availability_zone)
    if (az !== undefined) f.availabilityZone = az
    const bootable = one(filters.bootable)
    if (bootable !== undefined) f.bootable = truthy(bootable)
    const size = one(filters.size)
    if (size !== undefined) {
      if (!/^\d+$/.test(size)) return { items: [] }
      f.size = Number(size)
    }
    let rows = await this.#d.repo.list(f, [])
    rows = withMetadata(rows, one(filters.metadata))
    const migration = one(filters.migration_status)
    if (migration !== undefined) rows = []
    const group = one(filters.group_id)
    if (group !== undefined) rows = []
    return this.#page(rows, q, VOLUME_SORT_KEYS, async (id) => {
      const m = await this.#d.repo.get(id)
      if (!m || !sees(ctx, m.project_id)) throw new VolumeNotFound(id)
      return m
    })
  }

  async create(ctx: AuthContext, input: NewVolume, requestId: string): Promise<Volume> {
    authorize(ctx, 'volume:create', 'member')
    if (input.multiattach === true || input.multiattach === 'true')
      throw new BadRequest(
        'multiattach parameter has been removed. The default behavior is to use multiattach enabled volume types. Contact your administrator to create a multiattach enabled volume type and use it to create multiattach volumes.',
      )
    const type = input.volumeType ? this.typeByNameOrId(input.volumeType) : DEFAULT_VOLUME_TYPE
    const snapshot = input.snapshotId ? await this.#visibleSnapshot(ctx, input.snapshotId) : undefined
    const source = input.sourceVolid ? await this.forServer(ctx, input.sourceVolid) : undefined
    const image = input.imageRef ? await this.#d.images.usableImage(input.imageRef, ctx.projectId ?? '', ctx.isAdmin) : undefined
    if (input.imageRef && !image) throw new BadRequest(`Invalid image identifier or unable to access requested image.`)
    let size: number | string | null | undefined = input.size
    if (size === null || size === undefined) size = snapshot?.size ?? source?.size
    // cinder/volume/api.py: a size must be an integer (or its string) greater than zero.
    if (size !== undefined && size !== null && !(/^\s*[+-]?\d+\s*$/.test(String(size)) && Number(size) > 0))
      throw new InvalidInput(
        `Invalid volume size provided for create request: ${String(size)} (size argument must be an integer (or string representation of an integer) and greater than zero).`,
      )
    if (size === undefined || size === null) throw new InvalidInput(`Volume size 'None' must be an integer and greater than 0`)
    const gb = Number(size)
    if (snapshot) {
      if (snapshot.status !== 'available') throw new InvalidSnapshot("Originating snapshot status must be one of 'available' values")
      if (gb < snapshot.size)
        throw new InvalidInput(
          `Volume size '${gb}'GB cannot be smaller than the snapshot size ${snapshot.size}GB. They must be >= original snapshot size.`,
        )
    }
    if (source) {
      if (!['available', 'in-use'].includes(source.status))
        throw new InvalidVolume("Originating source_volid status must be one of 'available, in-use' values")
      if (gb < source.size)
        throw new InvalidInput(
          `Volume size '${gb}'GB cannot be smaller than original volume size  ${source.size}GB. They must be >= original volume size.`,
        )
    }
    if (image) {
      const imageGb = Math.ceil(Number(image.size ?? 0) / GiB)
      if (imageGb > gb) throw new InvalidInput(`Size of specified image ${imageGb}GB is larger than volume size ${gb}GB.`)
      if (image.min_disk > gb)
        throw new InvalidInput(`Volume size ${gb}GB cannot be smaller than the image minDisk size ${image.min_disk}GB.`)
    }
    const az = input.availabilityZone ?? VOLUME_ZONE
    if (az !== VOLUME_ZONE) throw new BadRequest(`Availability zone '${az}' is invalid.`)
    // A copy is made where its source's data is: the source volume's host, or the snapshot's.
    const snapshotHost = snapshot ? await this.#snapshotHost(snapshot) : null
    const host = await this.#pickHost(source?.host ?? snapshotHost)
    const now = this.#d.repo.now()
    const imageMetadata = image ? volumeImageMetadata(image) : null
    const row: Volume = {
      id: randomUUID(),
      project_id: ctx.projectId ?? '',
      user_id: ctx.userId,
      name: input.name ?? null,
      description: input.description ?? null,
      size: gb,
      // No volume service alive: Cinder's scheduler finds no backend and the volume is in error.
      status: host ? 'creating' : 'error',
      availability_zone: az,
      volume_type_id: type.id,
      snapshot_id: snapshot?.id ?? null,
      source_volid: source?.id ?? null,
      image_id: image?.id ?? null,
      image_metadata: imageMetadata ? JSON.stringify(imageMetadata) : null,
      bootable: image || (source && source.bootable) ? 1 : 0,
      metadata: JSON.stringify(input.metadata ?? {}),
      host,
      created_at: now,
      updated_at: null,
    }
    await this.#d.repo.transaction(async (trx) => {
      await this.#checkQuota(trx, row.project_id, { volumes: 1, gigabytes: gb })
      await this.#d.repo.insert(row, trx)
      if (host) await this.#enqueue(trx, 'volume.create', row.id, host, {}, requestId)
    })
    if (host) this.#d.queue.notify(host)
    return row
  }

  async update(
    ctx: AuthContext,
    id: string,
    change: { name?: string | null; description?: string | null; metadata?: Record<string, string> },
  ): Promise<Volume> {
    const v = await this.#visible(ctx, id)
    authorize(ctx, 'volume:update', 'member')
    const set: { name?: string | null; description?: string | null; metadata?: string } = {}
    if (change.name !== undefined) set.name = change.name
    if (change.description !== undefined) set.description = change.description
    if (change.metadata !== undefined) set.metadata = JSON.stringify(change.metadata)
    await this.#d.repo.update(v.id, set)
    return (await this.#d.repo.get(v.id)) ?? v
  }

  /** Volume metadata: replace all (`PUT .../metadata`) or merge (`POST`); answers the metadata after. */
  async setMetadata(ctx: AuthContext, id: string, metadata: Record<string, string>, replace: boolean): Promise<Record<string, string>> {
    const v = await this.#visible(ctx, id)
    authorize(ctx, 'volume:update_volume_metadata', 'member')
    return editMetadata(
      this.#d.repo.metadataOf('volumes', v.id),
      v.metadata,
      (m) => (replace ? { ...metadata } : { ...m, ...metadata }),
      () => new VolumeNotFound(id),
    )
  }

  async deleteMetadataKey(ctx: AuthContext, id: string, key: string): Promise<void> {
    const v = await this.#visible(ctx, id)
    authorize(ctx, 'volume:delete_volume_metadata', 'member')
    await editMetadata(
      this.#d.repo.metadataOf('volumes', v.id),
      v.metadata,
      without(key, () => new VolumeMetadataNotFound(id, key)),
      () => new VolumeNotFound(id),
    )
  }

  async delete(ctx: AuthContext, id: string, requestId: string): Promise<void> {
    const v = await this.#visible(ctx, id)
    authorize(ctx, 'volume:delete', 'member')
    const from: VolumeStatus[] = ['available', 'error', 'error_extending']
    const refused = () =>
      new InvalidVolume(
        'Volume status must be available or error or error_restoring or error_extending or error_managing and must not be migrating, attached, belong to a group, have snapshots, awaiting a transfer, or be disassociated from snapshots after volume transfer.',
      )
    // A volume no host ever served (created while no agent was alive) has no data to delete; nor
    // can a host that is down delete it: the record goes at once (as Nova's local delete).
    const host = v.host && (await this.#d.hosts.isUp(v.host)) ? v.host : null
    await this.#d.repo.transaction(async (trx) => {
      if ((await this.#d.repo.countSnapshotsOf(v.id, trx)) > 0) throw refused()
      if (!(await this.#d.repo.cas(v.id, from, 'deleting', {}, trx))) throw refused()
      if (host) await this.#enqueue(trx, 'volume.delete', v.id, host, {}, requestId)
      else await this.#d.repo.remove(v.id, trx)
    })
    if (host) this.#d.queue.notify(host)
  }

  /** The legacy `os-reserve` action: available → attaching (Cinder's reserve_volume). */
  async reserve(ctx: AuthContext, id: string): Promise<void> {
    const v = await this.#visible(ctx, id)
    authorize(ctx, 'volume:reserve_volume', 'member')
    if (!(await this.#d.repo.cas(v.id, ['available'], 'attaching')))
      throw new InvalidVolume(
        `Volume status must be available to reserve, but the status is ${(await this.#d.repo.get(v.id))?.status ?? v.status}.`,
      )
  }

  /** `os-unreserve`: attaching → available, for a volume with no attachment. */
  async unreserve(ctx: AuthContext, id: string): Promise<void> {
    const v = await this.#visible(ctx, id)
    authorize(ctx, 'volume:unreserve_volume', 'member')
    if ((await this.#d.repo.attachmentsOfVolumes([v.id])).size === 0) await this.#d.repo.cas(v.id, ['attaching'], 'available')
  }

  /** GET /volumes/summary (3.12; metadata 3.36): count and size of the volumes a list would show. */
  async summary(ctx: AuthContext, q: RawQuery): Promise<{ count: number; size: number; metadata: Record<string, string[]> }> {
    authorize(ctx, 'volume:get_all', 'reader')
    const rows = await this.#d.repo.list({ projectId: this.#scope(ctx, q) }, [])
    const metadata: Record<string, string[]> = {}
    for (const r of rows)
      for (const [k, v] of Object.entries(parseMetadata(r.metadata))) {
        const list = (metadata[k] ??= [])
        if (!list.includes(v)) list.push(v)
      }
    return { count: rows.length, size: rows.reduce((sum, r) => sum + r.size, 0), metadata }
  }

  /** `GET .../metadata/{key}`: the value, or Cinder's 404. */
  async metadataItem(ctx: AuthContext, id: string, key: string): Promise<string> {
    const m = parseMetadata((await this.get(ctx, id)).metadata)
    if (!hasKey(m, key)) throw new VolumeMetadataNotFound(id, key)
    return m[key]!
  }

  async snapshotMetadataItem(ctx: AuthContext, id: string, key: string): Promise<string> {
    const m = parseMetadata((await this.getSnapshot(ctx, id)).metadata)
    if (!hasKey(m, key)) throw new SnapshotMetadataNotFound(id, key)
    return m[key]!
  }

  /** `PUT .../metadata/{key}` with `{"meta": {key: value}}`. */
  async setMetadataItem(ctx: AuthContext, id: string, key: string, meta: Record<string, string>): Promise<Record<string, string>> {
    if (Object.keys(meta).length > 1) throw new BadRequest('Request body contains too many items')
    if (!hasKey(meta, key)) throw new BadRequest('Request body and URI mismatch')
    await this.setMetadata(ctx, id, { [key]: meta[key]! }, false)
    return { [key]: meta[key]! }
  }

  /** The `os-set_bootable` action. */
  async setBootable(ctx: AuthContext, id: string, bootable: boolean): Promise<void> {
    const v = await this.#visible(ctx, id)
    authorize(ctx, 'volume:update', 'member')
    await this.#d.repo.update(v.id, { bootable: bootable ? 1 : 0 })
  }

  /** The `os-reset_status` action (admins): the status named, whatever the volume was doing (the database only). */
  async resetStatus(ctx: AuthContext, id: string, status: string): Promise<void> {
    const v = await this.#visible(ctx, id)
    authorize(ctx, 'volume_extension:volume_admin_actions:reset_status', 'admin')
    const valid: VolumeStatus[] = [
      'creating',
      'available',
      'deleting',
      'error',
      'error_deleting',
      'attaching',
      'in-use',
      'detaching',
      'reserved',
      'error_extending',
      'extending',
    ]
    if (!(valid as string[]).includes(status)) throw new BadRequest('Must specify a valid status')
    await this.#d.repo.cas(v.id, [v.status], status as VolumeStatus)
  }

  /**
   * The `os-extend` action (cinder/api/contrib/volume_actions.py _extend, volume/api.py _extend): an
   * available volume grows; from 3.42 an in-use one too (extend_attached_volume: the compute host
   * grows the disk under the running guest, as Nova does on the volume-extended event). The status
   * goes back to what it was once the volume is bigger.
   */
  async extend(ctx: AuthContext, id: string, newSize: number | string, requestId: string, opts: { inUse?: boolean } = {}): Promise<void> {
    const v = await this.#visible(ctx, id)
    // Cinder picks the call by the status it read: in-use at 3.42+ is the attached extend.
    const attached = opts.inUse === true && v.status === 'in-use'
    // Cinder's rule names (policies/volume_actions.py).
    authorize(ctx, attached ? 'volume_extension:volume_actions:extend_attached_volume' : 'volume_extension:volume_actions:extend', 'member')
    if (!/^\s*\d+\s*$/.test(String(newSize))) throw new InvalidInput(`New size for extend must be specified as an integer.`)
    const size = Number(newSize)
    if (size <= v.size)
      throw new InvalidInput(`New size for extend must be greater than current size. (current: ${v.size}, extended: ${size}).`)
    const host = v.host
    const expected: VolumeStatus = attached ? 'in-use' : 'available'
    await this.#d.repo.transaction(async (trx) => {
      await this.#checkQuota(trx, v.project_id, { gigabytes: size - v.size })
      if (!host || !(await this.#d.repo.cas(v.id, [expected], 'extending', {}, trx))) {
        const fresh = (await this.#d.repo.get(v.id, trx)) ?? v
        throw new InvalidVolume(`Volume ${v.id} status must be '{'status': '${expected}'}' to extend, currently ${fresh.status}.`)
      }
      await this.#enqueue(
        trx,
        'volume.extend',
        v.id,
        host,
        { newSize: size, ...(attached ? { previousStatus: 'in-use' as const } : {}) },
        requestId,
      )
    })
    this.#d.queue.notify(host!)
  }

  // ---- snapshots ----

  async getSnapshot(ctx: AuthContext, id: string): Promise<VolumeSnapshot> {
    const s = await this.#visibleSnapshot(ctx, id)
    authorize(ctx, 'volume:get_snapshot', 'reader')
    return s
  }

  async listSnapshots(ctx: AuthContext, q: RawQuery): Promise<Page<VolumeSnapshot>> {
    authorize(ctx, 'volume:get_all_snapshots', 'reader')
    const filters = this.#filters(ctx, q, SNAPSHOT_FILTERS)
    const f: { projectId?: string; volumeId?: string; name?: string; status?: string } = { projectId: this.#scope(ctx, q) }
    const name = one(filters.name)
    if (name !== undefined) f.name = name
    const status = one(filters.status)
    if (status !== undefined) f.status = status
    const volumeId = one(filters.volume_id)
    if (volumeId !== undefined) f.volumeId = volumeId
    let rows = await this.#d.repo.listSnapshots(f, [])
    rows = withMetadata(rows, one(filters.metadata))
    return this.#page(rows, q, SNAPSHOT_SORT_KEYS, async (id) => this.#visibleSnapshot(ctx, id))
  }

  async createSnapshot(
    ctx: AuthContext,
    input: {
      volumeId: string
      force?: boolean | string | null
      name?: string | null
      description?: string | null
      metadata?: Record<string, string> | null
    },
    requestId: string,
    allowInUse: boolean,
  ): Promise<VolumeSnapshot> {
    const v = await this.forServer(ctx, input.volumeId)
    authorize(ctx, 'volume:create_snapshot', 'member')
    const force = input.force === true || (typeof input.force === 'string' && truthy(input.force))
    if (
      typeof input.force === 'string' &&
      !truthy(input.force) &&
      !['0', 'f', 'false', 'off', 'n', 'no'].includes(input.force.toLowerCase())
    )
      throw new InvalidInput(`Invalid value '${input.force}' for force.`)
    if (!v.host) throw new InvalidVolume('The snapshot cannot be created because volume has not been scheduled to any host.')
    if (v.status === 'error') throw new InvalidVolume('The snapshot cannot be created when the volume is in error status.')
    const valid = force || allowInUse ? ['available', 'in-use'] : ['available']
    if (!valid.includes(v.status))
      throw new InvalidVolume(`Volume ${v.id} status must be ${valid.join(', ')}, but current status is: ${v.status}.`)
    const now = this.#d.repo.now()
    const row: VolumeSnapshot = {
      id: randomUUID(),
      project_id: ctx.projectId ?? v.project_id,
      user_id: ctx.userId,
      volume_id: v.id,
      name: input.name ?? null,
      description: input.description ?? null,
      size: v.size,
      status: 'creating',
      metadata: JSON.stringify(input.metadata ?? {}),
      created_at: now,
      updated_at: null,
      host: v.host,
    }
    const host = v.host
    await this.#d.repo.transaction(async (trx) => {
      await this.#checkQuota(trx, row.project_id, { snapshots: 1, gigabytes: v.size })
      await this.#d.repo.insertSnapshot(row, trx)
      await this.#enqueue(trx, 'volume.snapshot_create', v.id, host, { snapshotId: row.id }, requestId)
    })
    this.#d.queue.notify(host)
    return row
  }

  async updateSnapshot(
    ctx: AuthContext,
    id: string,
    change: { name?: string | null; description?: string | null; metadata?: Record<string, string> },
  ): Promise<VolumeSnapshot> {
    const s = await this.#visibleSnapshot(ctx, id)
    authorize(ctx, 'volume:update_snapshot', 'member')
    const set: { name?: string | null; description?: string | null; metadata?: string } = {}
    if (change.name !== undefined) set.name = change.name
    if (change.description !== undefined) set.description = change.description
    if (change.metadata !== undefined) set.metadata = JSON.stringify(change.metadata)
    await this.#d.repo.updateSnapshot(s.id, set)
    return (await this.#d.repo.getSnapshot(s.id)) ?? s
  }

  /** Snapshot metadata: replace all (PUT) or merge (POST); the metadata after. */
  async setSnapshotMetadata(
    ctx: AuthContext,
    id: string,
    metadata: Record<string, string>,
    replace: boolean,
  ): Promise<Record<string, string>> {
    const s = await this.#visibleSnapshot(ctx, id)
    authorize(ctx, 'volume:update_snapshot_metadata', 'member')
    return editMetadata(
      this.#d.repo.metadataOf('volume_snapshots', s.id),
      s.metadata,
      (m) => (replace ? { ...metadata } : { ...m, ...metadata }),
      () => new SnapshotNotFound(id),
    )
  }

  async deleteSnapshotMetadataKey(ctx: AuthContext, id: string, key: string): Promise<void> {
    const s = await this.#visibleSnapshot(ctx, id)
    authorize(ctx, 'volume:delete_snapshot_metadata', 'member')
    await editMetadata(
      this.#d.repo.metadataOf('volume_snapshots', s.id),
      s.metadata,
      without(key, () => new SnapshotMetadataNotFound(id, key)),
      () => new SnapshotNotFound(id),
    )
  }

  async deleteSnapshot(ctx: AuthContext, id: string, requestId: string): Promise<void> {
    const s = await this.#visibleSnapshot(ctx, id)
    authorize(ctx, 'volume:delete_snapshot', 'member')
    // Where its data is (it stays on the host it was taken on when its volume moves).
    const host = await this.#snapshotHost(s)
    await this.#d.repo.transaction(async (trx) => {
      if (!(await this.#d.repo.casSnapshot(s.id, ['available', 'error'], 'deleting', trx)))
        throw new InvalidSnapshot('Snapshot status must be available or error and must not be part of a group.')
      if (host) await this.#enqueue(trx, 'volume.snapshot_delete', s.volume_id, host, { snapshotId: s.id }, requestId)
    })
    if (host) this.#d.queue.notify(host)
    else await this.#d.repo.removeSnapshot(s.id)
  }

  // ---- volume types ----

  types(ctx: AuthContext): VolumeType[] {
    authorize(ctx, 'volume_extension:type_get_all', 'reader')
    return [DEFAULT_VOLUME_TYPE]
  }

  type(ctx: AuthContext, id: string): VolumeType {
    authorize(ctx, 'volume_extension:type_get', 'reader')
    if (id === 'default' || id === DEFAULT_VOLUME_TYPE.id) return DEFAULT_VOLUME_TYPE
    throw new VolumeTypeNotFound(id)
  }

  /** Cinder's volume_types.get_by_name_or_id. */
  typeByNameOrId(ref: string): VolumeType {
    if (ref === DEFAULT_VOLUME_TYPE.id || ref === DEFAULT_VOLUME_TYPE.name) return DEFAULT_VOLUME_TYPE
    if (/^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i.test(ref)) throw new VolumeTypeNotFound(ref)
    throw new VolumeTypeNotFoundByName(ref)
  }

  // ---- quotas ----

  async quotas(
    ctx: AuthContext,
    projectId: string,
    withUsage: boolean,
  ): Promise<Record<string, number | { limit: number; in_use: number; reserved: number }>> {
    if (!ctx.isAdmin && ctx.projectId !== projectId) throw new VolumePolicyNotAuthorized('volume_extension:quotas:show')
    authorize(ctx, 'volume_extension:quotas:show', 'reader')
    const limits = await this.#limits(projectId)
    if (!withUsage) return limits
    const used = await this.#d.repo.usage(projectId)
    const inUse = (r: string) => (r === 'volumes' || r === 'gigabytes' || r === 'snapshots' ? used[r] : 0)
    return Object.fromEntries(Object.entries(limits).map(([r, limit]) => [r, { limit, in_use: inUse(r), reserved: 0 }]))
  }

  quotaDefaults(ctx: AuthContext): Record<string, number> {
    authorize(ctx, 'volume_extension:quotas:show', 'reader')
    return { ...VOLUME_QUOTA_DEFAULTS }
  }

  async updateQuotas(ctx: AuthContext, projectId: string, change: Record<string, number | string>): Promise<Record<string, number>> {
    authorize(ctx, 'volume_extension:quotas:update', 'admin')
    const parsed: [VolumeQuotaResource, number][] = []
    for (const [k, raw] of Object.entries(change)) {
      // Cinder's NON_QUOTA_KEYS are passed over.
      if (k === 'id' || k === 'tenant_id') continue
      if (!(VOLUME_QUOTA_RESOURCES as string[]).includes(k)) throw new InvalidInput(`Bad key(s) in quota set: ${k}`)
      const n = Number(raw)
      if (!/^-?\d+$/.test(String(raw).trim()) || n < -1)
        throw new InvalidInput(`Quota limit ${String(raw)} for ${k} must be greater than or equal to -1.`)
      parsed.push([k as VolumeQuotaResource, n])
    }
    // Cinder's _validate_existing_resource compares with usage it never reads (get_project_quotas
    // without usages): a limit below what is used is accepted there, and here (new creates are refused).
    for (const [k, n] of parsed) await this.#d.repo.setLimit(projectId, k, n)
    return this.#limits(projectId)
  }

  async resetQuotas(ctx: AuthContext, projectId: string): Promise<void> {
    authorize(ctx, 'volume_extension:quotas:delete', 'admin')
    await this.#d.repo.resetLimits(projectId)
  }

  async #limits(projectId: string, db?: Tx): Promise<Record<string, number>> {
    const set = await this.#d.repo.limits(projectId, db)
    return Object.fromEntries(VOLUME_QUOTA_RESOURCES.map((r) => [r, set.get(r) ?? VOLUME_QUOTA_DEFAULTS[r]]))
  }

  /** Cinder's QUOTAS.reserve and its over-quota messages (quota_utils.process_reserve_over_quota). */
  async #checkQuota(trx: Tx, projectId: string, want: QuotaWant): Promise<void> {
    const message = await this.quotaShortfall(trx, projectId, want)
    if (message !== undefined) throw new VolumeQuotaExceeded(message)
  }

  /**
   * Cinder's message when `want` would go over the project's quotas, else undefined; in `trx`,
   * under the project's lock, so that two creates never both take the last gigabyte.
   */
  async quotaShortfall(trx: Tx, projectId: string, want: QuotaWant): Promise<string | undefined> {
    await this.#d.repo.lockProject(trx, projectId)
    // Read in the transaction: SQLite's one connection is held by it (a read beside it would wait forever).
    const limits = await this.#limits(projectId, trx)
    const used = await this.#d.repo.usage(projectId, trx)
    const perVolume = limits.per_volume_gigabytes!
    const largest = want.largestGb ?? want.gigabytes
    if (want.volumes && largest !== undefined && perVolume !== -1 && largest > perVolume)
      return `Requested volume size ${largest}G is larger than maximum allowed limit ${perVolume}G.`
    const gb = limits.gigabytes!
    if (want.gigabytes !== undefined && gb !== -1 && used.gigabytes + want.gigabytes > gb)
      return `Requested volume or snapshot exceeds allowed gigabytes quota. Requested ${want.gigabytes}G, quota is ${gb}G and ${used.gigabytes}G has been consumed.`
    if (want.volumes && limits.volumes !== -1 && used.volumes + want.volumes > limits.volumes!)
      return `Maximum number of volumes allowed (${limits.volumes}) exceeded for quota 'volumes'.`
    if (want.snapshots && limits.snapshots !== -1 && used.snapshots + want.snapshots > limits.snapshots!)
      return `Maximum number of snapshots allowed (${limits.snapshots}) exceeded`
    return undefined
  }

  // ---- shared ----

  async #visible(ctx: AuthContext, id: string): Promise<Volume> {
    const v = await this.#d.repo.get(id)
    if (!v || !sees(ctx, v.project_id)) throw new VolumeNotFound(id)
    return v
  }

  async #visibleSnapshot(ctx: AuthContext, id: string): Promise<VolumeSnapshot> {
    const s = await this.#d.repo.getSnapshot(id)
    if (!s || !sees(ctx, s.project_id)) throw new SnapshotNotFound(id)
    return s
  }

  /** The project a list covers: the caller's; every project for an admin with all_tenants; another for an admin with project_id. */
  #scope(ctx: AuthContext, q: RawQuery): string | undefined {
    if (!ctx.isAdmin) return ctx.projectId ?? ''
    const project = one(q.project_id)
    if (project !== undefined) return project
    const all = one(q.all_tenants)
    return all !== undefined && truthy(all) ? undefined : (ctx.projectId ?? '')
  }

  /** Cinder's reject_invalid_filters: a non-admin may filter on the resource's listed keys only (all_tenants is ignored). */
  #filters(ctx: AuthContext, q: RawQuery, allowed: Set<string>): RawQuery {
    const filters: RawQuery = {}
    const invalid: string[] = []
    for (const [k, v] of Object.entries(q)) {
      if (v === undefined || PAGING.has(k)) continue
      if (!ctx.isAdmin && !allowed.has(k)) invalid.push(k)
      filters[k] = v
    }
    if (invalid.length) throw new BadRequest(`Invalid filters ${invalid.join(',')} are found in query options.`)
    return filters
  }

  /** Sort (Cinder's `sort=k:dir,...` or `sort_key`/`sort_dir`; created_at then id, desc, by default), marker, limit, offset. */
  async #page<T extends { id: string; created_at: string }>(
    rows: T[],
    q: RawQuery,
    keys: Record<string, (r: T) => string | number | null>,
    marker: (id: string) => Promise<T>,
  ): Promise<Page<T>> {
    const sort = parseSort(q, Object.keys(keys))
    const cmp = (a: T, b: T) => {
      for (const s of sort) {
        const get = keys[s.key]!
        const [x, y] = [get(a), get(b)]
        const c = x === y ? 0 : x === null ? -1 : y === null ? 1 : x < y ? -1 : 1
        if (c !== 0) return s.dir === 'asc' ? c : -c
      }
      return 0
    }
    rows.sort(cmp)
    const rawLimit = one(q.limit)
    let limit = MAX_LIMIT
    if (rawLimit !== undefined) {
      if (!/^\s*[+-]?\d+\s*$/.test(rawLimit)) throw new BadRequest('limit param must be an integer')
      if (Number(rawLimit) < 0) throw new BadRequest('limit param must be positive')
      limit = Math.min(Number(rawLimit), MAX_LIMIT)
    }
    const rawOffset = one(q.offset)
    let offset = 0
    if (rawOffset !== undefined) {
      if (!/^\s*\d+\s*$/.test(rawOffset)) throw new BadRequest(`offset param must be an integer`)
      offset = Number(rawOffset)
    }
    const markerId = one(q.marker)
    if (markerId !== undefined) {
      const m = await marker(markerId)
      rows = rows.filter((r) => cmp(r, m) > 0)
    }
    const items = rows.slice(offset, offset + limit)
    // Cinder's _get_collection_links: a next link whenever the page is full (the next one may be empty).
    const full = items.length === limit && limit > 0
    return full ? { items, next: items[items.length - 1]!.id } : { items }
  }

  /** The host holding a snapshot's data: where it was taken (its volume's host for one older than that record). */
  async #snapshotHost(s: VolumeSnapshot): Promise<string | null> {
    return s.host ?? (await this.#d.repo.get(s.volume_id))?.host ?? null
  }

  /** A host to serve a new volume: its source's (volume or snapshot), else the first live host by name; none alive: null. */
  async #pickHost(preferred: string | null): Promise<string | null> {
    const hosts = await this.#d.hosts.list()
    const up = hosts.filter((h) => h.up && !h.service_disabled)
    if (preferred && up.some((h) => h.name === preferred)) return preferred
    if (up.length === 0) return null
    return up.map((h) => h.name).sort()[0]!
  }

  async #enqueue<K extends VolumeTaskKind>(
    trx: Tx,
    kind: K,
    subjectId: string,
    host: string,
    payload: VolumeTaskPayloads[K],
    requestId: string,
  ): Promise<void> {
    await this.#d.queue.enqueue(trx, { kind, subjectId, host, payload, requestId })
  }
}

const VOLUME_SORT_KEYS: Record<string, (v: Volume) => string | number | null> = {
  id: (v) => v.id,
  name: (v) => v.name,
  display_name: (v) => v.name,
  status: (v) => v.status,
  size: (v) => v.size,
  availability_zone: (v) => v.availability_zone,
  bootable: (v) => v.bootable,
  created_at: (v) => v.created_at,
  updated_at: (v) => v.updated_at,
  volume_type: (v) => v.volume_type_id,
}
const SNAPSHOT_SORT_KEYS: Record<string, (s: VolumeSnapshot) => string | number | null> = {
  id: (s) => s.id,
  name: (s) => s.name,
  display_name: (s) => s.name,
  status: (s) => s.status,
  size: (s) => s.size,
  volume_id: (s) => s.volume_id,
  created_at: (s) => s.created_at,
  updated_at: (s) => s.updated_at,
}

/** cinder/api/common.py get_sort_params, then the default keys created_at and id, desc. */
export function parseSort(q: RawQuery, allowed: string[]): Sort<string> {
  const sortParam = one(q.sort)
  if (sortParam !== undefined && (q.sort_key !== undefined || q.sort_dir !== undefined))
    throw new BadRequest("The 'sort_key' and 'sort_dir' parameters are deprecated and cannot be used with the 'sort' parameter.")
  const keys: string[] = []
  const dirs: string[] = []
  if (sortParam !== undefined) {
    for (const part of sortParam.trim().split(',')) {
      const [k, d] = part.split(':', 2)
      keys.push(k!.trim())
      dirs.push((d ?? 'desc').trim())
    }
  } else {
    const k = one(q.sort_key)
    const d = one(q.sort_dir)
    if (k !== undefined) keys.push(k.trim())
    if (d !== undefined) dirs.push(d.trim())
    if (dirs.length > keys.length) throw new InvalidInput('Sort direction array size exceeds sort key array size.')
    while (dirs.length < keys.length) dirs.push('desc')
  }
  const out: Sort<string> = []
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]!
    const dir = dirs[i]!.toLowerCase()
    if (dir !== 'asc' && dir !== 'desc') throw new InvalidInput("Unknown sort direction, must be 'desc' or 'asc'.")
    if (!allowed.includes(key)) throw new InvalidInput(`Invalid sort key ${key}`)
    out.push({ key, dir })
  }
  const defaultDir = out[0]?.dir ?? 'desc'
  for (const k of ['created_at', 'id']) if (!out.some((s) => s.key === k)) out.push({ key: k, dir: defaultDir })
  return out
}

/** What Cinder copies of an image into volume_image_metadata (its core properties, then the image's own). */
function volumeImageMetadata(image: {
  id: string
  name: string | null
  size: number | string | null
  min_disk: number
  properties: string
  disk_format: string | null
  container_format: string | null
  checksum: string | null
}): Record<string, string> {
  const props = JSON.parse(image.properties || '{}') as Record<string, string>
  const out: Record<string, string> = { ...props, image_id: image.id }
  if (image.name !== null) out.image_name = image.name
  if (image.checksum) out.checksum = image.checksum
  if (image.disk_format) out.disk_format = image.disk_format
  if (image.container_format) out.container_format = image.container_format
  if (image.size !== null) out.size = String(image.size)
  out.min_disk = String(image.min_disk)
  return out
}
