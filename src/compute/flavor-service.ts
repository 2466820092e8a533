// Flavors: public list and show for everyone, create/delete and extra specs changes for admins.
import type { Kysely } from 'kysely'
import type { Clock } from '../clock.ts'
import { BadRequest, Conflict, NotFound } from '../errors.ts'
import type { Database, FlavorRow } from '../store/schema.ts'
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

export interface FlavorQuery {
  isPublic: boolean | null
  minRam?: number
  minDisk?: number
  limit?: number
  marker?: string
  sortKey: string
  sortDir: 'asc' | 'desc'
}

export class FlavorService {
  readonly #db: Kysely<Database>
  readonly #clock: Clock

  constructor(db: Kysely<Database>, clock: Clock) {
    this.#db = db
    this.#clock = clock
  }

  async get(id: string): Promise<FlavorRow> {
    const f = await this.#db.selectFrom('flavors').selectAll().where('id', '=', id).where('deleted', '=', 0).executeTakeFirst()
    if (!f) throw new FlavorNotFound(id)
    return f
  }

  /** For servers: the flavor even when deleted since (a server keeps its flavor). */
  async getIncludingDeleted(id: string): Promise<FlavorRow | undefined> {
    return this.#db.selectFrom('flavors').selectAll().where('id', '=', id).executeTakeFirst()
  }

  async list(q: FlavorQuery): Promise<FlavorRow[]> {
    let query = this.#db.selectFrom('flavors').selectAll().where('deleted', '=', 0)
    if (q.isPublic !== null) query = query.where('is_public', '=', q.isPublic ? 1 : 0)
    if (q.minRam !== undefined) query = query.where('ram', '>=', q.minRam)
    if (q.minDisk !== undefined) query = query.where('disk', '>=', q.minDisk)
    const col = (['id', 'name', 'memory_mb', 'ram', 'vcpus', 'root_gb', 'disk', 'flavorid', 'swap', 'ephemeral_gb', 'rxtx_factor'].includes(q.sortKey) ? q.sortKey : 'flavorid')
    const column = ({ memory_mb: 'ram', root_gb: 'disk', flavorid: 'id', ephemeral_gb: 'ephemeral' } as Record<string, string>)[col] ?? col
    let rows = await query.execute()
    const numeric = column !== 'id' && column !== 'name'
    rows.sort((a, b) => {
      const x = (a as unknown as Record<string, unknown>)[column], y = (b as unknown as Record<string, unknown>)[column]
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
    const clash = await this.#db.selectFrom('flavors').select(['id', 'name']).where('deleted', '=', 0)
      .where((eb) => eb.or([eb('id', '=', id), eb('name', '=', f.name)])).executeTakeFirst()
    if (clash?.id === id) throw new Conflict(`Flavor with ID ${id} already exists.`)
    if (clash) throw new Conflict(`Flavor with name ${f.name} already exists.`)
    const row: FlavorRow = {
      id, name: f.name, ram: f.ram, vcpus: f.vcpus, disk: f.disk, ephemeral: f.ephemeral ?? 0, swap: f.swap ?? 0,
      rxtx_factor: f.rxtxFactor ?? 1, is_public: f.isPublic === false ? 0 : 1, disabled: 0, description: f.description ?? null,
      extra_specs: '{}', created_at: this.#clock.now().toISOString(), deleted: 0,
    }
    // A deleted flavor keeps its row (servers still point at it); its id can be reused.
    await this.#db.deleteFrom('flavors').where('id', '=', id).where('deleted', '=', 1).execute()
    await this.#db.insertInto('flavors').values(row).execute()
    return row
  }

  async delete(id: string): Promise<void> {
    const r = await this.#db.updateTable('flavors').set({ deleted: 1 }).where('id', '=', id).where('deleted', '=', 0).executeTakeFirst()
    if (r.numUpdatedRows === 0n) throw new FlavorNotFound(id)
  }

  async extraSpecs(id: string): Promise<Record<string, string>> {
    return JSON.parse((await this.get(id)).extra_specs) as Record<string, string>
  }

  async setExtraSpecs(id: string, specs: Record<string, string>): Promise<Record<string, string>> {
    const merged = { ...(await this.extraSpecs(id)), ...specs }
    await this.#db.updateTable('flavors').set({ extra_specs: JSON.stringify(merged) }).where('id', '=', id).execute()
    return merged
  }

  async deleteExtraSpec(id: string, key: string): Promise<void> {
    const specs = await this.extraSpecs(id)
    if (!Object.hasOwn(specs, key)) throw new FlavorExtraSpecNotFound(id, key)
    delete specs[key]
    await this.#db.updateTable('flavors').set({ extra_specs: JSON.stringify(specs) }).where('id', '=', id).execute()
  }
}

export class FlavorExtraSpecNotFound extends NotFound {
  constructor(id: string, key: string) { super(`Flavor ${id} has no extra specs with key ${key}.`) }
}
