// Image records (Glance). Status moves by compare-and-set: queued → saving → active, and a
// patch applies only to the record it was computed from.
import { sql, type Kysely } from 'kysely'
import type { Clock } from '../clock.ts'
import type { Database, ImageRow } from './schema.ts'

/** What an image list filters on in SQL (tags and extra properties live in JSON text: the service filters those). */
export interface ImageFilter {
  hidden: boolean
  /** Not an admin: public and community images, plus this project's own (null: no project). */
  visibleTo?: { projectId: string | null }
  /** undefined: community images only to their owner; 'all': every visibility. */
  visibility?: string
  /** The caller's project, for "community images only to their owner". */
  projectId: string | null
  name?: string
  status?: string
  owner?: string
}

export class ImagesRepo {
  readonly #db: Kysely<Database>
  readonly #clock: Clock

  constructor(db: Kysely<Database>, clock: Clock) {
    this.#db = db
    this.#clock = clock
  }

  /** The same repository on `db` (a transaction). */
  on(db: Kysely<Database>): ImagesRepo {
    return new ImagesRepo(db, this.#clock)
  }

  #now(): string {
    return this.#clock.now().toISOString()
  }

  async insert(row: ImageRow): Promise<void> {
    await this.#db.insertInto('images').values(row).execute()
  }

  async get(id: string): Promise<ImageRow | undefined> {
    return this.#db.selectFrom('images').selectAll().where('id', '=', id).executeTakeFirst()
  }

  /** The oldest image of that name (and status, when given). */
  async byName(name: string, status?: string): Promise<ImageRow | undefined> {
    let q = this.#db.selectFrom('images').selectAll().where('name', '=', name)
    if (status !== undefined) q = q.where('status', '=', status)
    return q.orderBy('created_at').limit(1).executeTakeFirst()
  }

  /** Newest first, after `marker` (an image row) when given; `limit` undefined: all. */
  async list(f: ImageFilter, page: { after?: ImageRow; limit?: number }): Promise<ImageRow[]> {
    let q = this.#db
      .selectFrom('images')
      .selectAll()
      .where('os_hidden', '=', f.hidden ? 1 : 0)
      .orderBy('created_at', 'desc')
      .orderBy('id', 'desc')
    const project = f.projectId
    if (f.visibleTo) {
      // Glance: public and community images, plus the caller's own (no image members here).
      const own = f.visibleTo.projectId
      q = q.where((eb) => eb.or([eb('visibility', 'in', ['public', 'community']), ...(own ? [eb('owner', '=', own)] : [])]))
    }
    if (f.visibility === undefined) {
      // Community images are listed only when asked for, or to their owner.
      q = q.where((eb) => eb.or([eb('visibility', '!=', 'community'), ...(project ? [eb('owner', '=', project)] : [])]))
    } else if (f.visibility !== 'all') {
      q = q.where('visibility', '=', f.visibility)
    }
    if (f.name !== undefined) q = q.where('name', '=', f.name)
    if (f.status !== undefined) q = q.where('status', '=', f.status)
    if (f.owner !== undefined) q = q.where('owner', '=', f.owner)
    const m = page.after
    if (m) {
      q = q.where((eb) => eb.or([eb('created_at', '<', m.created_at), eb.and([eb('created_at', '=', m.created_at), eb('id', '<', m.id)])]))
    }
    return page.limit !== undefined ? q.limit(page.limit).execute() : q.execute()
  }

  /** Compare-and-set on what the change was computed from (status and updated_at). False: changed meanwhile. */
  async update(from: ImageRow, changes: Partial<Omit<ImageRow, 'id' | 'created_at'>>): Promise<boolean> {
    const r = await this.#db
      .updateTable('images')
      .set(changes)
      .where('id', '=', from.id)
      .where('status', '=', from.status)
      .where('updated_at', '=', from.updated_at)
      .executeTakeFirst()
    return r.numUpdatedRows === 1n
  }

  /** False when it was protected meanwhile (or gone). */
  async deleteUnprotected(id: string): Promise<boolean> {
    const r = await this.#db.deleteFrom('images').where('id', '=', id).where('protected', '=', 0).executeTakeFirst()
    return r.numDeletedRows === 1n
  }

  /** Move the status from `from` to `to` (with `set`), by compare-and-set; false if it was elsewhere. */
  async moveStatus(
    id: string,
    from: string,
    to: string,
    set: Partial<Pick<ImageRow, 'size' | 'checksum' | 'os_hash_algo' | 'os_hash_value'>> = {},
  ): Promise<boolean> {
    const r = await this.#db
      .updateTable('images')
      .set({ ...set, status: to, updated_at: this.#now() })
      .where('id', '=', id)
      .where('status', '=', from)
      .executeTakeFirst()
    return r.numUpdatedRows === 1n
  }

  /**
   * At start-up: uploads cut short by a crash go back from `saving` to `queued`. `skipLocked`
   * (PostgreSQL): not those whose upload lock (image-store.ts) a live upload of another process holds.
   */
  async requeueSaving(opts: { skipLocked?: boolean } = {}): Promise<void> {
    let q = this.#db.updateTable('images').set({ status: 'queued', updated_at: this.#now() }).where('status', '=', 'saving')
    // Taken for the statement only: a lock that is free is released at its end.
    if (opts.skipLocked) q = q.where(sql<boolean>`pg_try_advisory_xact_lock(hashtext('skiff-image-upload:' || id))`)
    await q.execute()
  }
}
