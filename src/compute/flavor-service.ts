// Flavors: public list and show for everyone, create/delete and extra specs changes for admins.
import type { Clock } from '../clock.ts'
import { BadRequest, Conflict, NotFound } from '../errors.ts'
import type { FlavorsRepo } from '../store/flavors-repo.ts'
import type { FlavorRow } from '../store/schema.ts'
import { FlavorNotFound } from './errors.ts'

export type Flavor = FlavorRow

export interface NewFlavor {
  id?: string
  name: string
  ram: number
  vcpus: number
  disk: number
  ephemeral?: number
  swap?: number
  rxtxFactor?: number
  isPublic?: boolean
  description?: string | null
}

/** Who looks: a private flavor shows to admins and to the projects it is shared with. */
export interface FlavorViewer {
  isAdmin: boolean
  projectId?: string | null
}

export interface FlavorQuery {
  isPublic: boolean | null
  /** Non-admins: public flavors and the private ones shared with this project. */
  accessProject?: string
  minRam?: number
  minDisk?: number
  limit?: number
  marker?: string
  sortKey: string
  sortDir: 'asc' | 'desc'
}

export class FlavorService {
  readonly #repo: FlavorsRepo
  readonly #clock: Clock

  constructor(repo: FlavorsRepo, clock: Clock) {
    this.#repo = repo
    this.#clock = clock
  }

  /** With a viewer, a private flavor not shared with the viewer's project is not found (Nova's _flavor_get_query). */
  async get(id: string, viewer?: FlavorViewer): Promise<FlavorRow> {
    const f = await this.#repo.get(id)
    if (!f || (viewer && !(await this.visible(f, viewer)))) throw new FlavorNotFound(id)
    return f
  }

  async visible(f: FlavorRow, viewer: FlavorViewer): Promise<boolean> {
    if (f.is_public || viewer.isAdmin) return true
    return !!viewer.projectId && this.#repo.hasAccess(f.id, viewer.projectId)
  }

  /** GET /flavors/{id}/os-flavor-access: a public flavor has no list (404). */
  async accessList(id: string): Promise<{ flavor_id: string; tenant_id: string }[]> {
    const f = await this.get(id)
    if (f.is_public) throw new NotFound('Access list not available for public flavors.')
    return this.#access(id)
  }

  /** addTenantAccess: from 2.7 a public flavor refuses (409). */
  async addAccess(id: string, projectId: string, refusePublic: boolean): Promise<{ flavor_id: string; tenant_id: string }[]> {
    const f = await this.get(id)
    if (refusePublic && f.is_public) throw new Conflict('Can not add access to a public flavor.')
    if (!(await this.#repo.addAccess(id, projectId))) {
      throw new Conflict(`Flavor access already exists for flavor ${id} and project ${projectId} combination.`)
    }
    return this.#access(id)
  }

  async removeAccess(id: string, projectId: string): Promise<{ flavor_id: string; tenant_id: string }[]> {
    await this.get(id)
    if (!(await this.#repo.removeAccess(id, projectId))) {
      throw new NotFound(`Flavor access not found for ${id} / ${projectId} combination.`)
    }
    return this.#access(id)
  }

  async #access(id: string): Promise<{ flavor_id: string; tenant_id: string }[]> {
    return (await this.#repo.accessProjects(id)).map((p) => ({ flavor_id: id, tenant_id: p }))
  }

  /** For servers: the flavor even when deleted since (a server keeps its flavor). */
  async getIncludingDeleted(id: string): Promise<FlavorRow | undefined> {
    return this.#repo.getIncludingDeleted(id)
  }

  async list(q: FlavorQuery): Promise<FlavorRow[]> {
    const col = ['id', 'name', 'memory_mb', 'ram', 'vcpus', 'root_gb', 'disk', 'flavorid', 'swap', 'ephemeral_gb', 'rxtx_factor'].includes(
      q.sortKey,
    )
      ? q.sortKey
      : 'flavorid'
    const column = ({ memory_mb: 'ram', root_gb: 'disk', flavorid: 'id', ephemeral_gb: 'ephemeral' } as Record<string, string>)[col] ?? col
    let rows = await this.#repo.list(q)
    const numeric = column !== 'id' && column !== 'name'
    rows.sort((a, b) => {
      const x = (a as unknown as Record<string, unknown>)[column],
        y = (b as unknown as Record<string, unknown>)[column]
      const c = numeric ? Number(x) - Number(y) : String(x).localeCompare(String(y), 'en', { numeric: true })
      return (q.sortDir === 'desc' ? -c : c) || a.id.localeCompare(b.id)
    })
    if (q.marker !== undefined) {
      const i = rows.findIndex((r) => r.id === q.marker)
      if (i < 0) throw new BadRequest(`marker [${q.marker}] not found`)
      rows = rows.slice(i + 1)
    }
    return q.limit !== undefined ? rows.slice(0, q.limit) : rows
  }

  async create(f: NewFlavor): Promise<FlavorRow> {
    const id = f.id ?? crypto.randomUUID()
    const clash = await this.#repo.findClash(id, f.name)
    if (clash?.id === id) throw new Conflict(`Flavor with ID ${id} already exists.`)
    if (clash) throw new Conflict(`Flavor with name ${f.name} already exists.`)
    const row: FlavorRow = {
      id,
      name: f.name,
      ram: f.ram,
      vcpus: f.vcpus,
      disk: f.disk,
      ephemeral: f.ephemeral ?? 0,
      swap: f.swap ?? 0,
      rxtx_factor: f.rxtxFactor ?? 1,
      is_public: f.isPublic === false ? 0 : 1,
      disabled: 0,
      description: f.description ?? null,
      extra_specs: '{}',
      created_at: this.#clock.now().toISOString(),
      deleted: 0,
    }
    // A deleted flavor keeps its row (servers still point at it); its id can be reused.
    await this.#repo.insertReplacingDeleted(row)
    return row
  }

  /** PUT /flavors/{id} (2.55): the description is all that changes. */
  async updateDescription(id: string, description: string | null): Promise<FlavorRow> {
    if (!(await this.#repo.setDescription(id, description))) throw new FlavorNotFound(id)
    return this.get(id)
  }

  async delete(id: string): Promise<void> {
    if (!(await this.#repo.markDeleted(id))) throw new FlavorNotFound(id)
  }

  async extraSpecs(id: string): Promise<Record<string, string>> {
    return JSON.parse((await this.get(id)).extra_specs) as Record<string, string>
  }

  async setExtraSpecs(id: string, specs: Record<string, string>): Promise<Record<string, string>> {
    const merged = { ...(await this.extraSpecs(id)), ...specs }
    await this.#repo.setExtraSpecs(id, JSON.stringify(merged))
    return merged
  }

  async deleteExtraSpec(id: string, key: string): Promise<void> {
    const specs = await this.extraSpecs(id)
    if (!Object.hasOwn(specs, key)) throw new FlavorExtraSpecNotFound(id, key)
    delete specs[key]
    await this.#repo.setExtraSpecs(id, JSON.stringify(specs))
  }
}

export class FlavorExtraSpecNotFound extends NotFound {
  constructor(id: string, key: string) {
    super(`Flavor ${id} has no extra specs with key ${key}.`)
  }
}
