// Quota limits set by admins: per project (user_id ''), per user of a project, and per quota
// class ('default' only, as Nova uses). What is not set here falls back (user → project → class →
// the configured defaults) in compute/quota-service.ts.
import { sql, type Kysely } from 'kysely'
import type { Dialect } from './db.ts'
import type { Database, Db, Tx } from './schema.ts'

export class QuotasRepo {
  readonly #db: Kysely<Database>
  readonly #dialect: Dialect

  constructor(db: Kysely<Database>, dialect: Dialect) {
    this.#db = db
    this.#dialect = dialect
  }

  transaction<T>(fn: (trx: Tx) => Promise<T>): Promise<T> {
    return this.#db.transaction().execute(fn)
  }

  /**
   * In a transaction that counts a project's use and then adds to it: one such transaction per
   * project at a time, so two creates never both take the last slot. PostgreSQL: a transaction
   * advisory lock on the project (held until commit); SQLite has one writer, the transaction itself.
   */
  async lockProject(trx: Tx, projectId: string): Promise<void> {
    if (this.#dialect === 'postgres') await sql`select pg_advisory_xact_lock(hashtext(${'skiff-quota:' + projectId}))`.execute(trx)
  }

  async classLimits(className: string, db: Db = this.#db): Promise<Map<string, number>> {
    const rows = await db.selectFrom('quota_classes').select(['resource', 'hard_limit']).where('class_name', '=', className).execute()
    return new Map(rows.map((r) => [r.resource, Number(r.hard_limit)]))
  }

  async setClassLimit(className: string, resource: string, limit: number): Promise<void> {
    await this.#db
      .insertInto('quota_classes')
      .values({ class_name: className, resource, hard_limit: limit })
      .onConflict((oc) => oc.columns(['class_name', 'resource']).doUpdateSet({ hard_limit: limit }))
      .execute()
  }

  /** The limits set for the project itself (`userId` ''), or for one of its users. */
  async limits(projectId: string, userId: string, db: Db = this.#db): Promise<Map<string, number>> {
    const rows = await db
      .selectFrom('quotas')
      .select(['resource', 'hard_limit'])
      .where('project_id', '=', projectId)
      .where('user_id', '=', userId)
      .execute()
    return new Map(rows.map((r) => [r.resource, Number(r.hard_limit)]))
  }

  /** Per resource, the sum of the limits set for the project's users other than `exceptUser`. */
  async userLimitSums(projectId: string, exceptUser: string): Promise<Map<string, number>> {
    const rows = await this.#db
      .selectFrom('quotas')
      .select(['resource', (eb) => eb.fn.sum<number | string>('hard_limit').as('total')])
      .where('project_id', '=', projectId)
      .where('user_id', '!=', '')
      .where('user_id', '!=', exceptUser)
      .groupBy('resource')
      .execute()
    return new Map(rows.map((r) => [r.resource, Number(r.total)]))
  }

  async setLimit(projectId: string, userId: string, resource: string, limit: number, db: Db = this.#db): Promise<void> {
    await db
      .insertInto('quotas')
      .values({ project_id: projectId, user_id: userId, resource, hard_limit: limit })
      .onConflict((oc) => oc.columns(['project_id', 'user_id', 'resource']).doUpdateSet({ hard_limit: limit }))
      .execute()
  }

  /** The project's limits and its users' (`userId` undefined), or one user's. */
  async reset(projectId: string, userId?: string): Promise<void> {
    let q = this.#db.deleteFrom('quotas').where('project_id', '=', projectId)
    if (userId !== undefined) q = q.where('user_id', '=', userId)
    await q.execute()
  }
}
