// A shelved server's shelve keys (Nova's system_metadata shelved_image_id, shelved_at,
// shelved_host): written by the agent when the shelve is done, read by unshelve and by the
// offload sweep (shelved_offload_time), removed when the server is unshelved.
import type { Kysely } from 'kysely'
import { onHostsOf } from './host-scope.ts'
import type { Database, Db, HostScope, ServerShelfRow } from './schema.ts'

export class ShelvesRepo {
  readonly #db: Kysely<Database>

  constructor(db: Kysely<Database>) {
    this.#db = db
  }

  async get(serverId: string, db: Db = this.#db): Promise<ServerShelfRow | undefined> {
    return db.selectFrom('server_shelves').selectAll().where('server_id', '=', serverId).executeTakeFirst()
  }

  /** Shelved again (after a failed unshelve, say): the newest shelve wins. */
  async put(row: ServerShelfRow, db: Db = this.#db): Promise<void> {
    await db.deleteFrom('server_shelves').where('server_id', '=', row.server_id).execute()
    await db.insertInto('server_shelves').values(row).execute()
  }

  async remove(serverId: string, db: Db = this.#db): Promise<void> {
    await db.deleteFrom('server_shelves').where('server_id', '=', serverId).execute()
  }

  /** Servers of these hosts shelved (not offloaded), idle, since before `before` (ISO): due for offload. */
  async dueForOffload(hosts: HostScope, before: string): Promise<{ id: string; project_id: string }[]> {
    return this.#db
      .selectFrom('server_shelves as sh')
      .innerJoin('servers as s', 's.id', 'sh.server_id')
      .select(['s.id', 's.project_id'])
      .where('s.deleted', '=', 0)
      .where('s.vm_state', '=', 'shelved')
      .where('s.task_state', 'is', null)
      .where(onHostsOf('s.host', hosts))
      .where('sh.shelved_at', '<=', before)
      .execute()
  }
}
