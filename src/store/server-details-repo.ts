// What a server's view shows from beyond its row at the newer microversions: its tags (2.26),
// its server group (2.71) and its user data (2.3, admins); and the tags' writes
// (/servers/{id}/tags). Each read takes many servers at once: a list reads them in one query each.
import type { Kysely } from 'kysely'
import { prepared } from './prepared.ts'
import type { Database, Db } from './schema.ts'

export class ServerDetailsRepo {
  readonly #db: Kysely<Database>
  /** Every view shows its server's volumes (at every version): compiled once per list length (prepared.ts). */
  readonly #volumes

  constructor(db: Kysely<Database>) {
    this.#db = db
    this.#volumes = prepared(db, (serverIds) =>
      db
        .selectFrom('volume_attachments')
        .select(['server_id', 'volume_id', 'delete_on_termination'])
        .where('server_id', 'in', serverIds)
        .orderBy('created_at')
        .orderBy('id'),
    )
  }

  /** Each server's tags, sorted (Nova's order: the tag table's). */
  async tags(serverIds: string[], db: Db = this.#db): Promise<Map<string, string[]>> {
    const out = new Map<string, string[]>()
    if (serverIds.length === 0) return out
    const rows = await db
      .selectFrom('server_tags')
      .select(['server_id', 'tag'])
      .where('server_id', 'in', serverIds)
      .orderBy('server_id')
      .orderBy('tag')
      .execute()
    for (const r of rows) {
      const list = out.get(r.server_id)
      if (list) list.push(r.tag)
      else out.set(r.server_id, [r.tag])
    }
    return out
  }

  /** Each server's group, for the servers that are in one. */
  async groups(serverIds: string[]): Promise<Map<string, string>> {
    if (serverIds.length === 0) return new Map()
    const rows = await this.#db
      .selectFrom('server_group_members')
      .select(['server_id', 'group_id'])
      .where('server_id', 'in', serverIds)
      .execute()
    return new Map(rows.map((r) => [r.server_id, r.group_id]))
  }

  /** Each server's user data, for the servers given some. */
  async userData(serverIds: string[]): Promise<Map<string, string>> {
    if (serverIds.length === 0) return new Map()
    const rows = await this.#db
      .selectFrom('server_boot_data')
      .select(['server_id', 'user_data'])
      .where('server_id', 'in', serverIds)
      .where('user_data', 'is not', null)
      .execute()
    return new Map(rows.map((r) => [r.server_id, r.user_data!]))
  }

  /** Each server's attached volumes, oldest first (the server view's volumes_attached). */
  async volumes(serverIds: string[]): Promise<Map<string, { id: string; deleteOnTermination: boolean }[]>> {
    const out = new Map<string, { id: string; deleteOnTermination: boolean }[]>()
    if (serverIds.length === 0) return out
    for (const r of await this.#volumes(serverIds)) {
      const v = { id: r.volume_id, deleteOnTermination: r.delete_on_termination === 1 }
      const list = out.get(r.server_id)
      if (list) list.push(v)
      else out.set(r.server_id, [v])
    }
    return out
  }

  /** Change a server's boot data (rebuild: its key pair's key at 2.54, its user data at 2.57); undefined keeps. */
  async updateBootData(serverId: string, change: { keyData?: string | null; userData?: string | null }): Promise<void> {
    const set: { key_data?: string | null; user_data?: string | null } = {}
    if (change.keyData !== undefined) set.key_data = change.keyData
    if (change.userData !== undefined) set.user_data = change.userData
    await this.#db
      .insertInto('server_boot_data')
      .values({ server_id: serverId, key_data: null, user_data: null, ...set })
      .onConflict((oc) => oc.column('server_id').doUpdateSet(set))
      .execute()
  }

  /** Replace a server's tags with `tags` (deduplicated by the caller). */
  async setTags(serverId: string, tags: string[], db: Db = this.#db): Promise<void> {
    await db.deleteFrom('server_tags').where('server_id', '=', serverId).execute()
    if (tags.length)
      await db
        .insertInto('server_tags')
        .values(tags.map((tag) => ({ server_id: serverId, tag })))
        .execute()
  }

  /** Add one tag; false if the server has it already. */
  async addTag(serverId: string, tag: string, db: Db = this.#db): Promise<boolean> {
    const r = await db
      .insertInto('server_tags')
      .values({ server_id: serverId, tag })
      .onConflict((oc) => oc.columns(['server_id', 'tag']).doNothing())
      .executeTakeFirst()
    return Number(r.numInsertedOrUpdatedRows ?? 0n) === 1
  }

  /** Remove one tag; false if the server has no such tag. */
  async deleteTag(serverId: string, tag: string): Promise<boolean> {
    const r = await this.#db.deleteFrom('server_tags').where('server_id', '=', serverId).where('tag', '=', tag).executeTakeFirst()
    return r.numDeletedRows === 1n
  }

  /** Transaction for a read-check-write of one server's tags (the 50-tag limit). */
  transaction<T>(fn: (trx: Db) => Promise<T>): Promise<T> {
    return this.#db.transaction().execute(fn)
  }
}
