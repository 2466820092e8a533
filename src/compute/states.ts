// Nova's state model: vm_state, task_state and power_state are stored; the API status is
// derived from them (nova/api/openstack/common.py _STATE_MAP), never stored.

export type VmState =
  | 'active' | 'building' | 'paused' | 'suspended' | 'stopped' | 'rescued' | 'resized'
  | 'soft-delete' | 'deleted' | 'error' | 'shelved' | 'shelved_offloaded'

export type TaskState =
  | 'scheduling' | 'networking' | 'spawning' | 'rebooting' | 'reboot_pending' | 'reboot_started'
  | 'rebooting_hard' | 'reboot_pending_hard' | 'reboot_started_hard' | 'pausing' | 'unpausing'
  | 'powering-off' | 'powering-on' | 'rescuing' | 'unrescuing' | 'rebuilding' | 'rebuild_spawning'
  | 'deleting' | null

// Power states are the drivers' words as much as compute's: they live below both, in the driver
// interface, and compute re-exports them.
export { PowerState, type PowerStateValue } from '../drivers/driver.ts'

const STATE_MAP: Record<string, Record<string, string>> = {
  active: {
    default: 'ACTIVE',
    rebooting: 'REBOOT', reboot_pending: 'REBOOT', reboot_started: 'REBOOT',
    rebooting_hard: 'HARD_REBOOT', reboot_pending_hard: 'HARD_REBOOT', reboot_started_hard: 'HARD_REBOOT',
    updating_password: 'PASSWORD',
    rebuilding: 'REBUILD', rebuild_block_device_mapping: 'REBUILD', rebuild_spawning: 'REBUILD',
    migrating: 'MIGRATING',
    resize_prep: 'RESIZE', resize_migrating: 'RESIZE', resize_migrated: 'RESIZE', resize_finish: 'RESIZE',
  },
  building: { default: 'BUILD' },
  stopped: {
    default: 'SHUTOFF',
    resize_prep: 'RESIZE', resize_migrating: 'RESIZE', resize_migrated: 'RESIZE', resize_finish: 'RESIZE',
    rebuilding: 'REBUILD', rebuild_block_device_mapping: 'REBUILD', rebuild_spawning: 'REBUILD',
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

export function statusOf(vmState: string, taskState: string | null): string {
  const map = STATE_MAP[vmState]
  if (!map) return 'UNKNOWN'
  return (taskState !== null ? map[taskState] : undefined) ?? map.default ?? 'UNKNOWN'
}

/** The vm_states a status filter means (nova common.task_and_vm_state_from_status). */
export function statesForStatus(status: string): { vmStates: string[]; taskStates: (string | null)[] | 'any' } | null {
  const upper = status.toUpperCase()
  const vmStates = new Set<string>()
  const taskStates = new Set<string | null>()
  let anyTask = false
  for (const [vm, map] of Object.entries(STATE_MAP)) {
    for (const [task, s] of Object.entries(map)) {
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
