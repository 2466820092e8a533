// Nova's state model: vm_state, task_state and power_state are stored; the API status is
// derived from them (nova/api/openstack/common.py _STATE_MAP), never stored.

import type { TaskState, VmState } from '../store/schema.ts'

export type { TaskState, VmState }

// Power states are the drivers' words as much as compute's: they live below both, in the driver
// interface, and compute re-exports them.
export { PowerState, type PowerStateValue } from '../drivers/driver.ts'

const STATE_MAP: Record<VmState, Partial<Record<Exclude<TaskState, null> | 'default', string>>> = {
  active: {
    default: 'ACTIVE',
    rebooting: 'REBOOT',
    reboot_pending: 'REBOOT',
    reboot_started: 'REBOOT',
    rebooting_hard: 'HARD_REBOOT',
    reboot_pending_hard: 'HARD_REBOOT',
    reboot_started_hard: 'HARD_REBOOT',
    updating_password: 'PASSWORD',
    rebuilding: 'REBUILD',
    rebuild_block_device_mapping: 'REBUILD',
    rebuild_spawning: 'REBUILD',
    migrating: 'MIGRATING',
    resize_prep: 'RESIZE',
    resize_migrating: 'RESIZE',
    resize_migrated: 'RESIZE',
    resize_finish: 'RESIZE',
  },
  building: { default: 'BUILD' },
  stopped: {
    default: 'SHUTOFF',
    resize_prep: 'RESIZE',
    resize_migrating: 'RESIZE',
    resize_migrated: 'RESIZE',
    resize_finish: 'RESIZE',
    rebuilding: 'REBUILD',
    rebuild_block_device_mapping: 'REBUILD',
    rebuild_spawning: 'REBUILD',
  },
  resized: { default: 'VERIFY_RESIZE', resize_reverting: 'REVERT_RESIZE' },
  paused: { default: 'PAUSED', migrating: 'MIGRATING' },
  suspended: { default: 'SUSPENDED' },
  rescued: { default: 'RESCUE' },
  error: { default: 'ERROR', rebuilding: 'REBUILD', rebuild_block_device_mapping: 'REBUILD', rebuild_spawning: 'REBUILD' },
  deleted: { default: 'DELETED' },
  'soft-delete': { default: 'SOFT_DELETED' },
  shelved: { default: 'SHELVED' },
  shelved_offloaded: { default: 'SHELVED_OFFLOADED' },
}

/** Object.entries with the keys' own type (the table's keys are exactly its type's). */
const entries = <K extends string, V>(o: Partial<Record<K, V>>) => Object.entries(o) as [K, V][]

/** The table as maps, built once: status is derived for every server of every answer. */
const STATUS = new Map<string, Map<string, string>>(entries(STATE_MAP).map(([vm, map]) => [vm, new Map(entries(map))]))

export function statusOf(vmState: string, taskState: string | null): string {
  const map = STATUS.get(vmState)
  if (!map) return 'UNKNOWN'
  return (taskState !== null ? map.get(taskState) : undefined) ?? map.get('default') ?? 'UNKNOWN'
}

/** The vm_states a status filter means (nova common.task_and_vm_state_from_status). */
export function statesForStatus(status: string): { vmStates: VmState[]; taskStates: TaskState[] | 'any' } | null {
  const upper = status.toUpperCase()
  const vmStates = new Set<VmState>()
  const taskStates = new Set<TaskState>()
  let anyTask = false
  for (const [vm, map] of entries(STATE_MAP)) {
    for (const [task, s] of entries(map)) {
      if (s !== upper) continue
      vmStates.add(vm)
      if (task === 'default') anyTask = true
      else taskStates.add(task)
    }
  }
  if (vmStates.size === 0) return null
  // 'ACTIVE' must not match servers that are rebooting, as in Nova.
  return { vmStates: [...vmStates], taskStates: anyTask ? 'any' : [...taskStates] }
}
