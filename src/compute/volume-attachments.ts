// Nova's side of volumes: /servers/{id}/os-volume_attachments (compute/api.py attach_volume,
// detach_volume; api/openstack/compute/volume_attachments.py). Checks in Nova's order (404,
// policy, shelved below 2.20, lock, state, the volume), then one transaction: the volume's status
// by compare-and-set (available → attaching, in-use → detaching), the attachment (Nova's block
// device mapping and Cinder's attachment in one row), the instance action and the task for the
// agent of the server's host (volumes/volume-worker.ts), which plugs the volume in or out. A
// volume served from another host is handed over by that host's agent first (volume.hand_over).
import { randomUUID } from 'node:crypto'
import { BadRequest, NotFound } from '../errors.ts'
import type { AuthContext } from '../identity/identity-service.ts'
import type { InstanceActionsRepo } from '../store/instance-actions-repo.ts'
import type { Tx } from '../store/schema.ts'
import type { VolumesRepo } from '../store/volumes-repo.ts'
import { InvalidVolume } from '../volumes/errors.ts'
import type { VolumeAttachment } from '../volumes/volume.ts'
import type { VolumeService } from '../volumes/volume-service.ts'
import type { VolumeTaskQueue } from '../volumes/volume-tasks.ts'
import { InstanceInvalidState, InstanceIsLocked } from './errors.ts'
import { authorize } from './policy.ts'
import type { Server } from './server.ts'
import type { ServerActions } from './server-actions.ts'
import type { VmState } from './states.ts'

/** compute/api.py: the vm_states attach_volume and detach_volume accept (task_state None; launched). */
const ATTACH_VM_STATES: VmState[] = ['active', 'paused', 'stopped', 'resized', 'soft-delete', 'shelved', 'shelved_offloaded']

/** nova/block_device.py match_device. */
const DEVICE = /^\/dev\/x{0,1}[a-z]{0,1}d{0,1}([a-z]+)[0-9]*$/

export interface AttachRequest {
  volumeId: string
  device?: string | null
  tag?: string
  deleteOnTermination?: boolean
}

export interface VolumeAttachmentDeps {
  actions: ServerActions
  volumes: VolumeService
  repo: VolumesRepo
  actionsRepo: InstanceActionsRepo
  queue: VolumeTaskQueue
}

export class VolumeAttachmentService {
  readonly #d: VolumeAttachmentDeps

  constructor(deps: VolumeAttachmentDeps) {
    this.#d = deps
  }

  /** The server's attachments, oldest first (Nova lists its BDMs with a volume). */
  async list(ctx: AuthContext, serverId: string): Promise<VolumeAttachment[]> {
    const s = await this.#d.actions.get(ctx, serverId)
    authorize(ctx, 'os_compute_api:os-volumes-attachments:index', 'reader')
    return (await this.#d.repo.attachmentsOfServers([s.id])).get(s.id) ?? []
  }

  async show(ctx: AuthContext, serverId: string, volumeId: string): Promise<VolumeAttachment> {
    const s = await this.#d.actions.get(ctx, serverId)
    authorize(ctx, 'os_compute_api:os-volumes-attachments:show', 'reader')
    const a = await this.#d.repo.attachmentOf(s.id, volumeId)
    if (!a) throw new NotFound(`Instance ${serverId} is not attached to volume ${volumeId}`)
    return a
  }

  async attach(
    ctx: AuthContext,
    serverId: string,
    req: AttachRequest,
    opts: { shelvedAllowed: boolean },
    requestId: string,
  ): Promise<VolumeAttachment> {
    const s = await this.#d.actions.get(ctx, serverId)
    authorize(ctx, 'os_compute_api:os-volumes-attachments:create', 'member')
    this.#checkServer(s, ctx, 'attach_volume', opts.shelvedAllowed)
    if (req.device && !DEVICE.test(req.device)) throw new BadRequest(`The supplied device path (${req.device}) is invalid.`)
    const volume = await this.#d.volumes.forServer(ctx, req.volumeId)
    const existing = await this.#d.repo.attachmentsOfVolumes([volume.id])
    const other = existing.get(volume.id)
    // Nova's _check_volume_already_attached: no volume is multiattach, so this message whichever the server.
    if (other) throw new InvalidVolume(`volume ${volume.id} is already attached to instances: ${other.server_id}`)
    const unavailable = () =>
      new InvalidVolume(`Volume status must be available or downloading to reserve, but the status is ${volume.status}.`)
    if (volume.status !== 'available') throw unavailable()
    // An offloaded server has no host: the attachment is only recorded (Nova's _attach_volume_shelved_offloaded).
    const host = s.vm_state === 'shelved_offloaded' ? null : s.host
    if (host) await this.#d.actions.assertHostUp(host)
    // A volume served from another host than the server's: that host's agent hands its data over first.
    const from = host && volume.host && volume.host !== host ? volume.host : null
    if (from) await this.#d.actions.assertHostUp(from)
    const taken = new Set(((await this.#d.repo.attachmentsOfServers([s.id])).get(s.id) ?? []).map((a) => a.device))
    const device = req.device && !taken.has(req.device) && req.device !== '/dev/vda' ? req.device : nextDevice(taken)
    const now = this.#d.repo.now()
    const row: VolumeAttachment = {
      id: randomUUID(),
      bdm_uuid: randomUUID(),
      volume_id: volume.id,
      server_id: s.id,
      device,
      tag: req.tag ?? null,
      delete_on_termination: req.deleteOnTermination ? 1 : 0,
      boot_index: null,
      status: host ? 'attaching' : 'attached',
      attached_at: host ? null : now,
      created_at: now,
    }
    await this.#d.repo.transaction(async (trx) => {
      if (!(await this.#d.repo.cas(volume.id, ['available'], host ? 'attaching' : 'in-use', {}, trx))) throw unavailable()
      await this.#d.repo.insertAttachment(row, trx)
      await this.#d.actionsRepo.record(
        { server_id: s.id, action: 'attach_volume', request_id: requestId, user_id: ctx.userId, project_id: s.project_id },
        trx,
      )
      if (from)
        await this.#d.queue.enqueue(trx, {
          kind: 'volume.hand_over',
          subjectId: volume.id,
          host: from,
          payload: { attachmentId: row.id, to: host! },
          requestId,
        })
      else if (host)
        await this.#d.queue.enqueue(trx, { kind: 'volume.attach', subjectId: s.id, host, payload: { attachmentId: row.id }, requestId })
    })
    if (from ?? host) this.#d.queue.notify((from ?? host)!)
    return row
  }

  async detach(ctx: AuthContext, serverId: string, volumeId: string, opts: { shelvedAllowed: boolean }, requestId: string): Promise<void> {
    const s = await this.#d.actions.get(ctx, serverId)
    authorize(ctx, 'os_compute_api:os-volumes-attachments:delete', 'member')
    this.#checkServer(s, ctx, 'detach_volume', opts.shelvedAllowed)
    const volume = await this.#d.volumes.forServer(ctx, volumeId)
    const a = await this.#d.repo.attachmentOf(s.id, volume.id)
    if (!a) throw new NotFound(`Instance ${serverId} is not attached to volume ${volumeId}`)
    if (a.boot_index === 0) throw new BadRequest('Cannot detach a root device volume')
    const refused = () =>
      new InvalidVolume("Unable to detach volume. Volume status must be 'in-use' and attach_status must be 'attached' to detach.")
    if (volume.status !== 'in-use' || a.status !== 'attached') throw refused()
    const host = s.vm_state === 'shelved_offloaded' ? null : s.host
    if (host) await this.#d.actions.assertHostUp(host)
    await this.#d.repo.transaction(async (trx) => {
      if (!(await this.#d.repo.cas(volume.id, ['in-use'], host ? 'detaching' : 'available', {}, trx))) throw refused()
      if (host) {
        if (!(await this.#d.repo.casAttachment(a.id, 'attached', 'detaching', trx))) throw refused()
      } else await this.#d.repo.removeAttachment(a.id, trx)
      await this.#d.actionsRepo.record(
        { server_id: s.id, action: 'detach_volume', request_id: requestId, user_id: ctx.userId, project_id: s.project_id },
        trx,
      )
      if (host)
        await this.#d.queue.enqueue(trx, { kind: 'volume.detach', subjectId: s.id, host, payload: { attachmentId: a.id }, requestId })
    })
    if (host) this.#d.queue.notify(host)
  }

  /** Nova's check_instance_lock and check_instance_state (task_state None, launched), and the 2.20 rule for shelved servers. */
  #checkServer(s: Server, ctx: AuthContext, action: string, shelvedAllowed: boolean): void {
    if ((s.vm_state === 'shelved' || s.vm_state === 'shelved_offloaded') && !shelvedAllowed)
      throw new InstanceInvalidState(s.id, action, 'vm_state', s.vm_state)
    if (s.locked && !ctx.isAdmin) throw new InstanceIsLocked(s.id)
    if (!ATTACH_VM_STATES.includes(s.vm_state)) throw new InstanceInvalidState(s.id, action, 'vm_state', s.vm_state)
    if (s.task_state !== null) throw new InstanceInvalidState(s.id, action, 'task_state', s.task_state)
    if (!s.launched_at) throw new InstanceInvalidState(s.id, action, 'launched_at', null)
  }
}

/** The next free virtio disk after the root disk (vda): vdb, vdc, ... */
function nextDevice(taken: Set<string>): string {
  for (let i = 1; i < 26; i++) {
    const d = `/dev/vd${String.fromCharCode(97 + i)}`
    if (!taken.has(d)) return d
  }
  for (let i = 0; i < 26 * 26; i++) {
    const d = `/dev/vd${String.fromCharCode(97 + Math.floor(i / 26))}${String.fromCharCode(97 + (i % 26))}`
    if (!taken.has(d)) return d
  }
  throw new BadRequest('The maximum allowed number of disk devices (702) to attach to a single instance has been exceeded.')
}

/** One item of block_device_mapping_v2 (the schema passed it). */
export interface BlockDeviceRequest {
  sourceType?: string
  destinationType?: string
  uuid?: string
  volumeSize?: number | string | null
  deviceName?: string
  deleteOnTermination?: boolean
  bootIndex?: number | null
  tag?: string
}

/** What a server's create makes of its block devices: the volumes it boots from or gets, each with its attachment. */
export interface BootVolumePlan {
  /** The root disk is a volume (no image: the server's view shows `"image": ""`). */
  volumeBacked: boolean
  /** The image the server boots from when it is not volume-backed (`imageRef`, or a local image BDM). */
  imageId: string | undefined
  items: {
    source: 'volume' | 'image' | 'snapshot' | 'blank'
    /** The existing volume (source volume), the image or the snapshot. */
    ref: string | null
    sizeGb: number
    bootIndex: number | null
    deleteOnTermination: boolean
    tag: string | null
  }[]
}

const invalidBdm = (reason: string) => new BadRequest(`Block Device Mapping is Invalid: ${reason}`)

export interface BootVolumesDeps {
  volumes: VolumeService
  repo: VolumesRepo
  images: {
    usableImage(
      id: string,
      projectId: string,
      isAdmin: boolean,
    ): Promise<{ id: string; size: number | string | null; min_disk: number } | undefined>
  }
}

/**
 * Block device mapping v2 at server create (Nova's _validate_bdm and the compute manager's
 * _prep_block_device): the volumes a server boots from or gets at create. Checked before the
 * create's transaction; in it, each existing volume goes available → attaching and each new one
 * is recorded `creating` on the server's host, with its attachment; the server's build task
 * (server-worker.ts, through volume-worker.ts) makes the new volumes, boots, then plugs them in.
 */
export class BootVolumes {
  readonly #d: BootVolumesDeps

  constructor(deps: BootVolumesDeps) {
    this.#d = deps
  }

  async plan(ctx: AuthContext, imageRef: string | undefined, bdms: BlockDeviceRequest[], count: number): Promise<BootVolumePlan> {
    const items: BootVolumePlan['items'] = []
    let imageId = imageRef || undefined
    let volumeBacked = false
    const bootIndexes = new Set<number>()
    for (const b of bdms) {
      const source = (b.sourceType ?? 'volume') as 'volume' | 'image' | 'snapshot' | 'blank'
      const destination = b.destinationType ?? (source === 'volume' || source === 'snapshot' ? 'volume' : 'local')
      const bootIndex = b.bootIndex === undefined || b.bootIndex === null || b.bootIndex < 0 ? null : b.bootIndex
      if (bootIndex !== null) {
        if (bootIndexes.has(bootIndex))
          throw invalidBdm('Boot sequence for the instance and image/block device mapping combination is not valid.')
        bootIndexes.add(bootIndex)
      }
      if (destination === 'local') {
        // The image booted from a local disk is the server's image; other local disks (ephemeral, swap) are not modelled.
        if (source === 'image' && bootIndex === 0) imageId = b.uuid
        else if (source !== 'blank') throw invalidBdm(`Mapping image to local is not supported.`)
        continue
      }
      const size = b.volumeSize === undefined || b.volumeSize === null ? 0 : Number(b.volumeSize)
      let sizeGb = size
      if (source === 'volume') {
        if (!b.uuid) throw invalidBdm('Missing device UUID.')
        if (count > 1) throw new BadRequest('Cannot attach one or more volumes to multiple instances')
        const v = await this.#d.volumes.forServer(ctx, b.uuid).catch(() => {
          throw invalidBdm(`failed to get volume ${b.uuid}.`)
        })
        if (v.status !== 'available')
          throw new InvalidVolume(`Volume status must be available or downloading to reserve, but the status is ${v.status}.`)
        sizeGb = v.size
      } else if (source === 'image') {
        if (!b.uuid) throw invalidBdm('Missing device UUID.')
        const image = await this.#d.images.usableImage(b.uuid, ctx.projectId ?? '', ctx.isAdmin)
        if (!image) throw new BadRequest(`Image ${b.uuid} could not be found.`)
        if (size <= 0) throw invalidBdm("Images with destination_type 'volume' need to have a non-zero size specified")
        if (image.min_disk > size)
          throw new BadRequest(
            `Volume is smaller than the minimum size specified in image metadata. Volume size is ${size * 1024 ** 3} bytes, minimum size is ${image.min_disk * 1024 ** 3} bytes.`,
          )
      } else if (source === 'snapshot') {
        if (!b.uuid) throw invalidBdm('Missing device UUID.')
        const snap = await this.#d.volumes.getSnapshot(ctx, b.uuid).catch(() => {
          throw invalidBdm(`failed to get snapshot ${b.uuid}.`)
        })
        if (snap.status !== 'available') throw invalidBdm(`Snapshot ${b.uuid} is not available.`)
        sizeGb = Math.max(size, snap.size)
      } else if (size <= 0) {
        throw invalidBdm("Blank volumes (source: 'blank', dest: 'volume') need to have non-zero size")
      }
      if (bootIndex === 0) volumeBacked = true
      items.push({
        source,
        ref: source === 'blank' ? null : b.uuid!,
        sizeGb,
        bootIndex,
        // Nova's default: a volume it did not make is kept; one it made is kept too unless asked.
        deleteOnTermination: b.deleteOnTermination ?? false,
        tag: b.tag ?? null,
      })
    }
    if (!volumeBacked && !imageId) throw new BadRequest('Missing imageRef attribute')
    if (volumeBacked) imageId = undefined
    return { volumeBacked, imageId, items }
  }

  /**
   * In the create's transaction, before the server is recorded: why the volumes it would make go
   * over the project's block storage quotas (Cinder's message), or undefined. Nova's compute host
   * then aborts the build (BuildAbortException): the server is in ERROR, no volume is made.
   */
  async overQuota(trx: Tx, projectId: string, plan: BootVolumePlan): Promise<string | undefined> {
    const made = plan.items.filter((i) => i.source !== 'volume')
    if (made.length === 0) return undefined
    return this.#d.volumes.quotaShortfall(trx, projectId, {
      volumes: made.length,
      gigabytes: made.reduce((sum, i) => sum + i.sizeGb, 0),
      largestGb: Math.max(...made.map((i) => i.sizeGb)),
    })
  }

  /** In the create's transaction: the volumes and attachments of one server placed on `host`. */
  async reserve(trx: Tx, ctx: AuthContext, plan: BootVolumePlan, serverId: string, host: string | null): Promise<void> {
    const now = this.#d.repo.now()
    const taken = new Set<string>()
    for (const item of plan.items) {
      let volumeId: string
      if (item.source === 'volume') {
        volumeId = item.ref!
        if (!(await this.#d.repo.cas(volumeId, ['available'], host ? 'attaching' : 'available', {}, trx)))
          throw new InvalidVolume(`Volume status must be available or downloading to reserve, but the status is not available.`)
        if (!host) continue
      } else {
        if (!host) continue
        volumeId = randomUUID()
        await this.#d.repo.insert(
          {
            id: volumeId,
            project_id: ctx.projectId ?? '',
            user_id: ctx.userId,
            name: '',
            description: '',
            size: item.sizeGb,
            status: 'creating',
            availability_zone: 'nova',
            volume_type_id: this.#d.volumes.typeByNameOrId('__DEFAULT__').id,
            snapshot_id: item.source === 'snapshot' ? item.ref : null,
            source_volid: null,
            image_id: item.source === 'image' ? item.ref : null,
            image_metadata: null,
            bootable: item.source === 'image' ? 1 : 0,
            metadata: '{}',
            host,
            created_at: now,
            updated_at: null,
          },
          trx,
        )
      }
      const device = item.bootIndex === 0 ? '/dev/vda' : nextDevice(new Set(['/dev/vda', ...taken]))
      taken.add(device)
      await this.#d.repo.insertAttachment(
        {
          id: randomUUID(),
          bdm_uuid: randomUUID(),
          volume_id: volumeId,
          server_id: serverId,
          device,
          tag: item.tag,
          delete_on_termination: item.deleteOnTermination ? 1 : 0,
          boot_index: item.bootIndex,
          status: 'attaching',
          attached_at: null,
          created_at: now,
        },
        trx,
      )
    }
  }
}
