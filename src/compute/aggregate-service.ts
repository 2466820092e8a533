// Host aggregates and availability zones, as Nova's AggregateAPI (nova/compute/api.py) and
// availability_zones.py: an aggregate's `availability_zone` metadata makes its hosts that zone;
// a host in no such aggregate is in the default zone, 'nova'. Admins only (Nova's defaults).
import { BadRequest, Conflict, NotFound } from '../errors.ts'
import type { AuthContext } from '../identity/identity-service.ts'
import type { Aggregate, AggregatesRepo } from '../store/aggregates-repo.ts'
import type { HostRegistry } from '../tasks/hosts.ts'
import { authorize } from './policy.ts'

/** CONF.default_availability_zone. */
export const DEFAULT_ZONE = 'nova'
const AZ = 'availability_zone'

export interface AggregateView extends Aggregate {
  availability_zone: string | null
}

export interface AggregateServiceDeps {
  repo: AggregatesRepo
  hosts: Pick<HostRegistry, 'list'>
  /** Servers (not deleted) on these hosts: a zone may not change under them. */
  serversOnHosts(hosts: string[]): Promise<number>
  now(): string
}

/** Python's repr of a list of strings, as Nova's messages print them. */
const pyList = (xs: string[]) => `[${xs.map((x) => `'${x}'`).join(', ')}]`

function view(a: Aggregate): AggregateView {
  return { ...a, availability_zone: a.metadata[AZ] ?? null }
}

export class AggregateService {
  readonly #d: AggregateServiceDeps

  constructor(deps: AggregateServiceDeps) {
    this.#d = deps
  }

  // ---- zones, for the scheduler, the server view and os-availability-zone

  /** Each host's zone (hosts in no zoned aggregate are absent: they are in DEFAULT_ZONE). */
  async hostZones(): Promise<Map<string, string>> {
    const out = new Map<string, string>()
    for (const a of await this.#d.repo.list()) {
      const zone = a.metadata[AZ]
      // A host in several zoned aggregates is refused by add_host; the first (oldest) wins otherwise.
      if (zone) for (const h of a.hosts) if (!out.has(h)) out.set(h, zone)
    }
    return out
  }

  /** The zones of the known hosts: name → the hosts in it (DEFAULT_ZONE for hosts in none). */
  async zones(): Promise<Map<string, string[]>> {
    const zoneOf = await this.hostZones()
    const out = new Map<string, string[]>()
    for (const h of await this.#d.hosts.list()) {
      const z = zoneOf.get(h.name) ?? DEFAULT_ZONE
      out.set(z, [...(out.get(z) ?? []), h.name])
    }
    return out
  }

  // ---- os-aggregates

  async list(ctx: AuthContext): Promise<AggregateView[]> {
    authorize(ctx, 'os_compute_api:os-aggregates:index', 'admin')
    return (await this.#d.repo.list()).map(view)
  }

  async show(ctx: AuthContext, id: string): Promise<AggregateView> {
    authorize(ctx, 'os_compute_api:os-aggregates:show', 'admin')
    return view(await this.#get(id))
  }

  async create(ctx: AuthContext, name: string, zone: string | null | undefined): Promise<AggregateView> {
    authorize(ctx, 'os_compute_api:os-aggregates:create', 'admin')
    const id = await this.#d.repo.transaction(async (trx) => {
      if (await this.#d.repo.byName(name, trx)) throw new Conflict(`Aggregate ${name} already exists.`)
      return this.#d.repo.insert(name, zone ? { [AZ]: zone } : {}, this.#d.now(), trx)
    })
    return view((await this.#d.repo.get(id))!)
  }

  /** PUT: name and/or availability_zone (a zone change checked as Nova's is_safe_to_update_az). */
  async update(ctx: AuthContext, id: string, change: { name?: string; availability_zone?: string | null }): Promise<AggregateView> {
    authorize(ctx, 'os_compute_api:os-aggregates:update', 'admin')
    const agg = await this.#get(id)
    const zone = change.availability_zone !== undefined ? { [AZ]: change.availability_zone } : undefined
    // Checked before the transaction: its reads are not the transaction's (on SQLite's one
    // connection, a read outside the open transaction would wait for it forever).
    if (zone) await this.#safeZoneChange(agg, zone, agg.hosts, (r) => `Cannot update aggregate ${agg.id}. Reason: ${r}.`, true)
    await this.#d.repo.transaction(async (trx) => {
      if (change.name !== undefined) {
        const other = await this.#d.repo.byName(change.name, trx)
        if (other && Number(other.id) !== agg.id) throw new Conflict(`Aggregate ${change.name} already exists.`)
        await this.#d.repo.rename(agg.id, change.name, this.#d.now(), trx)
      }
      if (zone) {
        await this.#d.repo.setMetadata(agg.id, zone, trx)
        await this.#d.repo.touch(agg.id, this.#d.now(), trx)
      }
    })
    return view((await this.#d.repo.get(agg.id))!)
  }

  async delete(ctx: AuthContext, id: string): Promise<void> {
    authorize(ctx, 'os_compute_api:os-aggregates:delete', 'admin')
    const agg = await this.#get(id)
    if (agg.hosts.length > 0) throw new BadRequest(`Cannot remove host from aggregate ${agg.id}. Reason: Host aggregate is not empty.`)
    await this.#d.repo.delete(agg.id, this.#d.now())
  }

  async addHost(ctx: AuthContext, id: string, host: string): Promise<AggregateView> {
    authorize(ctx, 'os_compute_api:os-aggregates:add_host', 'admin')
    const agg = await this.#get(id)
    if (!(await this.#d.hosts.list()).some((h) => h.name === host)) throw new NotFound(`Compute host ${host} could not be found.`)
    const add = (r: string) => `Cannot add host to aggregate ${agg.id}. Reason: ${r}.`
    await this.#safeZoneChange(agg, agg.metadata, [host], add, false)
    const zone = agg.metadata[AZ]
    const servers = zone ? await this.#d.serversOnHosts([host]) : 0
    if (zone && servers > 0) {
      const old = (await this.hostZones()).get(host) ?? null
      if (old !== zone) {
        throw new Conflict(
          add(
            `The host cannot be added to the aggregate as the availability zone of the host would change from '${old}' to '${zone}' ` +
              `but the host already has ${servers} instance(s). Changing the AZ of an existing instance is not supported by this action. ` +
              `Move the instances away from this host then try again. If you need to move the instances between AZs then you can use ` +
              `shelve_offload and unshelve to achieve this.`,
          ),
        )
      }
    }
    await this.#d.repo.transaction(async (trx) => {
      if ((await this.#d.repo.get(agg.id, trx))?.hosts.includes(host)) throw new Conflict(`Aggregate ${agg.id} already has host ${host}.`)
      await this.#d.repo.addHost(agg.id, host, trx)
    })
    return view((await this.#d.repo.get(agg.id))!)
  }

  async removeHost(ctx: AuthContext, id: string, host: string): Promise<AggregateView> {
    authorize(ctx, 'os_compute_api:os-aggregates:remove_host', 'admin')
    const agg = await this.#get(id).catch(() => undefined)
    // Nova answers every "not there" with one message.
    if (!agg || !(await this.#d.repo.removeHost(agg.id, host))) throw new NotFound(`Cannot remove host ${host} in aggregate ${id}`)
    return view((await this.#d.repo.get(agg.id))!)
  }

  /** set_metadata: keys set, null values removed. */
  async setMetadata(ctx: AuthContext, id: string, metadata: Record<string, string | null>): Promise<AggregateView> {
    authorize(ctx, 'os_compute_api:os-aggregates:set_metadata', 'admin')
    const agg = await this.#get(id)
    const meta = (r: string) => `Cannot update metadata of aggregate ${agg.id}. Reason: ${r}.`
    await this.#safeZoneChange(agg, metadata, agg.hosts, meta, true)
    await this.#d.repo.transaction(async (trx) => {
      await this.#d.repo.setMetadata(agg.id, metadata, trx)
      await this.#d.repo.touch(agg.id, this.#d.now(), trx)
    })
    return view((await this.#d.repo.get(agg.id))!)
  }

  /**
   * AggregateAPI.is_safe_to_update_az: no empty zone name; the hosts in no other zone; with
   * `checkServers`, no servers on the hosts when the zone changes. Nova's 400 (its
   * InvalidAggregateAction is a 400 everywhere but add_host, which answers 409).
   */
  async #safeZoneChange(
    agg: Aggregate,
    metadata: Record<string, string | null>,
    hosts: string[],
    message: (reason: string) => string,
    checkServers: boolean,
  ): Promise<void> {
    if (!(AZ in metadata)) return
    const refuse = (reason: string) => {
      throw checkServers ? new BadRequest(message(reason)) : new Conflict(message(reason))
    }
    const zone = metadata[AZ]
    if (!zone) refuse(`Aggregate ${agg.name} does not support empty named availability zone`)
    const conflicting = (await this.#d.repo.list())
      .filter((a) => a.id !== agg.id && a.metadata[AZ] && a.metadata[AZ] !== zone && a.hosts.some((h) => hosts.includes(h)))
      .map((a) => a.metadata[AZ]!)
    if (conflicting.length) refuse(`One or more hosts already in availability zone(s) ${pyList(conflicting)}`)
    if (checkServers && agg.metadata[AZ] !== zone && hosts.length && (await this.#d.serversOnHosts(hosts)) > 0)
      refuse('One or more hosts contain instances in this zone')
  }

  /** utils.validate_integer(id, 'id'), then the aggregate. */
  async #get(id: string): Promise<Aggregate> {
    if (!/^\s*[+-]?\d+\s*$/.test(id)) throw new BadRequest('Invalid input received: id must be an integer')
    const agg = await this.#d.repo.get(Number(id))
    if (!agg) throw new NotFound(`Aggregate ${Number(id)} could not be found.`)
    return agg
  }
}
