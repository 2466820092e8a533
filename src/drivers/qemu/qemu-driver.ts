// The qemu driver: real VMs, one directory per server, QEMU daemonized and driven over QMP.
//   <dir>/s/<server id>/   disk.qcow2 (overlay on the image), config.iso, state.json,
//                          qemu.pid, qmp.sock, serial.sock, console.log
//   <dir>/s/<server id>/r/ the rescue VM while rescued: its own overlay of the rescue image,
//                          its own config drive, pidfile, sockets and console log
//   <dir>/s/<server id>/rescue-changes.qcow2  while rescued with a checkpoint: what the rescue
//                          writes to the server's disk, on top of disk.qcow2 (frozen, the checkpoint)
//   disk.qcow2's internal snapshot `skiff-suspend`: a suspended guest's memory and devices
//   <dir>/snap/            disk copies of snapshots, until uploaded to the image store
//   <dir>/warm/<key>/      a warm rescue system: a rescue image booted once and saved (warm-rescue.ts)
//   <dir>/base/            the images' data, kernels and initrds the overlays rest on (links)
//   <dir>/v/               the volumes this host serves, a qcow2 file each (volume-store.ts);
//                          attached ones are on the VM's command line at every boot (after the
//                          config drive; the rescue disk of a stable-device rescue comes after
//                          them) and plugged in and out of a running VM over QMP (volume-hotplug.ts).
//                          A volume-backed server's root disk is its boot volume's file.
// Rescue never writes the server's disk: the server's QEMU exits (it holds the qcow2 write
// lock), the rescue VM boots a fresh overlay with the server's disk.qcow2 as its SECOND disk
// (stable-device rescue: the server's disk stays FIRST and the rescue disk is attached last, a
// disk or a read-only CD-ROM on the bus the rescue image asks for),
// and unrescue boots disk.qcow2 again (its password and host key live on it), then drops the
// rescue dir (kept until then: a failed unrescue boots the same rescue system again). Paths
// stay short: unix socket paths are limited to 107 bytes.
// Instant rescue: where a warm rescue system of the image and flavor shape is saved, a rescue
// restores a copy of it while the server shuts down (its secrets over the rescue port), and
// hot-adds the server's disk second and the config drive third once the server's QEMU has
// exited; the SSH port is forwarded last. The first rescue of a shape boots, then the warm
// system is saved in the background; a restore that fails boots instead, with the reason logged.
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { constants as fsConstants, createReadStream, existsSync } from 'node:fs'
import { copyFile, link, mkdir, open, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises'
import { cpus } from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { promisify } from 'node:util'
import type { Logger } from 'pino'
import {
  LiveMigrationCancelled,
  type LiveMigrationControl,
  type LiveMigrationSource,
  type LiveMigrationTarget,
  type MigratedDisk,
  PowerState,
  type PowerStateValue,
  DriverError,
  VmNotFound,
  type RebootType,
  type DiskSnapshot,
  type RescueSpec,
  type ServerSpec,
  stableRescueRefusal,
  type VirtDriver,
  type VolumeDriver,
  type VolumeSpec,
} from '../driver.ts'
import { probeAccel } from './accel.ts'
import { discardChanges, keepChanges, takeCheckpoint } from './checkpoint.ts'
import { writeConfigDrive, type ConfigDriveSpec } from './config-drive.ts'
import { buildQemuArgs, vmFiles, volumeNames, type Accel, type DiskArg } from './qemu-args.ts'
import { CopyCancelled, ephemeralPort, receive, resumeArrived, resumeHere, send } from './live-migration.ts'
import { QmpClient } from './qmp.ts'
import { newHostKey, RescueChannel, secretLines, type HostKey } from './rescue-channel.ts'
import { portFree, sshBanner, sshHostKey } from './ssh-probe.ts'
import { blockdevAddOpen, blockResize, deviceAdd, unplug } from './volume-hotplug.ts'
import { VolumeStore, type VolumeSource } from './volume-store.ts'
import {
  backingChain,
  qemuVersionLine,
  startQemuWithFds,
  WARM_TAG,
  warmFailedLately,
  warmKey,
  warmPaths,
  warmReady,
  type WarmShape,
} from './warm-rescue.ts'

const run = promisify(execFile)

/** What the driver boots for an image: its disk, and the kernel and initrd for direct boot. */
export interface QemuImage {
  disk: string
  format: 'qcow2' | 'raw'
  kernel: string
  initrd: string
  /** The image's checksum, where the image service has one (a warm rescue system is saved per image content). */
  checksum?: string
}

export interface QemuDriverOptions {
  dir: string
  resolveImage: (imageId: string) => Promise<QemuImage>
  accel: 'auto' | Accel
  sshPortMin: number
  sshPortMax: number
  bootTimeoutMs: number
  /** Clean shutdown (ACPI) wait before QMP quit, then SIGKILL. */
  stopTimeoutMs: number
  /** The same for the server's stop when it is rescued (0: no clean shutdown); default stopTimeoutMs. */
  rescueStopTimeoutMs?: number
  /** Restore rescue systems from a saved warm state (warm-rescue.ts) where one can be made; default true. */
  warmRescue?: boolean
  maxConcurrentBoots?: number
  /** How often running VMs are checked for a QEMU that died, ms (0: never). */
  watchIntervalMs?: number
  /**
   * Live migration: the address of this host other hosts' QEMUs reach (Nova's
   * live_migration_inbound_addr); the destination's QEMU listens there on ports it picks.
   */
  migrationAddress?: string
  /** Live migration: seconds the copy may take per GiB of memory and disk (Nova's live_migration_completion_timeout; 0: no limit). */
  liveMigrationTimeoutPerGiBSeconds?: number
  /** Live migration: the memory copy at most this fast, bytes/s (Nova's live_migration_bandwidth; 0 or unset: the network's). */
  liveMigrationBandwidthBytes?: number
  /**
   * Where the serial proxies reach this host's consoles when they may run on other machines:
   * its serial relay (console/serial-relay.ts); unset, the VMs' unix sockets themselves.
   */
  serialRelayEndpoint?: string
  /** A VM the driver believed running is gone (QEMU died or was killed). */
  onVmGone?: (serverId: string, detail: { rescued: boolean; reason: string }) => void
  logger: Logger
}

interface BootFiles {
  kernel: string
  initrd: string
}
interface State {
  id: string
  name: string
  port: number
  vcpus: number
  memMb: number
  own: BootFiles
  hostKey: string | null
  /** `stable`: a stable-device rescue (the rescue disk last, on that bus); absent or null: legacy. */
  rescue: (BootFiles & { imageId: string; hostKey: string | null; stable?: RescueSpec['stable'] }) | null
  /**
   * A rescue's checkpoint: disk.qcow2 is frozen as it was when the rescue began, and what the
   * rescue writes to the server's disk goes to rescue-changes.qcow2 on top of it. `unrescue`:
   * what an unrescue decided (recorded before it acts, so that a re-run after a crash finishes it).
   */
  checkpoint?: { unrescue?: 'keep' | 'discard' } | null
  /** Should a QEMU be running now (the watcher reports it when it is not)? */
  running: boolean
  /** Suspended: no QEMU, the guest's memory in memory.state; resume continues that boot. */
  suspended?: boolean
  /** The volumes attached besides the root, in attach order (their disks follow the config drive in that order). */
  volumes?: string[]
  /** Volume-backed: the boot volume whose file is the root disk (no disk.qcow2). */
  rootVolume?: string | null
  /** Destination of a live migration: the QEMU waits for the guest (not booted, not yet running). */
  incoming?: boolean
  /** Destination of a live migration, until the guest runs: the PCI slot of each volume's device on the source. */
  volumeSlots?: Record<string, number> | null
  /**
   * Source of a live migration, from the copy's start: whether the guest ran before it (`resume`:
   * what a failure, or a destination that cannot run it, puts back). Once sent, the QEMU here
   * holds the guest stopped until the migration is confirmed.
   */
  outgoing?: { resume: boolean } | null
}

/** FIFO semaphore: boots beyond the limit wait (TCG boots are CPU-bound; see RECIPE §7). */
class Limiter {
  #free: number
  readonly #queue: (() => void)[] = []
  constructor(n: number) {
    this.#free = n
  }
  async use<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#free > 0) this.#free--
    else await new Promise<void>((resolve) => this.#queue.push(resolve))
    try {
      return await fn()
    } finally {
      const next = this.#queue.shift()
      if (next) next()
      else this.#free++
    }
  }
}

export const isAlive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

export class QemuDriver implements VirtDriver, VolumeDriver {
  readonly name = 'qemu'
  readonly #o: QemuDriverOptions
  readonly #vms = new Map<string, State>()
  readonly #busy = new Map<string, number>()
  readonly #qmpLocks = new Map<string, Promise<unknown>>()
  readonly #reservedPorts = new Set<number>()
  readonly #boots: Limiter
  readonly #volumes: VolumeStore
  /** Warm rescue systems being saved, by key: one build each. */
  readonly #warmBuilds = new Map<string, Promise<void>>()
  #accel: Promise<Accel> | undefined
  #watch: NodeJS.Timeout | undefined
  #closed = false

  constructor(options: QemuDriverOptions) {
    this.#o = options
    this.#boots = new Limiter(options.maxConcurrentBoots ?? Math.max(1, cpus().length * 2))
    this.#volumes = new VolumeStore(path.join(options.dir, 'v'))
    if ((options.watchIntervalMs ?? 2000) > 0) {
      this.#watch = setInterval(() => void this.#checkVms(), options.watchIntervalMs ?? 2000)
      this.#watch.unref()
    }
  }

  /** The accelerator VMs boot with (probed once, cached in <dir>/accel). */
  accel(kernel: string): Promise<Accel> {
    if (this.#o.accel !== 'auto') return Promise.resolve(this.#o.accel)
    this.#accel ??= mkdir(this.#o.dir, { recursive: true })
      .then(() => probeAccel({ kernel, cacheFile: path.join(this.#o.dir, 'accel') }))
      .then(({ accel, cached }) => {
        this.#o.logger.info({ accel, cached }, 'qemu accelerator')
        return accel
      })
    return this.#accel
  }

  /** Stop watching; the VMs keep running (a restart adopts them). */
  close(): void {
    this.#closed = true
    if (this.#watch) clearInterval(this.#watch)
  }

  // ------------------------------------------------------------------ paths and state
  #serverDir(id: string) {
    return path.join(this.#o.dir, 's', id)
  }
  #rescueDir(id: string) {
    return path.join(this.#serverDir(id), 'r')
  }
  #currentDir(s: State) {
    return s.rescue ? this.#rescueDir(s.id) : this.#serverDir(s.id)
  }

  #vm(id: string): State {
    const s = this.#vms.get(id)
    if (!s) throw new VmNotFound(id)
    return s
  }

  async #save(s: State) {
    const file = path.join(this.#serverDir(s.id), 'state.json')
    await writeFile(file + '.tmp', JSON.stringify(s, null, 2) + '\n', { mode: 0o600 })
    await rename(file + '.tmp', file)
  }

  /** Run `fn` with the server marked busy: the watcher leaves a VM alone while it is worked on. */
  async #op<T>(id: string, fn: () => Promise<T>): Promise<T> {
    this.#busy.set(id, (this.#busy.get(id) ?? 0) + 1)
    try {
      return await fn()
    } finally {
      const n = (this.#busy.get(id) ?? 1) - 1
      if (n > 0) this.#busy.set(id, n)
      else this.#busy.delete(id)
    }
  }

  /** Images live under base/ by a name derived from their source, so deleting the image keeps overlays whole. */
  async #pin(file: string): Promise<string> {
    const dir = path.join(this.#o.dir, 'base')
    if (path.dirname(path.resolve(file)) === path.resolve(dir)) return file // pinned already (a volume-backed server's own)
    await mkdir(dir, { recursive: true })
    const st = await stat(file)
    const target = path.join(
      dir,
      createHash('sha256')
        .update(`${path.resolve(file)}:${st.size}:${st.mtimeMs}`)
        .digest('hex')
        .slice(0, 24) + path.extname(file),
    )
    if (existsSync(target)) return target
    const tmp = `${target}.${process.pid}.tmp`
    await link(file, tmp).catch(() => copyFile(file, tmp))
    await rename(tmp, target)
    return target
  }

  async #allocatePort(): Promise<number> {
    const used = new Set([...this.#reservedPorts, ...[...this.#vms.values()].map((s) => s.port)])
    for (let port = this.#o.sshPortMin; port <= this.#o.sshPortMax; port++) {
      if (used.has(port)) continue
      this.#reservedPorts.add(port)
      if (await portFree(port)) return port
      this.#reservedPorts.delete(port)
    }
    throw new DriverError(`no free SSH port in ${this.#o.sshPortMin}-${this.#o.sshPortMax}`)
  }

  // ------------------------------------------------------------------ processes
  /** The pid of the QEMU of `vmDir`, only if that process really is it (pids get reused). */
  async #pid(vmDir: string): Promise<number | null> {
    const text = await readFile(vmFiles(vmDir).pid, 'utf8').catch(() => '')
    const pid = Number(text.trim())
    if (!Number.isInteger(pid) || pid <= 1) return null
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')
    return cmdline.split('\0').some((a) => a === vmFiles(vmDir).pid) ? pid : null
  }

  /** One QMP client at a time per VM: QEMU serves one, and the second would wait for the greeting. */
  async #qmp<T>(vmDir: string, fn: (q: QmpClient) => Promise<T>): Promise<T> {
    return this.#qmpTurn(vmDir, async () => {
      const q = await QmpClient.connect(vmFiles(vmDir).qmp, 5000)
      try {
        return await fn(q)
      } finally {
        q.close()
      }
    })
  }

  /** `fn` alone with the VM's QMP socket (it connects itself, or lets a helper connect). */
  async #qmpTurn<T>(vmDir: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.#qmpLocks.get(vmDir) ?? Promise.resolve()
    const next = prev.catch(() => {}).then(fn)
    this.#qmpLocks.set(vmDir, next)
    try {
      return await next
    } finally {
      if (this.#qmpLocks.get(vmDir) === next) this.#qmpLocks.delete(vmDir)
    }
  }

  async #waitExit(pid: number, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs
    while (isAlive(pid)) {
      if (Date.now() >= deadline) return false
      await sleep(50)
    }
    return true
  }

  /**
   * Stop the QEMU of `vmDir`: ACPI power button (clean), then QMP quit, then SIGKILL. Returns
   * only once the process has exited: it holds the disk's write lock until then.
   */
  async #stop(vmDir: string, clean: boolean, timeoutMs: number): Promise<'not-running' | 'acpi' | 'quit' | 'kill'> {
    const pid = await this.#pid(vmDir)
    if (pid === null) return 'not-running'
    if (clean && timeoutMs > 0) {
      await this.#qmp(vmDir, (q) => q.execute('system_powerdown')).catch(() => {})
      if (await this.#waitExit(pid, timeoutMs)) return 'acpi'
    }
    await this.#qmp(vmDir, (q) => q.execute('quit')).catch(() => {})
    if (await this.#waitExit(pid, 3000)) return 'quit'
    if ((await this.#pid(vmDir)) === pid) process.kill(pid, 'SIGKILL')
    if (!(await this.#waitExit(pid, 10_000))) throw new DriverError(`QEMU ${pid} did not exit after SIGKILL`)
    return 'kill'
  }

  /**
   * Start QEMU for `vmDir` (daemonized), its console log starting with `header`. `incoming`: the
   * destination of a live migration, waiting for the guest instead of booting.
   */
  async #launch(
    s: State,
    vmDir: string,
    files: BootFiles,
    disks: DiskArg[],
    header: string,
    opts: { root?: string; incoming?: boolean } = {},
  ) {
    const f = vmFiles(vmDir)
    // A QEMU left by an attempt cut short (Skiff killed, the task run again) holds the disks' locks.
    await this.#stop(vmDir, false, 0)
    if (Buffer.byteLength(f.serial) > 107)
      throw new DriverError(`instance path too long for a unix socket: ${f.serial} (choose a shorter --qemu-dir)`)
    await Promise.all([f.pid, f.qmp, f.serial].map((p) => rm(p, { force: true })))
    // The log starts with where to log in (QEMU appends the serial output after it).
    await writeFile(f.console, `SKIFF: ${header}; SSH: ssh -p ${s.port} root@127.0.0.1\n`, { mode: 0o600 })
    const args = buildQemuArgs({
      dir: vmDir,
      name: `skiff-${s.id}`,
      accel: await this.accel(files.kernel),
      vcpus: s.vcpus,
      memMb: s.memMb,
      kernel: files.kernel,
      initrd: files.initrd,
      disks,
      root: opts.root,
      incoming: opts.incoming,
      sshPort: s.port,
      runAs: process.getuid?.() === 0 ? 'nobody' : undefined,
    })
    try {
      // -daemonize: QEMU returns once its sockets exist, with its startup errors on stderr.
      await run('qemu-system-x86_64', args, { timeout: 60_000 })
    } catch (e) {
      const err = e as { stderr?: string; signal?: string | null; code?: number | string }
      // Its own words if it said any; else how it ended (the command line says nothing new).
      const why = err.stderr?.trim() || (err.signal ? `killed by ${err.signal}` : `exit code ${String(err.code)}`)
      throw new DriverError(`QEMU did not start: ${why.split('\n').slice(-3).join(' ')}`)
    }
  }

  /** Start QEMU for `vmDir` and wait until the guest is up; returns its SSH host key fingerprint. */
  async #boot(s: State, vmDir: string, files: BootFiles, disks: DiskArg[], root?: string): Promise<string | null> {
    return this.#boots.use(async () => {
      const t0 = performance.now()
      await this.#launch(s, vmDir, files, disks, `${vmDir === this.#serverDir(s.id) ? 'the server' : 'the rescue system'} boots`, { root })
      const hostKey = await this.#waitReady(vmDir, s.port, this.#o.bootTimeoutMs)
      this.#o.logger.info(
        { server: s.id, rescue: vmDir !== this.#serverDir(s.id), seconds: +((performance.now() - t0) / 1000).toFixed(1) },
        'guest ready',
      )
      return hostKey
    })
  }

  /**
   * Ready = `GUEST-READY` on the serial console, or an SSH banner on the forwarded port for
   * images that print no `GUEST:` lines (a guest that does says when it is ready, after its host
   * key). Never a bare TCP connect: slirp accepts before the guest exists. Returns the host key's
   * fingerprint as the SSH handshake presents it (the console's `GUEST: hostkey` line only where
   * no handshake answers: a starved guest's console can cut a line).
   */
  async #waitReady(vmDir: string, port: number, timeoutMs: number): Promise<string | null> {
    const deadline = Date.now() + timeoutMs
    const log = vmFiles(vmDir).console
    let lastBanner = 0
    for (;;) {
      const text = await readFile(log, 'utf8').catch(() => '')
      let ready = text.includes('GUEST-READY')
      if (!ready && !text.includes('GUEST: ') && Date.now() - lastBanner > 1000) {
        lastBanner = Date.now()
        ready = await sshBanner(port)
      }
      if (ready) {
        const fromConsole = /GUEST: hostkey (SHA256:[A-Za-z0-9+/]{43})(?![A-Za-z0-9+/])/.exec(text)?.[1] ?? null
        return (await this.#handshakeHostKey(port, Math.min(deadline, Date.now() + 30_000))) ?? fromConsole
      }
      const failed = /BOOT-FAILED: ([^\r\n]*)/.exec(text)
      if (failed) throw new DriverError(`the guest did not boot: ${failed[1]}`)
      if ((await this.#pid(vmDir)) === null) throw new DriverError('QEMU exited while the guest was booting')
      if (Date.now() > deadline) {
        await this.#stop(vmDir, false, 0).catch(() => {})
        throw new DriverError(`the guest was not ready within ${Math.round(timeoutMs / 1000)} s`)
      }
      await sleep(100)
    }
  }

  /** The host key from an SSH handshake, retried until `deadline` (sshd may still be starting). */
  async #handshakeHostKey(port: number, deadline: number): Promise<string | null> {
    for (;;) {
      const key = await sshHostKey(port, 5000)
      if (key || Date.now() > deadline) {
        if (!key) this.#o.logger.warn({ port }, 'no SSH handshake with a ready guest: its host key is unknown')
        return key
      }
      await sleep(250)
    }
  }

  /** The server's root disk: its overlay of the image, or (volume-backed) its boot volume. */
  #rootFile(s: State): string {
    return s.rootVolume ? this.#volumes.file(s.rootVolume) : path.join(this.#serverDir(s.id), 'disk.qcow2')
  }

  /** The server's disk as a DiskArg named `id` (a boot volume keeps its volume's names and serial). */
  #rootDisk(s: State, id: string, file: string): DiskArg {
    return s.rootVolume ? { id, file, format: 'qcow2', volumeId: s.rootVolume } : { id, file, format: 'qcow2' }
  }

  /** The attached volumes' disks, in attach order. */
  #volumeDisks(s: State): DiskArg[] {
    return (s.volumes ?? []).map((v) => ({
      id: v,
      file: this.#volumes.file(v),
      format: 'qcow2' as const,
      volumeId: v,
      ...(s.volumeSlots?.[v] !== undefined ? { pciSlot: s.volumeSlots[v] } : {}),
    }))
  }

  /** A server's state as it starts on this host: not running, not rescued, its host key not known yet. */
  async #newState(spec: ServerSpec, image: QemuImage, port: number): Promise<State> {
    return {
      id: spec.id,
      name: spec.name,
      port,
      vcpus: spec.vcpus,
      memMb: spec.ramMb,
      own: { kernel: await this.#pin(image.kernel), initrd: await this.#pin(image.initrd) },
      hostKey: null,
      rescue: null,
      running: false,
    }
  }

  #ownDisks(s: State): DiskArg[] {
    const d = this.#serverDir(s.id)
    return [
      this.#rootDisk(s, 'vda', this.#rootFile(s)),
      { id: 'config-2', file: path.join(d, 'config.iso'), format: 'raw', readOnly: true },
      ...this.#volumeDisks(s),
    ]
  }

  /** The server's disk as the rescue system sees it: with a checkpoint, the changes on top of it. */
  #changesFile(id: string) {
    return path.join(this.#serverDir(id), 'rescue-changes.qcow2')
  }

  #serverDiskInRescue(s: State) {
    const changes = this.#changesFile(s.id)
    return existsSync(changes) ? changes : this.#rootFile(s)
  }

  /**
   * The rescue VM's disks and root. Legacy: the rescue disk vda (root), the server's disk vdb,
   * the config drive. Stable device (as Nova's libvirt driver): the server's disk vda and the
   * config drive where they always are, and the rescue disk attached last on the bus the image
   * asks for, first in the boot order, and the root (the kernel is booted directly: `root=`
   * names it; vdc on virtio, else the only SCSI-named disk, sda; as a CD-ROM, hw_rescue_device=
   * cdrom, read-only: sr0, the rescue system's writes in memory). The attached volumes in both:
   * after the config drive, before a stable rescue disk (as Nova's: the rescue disk comes last).
   */
  #rescueLayout(s: State): { disks: DiskArg[]; root: string } {
    const r = this.#rescueDir(s.id)
    const config: DiskArg = { id: 'config-2', file: path.join(r, 'config.iso'), format: 'raw', readOnly: true }
    const stable = s.rescue?.stable
    if (!stable) {
      return {
        disks: [
          { id: 'vda', file: path.join(r, 'disk.qcow2'), format: 'qcow2' },
          this.#rootDisk(s, 'vdb', this.#serverDiskInRescue(s)),
          config,
          ...this.#volumeDisks(s),
        ],
        root: '/dev/vda',
      }
    }
    const refusal = stableRescueRefusal(stable, s.volumes?.length ?? 0)
    if (refusal || stable.bus === 'fdc') throw new DriverError(refusal ?? `no ${stable.device} on the ${stable.bus} bus to boot from`)
    const cdrom = stable.device === 'cdrom'
    return {
      disks: [
        this.#rootDisk(s, 'vda', this.#serverDiskInRescue(s)),
        config,
        ...this.#volumeDisks(s),
        { id: 'rescue', file: path.join(r, 'disk.qcow2'), format: 'qcow2', bus: stable.bus, bootIndex: 1, media: cdrom ? 'cdrom' : 'disk' },
      ],
      // A CD-ROM: the only one (the config drive is a virtio disk); its root read-only, the writes in memory (guest-image.ts).
      root: cdrom ? '/dev/sr0' : stable.bus === 'virtio' ? `/dev/vd${String.fromCharCode(99 + (s.volumes?.length ?? 0))}` : '/dev/sda',
    }
  }

  async #bootRescue(s: State): Promise<string | null> {
    const { disks, root } = this.#rescueLayout(s)
    return this.#boot(s, this.#rescueDir(s.id), s.rescue!, disks, root)
  }

  /** A first boot of the server's own disk (create, rebuild): the config drive carries its password and keys until the guest has read them. */
  async #firstBoot(s: State, dir: string, server: ServerSpec): Promise<void> {
    const cfg = {
      uuid: server.id,
      name: server.name,
      hostname: hostname(server.name),
      adminPass: server.adminPass,
      publicKeys: server.authorizedKeys,
      userData: server.userData,
    }
    // The host key made here too (scrubbed with the password): known however the guest's boot goes.
    const hostKey = newHostKey()
    await writeConfigDrive(path.join(dir, 'config.iso'), { ...cfg, hostKey: hostKey.dropbear })
    await this.#bootOwn(s)
    s.hostKey ??= await this.#givenHostKey(dir, hostKey)
    await this.#save(s)
    await this.#scrubConfigDrive(path.join(dir, 'config.iso'), cfg)
  }

  /**
   * The host key the driver made, where neither an SSH handshake nor a console line showed one:
   * only if the guest said it installed it (an image that makes its own key, cloud-init's, never does).
   */
  async #givenHostKey(vmDir: string, made: HostKey): Promise<string | null> {
    const text = await readFile(vmFiles(vmDir).console, 'utf8').catch(() => '')
    return text.includes('GUEST: host key from the config drive') ? made.fingerprint : null
  }

  async #bootOwn(s: State) {
    s.hostKey = (await this.#boot(s, this.#serverDir(s.id), s.own, this.#ownDisks(s))) ?? s.hostKey
    s.running = true
    await this.#save(s)
  }

  /** The first boot has read the password: the drive keeps the rest of the metadata, not the secret. */
  async #scrubConfigDrive(iso: string, spec: ConfigDriveSpec) {
    const tmp = iso + '.new'
    await writeConfigDrive(tmp, { ...spec, adminPass: undefined })
    await rename(tmp, iso)
  }

  async #overlay(base: QemuImage, file: string) {
    const disk = await this.#pin(base.disk)
    await run('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', base.format, '-b', disk, file])
  }

  // ------------------------------------------------------------------ VirtDriver
  async spawn(server: ServerSpec): Promise<void> {
    await this.#op(server.id, async () => {
      const root = server.bootVolume ?? null
      if (root && !this.#volumes.has(root.id)) throw new DriverError(`the data of boot volume ${root.id} is not on this host`)
      const elsewhere = (server.volumes ?? []).find((v) => !this.#volumes.has(v))
      if (elsewhere) throw new DriverError(`the data of volume ${elsewhere} is not on this host`)
      // A boot volume boots with the kernel and initrd of the image it was made from (direct kernel boot).
      const bootImage = root ? root.imageId : server.imageId
      if (!bootImage)
        throw new DriverError('the qemu driver boots a volume made from an image only (the image gives the kernel and initrd)')
      const image = await this.#o.resolveImage(bootImage)
      const dir = this.#serverDir(server.id)
      await mkdir(dir, { recursive: true, mode: 0o700 })
      await this.#stop(dir, false, 0) // a VM of an attempt cut short
      const port = this.#vms.get(server.id)?.port ?? (await this.#allocatePort())
      const s: State = { ...(await this.#newState(server, image, port)), volumes: server.volumes ?? [], rootVolume: root?.id ?? null }
      this.#vms.set(s.id, s)
      this.#reservedPorts.delete(port)
      await this.#save(s)
      if (!root) await this.#overlay(image, path.join(dir, 'disk.qcow2'))
      await this.#firstBoot(s, dir, server)
    })
  }

  async powerOff(serverId: string, opts: { clean: boolean; timeoutMs: number }): Promise<void> {
    const s = this.#vm(serverId)
    await this.#op(serverId, async () => {
      await this.#stop(this.#currentDir(s), opts.clean, Math.min(opts.timeoutMs, this.#o.stopTimeoutMs))
      s.running = false
      await this.#save(s)
    })
  }

  async powerOn(serverId: string): Promise<void> {
    const s = this.#vm(serverId)
    await this.#op(serverId, async () => {
      if ((await this.#pid(this.#currentDir(s))) !== null) return
      // A boot, not a resume (a hard reboot or a shelve of a suspended server): the saved memory is dropped.
      if (s.suspended) {
        await run('qemu-img', ['snapshot', '-d', SUSPEND_TAG, this.#rootFile(s)]).catch(() => {})
        s.suspended = false
      }
      if (s.rescue) {
        s.rescue.hostKey = (await this.#bootRescue(s)) ?? s.rescue.hostKey
        s.running = true
        await this.#save(s)
      } else {
        await this.#bootOwn(s)
      }
    })
  }

  async reboot(serverId: string, type: RebootType): Promise<void> {
    const s = this.#vm(serverId)
    await this.#op(serverId, async () => {
      // SOFT as Nova's libvirt driver does it: a clean shutdown, then a boot; HARD: no shutdown.
      await this.#stop(this.#currentDir(s), type === 'SOFT', this.#o.stopTimeoutMs)
      s.running = false
    })
    await this.powerOn(serverId)
  }

  async pause(serverId: string): Promise<void> {
    const s = this.#vm(serverId)
    await this.#qmp(this.#currentDir(s), (q) => q.execute('stop'))
  }

  async unpause(serverId: string): Promise<void> {
    const s = this.#vm(serverId)
    await this.#qmp(this.#currentDir(s), (q) => q.execute('cont'))
  }

  /**
   * Suspend as Nova's libvirt managedSave: the vCPUs stop, the guest's memory and device state
   * are saved (`savevm`) as an internal snapshot of the server's own qcow2 overlay, then QEMU
   * quits. (A QMP `migrate` to a stream fails here: at its end QEMU reopens the disks read-only,
   * which it cannot do once it has dropped to `nobody` in a 0700 directory.)
   */
  async suspend(serverId: string): Promise<void> {
    const s = this.#vm(serverId)
    if (s.rescue) throw new DriverError(`server ${serverId} is rescued: it cannot be suspended`)
    await this.#op(serverId, async () => {
      const dir = this.#serverDir(s.id)
      if ((await this.#pid(dir)) === null) throw new DriverError(`server ${serverId} has no running VM to suspend`)
      await this.#qmp(dir, async (q) => {
        await q.execute('stop')
        // HMP answers errors as text; success is empty.
        const out = await q.execute<string>('human-monitor-command', { 'command-line': `savevm ${SUSPEND_TAG}` })
        if (out.trim()) {
          await q.execute('cont').catch(() => {})
          throw new DriverError(`saving the guest's memory failed: ${out.trim()}`)
        }
      })
      await this.#stop(dir, false, 0)
      s.running = false
      s.suspended = true
      await this.#save(s)
    })
  }

  /** Resume: QEMU starts from the saved state (`-loadvm`): the same boot goes on (same boot id, uptime). */
  async resume(serverId: string): Promise<void> {
    const s = this.#vm(serverId)
    if (!s.suspended) throw new DriverError(`server ${serverId} has no saved memory to resume from`)
    await this.#op(serverId, async () => {
      const dir = this.#serverDir(s.id)
      await this.#boots.use(async () => {
        await this.#stop(dir, false, 0)
        const f = vmFiles(dir)
        await Promise.all([f.pid, f.qmp, f.serial].map((p) => rm(p, { force: true })))
        const args = buildQemuArgs({
          dir,
          name: `skiff-${s.id}`,
          accel: await this.accel(s.own.kernel),
          vcpus: s.vcpus,
          memMb: s.memMb,
          kernel: s.own.kernel,
          initrd: s.own.initrd,
          disks: this.#ownDisks(s),
          sshPort: s.port,
          runAs: process.getuid?.() === 0 ? 'nobody' : undefined,
          loadVm: SUSPEND_TAG,
        })
        try {
          await run('qemu-system-x86_64', args, { timeout: 120_000 })
        } catch (e) {
          const err = e as { stderr?: string; message: string }
          throw new DriverError(`QEMU did not resume: ${(err.stderr || err.message).trim().split('\n').slice(-3).join(' ')}`)
        }
        const st = await this.#qmp(dir, (q) => q.execute<{ status: string }>('query-status'))
        if (st.status !== 'running') await this.#qmp(dir, (q) => q.execute('cont'))
        // The saved state is spent: dropped from the disk (a later boot is a boot, not a resume).
        await this.#qmp(dir, (q) => q.execute<string>('human-monitor-command', { 'command-line': `delvm ${SUSPEND_TAG}` })).catch(
          (err: unknown) => this.#o.logger.warn({ server: s.id, err }, 'saved state not dropped'),
        )
      })
      s.running = true
      s.suspended = false
      await this.#save(s)
    })
  }

  /**
   * A standalone qcow2 of the server's disk (its backing image merged in), by `qemu-img convert`.
   * A running guest is paused for the copy (QMP `stop` flushes its disks: Nova's cold snapshot,
   * the guest's memory kept) and runs on after it, whatever happened; a stopped one is copied as
   * it is. What the guest had not yet written to its disk (unsynced) is not in the copy.
   */
  async snapshot(serverId: string, imageId: string): Promise<DiskSnapshot> {
    const s = this.#vm(serverId)
    return this.#op(serverId, async () => {
      const dir = this.#serverDir(s.id)
      const outDir = path.join(this.#o.dir, 'snap')
      await mkdir(outDir, { recursive: true, mode: 0o700 })
      const out = path.join(outDir, `${imageId}.qcow2`)
      const running = !s.rescue && (await this.#pid(dir)) !== null
      let wasRunning = false
      if (running) {
        const st = await this.#qmp(dir, (q) => q.execute<{ status: string }>('query-status'))
        wasRunning = st.status === 'running'
        if (wasRunning) await this.#qmp(dir, (q) => q.execute('stop'))
      }
      try {
        // -U: QEMU holds the image's lock while it runs (paused); its disks were flushed by `stop`.
        await run('qemu-img', ['convert', ...(running ? ['-U'] : []), '-O', 'qcow2', this.#rootFile(s), out], {
          timeout: 30 * 60_000,
        })
      } catch (e) {
        await rm(out, { force: true })
        const err = e as { stderr?: string; message: string }
        throw new DriverError(`qemu-img convert failed: ${(err.stderr || err.message).trim().split('\n').slice(-2).join(' ')}`)
      } finally {
        if (wasRunning) await this.#qmp(dir, (q) => q.execute('cont')).catch(() => {})
      }
      return { diskFormat: 'qcow2', data: createReadStream(out), cleanup: () => rm(out, { force: true }) }
    })
  }

  async rebuild(server: ServerSpec): Promise<void> {
    const s = this.#vm(server.id)
    if (s.rootVolume) throw new DriverError('the qemu driver does not rebuild a volume-backed server (its volume would be re-imaged)')
    await this.#op(server.id, async () => {
      await this.#stop(this.#serverDir(s.id), false, 0)
      s.running = false
      const image = await this.#o.resolveImage(server.imageId)
      const dir = this.#serverDir(s.id)
      await rm(path.join(dir, 'disk.qcow2'), { force: true })
      await this.#overlay(image, path.join(dir, 'disk.qcow2'))
      s.own = { kernel: await this.#pin(image.kernel), initrd: await this.#pin(image.initrd) }
      s.name = server.name
      s.hostKey = null
      await this.#firstBoot(s, dir, server)
    })
  }

  async rescue(serverId: string, rescue: RescueSpec): Promise<void> {
    const s = this.#vm(serverId)
    const stable = rescue.stable
    const refusal = stable ? stableRescueRefusal(stable, s.volumes?.length ?? 0) : null
    if (refusal) throw new DriverError(refusal)
    await this.#op(serverId, async () => {
      const image = await this.#o.resolveImage(rescue.imageId)
      if (stable?.device === 'floppy') throw new DriverError(await floppyRefusal(image))
      // The rescue system's host key is made here: its fingerprint is known before the guest is up.
      const hostKey = newHostKey()
      // A warm rescue system gets the server's disk hot-added; volumes are on its command line only: booted.
      const warm = this.#o.warmRescue !== false && !stable && !s.rootVolume && !s.volumes?.length ? await this.#warmShape(s, image) : null
      const r = this.#rescueDir(s.id)
      // The server's clean shutdown; a warm rescue system is restored meanwhile.
      const timeout = this.#o.rescueStopTimeoutMs ?? this.#o.stopTimeoutMs
      const stopping = this.#stop(this.#serverDir(s.id), timeout > 0, timeout).then((how) => {
        s.running = false
        this.#o.logger.info({ server: s.id, stop: how }, 'server VM stopped for rescue')
      })
      stopping.catch(() => {}) // awaited below on every path
      await this.#stop(r, false, 0) // a rescue VM of an attempt cut short
      await rm(r, { recursive: true, force: true })
      await mkdir(r, { mode: 0o700 })
      const info = {
        imageId: rescue.imageId,
        kernel: await this.#pin(image.kernel),
        initrd: await this.#pin(image.initrd),
        hostKey: hostKey.fingerprint,
        stable: rescue.stable ?? null,
      }
      const cfg = { uuid: s.id, name: s.name, hostname: hostname(s.name), adminPass: rescue.adminPass, publicKeys: rescue.authorizedKeys }
      if (warm && warmReady(this.#o.dir, warm.key)) {
        try {
          await this.#restoreWarm(s, warm.key, rescue, cfg, hostKey, info, stopping)
          return
        } catch (err) {
          this.#o.logger.warn(
            { server: s.id, warm: warm.key, err: (err as Error).message },
            'warm rescue system not restored: booting it instead',
          )
          // Saved again after this boot: a state that failed once is not tried at every rescue.
          await rm(warmPaths(this.#o.dir, warm.key).dir, { recursive: true, force: true })
          await this.#stop(r, false, 0)
          await rm(r, { recursive: true, force: true })
          await mkdir(r, { mode: 0o700 })
        }
      }
      await stopping
      s.running = false
      await this.#prepareServerDisk(s, rescue.checkpoint ?? false)
      // A clean copy of the rescue image: a new overlay, so a first boot with its own password and host key.
      await this.#overlay(image, path.join(r, 'disk.qcow2'))
      await writeConfigDrive(path.join(r, 'config.iso'), { ...cfg, hostKey: hostKey.dropbear })
      s.rescue = info
      await this.#save(s)
      const seen = await this.#bootRescue(s)
      // The key the guest presents; another one only from an image that does not install the given key.
      if (seen && seen !== hostKey.fingerprint) this.#o.logger.warn({ server: s.id }, 'the rescue system made its own host key')
      s.rescue.hostKey = seen ?? (await this.#givenHostKey(r, hostKey))
      s.running = true
      await this.#save(s)
      await this.#scrubConfigDrive(path.join(r, 'config.iso'), cfg)
      if (warm && !warmReady(this.#o.dir, warm.key)) this.#buildWarmLater(warm)
    })
  }

  /**
   * The server's disk as the rescue system gets it, its QEMU stopped: changes on a checkpoint no
   * unrescue settled (an attempt cut short, a rescue ended by os-resetState) are kept, never
   * silently dropped (they may be someone's repair); then a new checkpoint if asked: disk.qcow2
   * stays as it is now (flushed) and the rescue system writes through an overlay on it.
   */
  async #prepareServerDisk(s: State, checkpoint: boolean): Promise<void> {
    if (existsSync(this.#changesFile(s.id))) await this.#settleCheckpoint(s, 'keep')
    s.checkpoint = null
    if (checkpoint) {
      await takeCheckpoint(this.#rootFile(s), this.#changesFile(s.id))
      s.checkpoint = {}
    }
  }

  // ------------------------------------------------------------------ warm rescue systems
  /** What a saved state of this rescue image would be made for (null: no QEMU version, so none). */
  async #warmShape(s: State, image: QemuImage): Promise<{ key: string; shape: WarmShape } | null> {
    const disk = await this.#pin(image.disk)
    const kernel = await this.#pin(image.kernel)
    const shape: WarmShape = {
      image: image.checksum ?? path.basename(disk),
      disk,
      format: image.format,
      kernel,
      initrd: await this.#pin(image.initrd),
      accel: await this.accel(kernel),
      // The server's flavor, as a booted rescue system has it: one saved state per flavor shape.
      vcpus: s.vcpus,
      memMb: s.memMb,
      qemuVersion: await qemuVersionLine().catch(() => ''),
    }
    return shape.qemuVersion ? { key: warmKey(shape), shape } : null
  }

  /** The warm machine's command line: the same for the saved boot and every restore of it. */
  #warmArgs(dir: string, name: string, shape: WarmShape, extra: { port?: number; loadVm?: string; fdSets?: number }): string[] {
    return buildQemuArgs({
      dir,
      name,
      accel: shape.accel as Accel,
      vcpus: shape.vcpus,
      memMb: shape.memMb,
      kernel: shape.kernel,
      initrd: shape.initrd,
      disks: [{ id: 'vda', file: path.join(dir, 'disk.qcow2'), format: 'qcow2' }],
      sshPort: extra.port ?? 22,
      sshForward: false,
      rescueChannel: true,
      runAs: process.getuid?.() === 0 ? 'nobody' : undefined,
      loadVm: extra.loadVm,
      fdSets: extra.fdSets,
    })
  }

  /** Save a warm rescue system in the background (a rescue of this image has just booted one cold). */
  #buildWarmLater(warm: { key: string; shape: WarmShape }): void {
    if (this.#warmBuilds.has(warm.key) || this.#closed) return
    const build = warmFailedLately(this.#o.dir, warm.key)
      .then((failed) => (failed ? undefined : this.#buildWarm(warm.key, warm.shape)))
      .catch(async (err: Error) => {
        this.#o.logger.warn({ warm: warm.key, err: err.message }, 'warm rescue system not saved')
        await writeFile(warmPaths(this.#o.dir, warm.key).failed, err.message + '\n', { mode: 0o600 }).catch(() => {})
      })
      .finally(() => this.#warmBuilds.delete(warm.key))
    this.#warmBuilds.set(warm.key, build)
  }

  /** Wait for warm rescue systems being saved (tests, shutdown). */
  async warmBuilds(): Promise<void> {
    await Promise.all(this.#warmBuilds.values())
  }

  /**
   * Boot the rescue image once with no secret (no config drive: root stays locked), wait until its
   * agent listens on the rescue port and the system is ready, and save it (`savevm` into its own
   * overlay). Built beside its final place and renamed into it: a half-made state is never restored.
   */
  async #buildWarm(key: string, shape: WarmShape): Promise<void> {
    const p = warmPaths(this.#o.dir, key)
    const dir = p.building
    await this.#boots.use(async () => {
      await this.#stop(dir, false, 0)
      await rm(dir, { recursive: true, force: true })
      await mkdir(dir, { recursive: true, mode: 0o700 })
      const t0 = performance.now()
      await run('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', shape.format, '-b', shape.disk, path.join(dir, 'disk.qcow2')])
      try {
        await run('qemu-system-x86_64', this.#warmArgs(dir, `skiff-warm-${key}`, shape, {}), { timeout: 60_000 })
      } catch (e) {
        const err = e as { stderr?: string; message: string }
        throw new DriverError(`QEMU did not start: ${(err.stderr || err.message).trim().split('\n').slice(-3).join(' ')}`)
      }
      try {
        const deadline = Date.now() + this.#o.bootTimeoutMs
        for (;;) {
          const text = await readFile(vmFiles(dir).console, 'utf8').catch(() => '')
          if (text.includes('GUEST-READY')) {
            if (!text.includes('GUEST: rescue channel open'))
              throw new DriverError('the rescue image has no rescue agent (an older guest image)')
            break
          }
          if ((await this.#pid(dir)) === null) throw new DriverError('QEMU exited while the warm rescue system was booting')
          if (Date.now() > deadline) throw new DriverError('the warm rescue system was not ready in time')
          await sleep(100)
        }
        await this.#qmp(dir, async (q) => {
          await q.execute('stop')
          const out = await q.execute<string>('human-monitor-command', { 'command-line': `savevm ${WARM_TAG}` })
          if (out.trim()) throw new DriverError(`savevm failed: ${out.trim()}`)
        })
      } finally {
        await this.#stop(dir, false, 0)
      }
      for (const f of Object.values(vmFiles(dir))) await rm(f, { force: true })
      await writeFile(path.join(dir, 'meta.json'), JSON.stringify({ key, ...shape, savedAt: new Date().toISOString() }, null, 2) + '\n', {
        mode: 0o600,
      })
      await rm(p.dir, { recursive: true, force: true })
      await rename(dir, p.dir)
      await rm(p.failed, { force: true })
      this.#o.logger.info({ warm: key, seconds: +((performance.now() - t0) / 1000).toFixed(1) }, 'warm rescue system saved')
    })
  }

  /**
   * A rescue from the saved warm state: a copy of its disk (with the saved memory) restored into a
   * new QEMU while the server still shuts down, the secrets over the rescue port, then, once the
   * server's QEMU has let go of them, the server's disk hot-added as the second disk, the config
   * drive as the third, and the SSH port forwarded last: the first login finds the rescue whole.
   */
  async #restoreWarm(
    s: State,
    key: string,
    rescue: RescueSpec,
    cfg: ConfigDriveSpec,
    hostKey: HostKey,
    info: NonNullable<State['rescue']>,
    stopping: Promise<void>,
  ): Promise<void> {
    const t0 = performance.now()
    const r = this.#rescueDir(s.id)
    const shapeText = JSON.parse(await readFile(warmPaths(this.#o.dir, key).meta, 'utf8')) as WarmShape
    // A checkpoint (or changes left to settle) is made on a stopped disk, before the restore opens it.
    const early = rescue.checkpoint || existsSync(this.#changesFile(s.id))
    if (early) {
      await stopping
      await this.#prepareServerDisk(s, rescue.checkpoint ?? false)
    } else s.checkpoint = null
    // A reflink where the file system has them (the saved memory makes it ~100 MB), else a copy.
    await copyFile(warmPaths(this.#o.dir, key).disk, path.join(r, 'disk.qcow2'), fsConstants.COPYFILE_FICLONE)
    // No secret on it: the drive is there for the metadata (and a later cold boot of this disk).
    await writeConfigDrive(path.join(r, 'config.iso'), { ...cfg, adminPass: undefined })
    s.rescue = info
    await this.#save(s)
    const serverDisk = this.#serverDiskInRescue(s)
    const chain = await backingChain(serverDisk)
    const files = [...chain.map((c, i) => ({ path: c.filename, write: i === 0 })), { path: path.join(r, 'config.iso'), write: false }]
    const f = vmFiles(r)
    if (Buffer.byteLength(f.channel) > 107) throw new DriverError(`instance path too long for a unix socket: ${f.channel}`)
    await writeFile(f.console, `SKIFF: the rescue system is restored; SSH: ssh -p ${s.port} root@127.0.0.1\n`, { mode: 0o600 })
    await startQemuWithFds(this.#warmArgs(r, `skiff-${s.id}`, shapeText, { port: s.port, loadVm: WARM_TAG, fdSets: files.length }), files)
    const restored = performance.now()
    // One QMP connection throughout: QEMU closes the fds it was given that nothing uses yet
    // whenever its last monitor client goes (monitor_fdset_cleanup).
    await this.#qmp(r, async (q) => {
      const st = await q.execute<{ status: string }>('query-status')
      if (st.status !== 'running') await q.execute('cont')
      const ch = await RescueChannel.connect(f.channel)
      try {
        const expect = (line: string, want: string) => {
          if (line !== want) throw new DriverError(`the rescue system answered '${line}', not '${want}'`)
        }
        await ch.ask(secretLines({ ...rescue, hostname: cfg.hostname, hostKey }), 'applied', 30_000)
        await stopping
        s.running = false
        // The chain bottom up (the backing nodes read-only), on the fds QEMU was given at its start.
        for (let i = chain.length - 1; i >= 0; i--) {
          await q.execute('blockdev-add', {
            'node-name': `vdb${i}`,
            driver: chain[i]!.format,
            'read-only': i > 0,
            ...(i === 0 ? { discard: 'unmap' } : {}),
            file: { driver: 'file', filename: `/dev/fdset/${i + 1}` },
            ...(chain[i]!.format === 'qcow2' ? { backing: i < chain.length - 1 ? `vdb${i + 1}` : null } : {}),
          })
        }
        await q.execute('device_add', { driver: 'virtio-blk-pci', id: 'vdb', drive: 'vdb0', serial: 'vdb', bus: 'pci.0', addr: '0x10' })
        expect(await ch.ask(['disk vdb'], 'disk vdb', 30_000), 'disk vdb vdb')
        await q.execute('blockdev-add', {
          'node-name': 'config-2',
          driver: 'raw',
          'read-only': true,
          file: { driver: 'file', filename: `/dev/fdset/${files.length}` },
        })
        await q.execute('device_add', {
          driver: 'virtio-blk-pci',
          id: 'config-2',
          drive: 'config-2',
          serial: 'config-2',
          bus: 'pci.0',
          addr: '0x11',
        })
        expect(await ch.ask(['disk config-2'], 'disk config-2', 30_000), 'disk config-2 vdc')
        const fwd = await q.execute<string>('human-monitor-command', { 'command-line': `hostfwd_add n0 tcp:127.0.0.1:${s.port}-:22` })
        if (fwd.trim()) throw new DriverError(`the SSH port was not forwarded: ${fwd.trim()}`)
        await ch.ask(['ready'], 'ready', 30_000)
      } finally {
        ch.close()
      }
    })
    s.running = true
    await this.#save(s)
    this.#o.logger.info(
      {
        server: s.id,
        rescue: true,
        warm: key,
        restoredIn: +((restored - t0) / 1000).toFixed(1),
        seconds: +((performance.now() - t0) / 1000).toFixed(1),
      },
      'rescue system restored from its saved state',
    )
  }

  async unrescue(serverId: string, opts: { discardChanges?: boolean } = {}): Promise<void> {
    const s = this.#vm(serverId)
    await this.#op(serverId, async () => {
      await this.#stop(this.#rescueDir(s.id), true, this.#o.stopTimeoutMs)
      s.running = false
      await this.#save(s)
      await this.#settleCheckpoint(s, opts.discardChanges ? 'discard' : 'keep')
      // The server's own disk boots first; the rescue overlay goes only once it has: a failed
      // boot leaves the rescue system for restoreRescue to boot again, with its password.
      s.hostKey = (await this.#boot(s, this.#serverDir(s.id), s.own, this.#ownDisks(s))) ?? s.hostKey
      s.rescue = null
      s.running = true
      await this.#save(s)
      await rm(this.#rescueDir(s.id), { recursive: true, force: true })
    })
  }

  /**
   * Keep or discard what the rescue wrote on top of its checkpoint (checkpoint.ts), before the
   * server's disk boots again. The decision is saved first, so that a re-run after a crash
   * finishes it; until a keep's final rename, disk.qcow2 is as it was. No overlay: nothing to
   * keep or discard (settled already by an attempt cut short; the API refuses a discard of a
   * rescue that held no checkpoint).
   */
  async #settleCheckpoint(s: State, how: 'keep' | 'discard'): Promise<void> {
    const changes = this.#changesFile(s.id)
    if (!existsSync(changes)) {
      if (s.checkpoint) {
        s.checkpoint = null // a re-run: settled already
        await this.#save(s)
      }
      return
    }
    s.checkpoint = { unrescue: how }
    await this.#save(s)
    if (how === 'discard') await discardChanges(changes)
    else await keepChanges(this.#rootFile(s), changes).catch((e: Error) => Promise.reject(new DriverError(e.message)))
    s.checkpoint = null
    await this.#save(s)
    this.#o.logger.info({ server: s.id, checkpoint: how === 'keep' ? 'kept' : 'discarded' }, "rescue's changes settled")
  }

  async hasCheckpoint(serverId: string): Promise<boolean> {
    return this.#vms.has(serverId) && existsSync(this.#changesFile(serverId))
  }

  async restoreRescue(serverId: string): Promise<void> {
    const s = this.#vm(serverId)
    await this.#op(serverId, async () => {
      const r = this.#rescueDir(s.id)
      if (!s.rescue || !existsSync(path.join(r, 'disk.qcow2'))) throw new DriverError(`no rescue disk of server ${s.id} to boot again`)
      // A checkpoint the failed unrescue did not settle is held again: a retry may keep or discard it.
      if (s.checkpoint?.unrescue) s.checkpoint = {}
      if ((await this.#pid(r)) === null) {
        // A server QEMU the failed unrescue left (its guest did not boot) holds the disk's write lock.
        await this.#stop(this.#serverDir(s.id), false, 0)
        // The same overlay, not a fresh one: the rescue system keeps the password and host key of its first boot.
        s.rescue.hostKey = (await this.#bootRescue(s)) ?? s.rescue.hostKey
      }
      s.running = true
      await this.#save(s)
    })
  }

  async restore(serverId: string, powerState: PowerStateValue): Promise<void> {
    const s = this.#vm(serverId)
    await this.#op(serverId, async () => {
      await this.#stop(this.#rescueDir(s.id), false, 0)
      await rm(this.#rescueDir(s.id), { recursive: true, force: true })
      // A failed rescue keeps nothing it wrote: with a checkpoint, disk.qcow2 was never written.
      await rm(this.#changesFile(s.id), { force: true })
      s.checkpoint = null
      s.rescue = null
      s.running = false
      await this.#save(s)
      const up = (await this.#pid(this.#serverDir(s.id))) !== null
      if (powerState === PowerState.RUNNING && !up) await this.#bootOwn(s)
      else if (powerState !== PowerState.RUNNING && up) await this.#stop(this.#serverDir(s.id), true, this.#o.stopTimeoutMs)
      else if (up) {
        s.running = true
        await this.#save(s)
      }
    })
  }

  async destroy(serverId: string): Promise<void> {
    const dir = this.#serverDir(serverId)
    // A QEMU can outlive its directory (removed by hand, or by an interrupted destroy): found by its command line.
    const strays = !this.#vms.has(serverId) && !existsSync(dir) ? ((await this.#qemuProcesses()).get(serverId) ?? []) : []
    if (!this.#vms.has(serverId) && !existsSync(dir) && strays.length === 0) throw new VmNotFound(serverId)
    await this.#op(serverId, async () => {
      const s = this.#vms.get(serverId)
      if (s) s.running = false
      await this.#stop(this.#rescueDir(serverId), false, 0)
      await this.#stop(dir, false, 0)
      for (const pid of strays) {
        try {
          process.kill(pid, 'SIGKILL')
        } catch {
          /* gone already */
        }
        if (!(await this.#waitExit(pid, 10_000))) throw new DriverError(`QEMU ${pid} did not exit after SIGKILL`)
      }
      this.#vms.delete(serverId)
      await rm(dir, { recursive: true, force: true })
    })
  }

  // ------------------------------------------------------------------ VolumeDriver
  // A volume's data is on the host whose agent created it (volumes.host); it is attached to
  // servers of that host only (another host's agent finds no file and the attach fails).

  async createVolume(spec: VolumeSpec): Promise<void> {
    let source: VolumeSource = { kind: 'blank' }
    if (spec.snapshotId) source = { kind: 'file', file: this.#volumes.snapshotFile(spec.snapshotId) }
    else if (spec.sourceVolid) source = { kind: 'file', file: this.#volumes.file(spec.sourceVolid) }
    else if (spec.imageId) {
      const image = await this.#o.resolveImage(spec.imageId)
      source = { kind: 'image', file: image.disk, format: image.format }
    }
    if (source.kind === 'file' && !existsSync(source.file))
      throw new DriverError(`the data volume ${spec.id} is made from is not on this host`)
    await this.#volumes.create(spec.id, spec.sizeGb, source)
  }

  listVolumes(): Promise<string[]> {
    return this.#volumes.list()
  }

  async deleteVolume(volumeId: string): Promise<void> {
    const holder = [...this.#vms.values()].find((s) => s.rootVolume === volumeId || s.volumes?.includes(volumeId))
    if (holder) throw new DriverError(`volume ${volumeId} is attached to server ${holder.id}`)
    await this.#volumes.delete(volumeId)
  }

  async handOverVolume(volumeId: string): Promise<string> {
    const to = path.join(this.#o.dir, 'handoff', `vol-${volumeId}-${Date.now().toString(36)}`, `${volumeId}.qcow2`)
    try {
      await this.#volumes.copyOut(volumeId, to)
    } catch (err) {
      await rm(path.dirname(to), { recursive: true, force: true })
      throw err
    }
    return to
  }

  async takeVolume(volumeId: string, from: string): Promise<void> {
    try {
      await this.#volumes.adopt(volumeId, from)
    } finally {
      // Taken in or not, the hand-over's copy goes (the volume's host still has its own).
      await rm(path.dirname(from), { recursive: true, force: true })
    }
  }

  /** The VM dir running now that holds the volume, if any. */
  async #runningHolder(volumeId: string): Promise<string | null> {
    for (const s of this.#vms.values()) {
      if (s.rootVolume !== volumeId && !s.volumes?.includes(volumeId)) continue
      const dir = this.#currentDir(s)
      if ((await this.#pid(dir)) !== null) return dir
    }
    return null
  }

  async extendVolume(volumeId: string, sizeGb: number): Promise<void> {
    const dir = await this.#runningHolder(volumeId)
    if (dir) await this.#qmp(dir, (q) => blockResize(q, volumeId, sizeGb))
    else await this.#volumes.extend(volumeId, sizeGb)
  }

  async createVolumeSnapshot(volumeId: string, snapshotId: string): Promise<void> {
    const dir = await this.#runningHolder(volumeId)
    if (!dir) return this.#volumes.snapshot(volumeId, snapshotId, false)
    // In use: the guest is paused for the copy (its disks flushed), and runs on after it.
    const st = await this.#qmp(dir, (q) => q.execute<{ status: string }>('query-status'))
    if (st.status === 'running') await this.#qmp(dir, (q) => q.execute('stop'))
    try {
      await this.#volumes.snapshot(volumeId, snapshotId, true)
    } finally {
      if (st.status === 'running') await this.#qmp(dir, (q) => q.execute('cont')).catch(() => {})
    }
  }

  async deleteVolumeSnapshot(snapshotId: string): Promise<void> {
    await this.#volumes.deleteSnapshot(snapshotId)
  }

  /**
   * Plug the volume into the server's running VM (the rescue VM while rescued), then record it:
   * every later boot has it on the command line. A VM that is off only records it.
   */
  async attachVolume(serverId: string, volumeId: string): Promise<void> {
    const s = this.#vm(serverId)
    if (s.rootVolume === volumeId) return // the boot volume: the root disk already
    if (!this.#volumes.has(volumeId)) throw new DriverError(`the data of volume ${volumeId} is not on the host of server ${serverId}`)
    if (s.suspended) throw new DriverError(`server ${serverId} is suspended: its saved devices cannot change`)
    await this.#op(serverId, async () => {
      const dir = this.#currentDir(s)
      if ((await this.#pid(dir)) !== null) {
        const { node } = volumeNames(volumeId)
        const nodes = await this.#qmp(dir, (q) => q.execute<{ 'node-name': string }[]>('query-named-block-nodes', { flat: true }))
        // Plugged in already: an attach run again after its agent stopped.
        if (!nodes.some((n) => n['node-name'] === node)) {
          await this.#qmpTurn(dir, () => blockdevAddOpen(vmFiles(dir).qmp, volumeId, this.#volumes.file(volumeId)))
          await this.#qmp(dir, (q) => deviceAdd(q, volumeId))
        }
      }
      if (!s.volumes?.includes(volumeId)) s.volumes = [...(s.volumes ?? []), volumeId]
      await this.#save(s)
      this.#o.logger.info({ server: s.id, volume: volumeId, rescued: s.rescue !== null }, 'volume attached')
    })
  }

  /** Unplug the volume from the running VM (the guest must let go), then forget it. */
  async detachVolume(serverId: string, volumeId: string): Promise<void> {
    const s = this.#vm(serverId)
    if (s.rootVolume === volumeId) throw new DriverError(`volume ${volumeId} is the root disk of server ${serverId}`)
    if (s.suspended) throw new DriverError(`server ${serverId} is suspended: its saved devices cannot change`)
    await this.#op(serverId, async () => {
      const dir = this.#currentDir(s)
      if ((await this.#pid(dir)) !== null) await this.#qmp(dir, (q) => unplug(q, volumeId, DETACH_TIMEOUT_MS))
      s.volumes = (s.volumes ?? []).filter((v) => v !== volumeId)
      await this.#save(s)
      this.#o.logger.info({ server: s.id, volume: volumeId }, 'volume detached')
    })
  }

  // ------------------------------------------------------------------ moves (resize, cold migration)
  // The source stops its VM and copies its overlay (disk.qcow2) into `<qemu-dir>/handoff/`, a path
  // the destination's agent reads on this machine (two agents of one machine have data dirs of
  // their own; both run as the same user). The destination moves the copy into its instance dir,
  // rebases it onto its own pinned copy of the image (the base a qcow2 overlay names is a path of
  // the source's dir), grows it to the flavor's disk (qemu-img resize) and boots it with the new
  // flavor's vCPUs and memory. The source keeps its VM dir until confirm (dropped) or revert
  // (booted again). A resize on one host keeps the old overlay beside the new one
  // (old-disk.qcow2, state.old.json) for the same purpose. A volume-backed server has no overlay:
  // its root volume's file goes as the attached volumes' do, with the kernel and initrd it boots
  // with (handoff/kernel, handoff/initrd: pinned into the destination's base/); nothing to rebase
  // or grow (the volume's size is its own). A resize of one on its own host keeps only the old state.

  async #virtualSize(file: string): Promise<number> {
    const { stdout } = await run('qemu-img', ['info', '-U', '--output', 'json', file])
    return (JSON.parse(stdout) as { 'virtual-size': number })['virtual-size']
  }

  /** Source of a move to another host: where its volumes' own files wait (until confirm drops them, or revert puts them back). */
  #movedVolumesDir(serverId: string): string {
    return path.join(this.#serverDir(serverId), 'moved-volumes')
  }

  /** Source: the volumes moved aside by a move that did not happen (failed, or reverted) back in place. Done already: nothing. */
  async #volumesBack(serverId: string): Promise<void> {
    const aside = this.#movedVolumesDir(serverId)
    for (const f of await readdir(aside).catch(() => [] as string[])) {
      if (f.endsWith('.qcow2')) await this.#volumes.adopt(f.slice(0, -'.qcow2'.length), path.join(aside, f))
    }
    await rm(aside, { recursive: true, force: true })
  }

  async migrateDiskAndPowerOff(serverId: string, to: ServerSpec, opts: { sameHost?: boolean } = {}): Promise<MigratedDisk> {
    const s = this.#vm(serverId)
    if (s.rescue) throw new DriverError('Resize error: the server is rescued.')
    return this.#op(serverId, async () => {
      const disk = path.join(this.#serverDir(serverId), 'disk.qcow2')
      // As libvirt's driver: a root disk is never shrunk (a boot volume's size is the volume's, not the flavor's).
      if (!s.rootVolume && to.diskGb * 2 ** 30 < (await this.#virtualSize(disk))) {
        throw new DriverError('Resize error: Unable to resize disk down.')
      }
      await this.#stop(this.#serverDir(serverId), true, this.#o.stopTimeoutMs)
      s.running = false
      await this.#save(s)
      const handoff = path.join(this.#o.dir, 'handoff', `${serverId}-${Date.now().toString(36)}`)
      await mkdir(handoff, { recursive: true, mode: 0o700 })
      // A volume-backed server has no overlay: its root volume goes as the attached ones do, and
      // the kernel and initrd it boots with (those of the image its volume was made from); on a
      // resize here nothing (the same volume, kernel and initrd).
      if (s.rootVolume) {
        if (!opts.sameHost)
          for (const f of ['kernel', 'initrd'] as const) {
            await link(s.own[f], path.join(handoff, f)).catch(() => copyFile(s.own[f], path.join(handoff, f)))
          }
      } else {
        await copyFile(disk, path.join(handoff, 'disk.qcow2'))
      }
      // The config drive too (already without the password): the guest finds its metadata as before.
      await copyFile(path.join(this.#serverDir(serverId), 'config.iso'), path.join(handoff, 'config.iso')).catch(() => {})
      const volumes = opts.sameHost ? [] : [...(s.volumes ?? [])]
      const moving = [...(s.rootVolume && !opts.sameHost ? [s.rootVolume] : []), ...volumes]
      try {
        // Each volume goes along (the guest is stopped: nothing writes them). This host's own
        // files go aside into the VM dir: kept for a revert, dropped with the VM at confirm, never
        // served from here meanwhile (the volume's host is the destination's from finish).
        for (const v of moving) await this.#volumes.copyOut(v, path.join(handoff, 'v', `${v}.qcow2`))
        if (moving.length) await mkdir(this.#movedVolumesDir(serverId), { recursive: true, mode: 0o700 })
        for (const v of moving) await rename(this.#volumes.file(v), path.join(this.#movedVolumesDir(serverId), `${v}.qcow2`))
      } catch (err) {
        await this.#volumesBack(serverId)
        await rm(handoff, { recursive: true, force: true })
        throw err
      }
      return {
        kind: 'local',
        path: path.join(handoff, 'disk.qcow2'),
        ...(volumes.length ? { volumes } : {}),
        ...(s.rootVolume && !opts.sameHost ? { rootVolume: s.rootVolume } : {}),
      }
    })
  }

  async finishMigration(spec: ServerSpec, handed: MigratedDisk, powerOn: boolean): Promise<void> {
    if (handed.kind === 'incoming') return this.#finishLiveMigration(spec.id, handed.running && powerOn)
    if (handed.kind !== 'local') throw new DriverError(`the qemu driver cannot boot a ${handed.kind} disk`)
    await this.#op(spec.id, async () => {
      const dir = this.#serverDir(spec.id)
      const disk = path.join(dir, 'disk.qcow2')
      const old = this.#vms.get(spec.id)
      await mkdir(dir, { recursive: true, mode: 0o700 })
      // Resize on this host: the old overlay (none for a volume-backed server: its root volume was not handed over) and state.
      const here = old !== undefined && (existsSync(disk) || (!!old.rootVolume && !handed.rootVolume))
      if (here) {
        // They stay beside the new ones until confirm or revert.
        await this.#stop(dir, false, 0)
        if (!old.rootVolume) await rename(disk, path.join(dir, 'old-disk.qcow2'))
        await writeFile(path.join(dir, 'state.old.json'), JSON.stringify(old) + '\n', { mode: 0o600 })
      }
      const handoff = path.dirname(handed.path)
      // Volume-backed: the kernel and initrd came with the volume from another host, or are this host's already.
      const rootVolume = here ? (old.rootVolume ?? null) : (handed.rootVolume ?? null)
      const image = !rootVolume
        ? await this.#o.resolveImage(spec.imageId)
        : here
          ? { disk: '', format: 'qcow2' as const, kernel: old.own.kernel, initrd: old.own.initrd }
          : { disk: '', format: 'qcow2' as const, kernel: path.join(handoff, 'kernel'), initrd: path.join(handoff, 'initrd') }
      const port = old?.port ?? (await this.#allocatePort())
      // The volumes stay attached in the same order (the same devices in the guest): this host's
      // own (a resize here), or those handed over with the disk.
      const volumes = old ? (old.volumes ?? []) : (handed.volumes ?? [])
      const s: State = { ...(await this.#newState(spec, image, port)), hostKey: old?.hostKey ?? null, volumes, rootVolume }
      // The state first: a failure from here on is undone by dropMigrationTarget, which finds in it
      // the volumes taken in (it deletes them here: the source still has them all).
      this.#vms.set(s.id, s)
      this.#reservedPorts.delete(port)
      await this.#save(s)
      const taken = old ? [] : [...(rootVolume ? [rootVolume] : []), ...volumes]
      for (const v of taken) await this.#volumes.adopt(v, path.join(handoff, 'v', `${v}.qcow2`))
      if (!rootVolume) await rename(handed.path, disk).catch(() => copyFile(handed.path, disk))
      const iso = path.join(handoff, 'config.iso')
      if (!old && existsSync(iso)) await copyFile(iso, path.join(dir, 'config.iso'))
      await rm(handoff, { recursive: true, force: true })
      if (!rootVolume) {
        // The overlay's base is a path of the source's dir: this host's own copy of the same image.
        await run('qemu-img', ['rebase', '-u', '-f', 'qcow2', '-F', image.format, '-b', await this.#pin(image.disk), disk])
        if (spec.diskGb * 2 ** 30 > (await this.#virtualSize(disk))) await run('qemu-img', ['resize', '-q', disk, `${spec.diskGb}G`])
      }
      if (!existsSync(path.join(dir, 'config.iso'))) {
        await writeConfigDrive(path.join(dir, 'config.iso'), { uuid: spec.id, name: spec.name, hostname: hostname(spec.name) })
      }
      if (powerOn) await this.#bootOwn(s)
    })
  }

  async confirmMigration(serverId: string): Promise<void> {
    await this.#op(serverId, async () => {
      const dir = this.#serverDir(serverId)
      if (existsSync(path.join(dir, 'old-disk.qcow2')) || existsSync(path.join(dir, 'state.old.json'))) {
        await rm(path.join(dir, 'old-disk.qcow2'), { force: true })
        await rm(path.join(dir, 'state.old.json'), { force: true })
        return
      }
      // The source of a move to another host: its VM and disk go; after a live migration the
      // volumes' files too (the destination serves its mirrored copies; a cold move kept this
      // host's aside in the VM dir).
      await this.#stop(dir, false, 0)
      // After a restart this agent no longer adopts the server (its host is the destination's): its state file tells.
      const text = await readFile(path.join(dir, 'state.json'), 'utf8').catch(() => null)
      const s = this.#vms.get(serverId) ?? (text ? (JSON.parse(text) as State) : undefined)
      if (s?.outgoing) for (const v of [...(s.rootVolume ? [s.rootVolume] : []), ...(s.volumes ?? [])]) await this.#volumes.delete(v)
      this.#vms.delete(serverId)
      await rm(dir, { recursive: true, force: true })
    })
  }

  async dropMigrationTarget(serverId: string): Promise<void> {
    await this.#op(serverId, async () => {
      const dir = this.#serverDir(serverId)
      await this.#stop(dir, false, 0)
      const oldDisk = path.join(dir, 'old-disk.qcow2')
      if (existsSync(oldDisk) || existsSync(path.join(dir, 'state.old.json'))) {
        // A volume-backed server's resize here kept no old disk: its root volume is the same.
        if (existsSync(oldDisk)) await rename(oldDisk, path.join(dir, 'disk.qcow2'))
        const old = JSON.parse(await readFile(path.join(dir, 'state.old.json'), 'utf8')) as State
        old.running = false
        this.#vms.set(serverId, old)
        await this.#save(old)
        await rm(path.join(dir, 'state.old.json'), { force: true })
        return
      }
      // The destination of a move to another host: the volumes it took in go too (the source has them).
      const text = await readFile(path.join(dir, 'state.json'), 'utf8').catch(() => null)
      const here = this.#vms.get(serverId) ?? (text ? (JSON.parse(text) as State) : undefined)
      for (const v of [...(here?.rootVolume ? [here.rootVolume] : []), ...(here?.volumes ?? [])]) await this.#volumes.delete(v)
      this.#vms.delete(serverId)
      await rm(dir, { recursive: true, force: true })
    })
  }

  async finishRevertMigration(serverId: string, powerOn: boolean): Promise<void> {
    // The source of a move to another host does not adopt the server after a restart (its host is
    // the destination's): its VM dir still holds the state.
    if (!this.#vms.has(serverId)) {
      const text = await readFile(path.join(this.#serverDir(serverId), 'state.json'), 'utf8').catch(() => null)
      if (text) this.#vms.set(serverId, JSON.parse(text) as State)
    }
    const s = this.#vm(serverId)
    await this.#op(serverId, async () => {
      const dir = this.#serverDir(serverId)
      // The volumes a cold move took along: this host's own files again (the destination dropped its copies).
      await this.#volumesBack(serverId)
      const up = (await this.#pid(dir)) !== null
      // The source of a live migration whose destination did not run the guest: it runs on here.
      if (up && s.outgoing) {
        if (s.outgoing.resume) await this.#qmp(dir, (q) => resumeHere(q))
        s.outgoing = null
        await this.#save(s)
        return
      }
      if (powerOn && !up) await this.#bootOwn(s)
      else if (!powerOn && up) await this.#stop(dir, true, this.#o.stopTimeoutMs)
    })
  }

  // ------------------------------------------------------------------ live migration (live-migration.ts)
  // The destination prepares a QEMU that waits for the guest, over a fresh overlay of its own copy
  // of the image as large as the source's disk, with a config drive of the same metadata; the
  // source mirrors its overlay there over NBD and sends the memory; the destination runs it. A
  // volume-backed server: no overlay; a blank file of its root volume's size, mirrored whole as
  // the attached volumes are, and the source's kernel and initrd pinned here.

  async checkLiveMigrationSource(serverId: string): Promise<LiveMigrationSource> {
    const s = this.#vm(serverId)
    if (s.rescue) throw new DriverError('Live migration failed: the server is rescued.')
    if ((await this.#pid(this.#serverDir(serverId))) === null) throw new DriverError('Live migration failed: the server has no running VM.')
    // The attached volumes go along, mirrored whole: the destination makes a blank file of each
    // size, and puts each device in the PCI slot it has here (a hot-plugged one took the next free).
    const volumes: { id: string; bytes: number; pciSlot?: number }[] = []
    if (s.volumes?.length) {
      type PciBus = { devices: { slot: number; qdev_id?: string }[] }
      const buses = await this.#qmp(this.#serverDir(serverId), (q) => q.execute<PciBus[]>('query-pci'))
      const slots = new Map(buses.flatMap((b) => b.devices).map((d) => [d.qdev_id ?? '', d.slot]))
      for (const id of s.volumes) {
        const pciSlot = slots.get(volumeNames(id).device)
        volumes.push({ id, bytes: await this.#virtualSize(this.#volumes.file(id)), ...(pciSlot === undefined ? {} : { pciSlot }) })
      }
    }
    // A volume-backed server: no overlay; its root volume goes whole as the others.
    if (s.rootVolume) {
      return {
        kind: 'qemu',
        diskBytes: 0,
        ...(volumes.length ? { volumes } : {}),
        rootVolume: { id: s.rootVolume, bytes: await this.#virtualSize(this.#volumes.file(s.rootVolume)) },
        boot: { kernel: s.own.kernel, initrd: s.own.initrd },
      }
    }
    return {
      kind: 'qemu',
      diskBytes: await this.#virtualSize(path.join(this.#serverDir(serverId), 'disk.qcow2')),
      ...(volumes.length ? { volumes } : {}),
    }
  }

  async preLiveMigration(spec: ServerSpec, source: LiveMigrationSource): Promise<LiveMigrationTarget> {
    if (source.kind !== 'qemu') throw new DriverError(`the qemu driver cannot receive a guest from a ${source.kind} host`)
    const known = this.#vms.get(spec.id)
    if (known && !known.incoming) throw new DriverError(`server ${spec.id} already has a VM on this host`)
    return this.#op(spec.id, async () => {
      const dir = this.#serverDir(spec.id)
      // What an attempt cut short left (its QEMU holds the ports and the disk's lock), known from
      // its state file too when this agent restarted since.
      const text = await readFile(path.join(dir, 'state.json'), 'utf8').catch(() => null)
      const prior = known ?? (text ? (JSON.parse(text) as State) : undefined)
      // A volume's file here that no attempt of this migration made: another's data, never overwritten.
      const volumes = source.volumes ?? []
      const root = source.rootVolume ?? null
      const priorHas = (id: string) => prior?.incoming && (prior.rootVolume === id || prior.volumes?.includes(id))
      for (const v of [...(root ? [root] : []), ...volumes]) {
        if (this.#volumes.has(v.id) && !priorHas(v.id))
          throw new DriverError(`Live migration failed: the data of volume ${v.id} is on the destination already.`)
      }
      if (root && !source.boot) throw new DriverError('Live migration failed: the source did not say what the volume-backed server boots.')
      await this.#stop(dir, false, 0)
      await rm(dir, { recursive: true, force: true })
      await mkdir(dir, { recursive: true, mode: 0o700 })
      // Volume-backed: the kernel and initrd the source boots it with (its root volume's image's).
      const image = root
        ? { disk: '', format: 'qcow2' as const, kernel: source.boot!.kernel, initrd: source.boot!.initrd }
        : await this.#o.resolveImage(spec.imageId)
      const port = known?.port ?? (await this.#allocatePort())
      const volumeSlots = Object.fromEntries(volumes.flatMap((v) => (v.pciSlot === undefined ? [] : [[v.id, v.pciSlot]])))
      const s: State = {
        ...(await this.#newState(spec, image, port)),
        incoming: true,
        volumes: volumes.map((v) => v.id),
        volumeSlots,
        rootVolume: root?.id ?? null,
      }
      this.#vms.set(s.id, s)
      this.#reservedPorts.delete(port)
      // Recorded before the files are made: dropMigrationTarget removes what it lists.
      await this.#save(s)
      if (root) {
        await this.#volumes.createToReceive(root.id, root.bytes)
      } else {
        const disk = path.join(dir, 'disk.qcow2')
        const base = await this.#pin(image.disk)
        await run('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', image.format, '-b', base, disk, String(source.diskBytes)])
      }
      for (const v of volumes) await this.#volumes.createToReceive(v.id, v.bytes)
      await writeConfigDrive(path.join(dir, 'config.iso'), {
        uuid: spec.id,
        name: spec.name,
        hostname: hostname(spec.name),
        publicKeys: spec.authorizedKeys,
        userData: spec.userData,
      })
      await this.#launch(s, dir, s.own, this.#ownDisks(s), 'the server arrives by live migration', { incoming: true })
      const address = this.#o.migrationAddress ?? '127.0.0.1'
      const ports = { nbd: 0, migration: 0 }
      try {
        ports.nbd = await ephemeralPort(address)
        ports.migration = await ephemeralPort(address)
        await this.#qmp(dir, (q) =>
          receive(
            q,
            address,
            ports,
            [...(root ? [root.id] : []), ...(s.volumes ?? [])].map((v) => volumeNames(v).node),
            !root,
          ),
        )
      } catch (err) {
        throw new DriverError(`Live migration failed: the destination cannot wait for the guest at ${address}: ${(err as Error).message}`)
      }
      this.#o.logger.info({ server: s.id, address, ...ports }, 'waiting for a live migration')
      return { kind: 'qemu', address, migrationPort: ports.migration, nbdPort: ports.nbd }
    })
  }

  async liveMigrate(serverId: string, target: LiveMigrationTarget, control?: LiveMigrationControl): Promise<MigratedDisk> {
    if (target.kind !== 'qemu') throw new DriverError(`the qemu driver cannot live-migrate to a ${target.kind} host`)
    const s = this.#vm(serverId)
    if (s.rescue) throw new DriverError('Live migration failed: the server is rescued.')
    return this.#op(serverId, async () => {
      const dir = this.#serverDir(serverId)
      if ((await this.#pid(dir)) === null) throw new DriverError('Live migration failed: the server has no running VM.')
      const disks = [...(s.rootVolume ? [s.rootVolume] : []), ...(s.volumes ?? [])]
      let bytes = s.memMb * 2 ** 20 + (s.rootVolume ? 0 : (await stat(path.join(dir, 'disk.qcow2'))).size)
      for (const v of disks) bytes += (await stat(this.#volumes.file(v))).size
      const gib = bytes / 2 ** 30
      // As Nova's live_migration_completion_timeout: per GiB, at least one; 0: no limit.
      const perGiB = this.#o.liveMigrationTimeoutPerGiBSeconds ?? 800
      const timeoutMs = perGiB === 0 ? Infinity : perGiB * 1000 * Math.max(1, gib)
      const t0 = performance.now()
      // Recorded before the copy: an attempt after this agent died mid-way restores what the first one found.
      const again = s.outgoing?.resume
      if (again === undefined) {
        const { status } = await this.#qmp(dir, (q) => q.execute<{ status: string }>('query-status'))
        s.outgoing = { resume: status === 'running' }
        await this.#save(s)
      }
      try {
        const { running } = await this.#qmp(dir, (q) =>
          send(q, {
            address: target.address,
            nbdPort: target.nbdPort,
            migrationPort: target.migrationPort,
            deadline: Date.now() + timeoutMs,
            wasRunning: again,
            volumeNodes: disks.map((v) => volumeNames(v).node),
            root: !s.rootVolume,
            onProgress: (what) => this.#o.logger.info({ server: serverId, seconds: +((performance.now() - t0) / 1000).toFixed(1) }, what),
            bandwidth: this.#o.liveMigrationBandwidthBytes || undefined,
            requested: control && (() => control.requested()),
            onStats: control?.progress && ((p) => control.progress!(p)),
          }),
        )
        // The guest is on the destination now, stopped here: this QEMU goes at confirm, or runs again.
        return { kind: 'incoming', running }
      } catch (err) {
        s.outgoing = null
        await this.#save(s)
        if (err instanceof CopyCancelled) throw new LiveMigrationCancelled()
        throw new DriverError(`Live migration failed: ${(err as Error).message}`)
      }
    })
  }

  /** Destination: the guest has arrived; run it (`run`) and learn its host key as a client will see it. */
  async #finishLiveMigration(serverId: string, run: boolean): Promise<void> {
    // After a restart of this agent the waiting VM is known by its directory only (the server's host is still the source).
    if (!this.#vms.has(serverId)) {
      const text = await readFile(path.join(this.#serverDir(serverId), 'state.json'), 'utf8').catch(() => null)
      if (text) this.#vms.set(serverId, JSON.parse(text) as State)
    }
    const s = this.#vm(serverId)
    if (!s.incoming) throw new DriverError(`server ${serverId} has no VM waiting for a live migration here`)
    await this.#op(serverId, async () => {
      const dir = this.#serverDir(serverId)
      await this.#qmp(dir, (q) => resumeArrived(q, run))
      s.incoming = false
      // The next boot lays the volumes out from the command line again (a slot kept could clash with a later hot plug's).
      s.volumeSlots = null
      s.running = true
      s.hostKey = (run ? await this.#handshakeHostKey(s.port, Date.now() + 30_000) : null) ?? s.hostKey
      await this.#save(s)
    })
  }

  /** Instance directories, and QEMU processes of this driver's dir (even one whose directory is gone). */
  async listVms(): Promise<string[]> {
    const dirs = await readdir(path.join(this.#o.dir, 's'), { withFileTypes: true }).catch(() => [])
    const ids = new Set(dirs.filter((d) => d.isDirectory()).map((d) => d.name))
    for (const id of (await this.#qemuProcesses()).keys()) ids.add(id)
    return [...ids]
  }

  /**
   * QEMU processes started for this driver's instance directories, by server id, from /proc: the
   * `-pidfile` argument names `<dir>/s/<id>/...` (a rescue VM's, `<dir>/s/<id>/r/...`).
   */
  async #qemuProcesses(): Promise<Map<string, number[]>> {
    const prefix = path.join(this.#o.dir, 's') + path.sep
    const out = new Map<string, number[]>()
    for (const entry of await readdir('/proc').catch(() => [])) {
      if (!/^\d+$/.test(entry)) continue
      const args = (await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '')).split('\0')
      if (!args[0]?.includes('qemu-system')) continue
      const arg = args.find((a) => a.startsWith(prefix))
      const id = arg?.slice(prefix.length).split(path.sep)[0]
      if (id) out.set(id, [...(out.get(id) ?? []), Number(entry)])
    }
    return out
  }

  async getInfo(serverId: string): Promise<{ powerState: PowerStateValue }> {
    const s = this.#vms.get(serverId)
    if (!s) return { powerState: PowerState.NOSTATE }
    const dir = this.#currentDir(s)
    if ((await this.#pid(dir)) === null) return { powerState: s.suspended ? PowerState.SUSPENDED : PowerState.SHUTDOWN }
    const status = await this.#qmp(dir, (q) => q.execute<{ status: string }>('query-status')).catch(() => ({ status: 'running' }))
    if (status.status === 'paused') return { powerState: PowerState.PAUSED }
    if (status.status === 'shutdown') return { powerState: PowerState.SHUTDOWN }
    if (status.status === 'guest-panicked' || status.status === 'internal-error') return { powerState: PowerState.CRASHED }
    return { powerState: PowerState.RUNNING }
  }

  async consoleOutput(serverId: string): Promise<string> {
    const s = this.#vm(serverId)
    const fh = await open(vmFiles(this.#currentDir(s)).console, 'r').catch(() => undefined)
    if (!fh) return ''
    try {
      const { size } = await fh.stat()
      const want = Math.min(size, 256 * 1024)
      const buf = Buffer.alloc(want)
      await fh.read(buf, 0, want, size - want)
      return buf.toString('utf8').replace(/\r\n/g, '\n')
    } finally {
      await fh.close()
    }
  }

  hostKeyFingerprint(serverId: string): string | null {
    const s = this.#vms.get(serverId)
    return (s?.rescue ? s.rescue.hostKey : s?.hostKey) ?? null
  }

  /** Where to reach the server's SSH (the same port through rescue). */
  sshAccess(serverId: string): { host: string; port: number; hostKeyFingerprint: string | null; serialEndpoint: string | null } | null {
    const s = this.#vms.get(serverId)
    if (!s) return null
    const serialEndpoint = this.#o.serialRelayEndpoint ?? `unix:${this.serialSocket(serverId)}`
    return { host: '127.0.0.1', port: s.port, hostKeyFingerprint: this.hostKeyFingerprint(serverId), serialEndpoint }
  }

  /** The serial chardev: a unix socket server in the running VM's directory (the rescue VM's while rescued). */
  serialSocket(serverId: string): string | null {
    const s = this.#vms.get(serverId)
    return s ? vmFiles(this.#currentDir(s)).serial : null
  }

  /** After a restart: re-attach to the VMs still running, from their directories. */
  async adopt(servers: { spec: ServerSpec; powerState: PowerStateValue; rescued: boolean }[]): Promise<void> {
    // A warm rescue system that a stopped process was saving: its QEMU would run on for nothing.
    for (const d of await readdir(path.join(this.#o.dir, 'warm')).catch(() => [])) {
      if (!d.endsWith('.b') || this.#warmBuilds.has(d.slice(0, -2))) continue
      await this.#stop(path.join(this.#o.dir, 'warm', d), false, 0).catch(() => {})
      await rm(path.join(this.#o.dir, 'warm', d), { recursive: true, force: true })
    }
    for (const { spec, powerState } of servers) {
      if (this.#vms.has(spec.id)) continue
      const text = await readFile(path.join(this.#serverDir(spec.id), 'state.json'), 'utf8').catch(() => null)
      if (!text) {
        this.#o.logger.warn({ server: spec.id }, 'no VM directory for this server')
        continue
      }
      const s = JSON.parse(text) as State
      // The database's view decides what should run; the watcher reports a QEMU that is gone.
      s.running = powerState === PowerState.RUNNING || powerState === PowerState.PAUSED
      this.#vms.set(s.id, s)
      const pid = await this.#pid(this.#currentDir(s))
      this.#o.logger.info(
        { server: s.id, pid, rescued: s.rescue !== null },
        pid ? 're-attached to a running VM' : 'adopted a VM that is not running',
      )
    }
    await this.#checkVms()
  }

  /** Known server ids (tests, diagnostics). */
  async listDirs(): Promise<string[]> {
    return readdir(path.join(this.#o.dir, 's')).catch(() => [])
  }

  async #checkVms() {
    if (this.#closed) return
    for (const s of this.#vms.values()) {
      if (!s.running || this.#busy.has(s.id)) continue
      if ((await this.#pid(this.#currentDir(s))) !== null) continue
      if (!s.running || this.#busy.has(s.id)) continue
      s.running = false
      await this.#save(s).catch(() => {})
      const tail = (await this.consoleOutput(s.id).catch(() => '')).trim().split('\n').slice(-1)[0] ?? ''
      const reason = `the ${s.rescue ? 'rescue ' : ''}VM's QEMU is gone (last console line: ${JSON.stringify(tail.slice(0, 200))})`
      this.#o.logger.warn({ server: s.id, rescued: s.rescue !== null }, 'VM died')
      this.#o.onVmGone?.(s.id, { rescued: s.rescue !== null, reason })
    }
  }
}

/** How long a guest has to let go of a volume being detached (ACPI eject; slow under TCG). */
const DETACH_TIMEOUT_MS = 120_000

/** The internal snapshot of disk.qcow2 that holds a suspended guest's memory and devices. */
const SUSPEND_TAG = 'skiff-suspend'

/** A host name from a server name, as Nova sanitizes it. */
function hostname(name: string): string {
  return (
    name
      .toLowerCase()
      .replace(/[^a-z0-9-]+/g, '-')
      .replace(/^-+|-+$/g, '')
      .slice(0, 63) || 'server'
  )
}

/** A floppy holds 2.88 MB at most: why the rescue image cannot be attached as one and booted. */
async function floppyRefusal(image: QemuImage): Promise<string> {
  const { stdout } = await run('qemu-img', ['info', '-U', '--output', 'json', image.disk])
  const size = (JSON.parse(stdout) as { 'virtual-size': number })['virtual-size']
  const MAX = 2880 * 1024
  return size > MAX
    ? `the rescue image's disk (${(size / 1048576).toFixed(0)} MiB) does not fit a floppy (2.88 MB at most): it cannot be attached as one (hw_rescue_device=floppy)`
    : 'the qemu driver boots its rescue systems from a disk or a CD-ROM, not a floppy (hw_rescue_device=floppy)'
}
