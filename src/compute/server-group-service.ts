// Server groups (os-server-groups at 2.1: one policy, shown as a one-item `policies` list) and
// the placement rule they impose on new members (scheduler hint `group`).
import type { QuotaService } from './quota-service.ts'
import { randomUUID } from 'node:crypto'
import { BadRequest, Forbidden, NotFound } from '../errors.ts'
import type { AuthContext } from '../identity/identity-service.ts'
import type { ServerGroupRow, Tx } from '../store/schema.ts'
import type { ServerGroupsRepo } from '../store/server-groups-repo.ts'
import { authorize } from './policy.ts'

export type GroupPolicy = 'affinity' | 'anti-affinity' | 'soft-affinity' | 'soft-anti-affinity'

export class InstanceGroupNotFound extends NotFound {
  constructor(id: string) {
    super(`Instance group ${id} could not be found.`)
  }
}

export interface ServerGroup extends ServerGroupRow {
  members: string[]
}

/** A group's rules (2.64): anti-affinity may allow up to max_server_per_host members per host. */
export interface GroupRules {
  max_server_per_host?: number
}

/** The rules as Nova shows them (InstanceGroup.rules: max_server_per_host coerced to an integer). */
export function groupRules(g: ServerGroupRow): GroupRules {
  const raw = JSON.parse(g.rules || '{}') as Record<string, unknown>
  return raw.max_server_per_host === undefined ? {} : { max_server_per_host: Number(raw.max_server_per_host) }
}

/** Where the new members of a group may go, host by host, given the hosts its members are on. */
export interface GroupPlacement {
  groupId: string
  /** Hosts of the current members (a member without a host, one in ERROR, holds none). */
  memberHosts: string[]
  /** May a new member go to `host`, the members being on `taken` (this request's new ones included)? */
  allows(host: string, taken: string[]): boolean
}

export class ServerGroupService {
  readonly #repo: ServerGroupsRepo
  readonly #now: () => string
  readonly #quotas: Pick<QuotaService, 'limit' | 'lockProject'>

  constructor(repo: ServerGroupsRepo, now: () => string, quotas: Pick<QuotaService, 'limit' | 'lockProject'>) {
    this.#repo = repo
    this.#now = now
    this.#quotas = quotas
  }

  async create(ctx: AuthContext, name: string, policy: GroupPolicy, rules: GroupRules = {}): Promise<ServerGroup> {
    authorize(ctx, 'os_compute_api:os-server-groups:create', 'member')
    const projectId = ctx.projectId
    if (!projectId) throw new Forbidden('A project-scoped token is required.')
    const row: ServerGroupRow = {
      id: randomUUID(),
      name,
      policy,
      rules: JSON.stringify(rules),
      project_id: projectId,
      user_id: ctx.userId,
      created_at: this.#now(),
    }
    await this.#repo.transaction(async (trx) => {
      // Counted and inserted under the project's quota lock: the last group is given once.
      await this.#quotas.lockProject(trx, projectId)
      const allowed = await this.#quotas.limit(projectId, ctx.userId, 'server_groups', trx)
      if (allowed >= 0 && (await this.#repo.count(projectId, trx)) >= allowed)
        throw new Forbidden('Quota exceeded, too many server groups.')
      await this.#repo.insert(row, trx)
    })
    return { ...row, members: [] }
  }

  async list(ctx: AuthContext, q: { allProjects: boolean; limit?: number; offset?: number }): Promise<ServerGroup[]> {
    authorize(ctx, 'os_compute_api:os-server-groups:index', 'reader')
    if (q.allProjects) authorize(ctx, 'os_compute_api:os-server-groups:index:all_projects', 'admin')
    let rows = await this.#repo.list(q.allProjects ? undefined : (ctx.projectId ?? ''))
    rows = rows.slice(q.offset ?? 0)
    if (q.limit !== undefined) rows = rows.slice(0, q.limit)
    return this.#withMembers(rows)
  }

  async show(ctx: AuthContext, id: string): Promise<ServerGroup> {
    const g = await this.#get(ctx, id)
    authorize(ctx, 'os_compute_api:os-server-groups:show', 'reader')
    return (await this.#withMembers([g]))[0]!
  }

  async delete(ctx: AuthContext, id: string): Promise<void> {
    const g = await this.#get(ctx, id)
    authorize(ctx, 'os_compute_api:os-server-groups:delete', 'member')
    if (!(await this.#repo.delete(g.id))) throw new InstanceGroupNotFound(id)
  }

  /** The group named by a create request's hint, checked (visible, room for `count` more members), and its policy. */
  async place(ctx: AuthContext, groupId: string, count: number): Promise<GroupPlacement> {
    const g = await this.#repo.get(groupId)
    if (!g || !this.#visible(ctx, g)) throw new BadRequest(`Instance group ${groupId} could not be found.`)
    const members = (await this.#repo.members([g.id])).get(g.id) ?? []
    const allowed = await this.#quotas.limit(g.project_id, ctx.userId, 'server_group_members')
    if (allowed >= 0 && members.length + count > allowed) throw new Forbidden('Quota exceeded, too many servers in group')
    const memberHosts = members.map((m) => m.host).filter((h): h is string => h !== null)
    const perHost = groupRules(g).max_server_per_host ?? 1
    const allows = (host: string, taken: string[]) => {
      if (g.policy === 'anti-affinity') return taken.filter((h) => h === host).length < perHost
      if (g.policy === 'affinity') return taken.every((h) => h === host)
      return true // the soft policies only prefer
    }
    return { groupId: g.id, memberHosts, allows }
  }

  /** How many groups a project has (its server_groups quota's use). */
  count(projectId: string): Promise<number> {
    return this.#repo.count(projectId)
  }

  async addMember(groupId: string, serverId: string, trx: Tx): Promise<void> {
    await this.#repo.addMember(groupId, serverId, trx)
  }

  async #get(ctx: AuthContext, id: string): Promise<ServerGroupRow> {
    const g = await this.#repo.get(id)
    // Another project's group is not found, as in Nova's project-scoped query.
    if (!g || !this.#visible(ctx, g)) throw new InstanceGroupNotFound(id)
    return g
  }

  #visible(ctx: AuthContext, g: ServerGroupRow): boolean {
    return ctx.isAdmin || g.project_id === ctx.projectId
  }

  async #withMembers(rows: ServerGroupRow[]): Promise<ServerGroup[]> {
    const members = await this.#repo.members(rows.map((r) => r.id))
    return rows.map((r) => ({ ...r, members: (members.get(r.id) ?? []).map((m) => m.id) }))
  }
}
