// The simulated hypervisor: deterministic, in memory, with a configurable time per operation
// and fault injection (fail, delay or hang a phase of an operation, for some servers, the next
// N times; the rules come from a FaultRules source, the database's when main.ts wires it). It models what a user can check on a real one: which system is booted, with which
// root password (kept as a hash) and keys, and the disks attached.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { MemoryFaultRules, type ActiveFault, type FaultRule, type FaultRules, type SimulatedPhase } from './fault-rules.ts'
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

/** A simulated volume: its size, what a test wrote on it, and the server it is plugged into. */
interface SimVolume {
  sizeGb: number
  files: Map<string, string>
  attachedTo: { serverId: string; device: string } | null
}

interface System {
  description: string
  passwordHash: Buffer | null
  authorizedKeys: string[]
}

interface Vm {
  spec: ServerSpec
  power: PowerStateValue
  /** The server's own system, on its own disk. */
  own: System
  /** The rescue system while rescued; the server's disk is then the second disk (stable device: the first). */
  rescue: (System & { imageId: string; stable: RescueSpec['stable'] }) | null
  /** A rescue's checkpoint: the disk's files when the rescue began (what a discard goes back to). */
  checkpoint: Map<string, string> | null
  hostKey: string
  console: string[]
  boots: number
  /** What the server's own disk holds, as a test writes it (path → content); copied by snapshots. */
  files: Map<string, string>
  /** The guest's memory, saved by suspend: which boot it was in. */
  saved: { boot: number } | null
}

/** What a simulated snapshot image holds: the disk's files, as JSON after a header line. */
const SNAPSHOT_HEADER = 'skiff-simulated-disk v1\n'

const hash = (password: string) => createHash('sha256').update(password).digest()
const fingerprint = (key: string) => 'SHA256:' + createHash('sha256').update(key).digest('base64').replace(/=+$/, '')

export class SimulatedDriver implements VirtDriver, VolumeDriver {
  readonly name = 'simulated'
  readonly #vms = new Map<string, Vm>()
  /**
   * The source's VM of a move until it is confirmed or reverted. One driver may hold both hosts
   * of a move (`--simulated-hosts`): the destination's VM is then the one in #vms, a new object.
   */
  readonly #kept = new Map<string, Vm>()
  readonly #faults: FaultRules
  readonly #delayMs: number
  readonly #abort = new AbortController()
  /** The rules as of #faultsVersion: consulted without a query while no rule changes. */
  #rules: ActiveFault[] = []
  #faultsVersion: number | undefined
  /** The disk contents of the snapshots this driver made, by image id: a server spawned from one boots them. */
  readonly #imageFiles = new Map<string, Map<string, string>>()
  readonly #volumes = new Map<string, SimVolume>()
  /** A volume snapshot's copy of the volume's files. */
  readonly #volumeSnapshots = new Map<string, Map<string, string>>()

  constructor(options: { delayMs: number; faults?: FaultRules }) {
    this.#delayMs = options.delayMs
    this.#faults = options.faults ?? new MemoryFaultRules()
  }

  injectFault(rule: FaultRule): Promise<ActiveFault> {
    return this.#faults.add(rule)
  }

  listFaults(): Promise<ActiveFault[]> {
    return this.#faults.list()
  }

  removeFault(id: string): Promise<boolean> {
    return this.#faults.remove(id)
  }

  clearFaults(): Promise<void> {
    return this.#faults.clear()
  }

  /**
   * At the start of every operation: a rule must apply to the next operation started after the
   * POST that created it answered, whichever process runs it. That POST committed before it
   * answered, so a read of the rules' version here, once per operation, sees it: nothing short
   * of a read gives that order across processes (a NOTIFY arrives on another connection, at no
   * set time: the task that starts the operation can be claimed before it). So one small read
   * per operation (one row by key), and the rules listed again only when the version moved;
   * with no rule at all a phase costs no query. A rule created while an operation runs applies
   * from the next operation on (or earlier, if another operation listed it meanwhile).
   */
  async #refreshRules(): Promise<void> {
    const version = await this.#faults.version()
    if (version === this.#faultsVersion) return
    const rules = await this.#faults.list()
    // Versions only grow: an older listing that resolves late must not replace a newer one.
    if (this.#faultsVersion !== undefined && this.#faultsVersion > version) return
    this.#rules = rules
    this.#faultsVersion = version
  }

  /** End hung operations (at shutdown). */
  close(): void {
    this.#abort.abort()
  }

  /** Would `password` log in to the system the server boots now? (What a user checks over SSH.) */
  canLogin(serverId: string, password: string): boolean {
    const vm = this.#vms.get(serverId)
    const system = vm?.rescue ?? vm?.own
    if (!vm || vm.power !== PowerState.RUNNING || !system?.passwordHash) return false
    return timingSafeEqual(system.passwordHash, hash(password))
  }

  /** What a user sees of the booted system: SSH host key fingerprint, keys, disks. */
  describe(serverId: string): { booted: string; hostKeyFingerprint: string; authorizedKeys: string[]; disks: string[] } | undefined {
    const vm = this.#vms.get(serverId)
    if (!vm) return undefined
    const system = vm.rescue ?? vm.own
    const volumes = this.volumesOf(serverId).map((v) => `volume ${v.volumeId} at ${v.device}`)
    return {
      booted: system.description,
      // The rescue system has its own host key: it differs from the server's (the seed says so).
      hostKeyFingerprint: fingerprint(vm.rescue ? `${vm.hostKey}:rescue:${vm.rescue.imageId}` : vm.hostKey),
      authorizedKeys: [...system.authorizedKeys],
      disks: !vm.rescue
        ? [`server disk ${serverId}`, ...volumes]
        : vm.rescue.stable
          ? // Stable device: the server's disks keep their places; the rescue disk is attached last and booted.
            [
              `server disk ${serverId}`,
              ...volumes,
              `rescue image ${vm.rescue.imageId} (${vm.rescue.stable.device} on ${vm.rescue.stable.bus}, boot order 1)`,
            ]
          : [`rescue image ${vm.rescue.imageId}`, `server disk ${serverId}`, ...volumes],
    }
  }

  hostKeyFingerprint(serverId: string): string | null {
    return this.describe(serverId)?.hostKeyFingerprint ?? null
  }

  /** Test hook: what a user writes on the server's disk (a file), to find it again in its snapshots. */
  writeFile(serverId: string, file: string, content: string): void {
    this.#vm(serverId).files.set(file, content)
  }

  /** Test hook: a file of the server's disk, undefined when absent (or no VM). */
  readFile(serverId: string, file: string): string | undefined {
    return this.#vms.get(serverId)?.files.get(file)
  }

  /** Test hook: how many times the server's VM has booted (a resume continues a boot: no new one). */
  bootCount(serverId: string): number | undefined {
    return this.#vms.get(serverId)?.boots
  }

  /**
   * Every rule that matches the phase applies to this call and counts it, not only the first one
   * registered: a delay on all of `unrescue` (or on every server) must not hide an
   * `unrescue.boot` failure for one server registered after it. Delays add up; the failure is
   * the most specific rule's (this server before all, the phase before its operation).
   */
  async #step(phase: SimulatedPhase, serverId: string, interrupt?: AbortSignal): Promise<void> {
    const op = phase.split('.')[0]
    const matching = this.#rules.filter((f) => (f.operation === phase || f.operation === op) && (!f.serverId || f.serverId === serverId))
    // Taking counts each use in the database (a rule used up meanwhile, elsewhere, is not taken).
    const rules = matching.length ? await this.#faults.take(matching.map((f) => f.id)) : []
    const specificity = (f: FaultRule) => (f.serverId ? 0 : 2) + (f.operation === phase ? 0 : 1)
    const failing = rules.filter((f) => f.error !== undefined).sort((a, b) => specificity(a) - specificity(b))[0]
    const delay = this.#delayMs + rules.reduce((sum, f) => sum + (f.delayMs ?? 0), 0)
    const signal = interrupt ? AbortSignal.any([this.#abort.signal, interrupt]) : this.#abort.signal
    try {
      if (rules.some((f) => f.hang)) await sleep(2 ** 31 - 1, undefined, { signal })
      if (delay > 0) await sleep(delay, undefined, { signal })
    } catch {
      // An interruption the caller asked for ends the wait, and the step goes on.
      if (!this.#abort.signal.aborted && interrupt?.aborted) return
      throw new DriverError(`${phase} of ${serverId} interrupted: the driver is shutting down`)
    }
    if (failing?.error !== undefined) throw new DriverError(failing.error)
  }

  #vm(id: string): Vm {
    const vm = this.#vms.get(id)
    if (!vm) throw new VmNotFound(id)
    return vm
  }

  #boot(vm: Vm, what: string) {
    vm.boots++
    const system = vm.rescue ?? vm.own
    const t = (n: number) => `[    ${(n / 10).toFixed(6)}]`
    vm.console.push(
      `${t(0)} Skiff simulated hypervisor: booting ${what} (boot ${vm.boots})`,
      `${t(1)} Linux version 6.1.0-skiff (simulated) #1 SMP`,
      `${t(4)} Memory: ${vm.spec.ramMb}MB, CPUs: ${vm.spec.vcpus}`,
      ...(vm.rescue && !vm.rescue.stable ? [`${t(6)} virtio_blk virtio1: [vdb] the server's own disk, attached for repair`] : []),
      ...(vm.rescue?.stable
        ? [
            `${t(6)} virtio_blk virtio0: [vda] the server's own disk, in its place`,
            `${t(7)} rescue disk: ${vm.rescue.stable.device} on the ${vm.rescue.stable.bus} bus, attached last, booted`,
          ]
        : []),
      `${t(9)} cloud-init: hostname set to ${vm.spec.name}; ${system.authorizedKeys.length} authorized key(s)`,
      `${t(9)} sshd: host key ${this.hostKeyFingerprint(vm.spec.id)}`,
      '',
      `${vm.spec.name} login: `,
    )
    if (vm.console.length > 1000) vm.console.splice(0, vm.console.length - 1000)
  }

  async spawn(server: ServerSpec): Promise<void> {
    await this.#refreshRules()
    await this.#step('spawn', server.id)
    const vm: Vm = {
      spec: server,
      power: PowerState.RUNNING,
      rescue: null,
      checkpoint: null,
      console: [],
      boots: 0,
      // A server spawned from a snapshot boots the files its disk held (unshelve, a new server).
      files: new Map(this.#imageFiles.get(server.imageId) ?? []),
      saved: null,
      hostKey: randomBytes(16).toString('hex'),
      own: {
        description: `image ${server.imageName ?? server.imageId}`,
        passwordHash: server.adminPass ? hash(server.adminPass) : null,
        authorizedKeys: server.authorizedKeys ?? [],
      },
    }
    this.#vms.set(server.id, vm)
    this.#boot(vm, vm.own.description)
  }

  async powerOff(serverId: string): Promise<void> {
    await this.#refreshRules()
    const vm = this.#vm(serverId)
    await this.#step('powerOff', serverId)
    vm.power = PowerState.SHUTDOWN
    vm.console.push('reboot: Power down')
  }

  async powerOn(serverId: string): Promise<void> {
    await this.#refreshRules()
    const vm = this.#vm(serverId)
    await this.#step('powerOn', serverId)
    vm.power = PowerState.RUNNING
    this.#boot(vm, 'its disk')
  }

  async reboot(serverId: string, type: RebootType): Promise<void> {
    await this.#refreshRules()
    const vm = this.#vm(serverId)
    await this.#step('reboot', serverId)
    vm.console.push(type === 'SOFT' ? 'reboot: Restarting system' : '(hard reset)')
    vm.power = PowerState.RUNNING
    this.#boot(vm, vm.rescue ? 'the rescue system' : 'its disk')
  }

  async pause(serverId: string): Promise<void> {
    await this.#refreshRules()
    const vm = this.#vm(serverId)
    await this.#step('pause', serverId)
    vm.power = PowerState.PAUSED
  }

  async unpause(serverId: string): Promise<void> {
    await this.#refreshRules()
    const vm = this.#vm(serverId)
    await this.#step('unpause', serverId)
    vm.power = PowerState.RUNNING
  }

  async suspend(serverId: string): Promise<void> {
    await this.#refreshRules()
    const vm = this.#vm(serverId)
    if (vm.power !== PowerState.RUNNING && vm.power !== PowerState.PAUSED) throw new DriverError(`server ${serverId} is not running`)
    await this.#step('suspend', serverId)
    vm.saved = { boot: vm.boots }
    vm.power = PowerState.SUSPENDED
    vm.console.push('PM: suspend to disk (memory saved)')
  }

  async resume(serverId: string): Promise<void> {
    await this.#refreshRules()
    const vm = this.#vm(serverId)
    if (!vm.saved) throw new DriverError(`server ${serverId} has no saved memory to resume from`)
    await this.#step('resume', serverId)
    // The same boot goes on: no new boot, the console continues.
    vm.saved = null
    vm.power = PowerState.RUNNING
    vm.console.push('PM: resumed')
  }

  async snapshot(serverId: string, imageId: string): Promise<DiskSnapshot> {
    await this.#refreshRules()
    const vm = this.#vm(serverId)
    const before = vm.power
    // A cold snapshot: a running guest is paused while its disk is read, and runs on after, whatever happens.
    if (before === PowerState.RUNNING) vm.power = PowerState.PAUSED
    try {
      await this.#step('snapshot', serverId)
    } finally {
      vm.power = before
    }
    const files = new Map(vm.files)
    this.#imageFiles.set(imageId, files)
    const bytes = Buffer.from(SNAPSHOT_HEADER + JSON.stringify(Object.fromEntries(files)))
    return { diskFormat: 'raw', data: [bytes], cleanup: async () => {} }
  }

  async rebuild(server: ServerSpec): Promise<void> {
    await this.#refreshRules()
    const vm = this.#vm(server.id)
    await this.#step('rebuild', server.id)
    vm.spec = server
    // A rebuild writes the image over the disk: what was on it is gone.
    vm.files = new Map(this.#imageFiles.get(server.imageId) ?? [])
    vm.own = {
      description: `image ${server.imageName ?? server.imageId}`,
      passwordHash: server.adminPass ? hash(server.adminPass) : null,
      authorizedKeys: server.authorizedKeys ?? [],
    }
    vm.power = PowerState.RUNNING
    this.#boot(vm, `${vm.own.description} (rebuilt)`)
  }

  async rescue(serverId: string, rescue: RescueSpec): Promise<void> {
    await this.#refreshRules()
    const vm = this.#vm(serverId)
    const refusal = rescue.stable ? stableRescueRefusal(rescue.stable, this.volumesOf(serverId).length) : null
    if (refusal) throw new DriverError(refusal)
    await this.#step('rescue.power_off', serverId)
    vm.power = PowerState.SHUTDOWN
    vm.console.push('reboot: Power down (entering rescue)')
    if (rescue.checkpoint) {
      await this.#step('rescue.checkpoint', serverId)
      vm.checkpoint = new Map(vm.files)
    }
    await this.#step('rescue.boot', serverId)
    vm.rescue = {
      imageId: rescue.imageId,
      description: `rescue image ${rescue.imageName ?? rescue.imageId}`,
      passwordHash: hash(rescue.adminPass),
      authorizedKeys: [...rescue.authorizedKeys],
      stable: rescue.stable ?? null,
    }
    vm.power = PowerState.RUNNING
    this.#boot(
      vm,
      vm.rescue.stable
        ? `${vm.rescue.description} attached last, the server's disk first`
        : `${vm.rescue.description} with the server's disk as second disk`,
    )
  }

  async unrescue(serverId: string, opts: { discardChanges?: boolean } = {}): Promise<void> {
    await this.#refreshRules()
    const vm = this.#vm(serverId)
    await this.#step('unrescue.stop_rescue', serverId)
    vm.power = PowerState.SHUTDOWN
    vm.console.push('reboot: Power down (leaving rescue)')
    if (vm.checkpoint) {
      // Kept: the changes stay on the disk; discarded: the disk as it was when the rescue began.
      if (opts.discardChanges) {
        await this.#step('unrescue.discard', serverId)
        vm.files = vm.checkpoint
      } else {
        await this.#step('unrescue.keep', serverId)
      }
      vm.checkpoint = null
    }
    await this.#step('unrescue.boot', serverId)
    // The rescue disk is dropped only once the server's own disk has booted: until then a
    // failed unrescue can boot the rescue system again (restoreRescue).
    vm.rescue = null
    vm.power = PowerState.RUNNING
    this.#boot(vm, 'its disk')
  }

  async restoreRescue(serverId: string): Promise<void> {
    await this.#refreshRules()
    const vm = this.#vm(serverId)
    if (!vm.rescue) throw new DriverError(`server ${serverId} has no rescue system to boot again`)
    // The unrescue failed before the rescue system stopped: it still runs, nothing to do.
    if (vm.power === PowerState.RUNNING) return
    await this.#step('restoreRescue', serverId)
    vm.power = PowerState.RUNNING
    this.#boot(vm, `${vm.rescue.description} again (unrescue failed)`)
  }

  async hasCheckpoint(serverId: string): Promise<boolean> {
    return (this.#vms.get(serverId)?.checkpoint ?? null) !== null
  }

  async restore(serverId: string, powerState: PowerStateValue): Promise<void> {
    await this.#refreshRules()
    const vm = this.#vm(serverId)
    await this.#step('restore', serverId)
    // A failed rescue changed nothing the server keeps: what it wrote on top of a checkpoint goes.
    if (vm.checkpoint) vm.files = vm.checkpoint
    vm.checkpoint = null
    vm.rescue = null
    vm.power = powerState === PowerState.RUNNING ? PowerState.RUNNING : PowerState.SHUTDOWN
    if (vm.power === PowerState.RUNNING) this.#boot(vm, 'its disk (rescue failed; restored)')
  }

  async destroy(serverId: string): Promise<void> {
    await this.#refreshRules()
    await this.#step('destroy', serverId)
    this.#vms.delete(serverId)
    this.#kept.delete(serverId)
  }

  async migrateDiskAndPowerOff(serverId: string, to: ServerSpec): Promise<MigratedDisk> {
    await this.#refreshRules()
    const vm = this.#vm(serverId)
    // As libvirt's driver: a root disk is never shrunk (the server stays as it was).
    if (to.diskGb < vm.spec.diskGb) throw new DriverError('Resize error: Unable to resize disk down.')
    await this.#step('migrate.power_off', serverId)
    vm.power = PowerState.SHUTDOWN
    vm.console.push('reboot: Power down (migrating)')
    await this.#step('migrate.disk', serverId)
    this.#kept.set(serverId, vm)
    return this.#handOver(vm)
  }

  async checkLiveMigrationSource(serverId: string): Promise<LiveMigrationSource> {
    this.#vm(serverId)
    return { kind: 'simulated' }
  }

  async preLiveMigration(spec: ServerSpec): Promise<LiveMigrationTarget> {
    await this.#refreshRules()
    // One driver for several simulated hosts holds the source's VM too: dropMigrationTarget keeps it.
    const source = this.#vms.get(spec.id)
    if (source) this.#kept.set(spec.id, source)
    await this.#step('preLiveMigration', spec.id)
    return { kind: 'simulated' }
  }

  /**
   * The copy is the `liveMigrate` phase's delay (or hang): polled meanwhile for an admin's
   * request, an abort cancels it (the guest runs on here) and a force-complete ends it (the guest
   * paused: nothing more to copy).
   */
  async liveMigrate(serverId: string, target: LiveMigrationTarget, control?: LiveMigrationControl): Promise<MigratedDisk> {
    await this.#refreshRules()
    if (target.kind !== 'simulated') throw new DriverError(`the simulated driver cannot live-migrate to a ${target.kind} host`)
    const vm = this.#vm(serverId)
    const copying = new AbortController()
    // The copy's start, as libvirt's job info would say it: all of the guest's memory and disk to go.
    const memory = vm.spec.ramMb * 2 ** 20
    const disk = vm.spec.diskGb * 2 ** 30
    control?.progress?.({
      memory_total: memory,
      memory_processed: 0,
      memory_remaining: memory,
      disk_total: disk,
      disk_processed: 0,
      disk_remaining: disk,
    })
    let asked: 'abort' | 'force-complete' | null = null
    const polling = (async () => {
      while (control && !copying.signal.aborted) {
        asked = await control.requested().catch(() => null)
        if (asked) return copying.abort()
        await sleep(50, undefined, { signal: copying.signal }).catch(() => {})
      }
    })()
    try {
      await this.#step('liveMigrate', serverId, copying.signal)
    } finally {
      copying.abort()
      await polling
    }
    if (asked === 'abort') throw new LiveMigrationCancelled()
    if (asked === 'force-complete') vm.console.push('live migration: the guest paused to complete the copy (force complete)')
    this.#kept.set(serverId, vm)
    return this.#handOver(vm, true)
  }

  /** `live`: the guest goes on running on the destination (its console with it), not booted again. */
  #handOver(vm: Vm, live = false): MigratedDisk {
    const state = {
      own: { ...vm.own, passwordHash: vm.own.passwordHash?.toString('hex') ?? null },
      hostKey: vm.hostKey,
      boots: vm.boots,
      live,
      console: live ? vm.console : [],
      // The disk goes with the server: what was written on it is there after the move.
      files: [...vm.files],
    }
    return { kind: 'simulated', state: JSON.stringify(state) }
  }

  async finishMigration(spec: ServerSpec, disk: MigratedDisk, powerOn: boolean): Promise<void> {
    await this.#refreshRules()
    if (disk.kind !== 'simulated') throw new DriverError(`the simulated driver cannot boot a ${disk.kind} disk`)
    await this.#step('finishMigration', spec.id)
    const state = JSON.parse(disk.state) as {
      own: Omit<System, 'passwordHash'> & { passwordHash: string | null }
      hostKey: string
      boots: number
      live: boolean
      console: string[]
      files: [string, string][]
    }
    const vm: Vm = {
      spec,
      power: powerOn ? PowerState.RUNNING : PowerState.SHUTDOWN,
      own: { ...state.own, passwordHash: state.own.passwordHash === null ? null : Buffer.from(state.own.passwordHash, 'hex') },
      rescue: null,
      checkpoint: null,
      hostKey: state.hostKey,
      console: [...state.console],
      boots: state.boots,
      files: new Map(state.files),
      saved: null,
    }
    this.#vms.set(spec.id, vm)
    if (powerOn && !state.live) this.#boot(vm, 'its disk (migrated)')
  }

  async confirmMigration(serverId: string): Promise<void> {
    await this.#refreshRules()
    await this.#step('confirmMigration', serverId)
    const kept = this.#kept.get(serverId)
    // The source's own VM (another driver holds the destination's): it goes with its disk.
    if (kept && this.#vms.get(serverId) === kept) this.#vms.delete(serverId)
    this.#kept.delete(serverId)
  }

  async dropMigrationTarget(serverId: string): Promise<void> {
    await this.#refreshRules()
    await this.#step('dropMigrationTarget', serverId)
    const vm = this.#vms.get(serverId)
    if (vm && vm !== this.#kept.get(serverId)) this.#vms.delete(serverId)
  }

  async finishRevertMigration(serverId: string, powerOn: boolean): Promise<void> {
    await this.#refreshRules()
    const vm = this.#kept.get(serverId) ?? this.#vm(serverId)
    await this.#step('finishRevertMigration', serverId)
    this.#vms.set(serverId, vm)
    this.#kept.delete(serverId)
    const wasRunning = vm.power === PowerState.RUNNING
    vm.power = powerOn ? PowerState.RUNNING : PowerState.SHUTDOWN
    if (powerOn && !wasRunning) this.#boot(vm, 'its disk (move reverted)')
  }

  /** What a user sees of the guest's size (memory in /proc/meminfo, nproc, disk). */
  size(serverId: string): { vcpus: number; ramMb: number; diskGb: number } | undefined {
    const vm = this.#vms.get(serverId)
    return vm && { vcpus: vm.spec.vcpus, ramMb: vm.spec.ramMb, diskGb: vm.spec.diskGb }
  }

  async getInfo(serverId: string): Promise<{ powerState: PowerStateValue }> {
    return { powerState: this.#vms.get(serverId)?.power ?? PowerState.NOSTATE }
  }

  async listVms(): Promise<string[]> {
    return [...this.#vms.keys()]
  }

  async consoleOutput(serverId: string): Promise<string> {
    return this.#vm(serverId).console.join('\n') + '\n'
  }

  async adopt(servers: { spec: ServerSpec; powerState: PowerStateValue; rescued: boolean }[]): Promise<void> {
    for (const s of servers) {
      if (this.#vms.has(s.spec.id)) continue
      // Passwords are not known after a restart of the simulator: logins fail until a rebuild.
      const vm: Vm = {
        spec: s.spec,
        power: s.powerState,
        console: [],
        boots: 0,
        hostKey: randomBytes(16).toString('hex'),
        files: new Map(),
        saved: null,
        own: { description: `image ${s.spec.imageName ?? s.spec.imageId}`, passwordHash: null, authorizedKeys: [] },
        rescue: s.rescued
          ? { imageId: s.spec.imageId, description: 'rescue system', passwordHash: null, authorizedKeys: [], stable: null }
          : null,
        checkpoint: null,
      }
      this.#vms.set(s.spec.id, vm)
      if (s.powerState === PowerState.RUNNING) this.#boot(vm, 'its disk (adopted after a restart)')
    }
  }

  // ---- volumes: records, with the same fault injection as the servers' operations ----

  #volume(id: string): SimVolume {
    let v = this.#volumes.get(id)
    // A volume the database knows but this driver does not (it restarted): an empty one.
    if (!v) this.#volumes.set(id, (v = { sizeGb: 0, files: new Map(), attachedTo: null }))
    return v
  }

  /** Test hook: the volumes plugged into a server's VM, in attach order. */
  volumesOf(serverId: string): { volumeId: string; device: string }[] {
    return [...this.#volumes].flatMap(([volumeId, v]) =>
      v.attachedTo?.serverId === serverId ? [{ volumeId, device: v.attachedTo.device }] : [],
    )
  }

  /** Test hook: a volume as the driver holds it (undefined when it has no such volume). */
  describeVolume(id: string): { sizeGb: number; attachedTo: string | null; files: Record<string, string> } | undefined {
    const v = this.#volumes.get(id)
    return v && { sizeGb: v.sizeGb, attachedTo: v.attachedTo?.serverId ?? null, files: Object.fromEntries(v.files) }
  }

  /** Test hook: what a user writes on a volume. */
  writeVolumeFile(volumeId: string, file: string, content: string): void {
    this.#volume(volumeId).files.set(file, content)
  }

  async createVolume(spec: VolumeSpec): Promise<void> {
    await this.#refreshRules()
    await this.#step('createVolume', spec.id)
    const files = spec.snapshotId
      ? new Map(this.#volumeSnapshots.get(spec.snapshotId) ?? [])
      : spec.imageId
        ? new Map(this.#imageFiles.get(spec.imageId) ?? [])
        : new Map<string, string>()
    this.#volumes.set(spec.id, { sizeGb: spec.sizeGb, files, attachedTo: null })
  }

  async deleteVolume(volumeId: string): Promise<void> {
    await this.#refreshRules()
    await this.#step('deleteVolume', volumeId)
    this.#volumes.delete(volumeId)
  }

  async extendVolume(volumeId: string, sizeGb: number): Promise<void> {
    await this.#refreshRules()
    await this.#step('extendVolume', volumeId)
    const v = this.#volume(volumeId)
    const from = v.sizeGb
    v.sizeGb = sizeGb
    // An in-use volume grows under the running guest (the qemu driver's block_resize): its kernel notices.
    const vm = v.attachedTo && this.#vms.get(v.attachedTo.serverId)
    if (v.attachedTo && vm?.power === PowerState.RUNNING) {
      const dev = v.attachedTo.device.replace('/dev/', '')
      vm.console.push(`${dev}: detected capacity change from ${from * 2 ** 30} to ${sizeGb * 2 ** 30}`)
    }
  }

  async createVolumeSnapshot(volumeId: string, snapshotId: string): Promise<void> {
    await this.#refreshRules()
    await this.#step('createVolumeSnapshot', volumeId)
    this.#volumeSnapshots.set(snapshotId, new Map(this.#volume(volumeId).files))
  }

  async deleteVolumeSnapshot(snapshotId: string): Promise<void> {
    await this.#refreshRules()
    await this.#step('deleteVolumeSnapshot', snapshotId)
    this.#volumeSnapshots.delete(snapshotId)
  }

  async attachVolume(serverId: string, volumeId: string, device: string): Promise<void> {
    await this.#refreshRules()
    await this.#step('attachVolume', serverId)
    const v = this.#volume(volumeId)
    if (v.attachedTo && v.attachedTo.serverId !== serverId)
      throw new DriverError(`volume ${volumeId} is plugged into ${v.attachedTo.serverId}`)
    v.attachedTo = { serverId, device }
    const vm = this.#vms.get(serverId)
    if (vm?.power === PowerState.RUNNING) vm.console.push(`virtio_blk: [${device.replace('/dev/', '')}] volume ${volumeId} hot-plugged`)
  }

  async detachVolume(serverId: string, volumeId: string): Promise<void> {
    await this.#refreshRules()
    await this.#step('detachVolume', serverId)
    const v = this.#volumes.get(volumeId)
    if (v?.attachedTo?.serverId === serverId) v.attachedTo = null
  }
}

export { SIMULATED_PHASES, type ActiveFault, type FaultRule, type SimulatedPhase } from './fault-rules.ts'
