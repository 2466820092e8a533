// The hosts an agent works for, as a condition on a column holding a host name. An agent of one
// host names it; an agent of many (`--simulated-hosts`) is named by its id, and the hosts whose
// leases it holds are read in the same statement (one statement for 10,000 hosts, not a list of
// 10,000 names).
import { sql, type RawBuilder, type SqlBool } from 'kysely'
import type { HostScope } from './schema.ts'

export function onHostsOf(column: string, scope: HostScope): RawBuilder<SqlBool> {
  return 'host' in scope
    ? sql<SqlBool>`${sql.ref(column)} = ${scope.host}`
    : sql<SqlBool>`${sql.ref(column)} in (select hosts.name from hosts where hosts.agent_id = ${scope.agentId})`
}
