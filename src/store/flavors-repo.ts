// Flavors. A deleted flavor keeps its row (deleted = 1): servers still point at it and show it.
import type { Kysely } from 'kysely'
import type { Database, FlavorRow } from './schema.ts'

/** What a flavor list filters on in SQL (the service sorts and pages). */
export interface FlavorFilter {
  isPublic: boolean | null
  /** Private flavors shown too when this project has access to them (Nova's non-admin listing). */
  accessProject?: string
  minRam?: number
  minDisk?: number
}

export class FlavorsRepo {
  readonly #db: Kysely<Database>

  constructor(db: Kysely<Database>) {
    this.#db = db
  }

  /** A flavor that is not deleted. */
  async get(id: string): Promise<FlavorRow | undefined> {
    return this.#db.selectFrom('flavors').selectAll().where('id', '=', id).where('deleted', '=', 0).executeTakeFirst()
  }

  async getIncludingDeleted(id: string): Promise<FlavorRow | undefined> {
    return this.#db.selectFrom('flavors').selectAll().where('id', '=', id).executeTakeFirst()
  }

  /** Flavors not deleted, in no particular order. */
  async list(f: FlavorFilter): Promise<FlavorRow[]> {
    let query = this.#db.selectFrom('flavors').selectAll().where('deleted', '=', 0)
    const project = f.accessProject
    if (project !== undefined) {
      query = query.where((eb) =>
        eb.or([
          eb('is_public', '=', 1),
          eb('id', 'in', eb.selectFrom('flavor_projects').select('flavor_id').where('project_id', '=', project)),
        ]),
      )
    } else if (f.isPublic !== null) query = query.where('is_public', '=', f.isPublic ? 1 : 0)
    if (f.minRam !== undefined) query = query.where('ram', '>=', f.minRam)
    if (f.minDisk !== undefined) query = query.where('disk', '>=', f.minDisk)
    return query.execute()
  }

  /** A flavor, not deleted, with this id or this name. */
  async findClash(id: string, name: string): Promise<Pick<FlavorRow, 'id' | 'name'> | undefined> {
    return this.#db
      .selectFrom('flavors')
      .select(['id', 'name'])
      .where('deleted', '=', 0)
      .where((eb) => eb.or([eb('id', '=', id), eb('name', '=', name)]))
      .executeTakeFirst()
  }

  /** Insert, first dropping a deleted flavor of the same id: a deleted flavor's id can be reused. */
  async insertReplacingDeleted(row: FlavorRow): Promise<void> {
    await this.#db.deleteFrom('flavors').where('id', '=', row.id).where('deleted', '=', 1).execute()
    await this.clearAccess(row.id)
    await this.#db.insertInto('flavors').values(row).execute()
  }

  /** Mark deleted; false if there is no such flavor (or it was deleted already). */
  async markDeleted(id: string): Promise<boolean> {
    const r = await this.#db.updateTable('flavors').set({ deleted: 1 }).where('id', '=', id).where('deleted', '=', 0).executeTakeFirst()
    return r.numUpdatedRows !== 0n
  }

  /** False if there is no such flavor (not deleted). */
  async setDescription(id: string, description: string | null): Promise<boolean> {
    const r = await this.#db.updateTable('flavors').set({ description }).where('id', '=', id).where('deleted', '=', 0).executeTakeFirst()
    return r.numUpdatedRows !== 0n
  }

  /** `extraSpecs`: the JSON text of the whole map. */
  async setExtraSpecs(id: string, extraSpecs: string): Promise<void> {
    await this.#db.updateTable('flavors').set({ extra_specs: extraSpecs }).where('id', '=', id).execute()
  }

  /** The projects a flavor is shared with, in the order they were given access. */
  async accessProjects(flavorId: string): Promise<string[]> {
    const rows = await this.#db.selectFrom('flavor_projects').select('project_id').where('flavor_id', '=', flavorId).execute()
    return rows.map((r) => r.project_id)
  }

  async hasAccess(flavorId: string, projectId: string): Promise<boolean> {
    const row = await this.#db
      .selectFrom('flavor_projects')
      .select('flavor_id')
      .where('flavor_id', '=', flavorId)
      .where('project_id', '=', projectId)
      .executeTakeFirst()
    return row !== undefined
  }

  /** False if the project had access already. */
  async addAccess(flavorId: string, projectId: string): Promise<boolean> {
    const r = await this.#db
      .insertInto('flavor_projects')
      .values({ flavor_id: flavorId, project_id: projectId })
      .onConflict((oc) => oc.doNothing())
      .executeTakeFirst()
    return (r.numInsertedOrUpdatedRows ?? 0n) !== 0n
  }

  /** False if the project had no access. */
  async removeAccess(flavorId: string, projectId: string): Promise<boolean> {
    const r = await this.#db
      .deleteFrom('flavor_projects')
      .where('flavor_id', '=', flavorId)
      .where('project_id', '=', projectId)
      .executeTakeFirst()
    return r.numDeletedRows !== 0n
  }

  /** A reused id starts with no access list. */
  async clearAccess(flavorId: string): Promise<void> {
    await this.#db.deleteFrom('flavor_projects').where('flavor_id', '=', flavorId).execute()
  }
}
