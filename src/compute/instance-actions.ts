// os-instance-actions: what was done to a server, by whom, and the events of each action as the
// agents recorded them (admins always; from 2.51 everyone, without the traceback).
import { BadRequest, NotFound } from '../errors.ts'
import type { AuthContext } from '../identity/identity-service.ts'
import type { InstanceActionsRepo } from '../store/instance-actions-repo.ts'
import { InstanceNotFound } from './errors.ts'
import { authorize } from './policy.ts'
import type { InstanceAction, InstanceActionEvent } from './server.ts'

export interface ActionPage {
  limit?: number
  /** The request id of the last action seen. */
  marker?: string
  changesSince?: string
  changesBefore?: string
}

export class InstanceActionService {
  readonly #repo: InstanceActionsRepo

  constructor(repo: InstanceActionsRepo) {
    this.#repo = repo
  }

  /** The server as the caller may see it (another project's is 404); deleted ones too when asked (2.21). */
  async #server(ctx: AuthContext, serverId: string, includeDeleted: boolean) {
    const s = await this.#repo.serverProject(serverId, includeDeleted)
    if (!s || (s.project_id !== ctx.projectId && !ctx.isAdmin)) throw new InstanceNotFound(serverId)
    return s
  }

  /** Newest first; a page of them from 2.58. */
  async list(ctx: AuthContext, serverId: string, o: { includeDeleted: boolean; page?: ActionPage }): Promise<InstanceAction[]> {
    const s = await this.#server(ctx, serverId, o.includeDeleted)
    authorize(ctx, 'os_compute_api:os-instance-actions:list', 'reader')
    const p = o.page ?? {}
    // Nova's actions_get: a limit of 0 is an empty page, the marker is looked up first.
    if (p.limit === 0) return []
    let after: InstanceAction | undefined
    if (p.marker !== undefined) {
      after = await this.#repo.byRequest(s.id, p.marker)
      // Nova's db api passes the looked-up (None) marker to the message: "Marker None could not be found."
      if (!after) throw new BadRequest('Marker None could not be found.')
    }
    return this.#repo.page(s.id, { limit: p.limit, after, changesSince: p.changesSince, changesBefore: p.changesBefore })
  }

  /**
   * The action of one request, and its events for those the os-instance-actions:events policy
   * allows (admins), or anyone from 2.51 (`eventsForAll`). `admin` says whether the caller passed
   * that policy (traceback, host) — and events:details, also admin only by default.
   */
  async show(
    ctx: AuthContext,
    serverId: string,
    requestId: string,
    o: { includeDeleted: boolean; eventsForAll: boolean },
  ): Promise<{ action: InstanceAction; events: InstanceActionEvent[] | undefined; admin: boolean }> {
    const s = await this.#server(ctx, serverId, o.includeDeleted)
    authorize(ctx, 'os_compute_api:os-instance-actions:show', 'reader')
    const action = await this.#repo.byRequest(s.id, requestId)
    if (!action) throw new NotFound(`Action ${requestId} not found`)
    const admin = ctx.isAdmin
    return { action, events: admin || o.eventsForAll ? await this.#repo.events(action.id) : undefined, admin }
  }
}
