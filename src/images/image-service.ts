// Glance v2 semantics: image records (visibility, JSON-patch updates, protection) and their data
// in an image store (image-store.ts). No HTTP here; errors are the domain errors of src/errors.ts.
import { randomUUID } from 'node:crypto'
import type { Readable } from 'node:stream'
import type { Clock } from '../clock.ts'
import { BadRequest, Conflict, Forbidden, NotFound, OverLimit } from '../errors.ts'
import type { ImagesRepo } from '../store/images-repo.ts'
import type { ImageMemberRow, ImageRow } from '../store/schema.ts'
import { listConditions, listFlags, listOrder, type ListRequest } from './image-list.ts'
import type { ImageData, ImageStore, Written } from './image-store.ts'
import { enforce, visibleTo, type Caller, type ImageTarget } from './policy.ts'

export const VISIBILITIES = ['community', 'public', 'private', 'shared'] as const
export const DISK_FORMATS = ['ami', 'ari', 'aki', 'vhd', 'vhdx', 'vmdk', 'raw', 'qcow2', 'vdi', 'iso', 'ploop'] as const
export const CONTAINER_FORMATS = ['ami', 'ari', 'aki', 'bare', 'ovf', 'ova', 'docker', 'compressed'] as const
export const STATUSES = ['queued', 'saving', 'active', 'killed', 'deleted', 'deactivated', 'uploading', 'importing'] as const
export type Visibility = (typeof VISIBILITIES)[number]
export type DiskFormat = (typeof DISK_FORMATS)[number]
export type ContainerFormat = (typeof CONTAINER_FORMATS)[number]

export type { Caller }

/** An image record, as the image API and compute see it. */
export type Image = ImageRow

export type { ImageData }

export interface PatchOp {
  op: 'add' | 'replace' | 'remove'
  path: string
  value?: unknown
}

export type { ListRequest }

/** An image as the policy rules read it for one caller. */
type SeenImage = ImageTarget & { id: string }

export type ImageMember = ImageMemberRow
export const MEMBERSHIP_STATUSES = ['pending', 'accepted', 'rejected'] as const
/** Glance's image_member_quota default. */
export const MAX_IMAGE_MEMBERS = 128

// glance/api/v2/images.py and glance/domain: what a client may never set, and what Glance keeps for itself.
const READ_ONLY = new Set([
  'id',
  'status',
  'size',
  'virtual_size',
  'checksum',
  'os_hash_algo',
  'os_hash_value',
  'created_at',
  'updated_at',
  'direct_url',
  'self',
  'file',
  'schema',
  'stores',
])
const RESERVED = new Set(['location', 'locations', 'deleted', 'deleted_at'])
const RESERVED_PREFIX = 'os_glance'
// Glance's defaults for image_property_quota and image_tag_quota.
const MAX_PROPERTIES = 128
const MAX_TAGS = 128
const MAX_INT32 = 2 ** 31 - 1
export const DEFAULT_LIMIT = 25
export const MAX_LIMIT = 1000

interface Rule {
  ok: (v: unknown) => boolean
  expected: string
}
const str255: Rule = { ok: (v) => typeof v === 'string' && v.length <= 255, expected: 'a string of at most 255 characters' }
const nullable = (r: Rule): Rule => ({ ok: (v) => v === null || r.ok(v), expected: `${r.expected} or null` })
const oneOf = (values: readonly string[]): Rule => ({
  ok: (v) => typeof v === 'string' && values.includes(v),
  expected: `one of ${values.join(', ')}`,
})
const bool: Rule = { ok: (v) => typeof v === 'boolean', expected: 'a boolean' }
const int32: Rule = {
  ok: (v) => Number.isInteger(v) && (v as number) >= 0 && (v as number) <= MAX_INT32,
  expected: `an integer from 0 to ${MAX_INT32}`,
}
const tagList: Rule = {
  ok: (v) => Array.isArray(v) && v.every((t) => str255.ok(t)),
  expected: 'a list of strings of at most 255 characters',
}

/** The core attributes a client may write, each with the type Glance's image schema gives it. */
export const CORE_FIELDS = {
  name: nullable(str255),
  visibility: oneOf(VISIBILITIES),
  protected: bool,
  os_hidden: bool,
  min_disk: int32,
  min_ram: int32,
  disk_format: nullable(oneOf(DISK_FORMATS)),
  container_format: nullable(oneOf(CONTAINER_FORMATS)),
  tags: tagList,
  owner: nullable(str255),
} satisfies Record<string, Rule>
type CoreField = keyof typeof CORE_FIELDS
const isCore = (k: string): k is CoreField => Object.hasOwn(CORE_FIELDS, k)

// Glance's uuid pattern for a client-chosen id (dashed, any case).
const UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/

/** An image being created or changed, before it is written. */
interface Draft {
  core: Partial<Record<CoreField, unknown>>
  properties: Record<string, string>
}

function invalid(field: string, value: unknown, expected: string): BadRequest {
  return new BadRequest(
    `Provided object does not match schema 'image': ${shown(value)} is not valid for '${field}' (expected ${expected}).`,
  )
}

/** A client's value as JSON, for a message. JSON.stringify recurses: a value nested deeper than the stack allows is named, not printed. */
function shown(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value)
  } catch {
    return 'a value nested too deeply to show'
  }
}

/** 403 for attributes Glance never lets a client write; `id` only at create time. */
function checkWritable(key: string, creating: boolean) {
  if (READ_ONLY.has(key) && !(creating && key === 'id')) throw new Forbidden(`Attribute '${key}' is read-only.`)
  if (RESERVED.has(key) || key.startsWith(RESERVED_PREFIX)) throw new Forbidden(`Attribute '${key}' is reserved.`)
}

function setAttribute(draft: Draft, key: string, value: unknown) {
  if (isCore(key)) {
    const rule: Rule = CORE_FIELDS[key]
    if (!rule.ok(value)) throw invalid(key, value, rule.expected)
    // Glance keeps tags as a set.
    draft.core[key] = key === 'tags' ? [...new Set(value as string[])] : value
    return
  }
  // `__proto__` would not be stored as a property of a plain object; refuse it rather than lose it.
  if (key === '__proto__') throw new BadRequest(`Property name '__proto__' is not allowed.`)
  if (key.length === 0 || key.length > 255)
    throw new BadRequest(`Provided object does not match schema 'image': property names must have 1 to 255 characters.`)
  if (typeof value !== 'string' || value.length > 65535) throw invalid(key, value, 'a string of at most 65535 characters')
  draft.properties[key] = value
}

export class ImageService {
  readonly #repo: ImagesRepo
  readonly #clock: Clock
  readonly #store: ImageStore

  constructor(repo: ImagesRepo, clock: Clock, store: ImageStore) {
    this.#repo = repo
    this.#clock = clock
    this.#store = store
  }

  /** Where the data lives (agents fill their cache from it). */
  get store(): ImageStore {
    return this.#store
  }

  /** POST /v2/images: a `queued` record. `body` is the client's object, core fields and extra properties mixed. */
  async create(caller: Caller, body: Record<string, unknown>): Promise<ImageRow> {
    const draft: Draft = { core: {}, properties: {} }
    let id: string = randomUUID()
    for (const [key, value] of Object.entries(body)) {
      checkWritable(key, true)
      if (key === 'id') {
        if (typeof value !== 'string' || !UUID.test(value)) throw invalid('id', value, 'a uuid')
        id = value
      } else {
        setAttribute(draft, key, value)
      }
    }
    const owner = draft.core.owner === undefined ? caller.projectId : (draft.core.owner as string | null)
    // Glance's default since Rocky: 'shared', visible only to the owner until members are added.
    const visibility = (draft.core.visibility as Visibility | undefined) ?? 'shared'
    enforce(caller, 'add_image', { owner, visibility })
    this.#checkVisibility(caller, { owner, visibility })
    this.#checkQuotas(draft)
    if (await this.#find(id)) throw new Conflict(`Image with identifier ${id} already exists!`)
    const now = this.#clock.now().toISOString()
    const row: ImageRow = {
      id,
      name: (draft.core.name as string | null | undefined) ?? null,
      status: 'queued',
      visibility,
      owner,
      protected: draft.core.protected ? 1 : 0,
      os_hidden: draft.core.os_hidden ? 1 : 0,
      disk_format: (draft.core.disk_format as string | null | undefined) ?? null,
      container_format: (draft.core.container_format as string | null | undefined) ?? null,
      size: null,
      virtual_size: null,
      checksum: null,
      os_hash_algo: null,
      os_hash_value: null,
      min_disk: (draft.core.min_disk as number | undefined) ?? 0,
      min_ram: (draft.core.min_ram as number | undefined) ?? 0,
      tags: JSON.stringify(draft.core.tags ?? []),
      properties: JSON.stringify(draft.properties),
      created_at: now,
      updated_at: now,
    }
    await this.#repo.insert(row)
    return row
  }

  /** GET /v2/images/{id}: images the caller may not see do not exist for it. */
  async get(caller: Caller, id: string): Promise<ImageRow> {
    return (await this.#seen(caller, id)).row
  }

  // ---- image members (glance/api/v2/image_members.py), with the secure-RBAC defaults Skiff
  // enforces: the ownership checks of _check_visibility_and_ownership are the rules' then ----

  /** _lookup_image and _check_visibility_and_ownership: the shared image, else `refused`'s error. */
  async #sharedImage(caller: Caller, id: string, refused: (why: string) => Error): Promise<SeenImage> {
    const { target } = await this.#seen(caller, id, `Image ${id} not found.`)
    if (target.visibility !== 'shared') throw refused('Only shared images have members.')
    return target
  }

  /** MemberAPIPolicy: get_image first (passed: the image was found), then the member rule, Glance's 403. */
  #memberRule(caller: Caller, rule: 'get_members' | 'get_member' | 'add_member' | 'modify_member' | 'delete_member', t: SeenImage) {
    enforce(caller, rule, { owner: t.owner, visibility: t.visibility, member: t.member ?? null })
  }

  /** _lookup_member: the get_member rule, then the member among those the caller may see. */
  async #lookupMember(caller: Caller, t: SeenImage, memberId: string): Promise<ImageMemberRow> {
    this.#memberRule(caller, 'get_member', t)
    const found = caller.isAdmin || t.owner === caller.projectId || memberId === caller.projectId
    const row = found ? await this.#repo.member(t.id, memberId) : undefined
    if (!row) throw new NotFound(`${memberId} not found in the member list of the image ${t.id}.`)
    return row
  }

  /** GET /v2/images/{id}/members: the owner sees every member, a member itself only. */
  async listMembers(caller: Caller, id: string): Promise<ImageMemberRow[]> {
    const t = await this.#sharedImage(caller, id, (why) => new Forbidden(`Not allowed to list members for image ${id}: ${why}`))
    this.#memberRule(caller, 'get_members', t)
    return this.#repo.members(t.id, caller.isAdmin ? undefined : { projectId: caller.projectId, owner: t.owner })
  }

  /** GET /v2/images/{id}/members/{member}: Glance answers each refusal here with a 404. */
  async showMember(caller: Caller, id: string, memberId: string): Promise<ImageMemberRow> {
    try {
      const t = await this.#sharedImage(caller, id, (why) => new NotFound(why))
      return await this.#lookupMember(caller, t, memberId)
    } catch (e) {
      if (e instanceof Forbidden) throw new NotFound(e.message)
      throw e
    }
  }

  /** POST /v2/images/{id}/members: a new member, pending. */
  async addMember(caller: Caller, id: string, memberId: string): Promise<ImageMemberRow> {
    const t = await this.#sharedImage(caller, id, () => new Forbidden(`Not allowed to create members for image ${id}.`))
    this.#memberRule(caller, 'add_member', t)
    const added = await this.#repo.addMember(t.id, memberId, MAX_IMAGE_MEMBERS)
    if (added === 'duplicate') throw new Conflict(`Member ${memberId} is duplicated for image ${id}`)
    if (added === 'full') {
      throw new OverLimit(
        `Image member limit exceeded for image ${id}: The limit has been exceeded on the number of allowed image members for this image. Attempted: ${MAX_IMAGE_MEMBERS + 1}, Maximum: ${MAX_IMAGE_MEMBERS}:`,
      )
    }
    const row = await this.#repo.member(t.id, memberId)
    if (!row) throw new NotFound(`${memberId} not found in the member list of the image ${id}.`)
    return row
  }

  /** PUT /v2/images/{id}/members/{member}: the member (or an admin) accepts or rejects the image. */
  async updateMember(caller: Caller, id: string, memberId: string, status: unknown): Promise<ImageMemberRow> {
    const t = await this.#sharedImage(caller, id, () => new Forbidden(`Not allowed to update members for image ${id}.`))
    await this.#lookupMember(caller, t, memberId)
    this.#memberRule(caller, 'modify_member', t)
    if (typeof status !== 'string' || !(MEMBERSHIP_STATUSES as readonly string[]).includes(status))
      throw new BadRequest('Incorrect request: Status must be "pending", "accepted" or "rejected".')
    const row = await this.#repo.setMemberStatus(t.id, memberId, status as ImageMemberRow['status'])
    if (!row) throw new NotFound(`${memberId} not found in the member list of the image ${id}.`)
    return row
  }

  /** DELETE /v2/images/{id}/members/{member}: the owner (or an admin) takes the share back. */
  async deleteMember(caller: Caller, id: string, memberId: string): Promise<void> {
    const t = await this.#sharedImage(caller, id, () => new Forbidden(`Not allowed to delete members for image ${id}.`))
    await this.#lookupMember(caller, t, memberId)
    this.#memberRule(caller, 'delete_member', t)
    if (!(await this.#repo.removeMember(t.id, memberId))) throw new NotFound(`The specified member ${memberId} could not be found`)
  }

  /** The image and what the policy rules read of it for this caller (its membership), checked by get_image. */
  async #seen(caller: Caller, id: string, notFound = `No image found with ID ${id}`): Promise<{ row: ImageRow; target: SeenImage }> {
    const row = await this.#find(id)
    if (!row) throw new NotFound(notFound)
    const target = await this.#target(caller, row)
    if (!caller.isAdmin && !visibleTo(target, caller)) throw new NotFound(notFound)
    enforce(caller, 'get_image', target)
    return { row, target }
  }

  /** Glance's ImageTarget: a shared image names the caller's project as its member when it is one (any status). */
  async #target(viewer: Pick<Caller, 'projectId'>, row: ImageRow): Promise<SeenImage> {
    let member: string | null = null
    if (row.visibility === 'shared' && viewer.projectId !== null && row.owner !== viewer.projectId) {
      if (await this.#repo.member(row.id, viewer.projectId)) member = viewer.projectId
    }
    return { id: row.id, owner: row.owner, visibility: row.visibility, member }
  }

  /**
   * GET /v2/images: one page in the order asked for (newest first by default), and the marker of
   * the next page when this one is full. Checks in Glance's order: the request (parseListRequest,
   * before this), `os_hidden`/`protected`, policy, the filters, the marker.
   */
  async list(caller: Caller, req: ListRequest): Promise<{ images: ImageRow[]; nextMarker?: string }> {
    const flags = listFlags(req.filters)
    const limit = Math.min(req.limit ?? DEFAULT_LIMIT, MAX_LIMIT)
    enforce(caller, 'get_images', { owner: caller.projectId, visibility: 'private' })
    const { visibility, conditions } = listConditions(req.filters, req.tags, flags)
    let after: ImageRow | undefined
    if (req.marker !== undefined) after = await this.#marker(caller, req.marker)
    const images = await this.#repo.list({
      viewer: { projectId: caller.projectId, isAdmin: caller.isAdmin, memberStatus: req.memberStatus },
      ...(visibility !== undefined ? { visibility } : {}),
      conditions,
      order: listOrder(req.sortKeys, req.sortDirs),
      ...(after ? { after } : {}),
      limit,
    })
    const last = images[images.length - 1]
    return images.length === limit && last ? { images, nextMarker: last.id } : { images }
  }

  /** The marker image, as glance/db/sqlalchemy/api.py `_image_get` finds it, with its errors (a 400, or 403 for an image not visible). */
  async #marker(caller: Caller, id: string): Promise<ImageRow> {
    // Longer than the id column: ImageNotFound() with its message template unformatted, as Glance sends it.
    if ([...id].length > 36) throw new BadRequest('Image with the given id %(image_id)s was not found')
    const row = await this.#find(id)
    if (!row) throw new BadRequest(`No image found with ID ${id}`)
    // glance/db/utils.py is_image_visible: an image without an owner is visible to all.
    const visible = row.owner === null || visibleTo(await this.#target(caller, row), caller)
    if (!visible) throw new Forbidden(`Forbidding request, image ${id} not visible`)
    return row
  }

  /**
   * PATCH /v2/images/{id} with application/openstack-images-v2.1-json-patch operations (or
   * v2.0's, `draft4`: there an `add` of an attribute or property that is there is a 409).
   */
  async update(caller: Caller, id: string, ops: PatchOp[], opts: { draft4?: boolean } = {}): Promise<ImageRow> {
    const { row, target } = await this.#seen(caller, id)
    enforce(caller, 'modify_image', target)
    const draft: Draft = { core: {}, properties: JSON.parse(row.properties) as Record<string, string> }
    for (const op of ops) {
      const key = pointerKey(op.path)
      checkWritable(key, false)
      if (op.op === 'remove') {
        // Glance: core attributes always exist and cannot be removed.
        if (isCore(key)) throw new Forbidden(`Property ${key} may not be removed.`)
        if (!Object.hasOwn(draft.properties, key)) throw new Conflict(`Property ${key} does not exist.`)
        delete draft.properties[key]
        continue
      }
      if (!('value' in op)) {
        throw new BadRequest(
          opts.draft4 ? `Operation "${op.op}" requires a member named "value".` : `Unable to find 'value' in JSON Schema change`,
        )
      }
      // Glance's _do_add with JSON-schema draft 4 (the v2.0 patch type): no add over what is there.
      if (opts.draft4 && op.op === 'add' && (isCore(key) || Object.hasOwn(draft.properties, key)))
        throw new Conflict(`Property ${key} already present.`)
      // 'replace' of an extra property needs it to exist; 'add' overwrites (JSON-patch schema v10).
      if (op.op === 'replace' && !isCore(key) && !Object.hasOwn(draft.properties, key))
        throw new Conflict(`Property ${key} does not exist.`)
      setAttribute(draft, key, op.value)
    }
    const c = draft.core
    if (c.owner !== undefined && c.owner !== row.owner && !caller.isAdmin)
      throw new Forbidden(`You are not permitted to modify 'owner' on this image.`)
    if (c.visibility !== undefined && c.visibility !== row.visibility)
      this.#checkVisibility(caller, { owner: row.owner, visibility: c.visibility as string })
    for (const f of ['disk_format', 'container_format'] as const) {
      if (c[f] !== undefined && c[f] !== row[f] && row.status !== 'queued')
        throw new Forbidden(`Attribute ${f} can be only replaced for a queued image.`)
    }
    this.#checkQuotas(draft)
    const next: ImageRow = {
      ...row,
      ...(c.name !== undefined ? { name: c.name as string | null } : {}),
      ...(c.visibility !== undefined ? { visibility: c.visibility as string } : {}),
      ...(c.owner !== undefined ? { owner: c.owner as string | null } : {}),
      ...(c.protected !== undefined ? { protected: c.protected ? 1 : 0 } : {}),
      ...(c.os_hidden !== undefined ? { os_hidden: c.os_hidden ? 1 : 0 } : {}),
      ...(c.min_disk !== undefined ? { min_disk: c.min_disk as number } : {}),
      ...(c.min_ram !== undefined ? { min_ram: c.min_ram as number } : {}),
      ...(c.disk_format !== undefined ? { disk_format: c.disk_format as string | null } : {}),
      ...(c.container_format !== undefined ? { container_format: c.container_format as string | null } : {}),
      ...(c.tags !== undefined ? { tags: JSON.stringify(c.tags) } : {}),
      properties: JSON.stringify(draft.properties),
      updated_at: this.#clock.now().toISOString(),
    }
    const { id: _id, created_at: _c, ...changes } = next
    // Compare-and-set on what this change was computed from: a concurrent upload or patch wins cleanly.
    if (!(await this.#repo.update(row, changes))) throw new Conflict(`Image ${id} was changed by another request; retry.`)
    return next
  }

  /** DELETE /v2/images/{id}: the record, then the data. */
  async delete(caller: Caller, id: string): Promise<void> {
    const { row, target } = await this.#seen(caller, id)
    enforce(caller, 'delete_image', target)
    if (row.protected) throw new Forbidden(`Image ${id} is protected and cannot be deleted.`)
    if (!(await this.#repo.deleteUnprotected(id))) throw new Forbidden(`Image ${id} is protected and cannot be deleted.`)
    await this.#store.delete(id)
  }

  /** PUT /v2/images/{id}/file: queued → saving → active; back to queued if the data does not all arrive. */
  async upload(caller: Caller, id: string, data: ImageData): Promise<ImageRow> {
    const { row, target } = await this.#seen(caller, id)
    enforce(caller, 'upload_image', target)
    const missing = (['disk_format', 'container_format'] as const).filter((f) => !row[f])
    if (missing.length > 0) {
      throw new BadRequest(`${missing.length === 1 ? 'Property' : 'Properties'} ${missing.join(', ')} must be set prior to saving data.`)
    }
    return this.#storeData(id, data)
  }

  /** GET /v2/images/{id}/file: null when the image has no data yet (Glance answers 204). */
  async download(caller: Caller, id: string): Promise<{ stream: Readable; size: number; checksum: string | null } | null> {
    const { row, target } = await this.#seen(caller, id)
    enforce(caller, 'download_image', target)
    if (row.status === 'deactivated' && !caller.isAdmin)
      throw new Forbidden('The requested image has been deactivated. Image data download is forbidden.')
    if (row.status !== 'active') return null
    // Opened before answering, so missing data is a clean error rather than a cut-off 200.
    const stream = await this.#store.get(id, row.size ?? 0)
    if (!stream) throw new NotFound(`Image data for ${id} not found.`)
    return { stream, size: row.size ?? 0, checksum: row.checksum }
  }

  /** For compute: the image if `projectId` may boot from it and it has data. */
  async usableImage(id: string, projectId: string, isAdmin: boolean): Promise<ImageRow | undefined> {
    const row = await this.#find(id)
    if (!row || row.status !== 'active') return undefined
    return visibleTo(await this.#target({ projectId }, row), { projectId, isAdmin }) ? row : undefined
  }

  /** For compute and drivers: an image whatever its status or owner, unchecked. */
  find(id: string): Promise<ImageRow | undefined> {
    return this.#find(id)
  }

  /**
   * For compute: the image a server's snapshot, backup or shelve fills (Nova's
   * compute_utils.create_image), `queued` until the agent uploads the copy. Unchecked by image
   * policy: the compute API has authorized the action.
   */
  async createForServer(spec: {
    name: string
    owner: string | null
    visibility: 'private' | 'shared'
    minDisk: number
    minRam: number
    diskFormat: string | null
    containerFormat: string | null
    properties: Record<string, string>
  }): Promise<ImageRow> {
    const draft: Draft = { core: {}, properties: {} }
    for (const [key, value] of Object.entries(spec.properties)) {
      // Properties Glance keeps for itself are not inherited from the base image.
      if (READ_ONLY.has(key) || RESERVED.has(key) || key.startsWith(RESERVED_PREFIX) || isCore(key)) continue
      setAttribute(draft, key, value)
    }
    this.#checkQuotas(draft)
    const now = this.#clock.now().toISOString()
    const row: ImageRow = {
      id: randomUUID(),
      name: spec.name,
      status: 'queued',
      visibility: spec.visibility,
      owner: spec.owner,
      protected: 0,
      os_hidden: 0,
      disk_format: spec.diskFormat,
      container_format: spec.containerFormat,
      size: null,
      virtual_size: null,
      checksum: null,
      os_hash_algo: null,
      os_hash_value: null,
      min_disk: spec.minDisk,
      min_ram: spec.minRam,
      tags: '[]',
      properties: JSON.stringify(draft.properties),
      created_at: now,
      updated_at: now,
    }
    await this.#repo.insert(row)
    return row
  }

  /** For the agent: a snapshot's data; a format not set yet is the copy's (Nova's driver sets it at upload). */
  async uploadSnapshot(id: string, format: { diskFormat: string; containerFormat: string }, data: ImageData): Promise<ImageRow> {
    const row = await this.#find(id)
    if (!row) throw new NotFound(`No image found with ID ${id}`)
    if (!row.disk_format || !row.container_format) {
      const changes = {
        disk_format: row.disk_format ?? format.diskFormat,
        container_format: row.container_format ?? format.containerFormat,
      }
      if (!(await this.#repo.update(row, changes))) throw new Conflict(`Image ${id} was changed by another request; retry.`)
    }
    return this.#storeData(id, data)
  }

  /** For the agent: delete an image it made (a failed snapshot, a rotated backup, an unshelved server's); gone is fine. */
  async deleteForServer(id: string): Promise<void> {
    if (!(await this.#find(id))) return
    await this.#repo.deleteUnprotected(id)
    await this.#store.delete(id)
  }

  /** Nova's _rotate_backups query: a server's backups of one type, newest first. */
  async backupsOf(serverId: string, backupType: string): Promise<ImageRow[]> {
    return this.#repo.list({
      viewer: { projectId: null, isAdmin: true, memberStatus: 'all' },
      visibility: 'all',
      conditions: [
        { kind: 'property', name: 'image_type', value: 'backup' },
        { kind: 'property', name: 'backup_type', value: backupType },
        { kind: 'property', name: 'instance_uuid', value: serverId },
      ],
      order: [
        { key: 'created_at', dir: 'desc' },
        { key: 'id', dir: 'desc' },
      ],
      limit: MAX_LIMIT,
    })
  }

  /** For compute: the oldest active image of that name (the default rescue image). */
  async findActiveByName(name: string): Promise<ImageRow | undefined> {
    return this.#repo.byName(name, 'active')
  }

  /** For bootstrap: the oldest image of that name, whatever its status. */
  async findByName(name: string): Promise<ImageRow | undefined> {
    return this.#repo.byName(name)
  }

  /** First-start bootstrap: a public, active image, created once; an image of that name is returned untouched. */
  async ensureImage(spec: {
    id?: string
    name: string
    visibility: 'public'
    diskFormat: DiskFormat
    containerFormat: ContainerFormat
    properties?: Record<string, string>
    content: Buffer
  }): Promise<ImageRow> {
    const existing = await this.#repo.byName(spec.name)
    if (existing) return existing
    const row = await this.create(
      { projectId: null, isAdmin: true, roles: ['admin'] },
      {
        ...spec.properties,
        ...(spec.id !== undefined ? { id: spec.id } : {}),
        name: spec.name,
        visibility: spec.visibility,
        disk_format: spec.diskFormat,
        container_format: spec.containerFormat,
      },
    )
    return this.#storeData(row.id, [spec.content])
  }

  /**
   * At start-up, before serving: uploads cut short by a crash leave `saving` records (and temp
   * files in the file store); put the records back to `queued` (as Glance does after a failed
   * upload) and drop the files. On PostgreSQL the database store's live uploads (of other
   * processes) hold a lock, and keep their `saving`.
   */
  async recoverInterruptedUploads(): Promise<void> {
    await this.#repo.requeueSaving({ skipLocked: this.#store.locksUploads })
    await this.#store.recover()
  }

  async #storeData(id: string, data: ImageData): Promise<ImageRow> {
    if (!(await this.#repo.moveStatus(id, 'queued', 'saving'))) {
      const now = await this.#find(id)
      if (!now) throw new NotFound(`No image found with ID ${id}`)
      throw new Conflict(`Image status transition from ${now.status} to saving is not allowed`)
    }
    let written: Written | null
    try {
      // The record turns active only once the data is whole (with the chunks, in the database store).
      written = await this.#store.put(id, data, (w, db) =>
        (db ? this.#repo.on(db) : this.#repo).moveStatus(id, 'saving', 'active', {
          size: w.size,
          checksum: w.md5,
          os_hash_algo: 'sha512',
          os_hash_value: w.sha512,
        }),
      )
    } catch (e) {
      await this.#repo.moveStatus(id, 'saving', 'queued')
      throw e
    }
    if (!written) {
      // Deleted while the data was arriving: the store kept nothing.
      throw new NotFound(`Image ${id} could not be found after upload. The image may have been deleted during the upload.`)
    }
    const row = await this.#find(id)
    if (!row) throw new NotFound(`No image found with ID ${id}`)
    return row
  }

  // Glance checks the visibility an image is given with a rule of its own (publicize_image: admin only).
  #checkVisibility(caller: Caller, target: ImageTarget) {
    if (target.visibility === 'public') enforce(caller, 'publicize_image', target)
    if (target.visibility === 'community') enforce(caller, 'communitize_image', target)
  }

  #checkQuotas(draft: Draft) {
    if (Object.keys(draft.properties).length > MAX_PROPERTIES)
      throw new OverLimit(`Maximum number of properties exceeded (${MAX_PROPERTIES}).`)
    const tags = draft.core.tags as string[] | undefined
    if (tags && tags.length > MAX_TAGS) throw new OverLimit(`Maximum number of tags exceeded (${MAX_TAGS}).`)
  }

  #find(id: string): Promise<ImageRow | undefined> {
    return this.#repo.get(id)
  }
}

/** `/hw_rescue_device` → `hw_rescue_device` (RFC 6901 escapes); Glance allows one level only. */
function pointerKey(pointer: string): string {
  if (!pointer.startsWith('/')) throw new BadRequest(`Pointer \`${pointer}\` does not start with "/".`)
  const parts = pointer.slice(1).split('/')
  if (parts.length !== 1 || parts[0] === '') throw new BadRequest(`Invalid JSON pointer for this resource: '${pointer}'`)
  const raw = parts[0]!
  if (/~(?![01])/.test(raw)) throw new BadRequest(`Pointer \`${pointer}\` contains "~" not part of a recognized escape sequence.`)
  return raw.replace(/~1/g, '/').replace(/~0/g, '~')
}
