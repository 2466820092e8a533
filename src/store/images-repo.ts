// Image records (Glance). Status moves by compare-and-set: queued → saving → active, and a
// patch applies only to the record it was computed from.
import { PostgresAdapter, sql, type Kysely, type RawBuilder } from 'kysely'
import type { Clock } from '../clock.ts'
import { prepared } from './prepared.ts'
import type { Database, ImageMemberRow, ImageRow } from './schema.ts'

/** Glance's sort keys (RequestDeserializer._available_sort_keys). */
export type SortKey = 'name' | 'status' | 'container_format' | 'disk_format' | 'size' | 'id' | 'created_at' | 'updated_at'
export type SortDir = 'asc' | 'desc'
/** Columns compared as text; on Glance's reference database (MariaDB, utf8_general_ci) without regard to case. */
export type TextColumn =
  'id' | 'name' | 'status' | 'visibility' | 'owner' | 'container_format' | 'disk_format' | 'checksum' | 'os_hash_algo' | 'os_hash_value'
export type IntColumn = 'size' | 'virtual_size' | 'min_disk' | 'min_ram'
export type TimeColumn = 'created_at' | 'updated_at'
export type TimeOp = 'gt' | 'gte' | 'lt' | 'lte' | 'eq' | 'neq'

/** One condition of an image list, every one of which an image must meet. */
export type ImageCondition =
  | { kind: 'text'; column: TextColumn; value: string }
  | { kind: 'text-in'; column: TextColumn; values: string[] }
  | { kind: 'int'; column: IntColumn; op: '=' | '>=' | '<='; value: number }
  /** `at`: UTC, `YYYY-MM-DDTHH:MM:SS` and `.ffffff` when there is a fraction; compared with the time as shown (whole seconds). */
  | { kind: 'time'; column: TimeColumn; op: TimeOp; at: string }
  | { kind: 'flag'; column: 'protected' | 'os_hidden'; value: boolean }
  | { kind: 'tag'; value: string }
  | { kind: 'property'; name: string; value: string }
  /** Glance compares with a column that never holds the value (a relation, `deleted_at`): nothing matches. */
  | { kind: 'none' }

/** One page of an image list. */
export interface ImageListQuery {
  /**
   * Who lists: an admin sees every image; others public and community images, their project's own
   * and the shared images their project is a member of with `memberStatus` ('all': any status).
   */
  viewer: { projectId: string | null; isAdmin: boolean; memberStatus: string }
  /** Glance's `visibility` filter: undefined, community images only to their owner; 'all': any; else that one. */
  visibility?: string
  conditions: ImageCondition[]
  /** Unique at its end (`created_at`, `id`), so that pages neither repeat nor skip an image. */
  order: { key: SortKey; dir: SortDir }[]
  /** The marker image: the page starts after it, in `order`. */
  after?: ImageRow
  limit: number
}

const TEXT_SORT_KEYS = new Set<SortKey>(['name', 'status', 'container_format', 'disk_format', 'id'])

export class ImagesRepo {
  readonly #db: Kysely<Database>
  readonly #clock: Clock
  readonly #pg: boolean
  /** An image by id: every create, rescue and boot reads one (compiled once, prepared.ts). */
  readonly #get

  constructor(db: Kysely<Database>, clock: Clock) {
    this.#db = db
    this.#clock = clock
    this.#pg = db.getExecutor().adapter instanceof PostgresAdapter
    this.#get = prepared(db, ([id]) => db.selectFrom('images').selectAll().where('id', '=', id!))
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
    return (await this.#get([id]))[0]
  }

  /** The oldest image of that name (and status, when given). */
  async byName(name: string, status?: string): Promise<ImageRow | undefined> {
    let q = this.#db.selectFrom('images').selectAll().where('name', '=', name)
    if (status !== undefined) q = q.where('status', '=', status)
    return q.orderBy('created_at').limit(1).executeTakeFirst()
  }

  /**
   * One page of Glance's image list (glance/db/sqlalchemy/api.py `_image_get_all`): who may see
   * what, the conditions, Glance's order and the page after the marker image.
   */
  async list(query: ImageListQuery): Promise<ImageRow[]> {
    // Glance lists only images not deleted, and never `killed` ones ("deleted" filter).
    let q = this.#db.selectFrom('images').selectAll().where('status', '!=', 'killed')
    const { viewer } = query
    if (!viewer.isAdmin) {
      // Public and community images, the viewer's own, and the shared ones its project is a
      // member of (glance/db/sqlalchemy/api.py _select_images_query's union).
      const own = viewer.projectId
      q = q.where((eb) => {
        const shared = () => {
          let m = eb.selectFrom('image_members').select('image_id').where('member', '=', own!)
          if (viewer.memberStatus !== 'all') m = m.where('status', '=', viewer.memberStatus as ImageMemberRow['status'])
          return eb.and([eb('visibility', '=', 'shared'), eb('id', 'in', m)])
        }
        return eb.or([eb('visibility', 'in', ['public', 'community']), ...(own !== null ? [eb('owner', '=', own), shared()] : [])])
      })
    }
    if (query.visibility === undefined) {
      // Community images are listed only when asked for, or to their owner (admins too).
      const own = viewer.projectId
      q = q.where((eb) => eb.or([eb('visibility', '!=', 'community'), ...(own !== null ? [eb('owner', '=', own)] : [])]))
    } else if (query.visibility !== 'all') {
      q = q.where('visibility', '=', query.visibility)
    }
    for (const c of query.conditions) q = q.where(this.#condition(c))
    if (query.after) q = q.where(this.#after(query.order, query.after))
    for (const { key, dir } of query.order) q = q.orderBy(this.#sortExpr(key), dir)
    return q.limit(query.limit).execute()
  }

  /** `lower()` of ASCII letters only, on both dialects (SQLite's lower() folds no others), compared bytewise. */
  #fold(e: RawBuilder<unknown>): RawBuilder<string> {
    return this.#pg ? sql<string>`lower(cast(${e} as text) collate "C")` : sql<string>`lower(${e})`
  }

  /** Bytewise on PostgreSQL whatever the database's collation, as SQLite compares. */
  #bytes(e: RawBuilder<unknown>): RawBuilder<string> {
    return this.#pg ? sql<string>`(cast(${e} as text) collate "C")` : sql<string>`${e}`
  }

  #condition(c: ImageCondition): RawBuilder<boolean> {
    switch (c.kind) {
      case 'text':
        return sql<boolean>`${this.#fold(sql.ref(c.column))} = ${this.#fold(sql.val(c.value))}`
      case 'text-in':
        // SQLAlchemy's empty IN is false.
        if (c.values.length === 0) return sql<boolean>`1 = 0`
        return sql<boolean>`${this.#fold(sql.ref(c.column))} in (${sql.join(c.values.map((v) => this.#fold(sql.val(v))))})`
      case 'int':
        return sql<boolean>`${sql.ref(c.column)} ${sql.raw(c.op)} ${c.value}`
      case 'time': {
        // Stored with milliseconds, shown (and kept by Glance on MariaDB) in whole seconds.
        const op = { gt: '>', gte: '>=', lt: '<', lte: '<=', eq: '=', neq: '<>' }[c.op]
        return sql<boolean>`${this.#bytes(sql`substr(${sql.ref(c.column)}, 1, 19)`)} ${sql.raw(op)} ${this.#bytes(sql.val(c.at))}`
      }
      case 'flag':
        return sql<boolean>`${sql.ref(c.column)} = ${c.value ? 1 : 0}`
      case 'tag': {
        const elements = this.#pg ? sql`json_array_elements_text(cast(images.tags as json)) as t(value)` : sql`json_each(images.tags) as t`
        return sql<boolean>`exists (select 1 from ${elements} where ${this.#fold(sql.ref('t.value'))} = ${this.#fold(sql.val(c.value))})`
      }
      case 'property': {
        const pairs = this.#pg ? sql`json_each_text(cast(images.properties as json)) as p` : sql`json_each(images.properties) as p`
        return sql<boolean>`exists (select 1 from ${pairs} where ${this.#fold(sql.ref('p.key'))} = ${this.#fold(sql.val(c.name))} and ${this.#fold(sql.ref('p.value'))} = ${this.#fold(sql.val(c.value))})`
      }
      case 'none':
        return sql<boolean>`1 = 0`
    }
  }

  /** What a sort key orders on: text without regard to case and NULL as '', a NULL size as 0 (Glance's marker defaults). */
  #sortExpr(key: SortKey): RawBuilder<unknown> {
    if (TEXT_SORT_KEYS.has(key)) return this.#fold(sql`coalesce(${sql.ref(key)}, '')`)
    if (key === 'size') return sql`coalesce(${sql.ref(key)}, 0)`
    return this.#bytes(sql.ref(key))
  }

  /** The marker image's value of a sort key, as #sortExpr orders on it. */
  #sortValue(key: SortKey, row: ImageRow): RawBuilder<unknown> {
    if (TEXT_SORT_KEYS.has(key)) return this.#fold(sql.val(row[key] ?? ''))
    // bigint columns may come back as strings from PostgreSQL.
    if (key === 'size') return sql`${Number(row.size ?? 0)}`
    return this.#bytes(sql.val(row[key]))
  }

  /** Glance's `_paginate_query`: (k1 > m1) or (k1 = m1 and k2 > m2) or ..., each in its direction. */
  #after(order: ImageListQuery['order'], marker: ImageRow): RawBuilder<boolean> {
    const terms = order.map(({ key, dir }, i) => {
      const equal = order.slice(0, i).map((o) => sql`${this.#sortExpr(o.key)} = ${this.#sortValue(o.key, marker)}`)
      const beyond = sql`${this.#sortExpr(key)} ${sql.raw(dir === 'asc' ? '>' : '<')} ${this.#sortValue(key, marker)}`
      return sql`(${sql.join([...equal, beyond], sql` and `)})`
    })
    return sql<boolean>`(${sql.join(terms, sql` or `)})`
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

  /** False when it was protected meanwhile (or gone). Its members go with it, as in Glance's image_destroy. */
  async deleteUnprotected(id: string): Promise<boolean> {
    return this.#transaction(async (trx) => {
      const r = await trx.deleteFrom('images').where('id', '=', id).where('protected', '=', 0).executeTakeFirst()
      if (r.numDeletedRows !== 1n) return false
      await trx.deleteFrom('image_members').where('image_id', '=', id).execute()
      return true
    })
  }

  #transaction<T>(work: (trx: Kysely<Database>) => Promise<T>): Promise<T> {
    return this.#db.isTransaction ? work(this.#db) : this.#db.transaction().execute(work)
  }

  /** An image's members, oldest first; `visibleTo` (a project): only its own membership unless it owns the image (Glance's _image_member_find). */
  async members(imageId: string, visibleTo?: { projectId: string | null; owner: string | null }): Promise<ImageMemberRow[]> {
    let q = this.#db.selectFrom('image_members').selectAll().where('image_id', '=', imageId)
    if (visibleTo && visibleTo.owner !== visibleTo.projectId) q = q.where('member', '=', visibleTo.projectId ?? '')
    return q.orderBy('created_at').orderBy('member').execute()
  }

  async member(imageId: string, member: string): Promise<ImageMemberRow | undefined> {
    return this.#db.selectFrom('image_members').selectAll().where('image_id', '=', imageId).where('member', '=', member).executeTakeFirst()
  }

  /** Adds a pending member; false if the project is one already (or `max` are). */
  async addMember(imageId: string, member: string, max: number): Promise<'added' | 'duplicate' | 'full'> {
    return this.#transaction(async (trx) => {
      const rows = await trx.selectFrom('image_members').select('member').where('image_id', '=', imageId).execute()
      if (rows.some((r) => r.member === member)) return 'duplicate'
      if (rows.length >= max) return 'full'
      const now = this.#now()
      const inserted = await trx
        .insertInto('image_members')
        .values({ image_id: imageId, member, status: 'pending', created_at: now, updated_at: now })
        .onConflict((oc) => oc.columns(['image_id', 'member']).doNothing())
        .executeTakeFirst()
      return (inserted.numInsertedOrUpdatedRows ?? 0n) === 1n ? 'added' : 'duplicate'
    })
  }

  async setMemberStatus(imageId: string, member: string, status: ImageMemberRow['status']): Promise<ImageMemberRow | undefined> {
    await this.#db
      .updateTable('image_members')
      .set({ status, updated_at: this.#now() })
      .where('image_id', '=', imageId)
      .where('member', '=', member)
      .execute()
    return this.member(imageId, member)
  }

  async removeMember(imageId: string, member: string): Promise<boolean> {
    const r = await this.#db.deleteFrom('image_members').where('image_id', '=', imageId).where('member', '=', member).executeTakeFirst()
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
