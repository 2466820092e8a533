// Rescue records: what a rescue asked for (image, keys, auto-exit) and what it became (when it
// was usable, the rescue system's host key, when it ended). One open record per rescued server.
import { randomUUID } from 'node:crypto'
import type { Kysely } from 'kysely'
import type { Clock } from '../clock.ts'
import { onHostsOf } from './host-scope.ts'
import { prepared, preparedInsert, preparedWrite } from './prepared.ts'
import type { Database, Db, HostScope, RescueCheckpointState, RescueRow } from './schema.ts'

export type NewRescue = Pick<
  RescueRow,
  'server_id' | 'image_id' | 'request_id' | 'user_id' | 'public_keys' | 'auto_unrescue_seconds' | 'rescue_device' | 'rescue_bus'
> & { checkpoint: boolean }

const after = (iso: string, seconds: number) => new Date(Date.parse(iso) + seconds * 1000).toISOString()

/** End the open rescue of a server (it was unrescued, failed, or the server deleted). */
export async function endOpenRescues(db: Db, serverId: string, now: string): Promise<void> {
  await db.updateTable('rescues').set({ ended_at: now }).where('server_id', '=', serverId).where('ended_at', 'is', null).execute()
}

export class RescuesRepo {
  readonly #db: Kysely<Database>
  readonly #clock: Clock
  // Every rescue inserts a record and marks it rescued: compiled once (prepared.ts).
  readonly #insert
  readonly #ofRequest
  readonly #markRescued

  constructor(db: Kysely<Database>, clock: Clock) {
    this.#db = db
    this.#clock = clock
    this.#insert = preparedInsert<RescueRow>(db, 'rescues')
    this.#ofRequest = prepared(db, ([requestId, serverId]) =>
      db
        .selectFrom('rescues')
        .select(['id', 'auto_unrescue_seconds', 'checkpoint'])
        .where('request_id', '=', requestId!)
        .where('server_id', '=', serverId!),
    )
    // With a pending checkpoint, the last values are the checkpoint's time and the record's id.
    const mark = (checkpoint: boolean) =>
      preparedWrite(db, ([rescuedAt, fingerprint, expiresAt, ...rest]) =>
        db
          .updateTable('rescues')
          .set({
            rescued_at: rescuedAt!,
            host_key_fingerprint: fingerprint!,
            expires_at: expiresAt!,
            ...(checkpoint ? { checkpoint: 'held' as const, checkpoint_at: rest[0]! } : {}),
          })
          .where('id', '=', rest[rest.length - 1]!),
      )
    this.#markRescued = { plain: mark(false), holding: mark(true) }
  }

  #now(): string {
    return this.#clock.now().toISOString()
  }

  async insert(r: NewRescue, db: Db): Promise<void> {
    await this.#insert(
      {
        id: randomUUID(),
        ...r,
        checkpoint: r.checkpoint ? 'pending' : null,
        checkpoint_at: null,
        requested_at: this.#now(),
        rescued_at: null,
        expires_at: null,
        host_key_fingerprint: null,
        ended_at: null,
      },
      db,
    )
  }

  /** The server's open rescue, the newest if several. */
  async open(serverId: string): Promise<RescueRow | undefined> {
    return this.#db
      .selectFrom('rescues')
      .selectAll()
      .where('server_id', '=', serverId)
      .where('ended_at', 'is', null)
      .orderBy('requested_at', 'desc')
      .executeTakeFirst()
  }

  /** The rescue of request `requestId` is usable from `now`: the auto-unrescue clock starts. */
  async markRescued(serverId: string, requestId: string, now: string, hostKeyFingerprint: string | null, db: Db = this.#db): Promise<void> {
    const [r] = await this.#ofRequest([requestId, serverId], db)
    if (!r) return
    const expiresAt = r.auto_unrescue_seconds === null ? null : after(now, r.auto_unrescue_seconds)
    // The rescue system is up on top of the checkpoint: it holds the disk as it was.
    if (r.checkpoint === 'pending') await this.#markRescued.holding([now, hostKeyFingerprint, expiresAt, now, r.id], db)
    else await this.#markRescued.plain([now, hostKeyFingerprint, expiresAt, r.id], db)
  }

  /** The rescue of request `requestId` ended before it began (its rescue failed). */
  async endRequest(serverId: string, requestId: string): Promise<void> {
    await this.#db
      .updateTable('rescues')
      .set({ ended_at: this.#now() })
      .where('request_id', '=', requestId)
      .where('server_id', '=', serverId)
      .execute()
  }

  /**
   * Set the open rescue's checkpoint state: `to`, only from one of `from` (an unrescue that keeps
   * or discards it, and its outcome). False when the open rescue's checkpoint was elsewhere.
   */
  async setCheckpoint(serverId: string, from: RescueCheckpointState[], to: RescueCheckpointState, db: Db = this.#db): Promise<boolean> {
    const r = await db
      .updateTable('rescues')
      .set({ checkpoint: to })
      .where('server_id', '=', serverId)
      .where('ended_at', 'is', null)
      .where('checkpoint', 'in', from)
      .executeTakeFirst()
    return r.numUpdatedRows > 0n
  }

  async endOpen(serverId: string, db: Db = this.#db): Promise<void> {
    await endOpenRescues(db, serverId, this.#now())
  }

  /** When the open rescue ends by itself: `seconds` from now, or never (null). False without an open rescue. */
  async setExpiry(serverId: string, seconds: number | null): Promise<boolean> {
    const now = this.#now()
    const r = await this.#db
      .updateTable('rescues')
      .set({ auto_unrescue_seconds: seconds, expires_at: seconds === null ? null : after(now, seconds) })
      .where('server_id', '=', serverId)
      .where('ended_at', 'is', null)
      .executeTakeFirst()
    return r.numUpdatedRows > 0n
  }

  /** An expired rescue whose auto-exit failed gets one more rescue period, as if it had just begun. */
  async postponeExpired(serverId: string): Promise<void> {
    const now = this.#now()
    const r = await this.#db
      .selectFrom('rescues')
      .select(['id', 'auto_unrescue_seconds', 'expires_at'])
      .where('server_id', '=', serverId)
      .where('ended_at', 'is', null)
      .where('expires_at', '<=', now)
      .executeTakeFirst()
    if (!r || r.auto_unrescue_seconds === null) return
    await this.#db
      .updateTable('rescues')
      .set({ expires_at: after(now, r.auto_unrescue_seconds) })
      .where('id', '=', r.id)
      .execute()
  }

  /** Rescued, idle servers of these hosts whose rescue has expired. */
  async expired(scope: HostScope, now: string): Promise<{ id: string; project_id: string }[]> {
    return this.#db
      .selectFrom('rescues')
      .innerJoin('servers', 'servers.id', 'rescues.server_id')
      .select(['servers.id', 'servers.project_id'])
      .where('rescues.ended_at', 'is', null)
      .where('rescues.expires_at', '<=', now)
      .where('servers.vm_state', '=', 'rescued')
      .where('servers.task_state', 'is', null)
      .where('servers.deleted', '=', 0)
      .where(onHostsOf('servers.host', scope))
      .execute()
  }
}
