// /os-instance_usage_audit_log (admins), as nova/api/openstack/compute/instance_usage_audit_log.py:
// the instance usage audit of the last completed month (before now, or before the timestamp
// shown) over the compute hosts. Skiff runs no audit task (Nova's task_log stays empty), so every
// compute host is reported as not run, as a Nova deployment whose audit is off answers.
import type { FastifyInstance } from 'fastify'
import { systemClock } from '../../../clock.ts'
import { authorize } from '../../../compute/policy.ts'
import { BadRequest } from '../../../errors.ts'
import type { ComputeRouteDeps } from './index.ts'

/** utils.last_completed_audit_period with the default 'month' unit: [begin, end). */
function lastCompletedMonth(before: Date): [Date, Date] {
  let end = new Date(Date.UTC(before.getUTCFullYear(), before.getUTCMonth(), 1))
  if (end.getTime() >= before.getTime()) end = new Date(Date.UTC(end.getUTCFullYear(), end.getUTCMonth() - 1, 1))
  return [new Date(Date.UTC(end.getUTCFullYear(), end.getUTCMonth() - 1, 1)), end]
}

/** Python's str(datetime): `2026-11-01 00:00:00`. */
const pyStr = (d: Date) => d.toISOString().slice(0, 19).replace('T', ' ')

/** strptime '%Y-%m-%d %H:%M:%S' (with '.%f' when the id has a dot), as UTC; undefined when invalid. */
function parseBefore(id: string): Date | undefined {
  const m = /^(\d{4})-(\d{1,2})-(\d{1,2}) (\d{1,2}):(\d{1,2}):(\d{1,2})(?:\.(\d{1,6}))?$/.exec(id)
  if (!m || id.includes('.') !== (m[7] !== undefined)) return undefined
  const [y, mo, d, h, mi, s] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number]
  const ms = m[7] ? Number(m[7].padEnd(6, '0')) / 1000 : 0
  const date = new Date(Date.UTC(y, mo - 1, d, h, mi, s) + ms)
  if (date.getUTCMonth() !== mo - 1 || date.getUTCDate() !== d || h > 23 || mi > 59 || s > 61) return undefined
  return date
}

export function usageAuditLogRoutes(app: FastifyInstance, deps: ComputeRouteDeps) {
  const clock = deps.clock ?? systemClock
  const auditLog = async (before: Date) => {
    const [begin, end] = lastCompletedMonth(before)
    const hosts = (await deps.hosts.list()).map((h) => h.name)
    return {
      period_beginning: pyStr(begin),
      period_ending: pyStr(end),
      num_hosts: hosts.length,
      num_hosts_done: 0,
      num_hosts_running: 0,
      num_hosts_not_run: hosts.length,
      hosts_not_run: hosts,
      total_instances: 0,
      total_errors: 0,
      overall_status: `${hosts.length === 0 ? 'ALL' : `0 of ${hosts.length}`} hosts done. 0 errors.`,
      log: {},
    }
  }

  app.get('/v2.1/os-instance_usage_audit_log', async (req) => {
    authorize(req.auth, 'os_compute_api:os-instance-usage-audit-log:list', 'admin')
    return { instance_usage_audit_logs: await auditLog(clock.now()) }
  })

  app.get<{ Params: { id: string } }>('/v2.1/os-instance_usage_audit_log/:id', async (req) => {
    authorize(req.auth, 'os_compute_api:os-instance-usage-audit-log:show', 'admin')
    const before = parseBefore(req.params.id)
    if (!before) throw new BadRequest(`Invalid timestamp for date ${req.params.id}`)
    return { instance_usage_audit_log: await auditLog(before) }
  })
}
