// Server metadata (/servers/{id}/metadata[/{key}]), as Nova's server_metadata controller and
// compute API: reads for readers; writes for members, refused while locked (409) or outside
// active/paused/suspended/stopped with no task (409), and over the metadata_items quota (403).
// Each write is a compare-and-set on the metadata text, so concurrent writers never lose keys.
import { BadRequest, NotFound } from '../errors.ts'
import type { AuthContext } from '../identity/identity-service.ts'
import { InstanceInvalidState, InstanceIsLocked, InstanceNotFound } from './errors.ts'
import { authorize } from './policy.ts'
import type { Server } from './server.ts'
import type { ServerService } from './server-service.ts'
import type { ServersRepo } from '../store/servers-repo.ts'
import type { VmState } from './states.ts'
import type { QuotaService } from './quota-service.ts'

const WRITABLE_VM_STATES: VmState[] = ['active', 'paused', 'suspended', 'stopped']

export type Metadata = Record<string, string>

const parse = (s: Server): Metadata => JSON.parse(s.metadata) as Metadata

export class ServerMetadataService {
  readonly #servers: ServerService
  readonly #repo: ServersRepo
  readonly #quotas: Pick<QuotaService, 'checkMetadata'>

  constructor(servers: ServerService, repo: ServersRepo, quotas: Pick<QuotaService, 'checkMetadata'>) {
    this.#servers = servers
    this.#repo = repo
    this.#quotas = quotas
  }

  async list(ctx: AuthContext, id: string): Promise<Metadata> {
    const s = await this.#servers.get(ctx, id)
    authorize(ctx, 'os_compute_api:server-metadata:index', 'reader')
    return parse(s)
  }

  async show(ctx: AuthContext, id: string, key: string): Promise<string> {
    const s = await this.#servers.get(ctx, id)
    authorize(ctx, 'os_compute_api:server-metadata:show', 'reader')
    // Own keys only: `toString` is a key a server may have, not a method every server has.
    const metadata = parse(s)
    const value = Object.hasOwn(metadata, key) ? metadata[key] : undefined
    if (value === undefined) throw new NotFound('Metadata item was not found')
    return value
  }

  /** POST /metadata merges the items in; PUT /metadata replaces them all. */
  async update(ctx: AuthContext, id: string, items: Metadata, how: 'create' | 'update_all'): Promise<Metadata> {
    return this.#update(ctx, id, items, how)
  }

  /** PUT /metadata/{key}: the body must hold that very key. */
  async updateItem(ctx: AuthContext, id: string, key: string, item: Metadata): Promise<void> {
    await this.#update(ctx, id, item, 'update', key)
  }

  async #update(
    ctx: AuthContext,
    id: string,
    items: Metadata,
    how: 'create' | 'update' | 'update_all',
    uriKey?: string,
  ): Promise<Metadata> {
    let s = await this.#servers.get(ctx, id)
    authorize(ctx, `os_compute_api:server-metadata:${how}`, 'member')
    if (uriKey !== undefined && !Object.hasOwn(items, uriKey)) throw new BadRequest('Request body and URI mismatch')
    for (;;) {
      this.#assertWritable(ctx, s, 'update metadata')
      const next = how === 'update_all' ? { ...items } : { ...parse(s), ...items }
      // Nova's MetadataLimitExceeded (403), against the project's metadata_items quota.
      await this.#quotas.checkMetadata(s.project_id, undefined, Object.keys(next).length)
      if (await this.#write(ctx, s, next)) return next
      s = await this.#fresh(s.id)
    }
  }

  async delete(ctx: AuthContext, id: string, key: string): Promise<void> {
    let s = await this.#servers.get(ctx, id)
    authorize(ctx, 'os_compute_api:server-metadata:delete', 'member')
    for (;;) {
      const current = parse(s)
      if (!Object.hasOwn(current, key)) throw new NotFound('Metadata item was not found')
      this.#assertWritable(ctx, s, 'delete metadata')
      delete current[key]
      if (await this.#write(ctx, s, current)) return
      s = await this.#fresh(s.id)
    }
  }

  #assertWritable(ctx: AuthContext, s: Server, action: string): void {
    if (s.locked && !ctx.isAdmin) throw new InstanceIsLocked(s.id)
    if (!WRITABLE_VM_STATES.includes(s.vm_state)) throw new InstanceInvalidState(s.id, action, 'vm_state', s.vm_state)
    if (s.task_state !== null) throw new InstanceInvalidState(s.id, action, 'task_state', s.task_state)
  }

  /** False when the server changed since `s` was read: the caller re-reads and decides again. */
  #write(ctx: AuthContext, s: Server, metadata: Metadata): Promise<boolean> {
    return this.#repo.cas(
      s.id,
      {
        vmStates: WRITABLE_VM_STATES,
        taskStates: [null],
        metadata: s.metadata,
        unlocked: !ctx.isAdmin,
      },
      { metadata: JSON.stringify(metadata) },
    )
  }

  async #fresh(id: string): Promise<Server> {
    const s = await this.#repo.get(id)
    if (!s) throw new InstanceNotFound(id)
    return s
  }
}
