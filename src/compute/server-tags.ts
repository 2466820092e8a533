// Server tags (microversion 2.26): /servers/{id}/tags, as Nova's server_tags.py answers. Nova
// checks the policy against the server's project before it reads the server: another project's
// server is 403 here, not 404; changes need the server in a settled state (409 otherwise).
import { BadRequest, NotFound, PolicyNotAuthorized } from '../errors.ts'
import type { AuthContext } from '../identity/identity-service.ts'
import type { ServerDetailsRepo } from '../store/server-details-repo.ts'
import type { ServersRepo } from '../store/servers-repo.ts'
import { InstanceInvalidState, InstanceNotFound } from './errors.ts'
import { hasRole, type Role } from './policy.ts'
import type { Server } from './server.ts'

/** Nova's MAX_TAG_COUNT. */
export const MAX_TAG_COUNT = 50
const SETTLED = new Set(['active', 'paused', 'suspended', 'stopped'])
const ROOT = 'os_compute_api:os-server-tags:'

export class ServerTagService {
  readonly #servers: ServersRepo
  readonly #details: ServerDetailsRepo

  constructor(servers: ServersRepo, details: ServerDetailsRepo) {
    this.#servers = servers
    this.#details = details
  }

  /** The server, after Nova's order: its mapping (404), then the policy on its project (403). */
  async #server(ctx: AuthContext, id: string, rule: string, role: Role, change?: string): Promise<Server> {
    const s = await this.#servers.getAny(id)
    if (!s) throw new NotFound(`Instance ${id} has no mapping to a cell.`)
    if (!hasRole(ctx, role) || (!ctx.isAdmin && s.project_id !== ctx.projectId)) throw new PolicyNotAuthorized(ROOT + rule)
    if (s.deleted) throw new InstanceNotFound(id)
    if (change !== undefined && !SETTLED.has(s.vm_state)) throw new InstanceInvalidState(s.id, change, 'vm_state', s.vm_state)
    return s
  }

  async list(ctx: AuthContext, id: string): Promise<string[]> {
    const s = await this.#server(ctx, id, 'index', 'reader')
    return (await this.#details.tags([s.id])).get(s.id) ?? []
  }

  /** GET one: nothing if it is there, Nova's 404 if not. */
  async check(ctx: AuthContext, id: string, tag: string): Promise<void> {
    const s = await this.#server(ctx, id, 'show', 'reader')
    const tags = (await this.#details.tags([s.id])).get(s.id) ?? []
    if (!tags.includes(tag)) throw new NotFound(`Server ${id} has no tag '${tag}'`)
  }

  /** PUT all: the server's tags become `tags` (validated: at most 50, each a tag). */
  async replace(ctx: AuthContext, id: string, tags: string[]): Promise<string[]> {
    const s = await this.#server(ctx, id, 'update_all', 'member', 'update tags')
    const unique = [...new Set(tags)].sort()
    await this.#details.transaction((trx) => this.#details.setTags(s.id, unique, trx))
    return unique
  }

  /** PUT one: true if added (201), false if the server had it (204). `invalid`: the tag's schema error. */
  async add(ctx: AuthContext, id: string, tag: string, invalid: string | undefined): Promise<boolean> {
    const s = await this.#server(ctx, id, 'update', 'member', 'update tag')
    if (invalid !== undefined) {
      throw new BadRequest(
        `Tag '${tag}' is invalid. It must be a non empty string without characters '/' and ','. Validation error message: ${invalid}`,
      )
    }
    return this.#details.transaction(async (trx) => {
      const tags = (await this.#details.tags([s.id], trx)).get(s.id) ?? []
      if (tags.length >= MAX_TAG_COUNT) throw new BadRequest(`The number of tags exceeded the per-server limit ${MAX_TAG_COUNT}`)
      if (tags.includes(tag)) return false
      return this.#details.addTag(s.id, tag, trx)
    })
  }

  async delete(ctx: AuthContext, id: string, tag: string): Promise<void> {
    const s = await this.#server(ctx, id, 'delete', 'member', 'delete tag')
    if (!(await this.#details.deleteTag(s.id, tag))) throw new NotFound(`Instance ${s.id} has no tag '${tag}'`)
  }

  async deleteAll(ctx: AuthContext, id: string): Promise<void> {
    const s = await this.#server(ctx, id, 'delete_all', 'member', 'delete tags')
    await this.#details.setTags(s.id, [])
  }
}
