// Auto-exit: a rescue whose time is up is unrescued by Skiff itself, through the same path a
// user's unrescue takes, as Nova's rescue_timeout.
import { randomUUID } from 'node:crypto'
import type { RescuesRepo } from '../store/rescues-repo.ts'
import type { HostScope } from '../store/schema.ts'
import type { Duty } from './periodic-sweep.ts'
import { systemContext } from './policy.ts'
import type { RescueService } from './rescue-service.ts'

/** Every rescued server of these hosts whose rescue has expired. */
export function rescueExpiry(rescues: RescueService, repo: RescuesRepo, hosts: HostScope): Duty<{ id: string; project_id: string }> {
  return {
    acting: 'rescue expired: unrescuing',
    skipped: 'expired rescue not unrescued',
    failed: 'rescue expiry sweep failed',
    enabled: true,
    due: (now) => repo.expired(hosts, now.toISOString()),
    act: (s) => rescues.unrescue(systemContext(s.project_id, 'skiff-rescue-timeout'), s.id, `req-${randomUUID()}`),
  }
}
