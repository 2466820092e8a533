// Live migration between two QEMUs of two hosts with disks of their own (no shared storage), in
// QMP, as libvirt does it for a migration with non-shared disks:
//   destination  a QEMU with the same machine and devices started with `-incoming defer -S`, over
//                a fresh overlay of its own copy of the image (same size as the source's disk)
//                and a blank file for each attached volume (the same sizes; a volume-backed
//                server: no overlay, its root volume is one of them); each disk exported
//                writable over NBD, then `migrate-incoming` on a TCP port.
//   source       `drive-mirror` of the disk's top layer (the overlay: the image is the same on
//                both hosts) to that NBD export, and of each attached volume whole (a standalone
//                file) to its own export; once every mirror is in sync, `migrate` of the
//                memory and devices, with `pause-before-switchover`: at the switchover the vCPUs
//                are stopped, the mirrors are completed (`block-job-cancel` of a ready mirror leaves
//                the target a consistent copy) and the migration goes on to `completed`.
//   destination  `nbd-server-stop`, then `cont`: the guest runs there, the same boot.
// Whatever fails on the source, the guest runs on there as it was (QEMU resumes a migration that
// failed or was cancelled; the block jobs are cancelled; a guest left paused is continued). An
// admin's abort cancels the copy the same way; a force-complete pauses the guest until it is on
// the destination (which runs it, as it ran here).
// Nothing here is authenticated or encrypted: hosts migrate over a network of their own.
import { createServer } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import type { LiveMigrationProgress } from '../driver.ts'
import type { QmpClient, QmpEvent } from './qmp.ts'

/** The root disk's drive, and its NBD export's name. */
const EXPORT = 'vda'

/**
 * A disk the mirror copies: the root disk (drive `vda`, its overlay only: `sync: top`) or an
 * attached volume (its block node, whole: `sync: full`, a standalone file), one job and one NBD
 * export each, named for the drive or node.
 */
interface Disk {
  job: string
  device: string
  sync: 'top' | 'full'
}
const disksOf = (volumeNodes: string[] = [], root = true): Disk[] => [
  ...(root ? [{ job: `live-migration-${EXPORT}`, device: EXPORT, sync: 'top' as const }] : []),
  ...volumeNodes.map((n) => ({ job: `live-migration-${n}`, device: n, sync: 'full' as const })),
]

/** A port of `address` nobody listens on now (the OS's choice), for QEMU to bind next. */
export function ephemeralPort(address: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.once('error', reject)
    srv.listen(0, address, () => {
      const a = srv.address()
      srv.close(() => (a && typeof a === 'object' ? resolve(a.port) : reject(new Error('no port'))))
    })
  })
}

/** `host:port` for a URI (an IPv6 address in brackets). */
const hostPort = (address: string, port: number) => `${address.includes(':') ? `[${address}]` : address}:${port}`

/**
 * Destination: serve the disk (drive `vda`) and each volume (its block node, named as the source
 * names it) over NBD, one export each, and wait for the migration stream. `root` false: a
 * volume-backed server, whose root disk is the first of the volumes (no drive `vda`).
 */
export async function receive(
  q: QmpClient,
  address: string,
  ports: { nbd: number; migration: number },
  volumeNodes: string[] = [],
  root = true,
): Promise<void> {
  await q.execute('nbd-server-start', { addr: { type: 'inet', data: { host: address, port: String(ports.nbd) } } })
  if (root) {
    // The export names a block node: the one the guest's disk (drive `vda`) sits on.
    const blocks = await q.execute<{ device: string; inserted?: { 'node-name': string } }[]>('query-block')
    const node = blocks.find((b) => b.device === EXPORT)?.inserted?.['node-name']
    if (!node) throw new Error(`no disk ${EXPORT} in the waiting QEMU`)
    await q.execute('block-export-add', { type: 'nbd', id: EXPORT, 'node-name': node, name: EXPORT, writable: true })
  }
  for (const n of volumeNodes) await q.execute('block-export-add', { type: 'nbd', id: n, 'node-name': n, name: n, writable: true })
  await q.execute('migrate-incoming', { uri: `tcp:${hostPort(address, ports.migration)}` })
}

/** Destination, once the source says it is done: the guest has arrived; stop serving its disk, then run it (`run`). */
export async function resumeArrived(q: QmpClient, run: boolean): Promise<void> {
  const m = await q.execute<{ status?: string }>('query-migrate')
  if (m.status !== 'completed') throw new Error(`the guest has not arrived (incoming migration ${m.status ?? 'not started'})`)
  await q.execute('nbd-server-stop')
  if (run) await q.execute('cont')
}

export interface SendOptions {
  address: string
  nbdPort: number
  migrationPort: number
  /** The whole copy (disk, memory, switchover) must end by then, ms since the epoch; else it is cancelled. */
  deadline: number
  /**
   * Whether the guest ran before the first attempt, when this is a second one (the agent died
   * during the first, whose copy QEMU may have gone on with): what a failure puts back.
   */
  wasRunning?: boolean
  /** The volumes' block nodes: each mirrored whole to the destination's export of the same name. */
  volumeNodes?: string[]
  /** False: no drive `vda` (a volume-backed server: its root volume is among `volumeNodes`). Default true. */
  root?: boolean
  onProgress?: (what: string) => void
  /** The memory copy's bandwidth, bytes/s (Nova's live_migration_bandwidth); default: the network's (10 GiB/s). */
  bandwidth?: number
  /**
   * What an admin asked, polled during the copy: `abort` cancels it (the guest runs on here, as
   * before: CopyCancelled); `force-complete` pauses the guest, so that what it dirties no longer
   * outruns the copy (Nova's libvirt driver without post-copy); the destination runs it as it ran here.
   */
  requested?: () => Promise<'abort' | 'force-complete' | null>
  /** How far the copy is, at every look at it (the disk mirror's offset and length, the memory's bytes). */
  onStats?: (p: LiveMigrationProgress) => void
}

/** The copy was cancelled as an admin asked; the guest runs on the source as before. */
export class CopyCancelled extends Error {
  constructor() {
    super('the copy was cancelled')
  }
}

/** How often the copy asks whether an admin asked something of it. */
const POLL_REQUESTS_MS = 500

interface MigrateInfo {
  status?: string
  'error-desc'?: string
  ram?: { transferred: number; remaining: number; total: number }
}
interface BlockJob {
  device: string
  status?: string
  ready?: boolean
  offset: number
  len: number
}

/**
 * Source: copy the disk's top layer and the guest's memory to the waiting destination. Returns
 * whether the guest was running (the destination then runs it); the source's QEMU is left in
 * `postmigrate`, its disks handed over. Throws with the guest running here as before.
 */
export async function send(q: QmpClient, o: SendOptions): Promise<{ running: boolean }> {
  const disks = disksOf(o.volumeNodes, o.root ?? true)
  const { status } = await q.execute<{ status: string }>('query-status')
  const running = o.wasRunning ?? status === 'running'
  // What a first attempt left (a migration, the mirrors, the guest stopped): back as it was, then a fresh start.
  if (o.wasRunning !== undefined) await rollback(q, running, disks)
  const jobEnds: QmpEvent[] = []
  const off = q.onEvent((e) => {
    if (e.event === 'BLOCK_JOB_COMPLETED' || e.event === 'BLOCK_JOB_ERROR') jobEnds.push(e)
  })
  const timeLeft = (what: string) => {
    if (Date.now() > o.deadline) throw new Error(`${what} did not finish in time`)
  }
  let paused = false
  let polled = 0
  /** An admin's request, acted on: an abort throws; a force-complete pauses the guest (once). */
  const actOnRequests = async () => {
    if (!o.requested || Date.now() - polled < POLL_REQUESTS_MS) return
    polled = Date.now()
    const asked = await o.requested()
    if (asked === 'abort') throw new CopyCancelled()
    if (asked === 'force-complete' && !paused) {
      paused = true
      const { status: now } = await q.execute<{ status: string }>('query-status')
      if (now === 'running') {
        await q.execute('stop')
        o.onProgress?.('guest paused to complete the copy (force complete)')
      }
    }
  }
  try {
    for (const d of disks) {
      await q.execute('drive-mirror', {
        'job-id': d.job,
        device: d.device,
        target: `nbd://${hostPort(o.address, o.nbdPort)}/${d.device}`,
        format: 'raw',
        sync: d.sync,
        mode: 'existing',
      })
    }
    let stats: LiveMigrationProgress = {
      memory_total: 0,
      memory_processed: 0,
      memory_remaining: 0,
      disk_total: 0,
      disk_processed: 0,
      disk_remaining: 0,
    }
    // The disks first, every one in sync; then every guest write goes to both until the switchover.
    for (;;) {
      const jobs = await q.execute<BlockJob[]>('query-block-jobs')
      const gone = disks.find((d) => !jobs.some((j) => j.device === d.job))
      if (gone) throw new Error(`the copy of ${gone.device} ended early: ${describeJobEnd(jobEnds, gone.job)}`)
      const mine = jobs.filter((j) => disks.some((d) => d.job === j.device))
      const total = mine.reduce((n, j) => n + j.len, 0)
      const done = mine.reduce((n, j) => n + j.offset, 0)
      stats = { ...stats, disk_total: total, disk_processed: done, disk_remaining: Math.max(0, total - done) }
      o.onStats?.(stats)
      if (disks.every((d) => jobs.find((j) => j.device === d.job)?.ready)) break
      timeLeft('the disk copy')
      await actOnRequests()
      await sleep(200)
    }
    o.onProgress?.(disks.length > 1 ? `disk and ${disks.length - 1} volume(s) in sync` : 'disk in sync')
    await q.execute('migrate-set-capabilities', {
      capabilities: [
        { capability: 'pause-before-switchover', state: true },
        { capability: 'events', state: true },
      ],
    })
    // QEMU's default is 32 MiB/s; the network between hosts is the limit, not QEMU.
    await q.execute('migrate-set-parameters', { 'max-bandwidth': o.bandwidth ?? 10 * 2 ** 30 })
    await q.execute('migrate', { uri: `tcp:${hostPort(o.address, o.migrationPort)}` })
    for (;;) {
      const m = await q.execute<MigrateInfo>('query-migrate')
      if (m.ram) {
        stats = { ...stats, memory_total: m.ram.total, memory_processed: m.ram.transferred, memory_remaining: m.ram.remaining }
        o.onStats?.(stats)
      }
      if (m.status === 'pre-switchover') {
        // The vCPUs are stopped: each mirror completes with what the guest last wrote.
        for (const d of disks) await q.execute('block-job-cancel', { device: d.job })
        for (const d of disks) {
          await waitJobGone(q, jobEnds, d.job, o.deadline)
          const end = jobEnds.find((e) => e.data?.device === d.job)
          if (!end || end.event !== 'BLOCK_JOB_COMPLETED' || end.data?.error)
            throw new Error(`the copy of ${d.device} failed: ${describeJobEnd(jobEnds, d.job)}`)
        }
        await q.execute('migrate-continue', { state: 'pre-switchover' })
      } else if (m.status === 'completed') {
        o.onProgress?.('memory and devices sent')
        return { running }
      } else if (m.status === 'failed' || m.status === 'cancelled') {
        throw new Error(`the memory copy ${m.status}${m['error-desc'] ? `: ${m['error-desc']}` : ''}`)
      }
      timeLeft('the memory copy')
      // Not once the switchover began: the copy ends then whatever is asked.
      if (m.status === 'active') await actOnRequests()
      await sleep(200)
    }
  } catch (err) {
    await rollback(q, running, disks)
    throw err
  } finally {
    off()
  }
}

async function waitJobGone(q: QmpClient, jobEnds: QmpEvent[], job: string, deadline: number): Promise<void> {
  while ((await q.execute<BlockJob[]>('query-block-jobs')).some((j) => j.device === job)) {
    if (Date.now() > deadline) throw new Error('the disk copy did not complete in time')
    await sleep(100)
  }
  // The event comes with or just after the job's end.
  for (let i = 0; i < 20 && !jobEnds.some((e) => e.data?.device === job); i++) await sleep(50)
}

function describeJobEnd(ends: QmpEvent[], job: string): string {
  const e = ends.find((x) => x.data?.device === job)
  if (!e) return 'no end event'
  return typeof e.data?.error === 'string' ? e.data.error : e.event
}

/** The guest back to running on the source, as before the attempt: no migration, no mirror. */
async function rollback(q: QmpClient, wasRunning: boolean, disks: Disk[]): Promise<void> {
  if (q.closed) return
  await q.execute('migrate_cancel').catch(() => {})
  for (let i = 0; i < 100; i++) {
    const m = await q.execute<MigrateInfo>('query-migrate').catch(() => ({ status: undefined }) as MigrateInfo)
    if (!['setup', 'active', 'cancelling', 'pre-switchover', 'device'].includes(m.status ?? '')) break
    await sleep(100)
  }
  for (const d of disks) await q.execute('block-job-cancel', { device: d.job, force: true }).catch(() => {})
  // A cancel takes effect asynchronously; the jobs' ids must be free for the next attempt.
  for (let i = 0; i < 100; i++) {
    const jobs = await q.execute<BlockJob[]>('query-block-jobs').catch(() => [])
    if (!jobs.some((j) => disks.some((d) => d.job === j.device))) break
    await sleep(100)
  }
  const { status } = await q.execute<{ status: string }>('query-status').catch(() => ({ status: 'unknown' }))
  // `cont` after a completed or failed migration takes the disks back (QEMU re-activates them).
  if (wasRunning && status !== 'running') await q.execute('cont').catch(() => {})
}

/** Source, after the destination failed to run the guest it received: run it here again. */
export async function resumeHere(q: QmpClient): Promise<void> {
  const { status } = await q.execute<{ status: string }>('query-status')
  if (status !== 'running') await q.execute('cont')
}
