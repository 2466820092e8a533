// Block storage, agent side: the slow part of each volume task, through the host's VolumeDriver,
// finished by a compare-and-set from the transitional status (creating → available, deleting →
// gone, extending → available, attaching → in-use, detaching → available). A failure leaves the
// volume in Cinder's error status for the step (error, error_deleting, error_extending) or, for
// attach and detach, where it was. Handlers re-read the rows: a task run again after its agent
// stopped finds the work done (or not started) and finishes it.
import type { Logger } from 'pino'
import type { VolumeDriver } from '../drivers/driver.ts'
import type { InstanceActionsRepo } from '../store/instance-actions-repo.ts'
import type { VolumesRepo } from '../store/volumes-repo.ts'
import type { Task } from '../tasks/queue.ts'
import type { VolumeTaskPayloads, VolumeTaskQueue } from './volume-tasks.ts'

export interface VolumeWorkerDeps {
  repo: VolumesRepo
  driver: VolumeDriver
  logger: Logger
  /** The next step of an attach across hosts (hand-over, attach, drop of the old copy) goes to another host's agent. */
  queue?: VolumeTaskQueue
  /** The server's instance actions (an attached volume's extend is one, as Nova records it). */
  actions?: InstanceActionsRepo
}

type VolumeTask<K extends keyof VolumeTaskPayloads> = Task<VolumeTaskPayloads, K>

const message = (err: unknown) => (err instanceof Error ? err.message : String(err))

export class VolumeWorker {
  readonly #d: VolumeWorkerDeps

  constructor(deps: VolumeWorkerDeps) {
    this.#d = deps
  }

  handlers() {
    return {
      'volume.create': (t: VolumeTask<'volume.create'>) => this.create(t),
      'volume.delete': (t: VolumeTask<'volume.delete'>) => this.delete(t),
      'volume.extend': (t: VolumeTask<'volume.extend'>) => this.extend(t),
      'volume.snapshot_create': (t: VolumeTask<'volume.snapshot_create'>) => this.createSnapshot(t),
      'volume.snapshot_delete': (t: VolumeTask<'volume.snapshot_delete'>) => this.deleteSnapshot(t),
      'volume.hand_over': (t: VolumeTask<'volume.hand_over'>) => this.handOver(t),
      'volume.attach': (t: VolumeTask<'volume.attach'>) => this.attach(t),
      'volume.drop_copy': (t: VolumeTask<'volume.drop_copy'>) => this.dropCopy(t),
      'volume.detach': (t: VolumeTask<'volume.detach'>) => this.detach(t),
    }
  }

  async create(t: VolumeTask<'volume.create'>): Promise<void> {
    const { repo, driver } = this.#d
    const v = await repo.get(t.subject_id)
    if (!v || v.status !== 'creating') return
    try {
      await driver.createVolume({ id: v.id, sizeGb: v.size, imageId: v.image_id, snapshotId: v.snapshot_id, sourceVolid: v.source_volid })
    } catch (err) {
      this.#d.logger.warn({ volume: v.id, err: message(err) }, 'volume creation failed')
      await repo.cas(v.id, ['creating'], 'error')
      return
    }
    await repo.cas(v.id, ['creating'], 'available')
  }

  async delete(t: VolumeTask<'volume.delete'>): Promise<void> {
    const { repo, driver } = this.#d
    const v = await repo.get(t.subject_id)
    if (!v || v.status !== 'deleting') return
    try {
      await driver.deleteVolume(v.id)
    } catch (err) {
      this.#d.logger.warn({ volume: v.id, err: message(err) }, 'volume deletion failed')
      await repo.cas(v.id, ['deleting'], 'error_deleting')
      return
    }
    await repo.remove(v.id)
  }

  async extend(t: VolumeTask<'volume.extend'>): Promise<void> {
    const { repo, driver } = this.#d
    const v = await repo.get(t.subject_id)
    if (!v || v.status !== 'extending') return
    // An attached volume: Nova's volume-extended event, recorded as the server's `extend_volume`
    // action (compute/api.py external_instance_event) with its `compute_extend_volume` event.
    const server = t.payload.previousStatus === 'in-use' ? (await repo.attachmentsOfVolumes([v.id])).get(v.id)?.server_id : undefined
    const { actions } = this.#d
    let event: string | undefined
    if (server && actions) {
      const action = { server_id: server, action: 'extend_volume', request_id: t.request_id, user_id: v.user_id, project_id: v.project_id }
      await repo.transaction((trx) => actions.record(action, trx))
      event = await actions.startEvent(server, t.request_id, 'compute_extend_volume', t.host)
    }
    try {
      await driver.extendVolume(v.id, t.payload.newSize)
    } catch (err) {
      this.#d.logger.warn({ volume: v.id, err: message(err) }, 'volume extension failed')
      await repo.cas(v.id, ['extending'], 'error_extending')
      await actions?.finishEvent(event, 'Error', message(err))
      return
    }
    await repo.cas(v.id, ['extending'], t.payload.previousStatus ?? 'available', { size: t.payload.newSize })
    await actions?.finishEvent(event, 'Success')
  }

  async createSnapshot(t: VolumeTask<'volume.snapshot_create'>): Promise<void> {
    const { repo, driver } = this.#d
    const s = await repo.getSnapshot(t.payload.snapshotId)
    if (!s || s.status !== 'creating') return
    try {
      await driver.createVolumeSnapshot(s.volume_id, s.id)
    } catch (err) {
      this.#d.logger.warn({ snapshot: s.id, err: message(err) }, 'volume snapshot failed')
      await repo.casSnapshot(s.id, ['creating'], 'error')
      return
    }
    await repo.casSnapshot(s.id, ['creating'], 'available')
  }

  async deleteSnapshot(t: VolumeTask<'volume.snapshot_delete'>): Promise<void> {
    const { repo, driver } = this.#d
    const s = await repo.getSnapshot(t.payload.snapshotId)
    if (!s || s.status !== 'deleting') return
    try {
      await driver.deleteVolumeSnapshot(s.id)
    } catch (err) {
      this.#d.logger.warn({ snapshot: s.id, err: message(err) }, 'volume snapshot deletion failed')
      await repo.casSnapshot(s.id, ['deleting'], 'error_deleting')
      return
    }
    await repo.removeSnapshot(s.id)
  }

  // ---- the volumes of a server's create (block device mapping v2), within its build task ----

  /** Before the first boot: make the volumes the create recorded (`creating`) on this host. */
  async prepareBoot(serverId: string): Promise<void> {
    const { repo, driver } = this.#d
    for (const a of (await repo.attachmentsOfServers([serverId])).get(serverId) ?? []) {
      if (a.status !== 'attaching') continue
      const v = await repo.get(a.volume_id)
      if (v?.status !== 'creating') continue
      await driver.createVolume({ id: v.id, sizeGb: v.size, imageId: v.image_id, snapshotId: v.snapshot_id })
      await repo.cas(v.id, ['creating'], 'attaching')
    }
  }

  /**
   * The volume a server boots from (boot index 0), and the image it was made from (directly, or
   * through the snapshot or volume it was copied from: the image metadata it inherited).
   */
  async bootVolume(serverId: string): Promise<{ id: string; imageId: string | null } | null> {
    const { repo } = this.#d
    const root = ((await repo.attachmentsOfServers([serverId])).get(serverId) ?? []).find((a) => a.boot_index === 0)
    if (!root) return null
    const v = await repo.get(root.volume_id)
    const inherited = v?.image_metadata ? (JSON.parse(v.image_metadata) as { image_id?: string }).image_id : undefined
    return { id: root.volume_id, imageId: v?.image_id ?? inherited ?? null }
  }

  /** After the first boot: plug each volume in; attached and in-use. */
  async attachBoot(serverId: string): Promise<void> {
    const { repo, driver } = this.#d
    for (const a of (await repo.attachmentsOfServers([serverId])).get(serverId) ?? []) {
      if (a.status !== 'attaching') continue
      await driver.attachVolume(serverId, a.volume_id, a.device)
      await repo.transaction(async (trx) => {
        if (await repo.casAttachment(a.id, 'attaching', 'attached', trx)) await repo.cas(a.volume_id, ['attaching'], 'in-use', {}, trx)
      })
    }
  }

  /** The boot failed: the volumes are let go (available), those made for it kept (as Nova without delete_on_termination). */
  async releaseBoot(serverId: string): Promise<void> {
    const { repo } = this.#d
    for (const a of (await repo.attachmentsOfServers([serverId])).get(serverId) ?? []) {
      await repo.transaction(async (trx) => {
        await repo.removeAttachment(a.id, trx)
        await repo.cas(a.volume_id, ['creating', 'attaching', 'in-use'], 'available', {}, trx)
      })
    }
  }

  /**
   * An attach to a server of another host, on the volume's host: a copy of the volume's data for
   * that host's agent (the volume is attaching: nothing else writes it), then the attach there.
   */
  async handOver(t: VolumeTask<'volume.hand_over'>): Promise<void> {
    const { repo, driver, queue } = this.#d
    const a = await repo.getAttachment(t.payload.attachmentId)
    if (!a || a.status !== 'attaching') return
    const handoff: { host: string; path?: string } = { host: t.host }
    try {
      if (!queue) throw new Error('no task queue to hand the volume over with')
      if (driver.handOverVolume) handoff.path = await driver.handOverVolume(a.volume_id)
    } catch (err) {
      this.#d.logger.warn({ volume: a.volume_id, server: a.server_id, err: message(err) }, 'volume hand-over failed')
      await this.#rollBack(a.id, a.volume_id)
      return
    }
    const next = { kind: 'volume.attach' as const, subjectId: a.server_id, host: t.payload.to, requestId: t.request_id }
    await repo.transaction(async (trx) => {
      await queue.enqueue(trx, { ...next, payload: { attachmentId: a.id, handoff } })
    })
    queue.notify(t.payload.to)
  }

  /** As Nova: a failed attach is rolled back, the attachment gone and the volume available again. */
  async #rollBack(attachmentId: string, volumeId: string): Promise<void> {
    const { repo } = this.#d
    await repo.transaction(async (trx) => {
      await repo.removeAttachment(attachmentId, trx)
      await repo.cas(volumeId, ['attaching'], 'available', {}, trx)
    })
  }

  /**
   * Plug the volume in (after taking in its data, when handed over from another host); then the
   * attachment is attached and the volume in-use (and served from here), in one transaction.
   */
  async attach(t: VolumeTask<'volume.attach'>): Promise<void> {
    const { repo, driver, queue } = this.#d
    const a = await repo.getAttachment(t.payload.attachmentId)
    if (!a || a.status !== 'attaching') return
    const handoff = t.payload.handoff
    let taken = false
    try {
      if (handoff?.path) {
        if (!driver.takeVolume) throw new Error('this host cannot take in a volume handed over')
        await driver.takeVolume(a.volume_id, handoff.path)
        taken = true
      }
      await driver.attachVolume(a.server_id, a.volume_id, a.device)
    } catch (err) {
      this.#d.logger.warn({ volume: a.volume_id, server: a.server_id, err: message(err) }, 'volume attach failed')
      // The volume's host still has it all: what came here goes.
      if (taken) await driver.deleteVolume(a.volume_id).catch(() => {})
      await this.#rollBack(a.id, a.volume_id)
      return
    }
    await repo.transaction(async (trx) => {
      if (!(await repo.casAttachment(a.id, 'attaching', 'attached', trx))) return
      await repo.cas(a.volume_id, ['attaching'], 'in-use', handoff ? { host: t.host } : {}, trx)
      if (handoff?.path && queue)
        await queue.enqueue(trx, {
          kind: 'volume.drop_copy',
          subjectId: a.volume_id,
          host: handoff.host,
          payload: {},
          requestId: t.request_id,
        })
    })
    if (handoff?.path) queue?.notify(handoff.host)
  }

  /** On the host a volume left (an attach elsewhere took it): its data here goes, unless the volume is served from here again. */
  async dropCopy(t: VolumeTask<'volume.drop_copy'>): Promise<void> {
    const v = await this.#d.repo.get(t.subject_id)
    if (v?.host === t.host) return
    await this.#d.driver.deleteVolume(t.subject_id)
  }

  /** Unplug the volume; then the attachment goes and the volume is available, in one transaction. */
  async detach(t: VolumeTask<'volume.detach'>): Promise<void> {
    const { repo, driver } = this.#d
    const a = await repo.getAttachment(t.payload.attachmentId)
    if (!a || a.status !== 'detaching') return
    try {
      await driver.detachVolume(a.server_id, a.volume_id)
    } catch (err) {
      this.#d.logger.warn({ volume: a.volume_id, server: a.server_id, err: message(err) }, 'volume detach failed')
      // Still plugged in: the volume stays in-use, attached (the detach may be asked again).
      await repo.transaction(async (trx) => {
        await repo.casAttachment(a.id, 'detaching', 'attached', trx)
        await repo.cas(a.volume_id, ['detaching'], 'in-use', {}, trx)
      })
      return
    }
    await repo.transaction(async (trx) => {
      await repo.removeAttachment(a.id, trx)
      await repo.cas(a.volume_id, ['detaching'], 'available', {}, trx)
    })
  }
}
