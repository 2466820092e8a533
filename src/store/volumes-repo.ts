// Volumes, their snapshots and attachments, and the volume quotas of projects. Every status change
// is a compare-and-set on the row's status (Cinder's conditional_update): two API processes, or an
// API process and an agent, never both move a volume from the same status.
import { sql, type Kysely } from 'kysely'
import type { Clock } from '../clock.ts'
import type {
  AttachmentStatus,
  Database,
  Db,
  SnapshotStatus,
  Tx,
  VolumeAttachmentRow,
  VolumeRow,
  VolumeSnapshotRow,
  VolumeStatus,
} from './schema.ts'

export type { AttachmentStatus, SnapshotStatus, VolumeAttachmentRow, VolumeRow, VolumeSnapshotRow, VolumeStatus }

/** What a list of volumes filters on in SQL (metadata is matched by the caller). */
export interface VolumeFilter {
  /** undefined: every project. */
  projectId?: string
  name?: string
  status?: string
  availabilityZone?: string
  bootable?: boolean
  size?: number
}

/** Sort keys of volumes and snapshots (API names) → columns. */
export const VOLUME_SORT_COLUMNS = {
  id: 'id',
  name: 'name',
  display_name: 'name',
  status: 'status',
  size: 'size',
  availability_zone: 'availability_zone',
  bootable: 'bootable',
  created_at: 'created_at',
  updated_at: 'updated_at',
  volume_type: 'volume_type_id',
} as const
export const SNAPSHOT_SORT_COLUMNS = {
  id: 'id',
  name: 'name',
  display_name: 'name',
  status: 'status',
  size: 'size',
  volume_id: 'volume_id',
  created_at: 'created_at',
  updated_at: 'updated_at',
} as const
export type Sort<K extends string> = { key: K; dir: 'asc' | 'desc' }[]

/**
 * A server's volumes go with it when it is deleted (in the soft-delete's transaction): their
 * attachments end, each volume is available again, or gone if it was to be deleted on
 * termination (the simulated driver keeps records only; see the README for the qemu driver).
 */
export async function releaseServerVolumes(trx: Tx, serverId: string, now: string): Promise<void> {
  const attached = await trx.selectFrom('volume_attachments').selectAll().where('server_id', '=', serverId).execute()
  if (attached.length === 0) return
  await trx.deleteFrom('volume_attachments').where('server_id', '=', serverId).execute()
  const gone = attached.filter((a) => a.delete_on_termination === 1).map((a) => a.volume_id)
  const kept = attached.filter((a) => a.delete_on_termination !== 1).map((a) => a.volume_id)
  if (gone.length) {
    // A volume with snapshots cannot go (Cinder refuses its delete): it stays, available.
    const withSnapshots = new Set(
      (await trx.selectFrom('volume_snapshots').select('volume_id').where('volume_id', 'in', gone).execute()).map((r) => r.volume_id),
    )
    const drop = gone.filter((id) => !withSnapshots.has(id))
    if (drop.length) await trx.deleteFrom('volumes').where('id', 'in', drop).execute()
    kept.push(...gone.filter((id) => withSnapshots.has(id)))
  }
  if (kept.length) await trx.updateTable('volumes').set({ status: 'available', updated_at: now }).where('id', 'in', kept).execute()
}

export class VolumesRepo {
  readonly #db: Kysely<Database>
  readonly #clock: Clock
  readonly #dialect: 'sqlite' | 'postgres'

  constructor(db: Kysely<Database>, clock: Clock, dialect: 'sqlite' | 'postgres') {
    this.#db = db
    this.#clock = clock
    this.#dialect = dialect
  }

  now(): string {
    return this.#clock.now().toISOString()
  }

  /**
   * A transaction in which a project's volume use is counted and a new volume or snapshot
   * inserted: under the project's lock (PostgreSQL: an advisory lock; SQLite: one writer).
   */
  transaction<T>(fn: (trx: Tx) => Promise<T>): Promise<T> {
    return this.#db.transaction().execute(fn)
  }

  async lockProject(trx: Tx, projectId: string): Promise<void> {
    if (this.#dialect === 'postgres') await sql`select pg_advisory_xact_lock(hashtext(${'skiff-volume-quota:' + projectId}))`.execute(trx)
  }

  // ---- volumes ----

  async insert(row: VolumeRow, db: Db = this.#db): Promise<void> {
    await db.insertInto('volumes').values(row).execute()
  }

  get(id: string, db: Db = this.#db): Promise<VolumeRow | undefined> {
    return db.selectFrom('volumes').selectAll().where('id', '=', id).executeTakeFirst()
  }

  async byIds(ids: string[]): Promise<VolumeRow[]> {
    if (ids.length === 0) return []
    return this.#db.selectFrom('volumes').selectAll().where('id', 'in', ids).execute()
  }

  /** Volumes matching `f`, in `sort` order (then id, as Cinder's tie-breaker). */
  list(f: VolumeFilter, sort: Sort<keyof typeof VOLUME_SORT_COLUMNS>): Promise<VolumeRow[]> {
    let q = this.#db.selectFrom('volumes').selectAll()
    if (f.projectId !== undefined) q = q.where('project_id', '=', f.projectId)
    if (f.name !== undefined) q = q.where('name', '=', f.name)
    if (f.status !== undefined) q = q.where('status', '=', f.status as VolumeStatus)
    if (f.availabilityZone !== undefined) q = q.where('availability_zone', '=', f.availabilityZone)
    if (f.bootable !== undefined) q = q.where('bootable', '=', f.bootable ? 1 : 0)
    if (f.size !== undefined) q = q.where('size', '=', f.size)
    for (const s of sort) q = q.orderBy(VOLUME_SORT_COLUMNS[s.key], s.dir)
    if (!sort.some((s) => s.key === 'id')) q = q.orderBy('id', sort[0]?.dir ?? 'desc')
    return q.execute()
  }

  /** Move a volume from one of `from` to `to` (with `set`); false if it was not in one of them. */
  async cas(id: string, from: VolumeStatus[], to: VolumeStatus, set: Partial<VolumeRow> = {}, db: Db = this.#db): Promise<boolean> {
    const r = await db
      .updateTable('volumes')
      .set({ ...set, status: to, updated_at: this.now() })
      .where('id', '=', id)
      .where('status', 'in', from)
      .executeTakeFirst()
    return r.numUpdatedRows === 1n
  }

  async update(
    id: string,
    set: Partial<Pick<VolumeRow, 'name' | 'description' | 'metadata' | 'bootable'>>,
    db: Db = this.#db,
  ): Promise<void> {
    await db
      .updateTable('volumes')
      .set({ ...set, updated_at: this.now() })
      .where('id', '=', id)
      .execute()
  }

  /** Remove a volume that is `deleting` (its data is gone); false if it is in another status. */
  async remove(id: string, db: Db = this.#db): Promise<boolean> {
    const r = await db.deleteFrom('volumes').where('id', '=', id).where('status', '=', 'deleting').executeTakeFirst()
    return r.numDeletedRows === 1n
  }

  /** What a project's volumes and snapshots take of its quotas (snapshots count in gigabytes, as Cinder's default). */
  async usage(projectId: string, db: Db = this.#db): Promise<{ volumes: number; gigabytes: number; snapshots: number }> {
    const v = await db
      .selectFrom('volumes')
      .select((eb) => [eb.fn.countAll<number | string>().as('n'), eb.fn.coalesce(eb.fn.sum<number | string>('size'), eb.lit(0)).as('gb')])
      .where('project_id', '=', projectId)
      .executeTakeFirstOrThrow()
    const s = await db
      .selectFrom('volume_snapshots')
      .select((eb) => [eb.fn.countAll<number | string>().as('n'), eb.fn.coalesce(eb.fn.sum<number | string>('size'), eb.lit(0)).as('gb')])
      .where('project_id', '=', projectId)
      .executeTakeFirstOrThrow()
    return { volumes: Number(v.n), gigabytes: Number(v.gb) + Number(s.gb), snapshots: Number(s.n) }
  }

  // ---- snapshots ----

  async insertSnapshot(row: VolumeSnapshotRow, db: Db = this.#db): Promise<void> {
    await db.insertInto('volume_snapshots').values(row).execute()
  }

  getSnapshot(id: string, db: Db = this.#db): Promise<VolumeSnapshotRow | undefined> {
    return db.selectFrom('volume_snapshots').selectAll().where('id', '=', id).executeTakeFirst()
  }

  listSnapshots(
    f: { projectId?: string; volumeId?: string; name?: string; status?: string },
    sort: Sort<keyof typeof SNAPSHOT_SORT_COLUMNS>,
  ): Promise<VolumeSnapshotRow[]> {
    let q = this.#db.selectFrom('volume_snapshots').selectAll()
    if (f.projectId !== undefined) q = q.where('project_id', '=', f.projectId)
    if (f.volumeId !== undefined) q = q.where('volume_id', '=', f.volumeId)
    if (f.name !== undefined) q = q.where('name', '=', f.name)
    if (f.status !== undefined) q = q.where('status', '=', f.status as SnapshotStatus)
    for (const s of sort) q = q.orderBy(SNAPSHOT_SORT_COLUMNS[s.key], s.dir)
    if (!sort.some((s) => s.key === 'id')) q = q.orderBy('id', sort[0]?.dir ?? 'desc')
    return q.execute()
  }

  async countSnapshotsOf(volumeId: string, db: Db = this.#db): Promise<number> {
    const r = await db
      .selectFrom('volume_snapshots')
      .select((eb) => eb.fn.countAll<number | string>().as('n'))
      .where('volume_id', '=', volumeId)
      .executeTakeFirstOrThrow()
    return Number(r.n)
  }

  async casSnapshot(id: string, from: SnapshotStatus[], to: SnapshotStatus, db: Db = this.#db): Promise<boolean> {
    const r = await db
      .updateTable('volume_snapshots')
      .set({ status: to, updated_at: this.now() })
      .where('id', '=', id)
      .where('status', 'in', from)
      .executeTakeFirst()
    return r.numUpdatedRows === 1n
  }

  async updateSnapshot(id: string, set: Partial<Pick<VolumeSnapshotRow, 'name' | 'description' | 'metadata'>>): Promise<void> {
    await this.#db
      .updateTable('volume_snapshots')
      .set({ ...set, updated_at: this.now() })
      .where('id', '=', id)
      .execute()
  }

  /**
   * The metadata of a volume or snapshot as compare-and-set needs it (volumes/metadata.ts): read
   * its text, or replace it only while it is still the text read.
   */
  metadataOf(table: 'volumes' | 'volume_snapshots', id: string) {
    return {
      read: async () => (await this.#db.selectFrom(table).select('metadata').where('id', '=', id).executeTakeFirst())?.metadata,
      swap: async (expected: string, next: string) => {
        const r = await this.#db
          .updateTable(table)
          .set({ metadata: next, updated_at: this.now() })
          .where('id', '=', id)
          .where('metadata', '=', expected)
          .executeTakeFirst()
        return r.numUpdatedRows === 1n
      },
    }
  }

  async removeSnapshot(id: string): Promise<boolean> {
    const r = await this.#db.deleteFrom('volume_snapshots').where('id', '=', id).where('status', '=', 'deleting').executeTakeFirst()
    return r.numDeletedRows === 1n
  }

  // ---- attachments ----

  async insertAttachment(row: VolumeAttachmentRow, db: Db = this.#db): Promise<void> {
    await db.insertInto('volume_attachments').values(row).execute()
  }

  getAttachment(id: string, db: Db = this.#db): Promise<VolumeAttachmentRow | undefined> {
    return db.selectFrom('volume_attachments').selectAll().where('id', '=', id).executeTakeFirst()
  }

  /** The attachment of a volume to a server, if any. */
  attachmentOf(serverId: string, volumeId: string, db: Db = this.#db): Promise<VolumeAttachmentRow | undefined> {
    return db
      .selectFrom('volume_attachments')
      .selectAll()
      .where('server_id', '=', serverId)
      .where('volume_id', '=', volumeId)
      .executeTakeFirst()
  }

  /** The hosts whose agents serve the data of the volumes attached to a server (its boot volume too). */
  async dataHostsOfServer(serverId: string, db: Db = this.#db): Promise<string[]> {
    const rows = await db
      .selectFrom('volume_attachments as a')
      .innerJoin('volumes as v', 'v.id', 'a.volume_id')
      .select('v.host')
      .distinct()
      .where('a.server_id', '=', serverId)
      .where('v.host', 'is not', null)
      .execute()
    return rows.map((r) => r.host!)
  }

  /** Each server's attachments, oldest first. */
  async attachmentsOfServers(serverIds: string[], db: Db = this.#db): Promise<Map<string, VolumeAttachmentRow[]>> {
    const out = new Map<string, VolumeAttachmentRow[]>()
    if (serverIds.length === 0) return out
    const rows = await db
      .selectFrom('volume_attachments')
      .selectAll()
      .where('server_id', 'in', serverIds)
      .orderBy('created_at')
      .orderBy('id')
      .execute()
    for (const r of rows) {
      const list = out.get(r.server_id)
      if (list) list.push(r)
      else out.set(r.server_id, [r])
    }
    return out
  }

  /**
   * The volumes attached to a server are served from `host` now (their data moved with the
   * server): recorded in the transaction that moves the server.
   */
  async moveServerVolumes(serverId: string, host: string, db: Db = this.#db): Promise<void> {
    await db
      .updateTable('volumes')
      .set({ host, updated_at: this.now() })
      .where('id', 'in', db.selectFrom('volume_attachments').select('volume_id').where('server_id', '=', serverId))
      .execute()
  }

  /** Each volume's attachment (one at most: no multiattach). */
  async attachmentsOfVolumes(volumeIds: string[]): Promise<Map<string, VolumeAttachmentRow>> {
    if (volumeIds.length === 0) return new Map()
    const rows = await this.#db.selectFrom('volume_attachments').selectAll().where('volume_id', 'in', volumeIds).execute()
    return new Map(rows.map((r) => [r.volume_id, r]))
  }

  async casAttachment(id: string, from: AttachmentStatus, to: AttachmentStatus, db: Db = this.#db): Promise<boolean> {
    const set: Partial<VolumeAttachmentRow> = { status: to }
    if (to === 'attached' && from === 'attaching') set.attached_at = this.now()
    const r = await db.updateTable('volume_attachments').set(set).where('id', '=', id).where('status', '=', from).executeTakeFirst()
    return r.numUpdatedRows === 1n
  }

  async removeAttachment(id: string, db: Db = this.#db): Promise<void> {
    await db.deleteFrom('volume_attachments').where('id', '=', id).execute()
  }

  // ---- quotas ----

  async limits(projectId: string, db: Db = this.#db): Promise<Map<string, number>> {
    const rows = await db.selectFrom('volume_quotas').select(['resource', 'hard_limit']).where('project_id', '=', projectId).execute()
    return new Map(rows.map((r) => [r.resource, r.hard_limit]))
  }

  async setLimit(projectId: string, resource: string, limit: number): Promise<void> {
    await this.#db
      .insertInto('volume_quotas')
      .values({ project_id: projectId, resource, hard_limit: limit })
      .onConflict((oc) => oc.columns(['project_id', 'resource']).doUpdateSet({ hard_limit: limit }))
      .execute()
  }

  async resetLimits(projectId: string): Promise<void> {
    await this.#db.deleteFrom('volume_quotas').where('project_id', '=', projectId).execute()
  }
}
