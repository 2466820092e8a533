// What the server list does with a query once the API has validated it, as Nova's compute API and
// database layer do (nova/compute/api.py get_all, nova/db/main/api.py
// instance_get_all_by_filters_sort, nova/db/utils.py process_sort_params): the columns its
// regular-expression filters match, and the sort.
import { BadRequest, Forbidden } from '../errors.ts'
import type { Server } from './server.ts'

/** A DATETIME column as MySQL shows it to REGEXP: whole seconds, a space, no zone. */
const mysqlTime = (iso: string | null) => (iso === null ? null : iso.slice(0, 19).replace('T', ' '))
const ROOT_DEVICE_NAME = '/dev/vda'

/**
 * The instance columns Nova's _regex_instance_filter matches (any filter naming a column that is
 * not an exact one), as the text MySQL's REGEXP sees: NULL matches nothing. Skiff keeps some of
 * them as constants (no kernel or ramdisk, disk config MANUAL, progress 0 once created).
 */
export const REGEX_COLUMNS: Record<string, (s: Server) => string | null> = {
  display_name: (s) => s.name,
  display_description: (s) => s.description,
  hostname: (s) => s.hostname,
  key_name: (s) => s.key_name,
  node: (s) => s.host,
  availability_zone: (s) => s.availability_zone,
  config_drive: (s) => s.config_drive,
  launch_index: (s) => String(s.launch_index),
  kernel_id: () => '',
  ramdisk_id: () => '',
  root_device_name: (s) => (s.launched_at ? ROOT_DEVICE_NAME : null),
  access_ip_v4: (s) => s.access_ipv4 || null,
  access_ip_v6: (s) => s.access_ipv6 || null,
  auto_disk_config: () => '0',
  locked_by: (s) => s.locked_by,
  progress: () => '0',
  created_at: (s) => mysqlTime(s.created_at),
  launched_at: (s) => mysqlTime(s.launched_at),
  terminated_at: (s) => mysqlTime(s.terminated_at),
}

/** Nova filters by regular expression; a pattern that does not compile matches literally. */
export function safeRegex(pattern: string): RegExp {
  try {
    return new RegExp(pattern)
  } catch {
    return new RegExp(pattern.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
  }
}

type SortValue = string | number | null
/** The value each of Nova's sort keys (VALID_SORT_KEYS) orders by, from Skiff's row. */
const SORT_COLUMNS: Record<string, (s: Server) => SortValue> = {
  ...REGEX_COLUMNS,
  display_name: (s) => s.name,
  access_ip_v4: (s) => s.access_ipv4 || null,
  access_ip_v6: (s) => s.access_ipv6 || null,
  auto_disk_config: () => 0,
  progress: () => 0,
  launch_index: (s) => s.launch_index,
  created_at: (s) => s.created_at,
  launched_at: (s) => s.launched_at,
  terminated_at: (s) => s.terminated_at,
  updated_at: (s) => s.updated_at,
  host: (s) => s.host,
  image_ref: (s) => s.image_id,
  instance_type_id: (s) => s.flavor_id,
  power_state: (s) => s.power_state,
  project_id: (s) => s.project_id,
  user_id: (s) => s.user_id,
  task_state: (s) => s.task_state,
  vm_state: (s) => s.vm_state,
  uuid: (s) => s.id,
  id: (s) => s.id,
  locked: (s) => s.locked,
}

export interface SortSpec {
  keys: string[]
  dirs: string[]
}

/**
 * Nova's sort of a list: the caller's keys and directions (ignored keys already taken out by the
 * API), host and node for admins only, then process_sort_params(default_dir='desc'): directions
 * checked, the missing ones the first given (else desc), `created_at` and `id` appended.
 */
export function processSort(keys: string[], dirs: string[], isAdmin: boolean): SortSpec {
  for (const key of keys) {
    if ((key === 'host' || key === 'node') && !isAdmin) throw new Forbidden(`Only administrators can sort servers by ${key}`)
  }
  const defaultDir = dirs[0] ?? 'desc'
  const resultKeys = [...keys]
  const resultDirs: string[] = []
  for (const dir of dirs) {
    if (dir !== 'asc' && dir !== 'desc') throw new BadRequest("Invalid input received: Unknown sort direction, must be 'desc' or 'asc'")
    resultDirs.push(dir)
  }
  while (resultDirs.length < resultKeys.length) resultDirs.push(defaultDir)
  if (resultDirs.length > resultKeys.length) throw new BadRequest('Invalid input received: Sort direction size exceeds sort key size')
  for (const key of ['created_at', 'id']) {
    if (!resultKeys.includes(key)) {
      resultKeys.push(key)
      resultDirs.push(defaultDir)
    }
  }
  return { keys: resultKeys, dirs: resultDirs }
}

/** The order Skiff's store reads a list in without a sort: Nova's default. */
export const isDefaultSort = (s: SortSpec) =>
  s.keys.length === 2 && s.keys[0] === 'created_at' && s.keys[1] === 'id' && s.dirs.every((d) => d === 'desc')

/** Compares as MySQL orders: NULL first, text without regard to (ASCII) case. */
function compare(a: SortValue, b: SortValue): number {
  if (a === b) return 0
  if (a === null) return -1
  if (b === null) return 1
  if (typeof a === 'number' && typeof b === 'number') return a - b
  const x = String(a).toLowerCase(),
    y = String(b).toLowerCase()
  return x < y ? -1 : x > y ? 1 : 0
}

/** The servers in the order `spec` names (stable: equal rows keep the store's order). */
export function sortServers<T extends Server>(rows: T[], spec: SortSpec): T[] {
  const columns = spec.keys.map((k) => SORT_COLUMNS[k] ?? (() => null))
  return [...rows].sort((a, b) => {
    for (let i = 0; i < columns.length; i++) {
      const c = compare(columns[i]!(a), columns[i]!(b))
      if (c !== 0) return spec.dirs[i] === 'asc' ? c : -c
    }
    return 0
  })
}
