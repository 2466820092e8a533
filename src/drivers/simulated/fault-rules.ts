// Fault rules of the simulated hypervisor: what a rule says, and where the driver reads them.
// The rules live in the database (store/fault-rules-repo.ts), so that a rule created through any
// API process reaches whichever agent runs the phase; the driver only sees this interface
// (drivers/ import nothing from store/). MemoryFaultRules serves a driver used on its own.
import { randomBytes } from 'node:crypto'

/**
 * Every phase a fault can target; `rescue` and `unrescue` have two each. `restore` (the server's
 * own disk after a failed rescue) and `restoreRescue` (the rescue system again after a failed
 * unrescue) are the safe-failure steps: failing one as well is what ends in ERROR.
 */
export const SIMULATED_PHASES = [
  'spawn',
  'powerOff',
  'powerOn',
  'reboot',
  'pause',
  'unpause',
  'rebuild',
  'destroy',
  'restore',
  'restoreRescue',
  'rescue.power_off',
  // Only for a rescue with a checkpoint, between the two; and at its unrescue, before the boot.
  'rescue.checkpoint',
  'rescue.boot',
  'unrescue.stop_rescue',
  'unrescue.keep',
  'unrescue.discard',
  'unrescue.boot',
  // Moves (resize, cold and live migration), by driver call: the source's two steps, then the destination's.
  'migrate.power_off',
  'migrate.disk',
  'finishMigration',
  'confirmMigration',
  'dropMigrationTarget',
  'finishRevertMigration',
  'preLiveMigration',
  'liveMigrate',
  'suspend',
  'resume',
  'snapshot',
  // Volumes (the volume's id is the rule's server_id; attach and detach: the server's).
  'createVolume',
  'deleteVolume',
  'extendVolume',
  'createVolumeSnapshot',
  'deleteVolumeSnapshot',
  'attachVolume',
  'detachVolume',
] as const
export type SimulatedPhase = (typeof SIMULATED_PHASES)[number]

export interface FaultRule {
  /** A phase, or an operation name meaning all its phases (`rescue`, `unrescue`). */
  operation: SimulatedPhase | 'rescue' | 'unrescue' | 'migrate'
  /** Only for this server; every server when absent. */
  serverId?: string
  /** Fail with this message (after the delay, if any). */
  error?: string
  /** Extra time the phase takes, ms. */
  delayMs?: number
  /** Never return (until the driver is closed). */
  hang?: boolean
  /** How many calls the rule applies to; forever when absent. */
  count?: number
}

export interface ActiveFault extends FaultRule {
  id: string
}

/** The rules, as the simulated driver reads them and the fault-injection API manages them. */
export interface FaultRules {
  /**
   * Changes whenever a rule is added or removed (not when a use is counted). Cheap: the driver
   * reads it once per operation and lists the rules again only when it changed.
   */
  version(): Promise<number>
  /** Every rule, oldest first. */
  list(): Promise<ActiveFault[]>
  /**
   * Use these rules once each, atomically: a rule with a count is counted down (and is gone at
   * zero) only if some use was left, so two agents never both take its last use. Returns the
   * rules actually taken, as they are now.
   */
  take(ids: string[]): Promise<ActiveFault[]>
  add(rule: FaultRule): Promise<ActiveFault>
  remove(id: string): Promise<boolean>
  clear(): Promise<void>
}

export const newFaultId = () => randomBytes(8).toString('hex')

/** Rules in this process's memory: for a simulated driver without a database (benchmarks, unit use). */
export class MemoryFaultRules implements FaultRules {
  readonly #rules: ActiveFault[] = []
  #version = 0

  async version(): Promise<number> {
    return this.#version
  }
  async list(): Promise<ActiveFault[]> {
    return this.#rules.map((f) => ({ ...f }))
  }

  async take(ids: string[]): Promise<ActiveFault[]> {
    const taken: ActiveFault[] = []
    for (const id of ids) {
      const i = this.#rules.findIndex((f) => f.id === id)
      const rule = this.#rules[i]
      if (!rule) continue
      if (rule.count !== undefined && --rule.count <= 0) this.#rules.splice(i, 1)
      taken.push({ ...rule })
    }
    return taken
  }

  async add(rule: FaultRule): Promise<ActiveFault> {
    const fault: ActiveFault = { ...rule, id: newFaultId() }
    // Server ids are lower-case UUIDs; the API's uuid format also accepts upper case.
    if (rule.serverId !== undefined) fault.serverId = rule.serverId.toLowerCase()
    this.#rules.push(fault)
    this.#version++
    return { ...fault }
  }

  async remove(id: string): Promise<boolean> {
    const i = this.#rules.findIndex((f) => f.id === id)
    if (i >= 0) {
      this.#rules.splice(i, 1)
      this.#version++
    }
    return i >= 0
  }

  async clear(): Promise<void> {
    this.#rules.length = 0
    this.#version++
  }
}
