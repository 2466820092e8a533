// Nova's quotas (os-quota-sets, os-quota-class-sets) and their enforcement, as nova/quota.py's
// DbQuotaDriver with counting quotas: a limit is the user's (if set), else the project's, else
// the 'default' class's, else the configured default; -1 is unlimited. Use is counted from the
// rows themselves (servers and their flavors, key pairs, server groups), never stored, so it
// cannot drift. A create counts and inserts in one transaction under the project's lock.
import { BadRequest, Forbidden, PolicyNotAuthorized } from '../errors.ts'
import type { AuthContext } from '../identity/identity-service.ts'
import type { QuotasRepo } from '../store/quotas-repo.ts'
import type { Db, Tx } from '../store/schema.ts'
import type { Usage } from '../store/servers-repo.ts'
import { authorize, hasRole } from './policy.ts'

/** Every resource of Nova's quota engine (the network ones are -1 and unenforced since nova-network went). */
export const QUOTA_RESOURCES = [
  'instances',
  'cores',
  'ram',
  'metadata_items',
  'injected_files',
  'injected_file_content_bytes',
  'injected_file_path_bytes',
  'key_pairs',
  'server_groups',
  'server_group_members',
  'floating_ips',
  'fixed_ips',
  'security_groups',
  'security_group_rules',
] as const
export type QuotaResource = (typeof QUOTA_RESOURCES)[number]
export type QuotaLimits = Record<QuotaResource, number>

/** The configured defaults (flags) of the three server quotas; the rest are Nova's defaults. */
export interface Quotas {
  instances: number
  cores: number
  ram: number
}

export interface QuotaUsageSources {
  /** Servers of the project (of one user of it with `userId`), their cores and RAM. */
  servers(projectId: string, db: Db | undefined, userId?: string): Promise<Usage>
  keyPairs(userId: string): Promise<number>
  serverGroups(projectId: string, db: Db | undefined, userId?: string): Promise<number>
}

export interface QuotaServiceDeps {
  repo: QuotasRepo
  defaults: Quotas
  usage: QuotaUsageSources
  /** Keystone's answer to "does this project exist?" (Nova's identity.verify_project_id). */
  projectExists(projectId: string): Promise<boolean>
}

export interface QuotaDetail {
  limit: number
  in_use: number
  reserved: number
}

const NOVA_DEFAULTS: Omit<QuotaLimits, keyof Quotas> = {
  metadata_items: 128,
  injected_files: 5,
  injected_file_content_bytes: 10240,
  injected_file_path_bytes: 255,
  key_pairs: 100,
  server_groups: 10,
  server_group_members: 10,
  floating_ips: -1,
  fixed_ips: -1,
  security_groups: -1,
  security_group_rules: -1,
}

const inf = (v: number) => (v === -1 ? Infinity : v)

export class QuotaService {
  readonly #d: QuotaServiceDeps

  constructor(deps: QuotaServiceDeps) {
    this.#d = deps
  }

  /** The 'default' class: configured defaults overridden by what admins set on the class. */
  async defaultLimits(db?: Db): Promise<QuotaLimits> {
    return this.#classLimits('default', db)
  }

  /** A project's limits, or a user's within it (the user's own, else the project's). */
  async limits(projectId: string, userId?: string, db?: Db): Promise<QuotaLimits> {
    const out = await this.defaultLimits(db)
    const project = await this.#d.repo.limits(projectId, '', db)
    const user = userId === undefined ? new Map<string, number>() : await this.#d.repo.limits(projectId, userId, db)
    for (const r of QUOTA_RESOURCES) out[r] = user.get(r) ?? project.get(r) ?? out[r]
    return out
  }

  /** One resource's limit for a user of a project. */
  async limit(projectId: string, userId: string | undefined, resource: QuotaResource, db?: Db): Promise<number> {
    return (await this.limits(projectId, userId, db))[resource]
  }

  /**
   * What is in use: per project, servers (instances, cores, ram) and server groups; per user, also
   * key pairs (a user's resource: 0 at project level, as Nova's detail shows).
   */
  async usage(projectId: string, userId?: string, db?: Db): Promise<Record<QuotaResource, number>> {
    const [servers, groups, keys] = await Promise.all([
      this.#d.usage.servers(projectId, db, userId),
      this.#d.usage.serverGroups(projectId, db, userId),
      userId === undefined ? 0 : this.#d.usage.keyPairs(userId),
    ])
    const out = Object.fromEntries(QUOTA_RESOURCES.map((r) => [r, 0])) as Record<QuotaResource, number>
    Object.assign(out, { instances: servers.instances, cores: servers.cores, ram: servers.ram, server_groups: groups, key_pairs: keys })
    return out
  }

  // ---- the API (policy as Nova's defaults: reader of the project or admin may look; admins set)

  async show(ctx: AuthContext, projectId: string, userId?: string): Promise<QuotaLimits> {
    this.#readerOrAdmin(ctx, 'show', projectId)
    await this.#verifyProject(projectId)
    return this.limits(projectId, userId)
  }

  async detail(ctx: AuthContext, projectId: string, userId?: string): Promise<Record<QuotaResource, QuotaDetail>> {
    this.#readerOrAdmin(ctx, 'detail', projectId)
    await this.#verifyProject(projectId)
    const [limits, used] = await Promise.all([this.limits(projectId, userId), this.usage(projectId, userId)])
    return Object.fromEntries(QUOTA_RESOURCES.map((r) => [r, { limit: limits[r], in_use: used[r], reserved: 0 }])) as Record<
      QuotaResource,
      QuotaDetail
    >
  }

  /** GET .../defaults: anyone (Nova's RULE_ANY). */
  async defaults(projectId: string): Promise<QuotaLimits> {
    await this.#verifyProject(projectId)
    return this.defaultLimits()
  }

  /**
   * PUT: each value checked against what is in use (and, for a user, what the project leaves)
   * unless `force`, as QuotaSetsController.update and get_settable_quotas; then stored.
   */
  async update(
    ctx: AuthContext,
    projectId: string,
    userId: string | undefined,
    values: Partial<Record<QuotaResource, number>>,
    force: boolean,
  ): Promise<QuotaLimits> {
    authorize(ctx, 'os_compute_api:os-quota-sets:update', 'admin')
    await this.#verifyProject(projectId)
    if (!force) {
      const used = await this.usage(projectId, userId)
      const project = await this.limits(projectId)
      const others = userId === undefined ? undefined : await this.#d.repo.userLimitSums(projectId, userId)
      for (const [resource, limit] of Object.entries(values) as [QuotaResource, number][]) {
        const minimum = used[resource]
        // A user's limit may take what the project's limit leaves once its other users' are counted.
        const maximum = others === undefined || project[resource] === -1 ? -1 : project[resource] - (others.get(resource) ?? 0)
        if (inf(limit) < inf(minimum))
          throw new BadRequest(
            `Quota limit ${limit} for ${resource} must be greater than or equal to already used and reserved ${minimum}.`,
          )
        if (inf(limit) > inf(maximum))
          throw new BadRequest(`Quota limit ${limit} for ${resource} must be less than or equal to ${maximum}.`)
      }
    }
    await this.#d.repo.transaction(async (trx) => {
      for (const [resource, limit] of Object.entries(values)) await this.#d.repo.setLimit(projectId, userId ?? '', resource, limit, trx)
    })
    return this.limits(projectId, userId)
  }

  /** DELETE: back to the defaults (the project's users' limits too, without `userId`). */
  async reset(ctx: AuthContext, projectId: string, userId?: string): Promise<void> {
    authorize(ctx, 'os_compute_api:os-quota-sets:delete', 'admin')
    await this.#d.repo.reset(projectId, userId)
  }

  /** A class's limits: the configured defaults overridden by the class's rows (get_class_quotas). */
  async showClass(ctx: AuthContext, className: string): Promise<QuotaLimits> {
    authorize(ctx, 'os_compute_api:os-quota-class-sets:show', 'admin')
    return this.#classLimits(className)
  }

  async #classLimits(className: string, db?: Db): Promise<QuotaLimits> {
    const set = await this.#d.repo.classLimits(className, db)
    const out = { ...this.#d.defaults, ...NOVA_DEFAULTS } as QuotaLimits
    for (const r of QUOTA_RESOURCES) if (set.has(r)) out[r] = set.get(r)!
    return out
  }

  /** Nova stores any class name; only 'default' is ever read (quota classes are otherwise unused). */
  async updateClass(ctx: AuthContext, className: string, values: Partial<Record<QuotaResource, number>>): Promise<QuotaLimits> {
    authorize(ctx, 'os_compute_api:os-quota-class-sets:update', 'admin')
    // utils.check_string_length(id, 'quota_class_name', min_length=1, max_length=255).
    // oslo's check_string_length message.
    if (className.length > 255) throw new BadRequest(`quota_class_name has ${className.length} characters, more than 255.`)
    for (const [resource, limit] of Object.entries(values)) await this.#d.repo.setClassLimit(className, resource, limit)
    return this.#classLimits(className)
  }

  // ---- enforcement

  /**
   * In the create transaction, under the project's lock: how many of `min`..`max` servers of
   * `flavor` the quotas allow (nova.compute.utils.check_num_instances_quota, word for word in its
   * refusal). Counted again here, so two creates in parallel never both take the last slot.
   */
  async checkInstances(
    trx: Tx | undefined,
    projectId: string,
    userId: string,
    flavor: { vcpus: number; ram: number },
    min: number,
    max: number,
  ): Promise<number> {
    // Without a transaction: the early check, before anything is read for the create (Nova's own
    // first check); the create transaction checks again under the lock.
    if (trx) await this.#d.repo.lockProject(trx, projectId)
    // Nova checks the user's limits only when some are set for the user.
    const own = await this.#d.repo.limits(projectId, userId, trx)
    const byUser = ['instances', 'cores', 'ram'].some((r) => own.has(r))
    const limits = await this.limits(projectId, byUser ? userId : undefined, trx)
    const used = await this.#d.usage.servers(projectId, trx, byUser ? userId : undefined)
    const projectLimits = byUser ? await this.limits(projectId, undefined, trx) : limits
    const projectUsed = byUser ? await this.#d.usage.servers(projectId, trx) : used
    const check = (count: number): number => {
      const deltas = { instances: count, cores: count * flavor.vcpus, ram: count * flavor.ram }
      const over = (l: QuotaLimits, u: Usage) =>
        (['cores', 'instances', 'ram'] as const).filter((r) => l[r] >= 0 && l[r] < u[r] + deltas[r])
      let overs = over(limits, used)
      let [q, u] = [limits, used]
      if (!overs.length && byUser) {
        overs = over(projectLimits, projectUsed)
        ;[q, u] = [projectLimits, projectUsed]
      }
      if (!overs.length) return count
      // compute_utils.get_headroom: an unlimited cores or ram follows the instances' headroom.
      const headroom = { instances: q.instances - u.instances, cores: q.cores - u.cores, ram: q.ram - u.ram }
      if (q.cores === -1) headroom.cores = deltas.cores ? (headroom.instances * deltas.cores) / deltas.instances : headroom.instances
      if (q.ram === -1) headroom.ram = deltas.ram ? (headroom.instances * deltas.ram) / deltas.instances : headroom.instances
      let allowed = q.instances === -1 ? Infinity : headroom.instances
      if (flavor.vcpus) allowed = Math.min(allowed, Math.floor(headroom.cores / flavor.vcpus))
      if (flavor.ram) allowed = Math.min(allowed, Math.floor(headroom.ram / flavor.ram))
      if (allowed > 0 && min <= allowed && allowed <= count) return check(allowed)
      const requested = { instances: min === count ? String(min) : `${min}-${count}`, cores: deltas.cores, ram: deltas.ram }
      const join = (f: (r: (typeof overs)[number]) => string | number) => overs.map(f).join(', ')
      const names = join((r) => r)
      throw new Forbidden(
        `Quota exceeded for ${names}: Requested ${join((r) => requested[r])}, but already used ${join((r) => q[r] - headroom[r])} of ${join((r) => q[r])} ${names}`,
      )
    }
    return check(max)
  }

  /** Serialize a count-then-insert of the project's resources (see QuotasRepo.lockProject). */
  lockProject(trx: Tx, projectId: string): Promise<void> {
    return this.#d.repo.lockProject(trx, projectId)
  }

  /** Nova's MetadataLimitExceeded, against the project's metadata_items limit. */
  async checkMetadata(projectId: string, userId: string | undefined, items: number): Promise<void> {
    const allowed = await this.limit(projectId, userId, 'metadata_items')
    if (allowed >= 0 && items > allowed) throw new Forbidden(`Maximum number of metadata items exceeds ${allowed}`)
  }

  #readerOrAdmin(ctx: AuthContext, rule: 'show' | 'detail', projectId: string): void {
    if (ctx.isAdmin) return
    if (ctx.projectId !== projectId || !hasRole(ctx, 'reader')) throw new PolicyNotAuthorized(`os_compute_api:os-quota-sets:${rule}`)
  }

  async #verifyProject(projectId: string): Promise<void> {
    if (!(await this.#d.projectExists(projectId))) throw new BadRequest(`Project ID ${projectId} is not a valid project.`)
  }
}
