// Rows written straight into the store by tests that check what the database itself does
// (triggers, counters): a server with every column, the given ones changed.
import type { ServerRow } from '../../src/store/schema.ts'

export function serverRow(id: string, changes: Partial<Omit<ServerRow, 'id' | 'version'>> = {}): Omit<ServerRow, 'version'> {
  return {
    id,
    name: id,
    project_id: 'p',
    user_id: 'u',
    image_id: null,
    flavor_id: '1',
    key_name: null,
    vm_state: 'active',
    task_state: null,
    power_state: 1,
    host: 'h',
    metadata: '{}',
    access_ipv4: '',
    access_ipv6: '',
    availability_zone: 'nova',
    config_drive: '',
    locked: 0,
    locked_by: null,
    locked_reason: null,
    description: null,
    hostname: id,
    trusted_certs: null,
    launch_index: 0,
    launched_at: null,
    terminated_at: null,
    reservation_id: 'r',
    created_at: '2026-12-01T00:00:00.000Z',
    updated_at: '2026-12-01T00:00:00.000Z',
    deleted_at: null,
    deleted: 0,
    ...changes,
  }
}
