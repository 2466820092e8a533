// The simulated hypervisor: deterministic, in memory, with a configurable time per operation
// and fault injection (fail or delay the next calls of an operation, for some servers).
import { setTimeout as sleep } from 'node:timers/promises'
import { PowerState, type PowerStateValue } from '../../compute/states.ts'
import { DriverError, VmNotFound, type RebootType, type RescueSpec, type ServerSpec, type VirtDriver } from '../driver.ts'

export type SimulatedOperation =
  | 'spawn' | 'powerOff' | 'powerOn' | 'reboot' | 'pause' | 'unpause' | 'rebuild' | 'rescue' | 'unrescue' | 'destroy'

export interface FaultRule {
  operation: SimulatedOperation
  /** Only for this server; every server when absent. */
  serverId?: string
  /** Fail with this message (after the delay, if any). */
  error?: string
  /** Extra time the operation takes, ms. */
  delayMs?: number
  /** Never return (until the driver is closed). */
  hang?: boolean
  /** How many calls the rule applies to; forever when absent. */
  count?: number
}

interface Vm {
  spec: ServerSpec
  power: PowerStateValue
  rescue: RescueSpec | null
  console: string[]
  boots: number
}

export class SimulatedDriver implements VirtDriver {
  readonly name = 'simulated'
  readonly #vms = new Map<string, Vm>()
  readonly #faults: FaultRule[] = []
  readonly #delayMs: number
  readonly #abort = new AbortController()

  constructor(options: { delayMs: number }) {
    this.#delayMs = options.delayMs
  }

  injectFault(rule: FaultRule): void {
    this.#faults.push({ ...rule })
  }

  clearFaults(): void {
    this.#faults.length = 0
  }

  /** End hung operations (at shutdown). */
  close(): void {
    this.#abort.abort()
  }

  async #step(op: SimulatedOperation, serverId: string): Promise<void> {
    const rule = this.#faults.find((f) => f.operation === op && (!f.serverId || f.serverId === serverId))
    if (rule && rule.count !== undefined && --rule.count <= 0) this.#faults.splice(this.#faults.indexOf(rule), 1)
    const delay = this.#delayMs + (rule?.delayMs ?? 0)
    try {
      if (rule?.hang) await sleep(2 ** 31 - 1, undefined, { signal: this.#abort.signal })
      if (delay > 0) await sleep(delay, undefined, { signal: this.#abort.signal })
    } catch {
      throw new DriverError(`${op} of ${serverId} interrupted: the driver is shutting down`)
    }
    if (rule?.error !== undefined) throw new DriverError(rule.error)
  }

  #vm(id: string): Vm {
    const vm = this.#vms.get(id)
    if (!vm) throw new VmNotFound(id)
    return vm
  }

  #boot(vm: Vm, what: string) {
    vm.boots++
    const t = (n: number) => `[    ${(n / 10).toFixed(6)}]`
    vm.console.push(
      `${t(0)} Skiff simulated hypervisor: booting ${what} (boot ${vm.boots})`,
      `${t(1)} Linux version 6.1.0-skiff (simulated) #1 SMP`,
      `${t(4)} Memory: ${vm.spec.ramMb}MB, CPUs: ${vm.spec.vcpus}`,
      `${t(9)} cloud-init: hostname set to ${vm.spec.name}`,
      '',
      `${vm.spec.name} login: `,
    )
    if (vm.console.length > 1000) vm.console.splice(0, vm.console.length - 1000)
  }

  async spawn(server: ServerSpec): Promise<void> {
    await this.#step('spawn', server.id)
    const vm: Vm = { spec: server, power: PowerState.RUNNING, rescue: null, console: [], boots: 0 }
    this.#vms.set(server.id, vm)
    this.#boot(vm, `image ${server.imageName ?? server.imageId}`)
  }

  async powerOff(serverId: string): Promise<void> {
    const vm = this.#vm(serverId)
    await this.#step('powerOff', serverId)
    vm.power = PowerState.SHUTDOWN
    vm.console.push('reboot: Power down')
  }

  async powerOn(serverId: string): Promise<void> {
    const vm = this.#vm(serverId)
    await this.#step('powerOn', serverId)
    vm.power = PowerState.RUNNING
    this.#boot(vm, 'its disk')
  }

  async reboot(serverId: string, type: RebootType): Promise<void> {
    const vm = this.#vm(serverId)
    await this.#step('reboot', serverId)
    vm.console.push(type === 'SOFT' ? 'reboot: Restarting system' : '(hard reset)')
    vm.power = PowerState.RUNNING
    this.#boot(vm, 'its disk')
  }

  async pause(serverId: string): Promise<void> {
    const vm = this.#vm(serverId)
    await this.#step('pause', serverId)
    vm.power = PowerState.PAUSED
  }

  async unpause(serverId: string): Promise<void> {
    const vm = this.#vm(serverId)
    await this.#step('unpause', serverId)
    vm.power = PowerState.RUNNING
  }

  async rebuild(server: ServerSpec): Promise<void> {
    const vm = this.#vm(server.id)
    await this.#step('rebuild', server.id)
    vm.spec = server
    vm.power = PowerState.RUNNING
    this.#boot(vm, `image ${server.imageName ?? server.imageId} (rebuilt)`)
  }

  async rescue(serverId: string, rescue: RescueSpec): Promise<void> {
    const vm = this.#vm(serverId)
    await this.#step('rescue', serverId)
    vm.rescue = rescue
    vm.power = PowerState.RUNNING
    this.#boot(vm, `rescue image ${rescue.imageName ?? rescue.imageId} with the server's disk as second disk`)
  }

  async unrescue(serverId: string): Promise<void> {
    const vm = this.#vm(serverId)
    await this.#step('unrescue', serverId)
    vm.rescue = null
    vm.power = PowerState.RUNNING
    this.#boot(vm, 'its disk')
  }

  async destroy(serverId: string): Promise<void> {
    await this.#step('destroy', serverId)
    this.#vms.delete(serverId)
  }

  async getInfo(serverId: string): Promise<{ powerState: PowerStateValue }> {
    return { powerState: this.#vms.get(serverId)?.power ?? PowerState.NOSTATE }
  }

  async consoleOutput(serverId: string): Promise<string> {
    return this.#vm(serverId).console.join('\n') + '\n'
  }

  async adopt(servers: { spec: ServerSpec; powerState: PowerStateValue; rescued: boolean }[]): Promise<void> {
    for (const s of servers) {
      if (this.#vms.has(s.spec.id)) continue
      const vm: Vm = { spec: s.spec, power: s.powerState, rescue: s.rescued ? { imageId: s.spec.imageId, imageName: null } : null, console: [], boots: 0 }
      this.#vms.set(s.spec.id, vm)
      if (s.powerState === PowerState.RUNNING) this.#boot(vm, 'its disk (adopted after a restart)')
    }
  }
}
