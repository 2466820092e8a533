// Auto-confirm (Nova's resize_confirm_window and _poll_unconfirmed_resizes): a resize or cold
// migration left in VERIFY_RESIZE longer than the window is confirmed by Skiff itself, through
// the path a user's confirmResize takes. Each agent sweeps the moves whose destination is one of
// its hosts; a window of 0 is never (Nova's default).
import { randomUUID } from 'node:crypto'
import type { HostScope } from '../store/schema.ts'
import type { MigrationService } from './migration-service.ts'
import type { Duty } from './periodic-sweep.ts'
import { systemContext } from './policy.ts'

export function resizeAutoConfirm(
  moves: MigrationService,
  hosts: HostScope,
  windowSeconds: number,
): Duty<{ id: string; project_id: string }> {
  return {
    acting: 'resize confirm window passed: confirming',
    skipped: 'unconfirmed resize not confirmed',
    failed: 'resize auto-confirm sweep failed',
    enabled: windowSeconds > 0,
    // The server is what is acted on (its id in the log lines), the move what is due.
    due: async (now) => (await moves.unconfirmed(hosts, windowSeconds, now)).map((m) => ({ id: m.server_id, project_id: m.project_id })),
    act: (s) => moves.confirmResize(systemContext(s.project_id, 'skiff-resize-confirm-window'), s.id, `req-${randomUUID()}`),
  }
}
