// Server groups and their members. Members are rows of servers that are not deleted: a
// deleted server leaves its groups, as in Nova.
import type { Kysely } from 'kysely'
import type { Database, Db, ServerGroupRow, Tx } from './schema.ts'

export class ServerGroupsRepo {
  readonly #db: Kysely<Database>

  constructor(db: Kysely<Database>) {
    this.#db = db
  }

  transaction<T>(fn: (trx: Tx) => Promise<T>): Promise<T> {
    return this.#db.transaction().execute(fn)
  }

  async get(id: string, db: Db = this.#db): Promise<ServerGroupRow | undefined> {
    return db.selectFrom('server_groups').selectAll().where('id', '=', id).executeTakeFirst()
  }

  /** Oldest first, as Nova lists them; `projectId` undefined = every project. */
  async list(projectId: string | undefined): Promise<ServerGroupRow[]> {
    let q = this.#db.selectFrom('server_groups').selectAll()
    if (projectId !== undefined) q = q.where('project_id', '=', projectId)
    return q.orderBy('created_at').orderBy('id').execute()
  }

  async count(projectId: string, db: Db = this.#db, userId?: string): Promise<number> {
    let q = db
      .selectFrom('server_groups')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('project_id', '=', projectId)
    if (userId !== undefined) q = q.where('user_id', '=', userId)
    const r = await q.executeTakeFirstOrThrow()
    return Number(r.n)
  }

  async insert(row: ServerGroupRow, db: Db = this.#db): Promise<void> {
    await db.insertInto('server_groups').values(row).execute()
  }

  /** False when it was already gone. */
  async delete(id: string): Promise<boolean> {
    return this.#db.transaction().execute(async (trx) => {
      await trx.deleteFrom('server_group_members').where('group_id', '=', id).execute()
      const r = await trx.deleteFrom('server_groups').where('id', '=', id).executeTakeFirst()
      return r.numDeletedRows === 1n
    })
  }

  /** Members that still exist, by group, with the host each runs on. */
  async members(groupIds: string[], db: Db = this.#db): Promise<Map<string, { id: string; host: string | null }[]>> {
    const out = new Map<string, { id: string; host: string | null }[]>()
    if (groupIds.length === 0) return out
    const rows = await db
      .selectFrom('server_group_members')
      .innerJoin('servers', 'servers.id', 'server_group_members.server_id')
      .select(['server_group_members.group_id', 'servers.id', 'servers.host'])
      .where('server_group_members.group_id', 'in', groupIds)
      .where('servers.deleted', '=', 0)
      .orderBy('servers.created_at')
      .orderBy('servers.id')
      .execute()
    for (const r of rows) {
      const list = out.get(r.group_id) ?? []
      list.push({ id: r.id, host: r.host })
      out.set(r.group_id, list)
    }
    return out
  }

  async addMember(groupId: string, serverId: string, db: Db): Promise<void> {
    await db.insertInto('server_group_members').values({ group_id: groupId, server_id: serverId }).execute()
  }
}
