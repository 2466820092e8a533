// The agent's side of suspend, resume, snapshot (createImage, createBackup) and shelve, shelve
// offload and unshelve, in Nova's task-state sequences (nova/compute/manager.py) with its event
// names. Each runs through ServerWorker's one path (stale check, event, final compare-and-set,
// fault); a failure leaves the server on its own disk in the state it had, the fault recorded.
import type { DiskSnapshot, ServerSpec } from '../drivers/driver.ts'
import type { ShelvesRepo } from '../store/shelves-repo.ts'
import type { Server } from './server.ts'
import type { ServerTaskPayloads } from './server-tasks.ts'
import type { Step, WorkerDeps } from './server-worker.ts'
import { PowerState, type PowerStateValue, type TaskState, type VmState } from './states.ts'
import type { Task } from '../tasks/queue.ts'

/** What the agent needs of the image service to publish a snapshot. */
export interface SnapshotImages {
  /** The copy becomes the image's data: queued → saving → active, with the copy's disk format. */
  upload(imageId: string, snapshot: DiskSnapshot): Promise<void>
  /** Delete an image (a failed snapshot's, a rotated backup, an unshelved server's); gone already is fine. */
  delete(imageId: string): Promise<void>
  /** The backups of a server of one type (properties instance_uuid, backup_type), newest first. */
  backups(serverId: string, backupType: string): Promise<{ id: string }[]>
}

/** What the worker needs for these operations, besides its own deps. */
export interface ShelveWorkerDeps {
  images: SnapshotImages
  shelves: ShelvesRepo
  /** Nova's shelved_offload_time: 0 offloads at once, -1 never, N seconds later (the offload sweep). */
  shelvedOffloadTime: number
  /** The volumes attached to a server besides its root, in attach order: an unshelve boots with them. */
  attachedVolumes?: (serverId: string) => Promise<string[]>
}

/** The part of ServerWorker these handlers use: its one run path and its compare-and-set step. */
export interface WorkerCore {
  runStep<K extends keyof ServerTaskPayloads>(task: Task<ServerTaskPayloads, K>, step: Step<K>): Promise<void>
  advanceTask(s: Server, from: { vmStates?: VmState[]; taskStates: TaskState[] }, to: Exclude<TaskState, null>): Promise<void>
  specOf(s: Server, imageId?: string): Promise<ServerSpec>
}

type Handler<K extends keyof ServerTaskPayloads> = (t: Task<ServerTaskPayloads, K>) => Promise<void>

export function shelveHandlers(
  w: WorkerCore,
  d: WorkerDeps,
): {
  'server.suspend': Handler<'server.suspend'>
  'server.resume': Handler<'server.resume'>
  'server.snapshot': Handler<'server.snapshot'>
  'server.shelve': Handler<'server.shelve'>
  'server.shelveOffload': Handler<'server.shelveOffload'>
  'server.unshelve': Handler<'server.unshelve'>
} {
  const { driver, logger } = d
  const sd = d.shelve
  const power = async (id: string) => (await driver.getInfo(id)).powerState

  /** Copy the disk and upload it, through Nova's pending-upload and uploading task states. */
  const copyAndUpload = async (
    s: Server,
    imageId: string,
    from: Exclude<TaskState, null>,
    states: [Exclude<TaskState, null>, Exclude<TaskState, null>],
  ) => {
    await w.advanceTask(s, { taskStates: [from] }, states[0])
    const copy = await driver.snapshot(s.id, imageId)
    try {
      await w.advanceTask(s, { taskStates: [states[0]] }, states[1])
      await sd.images.upload(imageId, copy)
    } finally {
      await copy.cleanup().catch((err: unknown) => logger.warn({ server: s.id, err }, 'snapshot copy not removed'))
    }
  }

  /** A failed snapshot leaves no half image behind (Nova deletes it too). */
  const dropImage = async (s: Server, imageId: string) => {
    await sd.images
      .delete(imageId)
      .catch((err: unknown) => logger.warn({ server: s.id, image: imageId, err }, 'image of a failed snapshot not deleted'))
  }

  return {
    'server.suspend': (t) =>
      w.runStep(t, {
        event: 'compute_suspend_instance',
        taskStates: ['suspending'],
        work: async (s) => {
          await driver.suspend(s.id)
          return { vm_state: 'suspended', power_state: PowerState.SUSPENDED }
        },
      }),
    'server.resume': (t) =>
      w.runStep(t, {
        event: 'compute_resume_instance',
        taskStates: ['resuming'],
        work: async (s) => {
          await driver.resume(s.id)
          return { vm_state: 'active', power_state: PowerState.RUNNING }
        },
      }),
    'server.snapshot': (t) => {
      const backup = t.payload.backup
      return w.runStep(t, {
        event: backup ? 'compute_backup_instance' : 'compute_snapshot_instance',
        taskStates: backup
          ? ['image_backup', 'image_pending_upload', 'image_uploading']
          : ['image_snapshot_pending', 'image_snapshot', 'image_pending_upload', 'image_uploading'],
        work: async (s, p) => {
          let from: Exclude<TaskState, null> = 'image_backup'
          if (!backup) {
            await w.advanceTask(s, { taskStates: ['image_snapshot_pending'] }, 'image_snapshot')
            from = 'image_snapshot'
          }
          await copyAndUpload(s, p.imageId, from, ['image_pending_upload', 'image_uploading'])
          // Nova's _rotate_backups: of this server's backups of this type, the newest `rotation` stay.
          if (backup) {
            const all = await sd.images.backups(s.id, backup.type)
            for (const old of all.slice(backup.rotation)) {
              logger.info({ server: s.id, image: old.id }, 'rotating out old backup')
              await sd.images.delete(old.id)
            }
          }
          return { power_state: await power(s.id) }
        },
        onFailure: async (s, p) => {
          await dropImage(s, p.imageId)
          return {}
        },
      })
    },
    'server.shelve': (t) => {
      const imageId = t.payload.imageId
      // A volume-backed server: offloaded at once, no image (Nova's shelve_offload_instance); a
      // failure leaves it as it was.
      if (imageId === null) {
        return w.runStep(t, {
          event: 'compute_shelve_offload_instance',
          taskStates: ['shelving'],
          work: async (s) => {
            await driver.powerOff(s.id, { clean: s.power_state !== PowerState.PAUSED, timeoutMs: 60_000 })
            const off = await power(s.id)
            await driver.destroy(s.id)
            return { vm_state: 'shelved_offloaded', power_state: off, host: null }
          },
          onFailure: async (s, p) => restorePower(s, p.previousVmState, p.previousPowerState as PowerStateValue),
        })
      }
      // How far the shelve got: a failure before the image is whole puts the server back as it was;
      // once shelved, only the offload failed and the server stays shelved on this host.
      let shelved = false
      return w.runStep(t, {
        event: 'compute_shelve_instance',
        taskStates: ['shelving', 'shelving_image_pending_upload', 'shelving_image_uploading', 'shelving_offloading'],
        work: async (s) => {
          // Nova does not try a clean shutdown of a paused guest.
          await driver.powerOff(s.id, { clean: s.power_state !== PowerState.PAUSED, timeoutMs: 60_000 })
          await copyAndUpload(s, imageId, 'shelving', ['shelving_image_pending_upload', 'shelving_image_uploading'])
          await sd.shelves.put({ server_id: s.id, image_id: imageId, shelved_at: d.repo.now(), shelved_host: d.host })
          const off = await power(s.id)
          if (sd.shelvedOffloadTime !== 0) return { vm_state: 'shelved', power_state: off }
          // shelved_offload_time 0: offloaded at once, in the same task (as Nova's _shelve_instance).
          if (
            !(await d.repo.cas(
              s.id,
              { taskStates: ['shelving_image_uploading'] },
              { vm_state: 'shelved', task_state: 'shelving_offloading', power_state: off },
            ))
          )
            throw new Error(`server ${s.id} changed while it was shelved`)
          shelved = true
          await driver.destroy(s.id)
          return { vm_state: 'shelved_offloaded', power_state: off, host: null }
        },
        onFailure: async (s, p) => {
          if (shelved) return { vm_state: 'shelved' }
          await dropImage(s, imageId)
          return restorePower(s, p.previousVmState, p.previousPowerState as PowerStateValue)
        },
      })
    },
    'server.shelveOffload': (t) =>
      w.runStep(t, {
        event: 'compute_shelve_offload_instance',
        taskStates: ['shelving_offloading'],
        work: async (s) => {
          await driver.powerOff(s.id, { clean: false, timeoutMs: 0 })
          const off = await power(s.id)
          await driver.destroy(s.id)
          // The host's capacity is free again: an offloaded server has no host.
          return { vm_state: 'shelved_offloaded', power_state: off, host: null }
        },
      }),
    'server.unshelve': (t) => {
      if (!t.payload.offloaded) {
        // Shelved on its host still: Nova's conductor starts it there (task state powering-on).
        return w.runStep(t, {
          event: 'compute_start_instance',
          taskStates: ['unshelving', 'powering-on'],
          work: async (s) => {
            await w.advanceTask(s, { taskStates: ['unshelving'] }, 'powering-on')
            await driver.powerOn(s.id)
            await forgetShelve(s.id)
            return { vm_state: 'active', power_state: PowerState.RUNNING }
          },
        })
      }
      return w.runStep(t, {
        event: 'compute_unshelve_instance',
        taskStates: ['unshelving', 'spawning'],
        work: async (s) => {
          const volumes = (await sd.attachedVolumes?.(s.id)) ?? []
          // Volume-backed: its root volume boots again (shelved without an image).
          const root = s.image_id === null ? await d.bootVolumes?.root(s.id) : null
          if (root) {
            await w.advanceTask(s, { taskStates: ['unshelving'] }, 'spawning')
            await driver.spawn({ ...(await w.specOf(s)), bootVolume: root, volumes })
            await forgetShelve(s.id)
            return { vm_state: 'active', power_state: PowerState.RUNNING, launched_at: d.repo.now() }
          }
          const shelf = await sd.shelves.get(s.id)
          if (!shelf) throw new Error(`Unshelve attempted but the image of server ${s.id} cannot be found.`)
          await w.advanceTask(s, { taskStates: ['unshelving'] }, 'spawning')
          // Booted from the shelve image; the server's image_ref stays the one it was built from.
          await driver.spawn({ ...(await w.specOf(s, shelf.image_id)), volumes })
          await forgetShelve(s.id)
          return { vm_state: 'active', power_state: PowerState.RUNNING, launched_at: d.repo.now() }
        },
        // Nova: back to SHELVED_OFFLOADED without a host; the shelve image is kept for the next try.
        onFailure: async (s) => {
          await driver.destroy(s.id).catch(() => undefined)
          return { vm_state: 'shelved_offloaded', power_state: PowerState.SHUTDOWN, host: null }
        },
      })
    },
  }

  /** Unshelved: the shelve image is deleted and the shelve keys with it (Nova's start and unshelve). */
  async function forgetShelve(serverId: string) {
    const shelf = await sd.shelves.get(serverId)
    if (!shelf) return
    await sd.shelves.remove(serverId)
    await sd.images.delete(shelf.image_id).catch((err: unknown) => logger.warn({ server: serverId, err }, 'shelve image not deleted'))
  }

  /** After a failed shelve: the server's own disk in the power state it had (a suspended one's memory is lost). */
  async function restorePower(s: Server, vmState: VmState, previous: PowerStateValue): Promise<Partial<Server>> {
    const now = await power(s.id)
    if (now === previous) return { vm_state: vmState, power_state: now }
    try {
      if (previous === PowerState.RUNNING || previous === PowerState.PAUSED) {
        await driver.powerOn(s.id)
        if (previous === PowerState.PAUSED) await driver.pause(s.id)
        return { vm_state: vmState, power_state: await power(s.id) }
      }
      return { vm_state: vmState === 'suspended' ? 'stopped' : vmState, power_state: await power(s.id) }
    } catch (err) {
      logger.error({ server: s.id, err: (err as Error).message }, 'could not restore the server after a failed shelve')
      return { vm_state: 'error', power_state: await power(s.id).catch(() => PowerState.NOSTATE) }
    }
  }
}
