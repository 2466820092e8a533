// os-instance-actions: what was done to a server, by whom, and (for admins) the events of each
// action as the agents recorded them.
import { NotFound } from '../errors.ts'
import type { AuthContext } from '../identity/identity-service.ts'
import type { InstanceActionsRepo } from '../store/instance-actions-repo.ts'
import { authorize } from './policy.ts'
import type { InstanceAction, InstanceActionEvent } from './server.ts'
import type { ServerActions } from './server-actions.ts'

export class InstanceActionService {
  readonly #servers: Pick<ServerActions, 'get'>
  readonly #repo: InstanceActionsRepo

  constructor(servers: Pick<ServerActions, 'get'>, repo: InstanceActionsRepo) {
    this.#servers = servers
    this.#repo = repo
  }

  /** Newest first. */
  async list(ctx: AuthContext, serverId: string): Promise<InstanceAction[]> {
    const s = await this.#servers.get(ctx, serverId)
    authorize(ctx, 'os_compute_api:os-instance-actions:list', 'reader')
    return this.#repo.list(s.id)
  }

  /** The action of one request; its events only for admins (at 2.1, the os-instance-actions:events policy). */
  async show(
    ctx: AuthContext,
    serverId: string,
    requestId: string,
  ): Promise<{ action: InstanceAction; events: InstanceActionEvent[] | undefined }> {
    const s = await this.#servers.get(ctx, serverId)
    authorize(ctx, 'os_compute_api:os-instance-actions:show', 'reader')
    const action = await this.#repo.byRequest(s.id, requestId)
    if (!action) throw new NotFound(`Action for request_id ${requestId} on instance ${s.id} not found`)
    return { action, events: ctx.isAdmin ? await this.#repo.events(action.id) : undefined }
  }
}
