// Nova's _poll_shelved_instances: with shelved_offload_time > 0, a server shelved that long ago
// (and idle) is offloaded by Skiff itself, through the same path an admin's shelveOffload takes.
// 0 offloads within the shelve task; -1 never.
import { randomUUID } from 'node:crypto'
import type { HostScope } from '../store/schema.ts'
import type { ShelvesRepo } from '../store/shelves-repo.ts'
import type { Duty } from './periodic-sweep.ts'
import { systemContext } from './policy.ts'
import type { ShelveService } from './shelve-service.ts'

/** Every server of these hosts shelved for shelved_offload_time or longer. */
export function shelveOffload(
  service: ShelveService,
  repo: ShelvesRepo,
  hosts: HostScope,
  afterSeconds: number,
): Duty<{ id: string; project_id: string }> {
  return {
    acting: 'shelved_offload_time reached: offloading',
    skipped: 'shelved server not offloaded',
    failed: 'shelve offload sweep failed',
    enabled: afterSeconds > 0,
    due: (now) => repo.dueForOffload(hosts, new Date(now.getTime() - afterSeconds * 1000).toISOString()),
    act: (s) => service.offloadDue(systemContext(s.project_id, 'skiff-shelved-offload'), s.id, `req-${randomUUID()}`),
  }
}
