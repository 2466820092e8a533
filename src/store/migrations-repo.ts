// Nova's migration records (os-migrations, /servers/{id}/migrations): created by the API in the
// transaction that starts a move, advanced by the agents with compare-and-set on `status`.
import { randomUUID } from 'node:crypto'
import { sql, type Kysely } from 'kysely'
import type { Clock } from '../clock.ts'
import type { Dialect } from './db.ts'
import { onHostsOf } from './host-scope.ts'
import type { Database, Db, HostScope, MigrationRow, MigrationType } from './schema.ts'

export type NewMigration = Pick<
  MigrationRow,
  | 'server_id'
  | 'project_id'
  | 'user_id'
  | 'migration_type'
  | 'status'
  | 'source_compute'
  | 'dest_compute'
  | 'old_flavor_id'
  | 'new_flavor_id'
  | 'old_vm_state'
  | 'alloc_host'
  | 'alloc_flavor_id'
  | 'request_id'
>

/** Filters of GET /os-migrations (Nova's search_opts). */
export interface MigrationFilters {
  serverId?: string
  status?: string
  sourceCompute?: string
  host?: string
  migrationType?: MigrationType
  projectId?: string
  userId?: string
  changesSince?: string
  changesBefore?: string
  /** Newest first (Nova's sort by created_at, id desc) when paginating. */
  limit?: number
  /** Id of the last migration of the previous page. */
  markerId?: number
}

export class MigrationsRepo {
  readonly #db: Kysely<Database>
  readonly #clock: Clock
  readonly #dialect: Dialect

  constructor(db: Kysely<Database>, clock: Clock, dialect: Dialect) {
    this.#db = db
    this.#clock = clock
    this.#dialect = dialect
  }

  now(): string {
    return this.#clock.now().toISOString()
  }

  /** In the caller's transaction. Ids are Nova's integers, one after the other. */
  async insert(m: NewMigration, db: Db): Promise<MigrationRow> {
    // Two API processes inserting at once would take the same next id: one at a time (PostgreSQL;
    // SQLite has one writer).
    if (this.#dialect === 'postgres') await sql`select pg_advisory_xact_lock(7316016)`.execute(db)
    const max = await db
      .selectFrom('migrations')
      .select((eb) => eb.fn.max<number>('id').as('id'))
      .executeTakeFirst()
    const now = this.now()
    const row: MigrationRow = {
      ...m,
      id: Number(max?.id ?? 0) + 1,
      uuid: randomUUID(),
      created_at: now,
      updated_at: now,
      requested: null,
      dest_host: null,
      progress: null,
    }
    await db.insertInto('migrations').values(row).execute()
    return row
  }

  async get(id: number, db: Db = this.#db): Promise<MigrationRow | undefined> {
    return db.selectFrom('migrations').selectAll().where('id', '=', id).executeTakeFirst()
  }

  async getByUuid(uuid: string, db: Db = this.#db): Promise<MigrationRow | undefined> {
    return db.selectFrom('migrations').selectAll().where('uuid', '=', uuid).executeTakeFirst()
  }

  /** The server's newest migration in one of `statuses` (Nova's get_by_instance_and_status). */
  async latest(serverId: string, statuses: string[], db: Db = this.#db): Promise<MigrationRow | undefined> {
    return db
      .selectFrom('migrations')
      .selectAll()
      .where('server_id', '=', serverId)
      .where('status', 'in', statuses)
      .orderBy('id', 'desc')
      .executeTakeFirst()
  }

  /** Change a migration only if its status is still one of `from`. */
  async cas(id: number, from: string[], to: Partial<Omit<MigrationRow, 'id' | 'uuid'>>, db: Db = this.#db): Promise<boolean> {
    const r = await db
      .updateTable('migrations')
      .set({ ...to, updated_at: this.now() })
      .where('id', '=', id)
      .where('status', 'in', from)
      .executeTakeFirst()
    return r.numUpdatedRows === 1n
  }

  async update(id: number, to: Partial<Omit<MigrationRow, 'id' | 'uuid'>>, db: Db = this.#db): Promise<void> {
    await db
      .updateTable('migrations')
      .set({ ...to, updated_at: this.now() })
      .where('id', '=', id)
      .execute()
  }

  async list(f: MigrationFilters): Promise<MigrationRow[]> {
    let q = this.#db.selectFrom('migrations').selectAll()
    if (f.serverId) q = q.where('server_id', '=', f.serverId)
    if (f.status) q = q.where('status', '=', f.status)
    if (f.sourceCompute) q = q.where('source_compute', '=', f.sourceCompute)
    if (f.host) {
      const host = f.host
      q = q.where((eb) => eb.or([eb('source_compute', '=', host), eb('dest_compute', '=', host)]))
    }
    if (f.migrationType) q = q.where('migration_type', '=', f.migrationType)
    if (f.projectId) q = q.where('project_id', '=', f.projectId)
    if (f.userId) q = q.where('user_id', '=', f.userId)
    if (f.changesSince) q = q.where('updated_at', '>=', f.changesSince)
    if (f.changesBefore) q = q.where('updated_at', '<=', f.changesBefore)
    if (f.markerId !== undefined) q = q.where('id', '<', f.markerId)
    q = q.orderBy('created_at', 'desc').orderBy('id', 'desc')
    if (f.limit !== undefined) q = q.limit(f.limit)
    return q.execute()
  }

  /** Resizes and cold migrations waiting for confirmation on these hosts since before `before` (auto-confirm). */
  async unconfirmed(hosts: HostScope, before: string): Promise<MigrationRow[]> {
    return this.#db
      .selectFrom('migrations')
      .selectAll()
      .where('status', '=', 'finished')
      .where(onHostsOf('dest_compute', hosts))
      .where('updated_at', '<=', before)
      .orderBy('id')
      .execute()
  }
}
