// Instance actions and their events (os-instance-actions): one action per request that changed
// a server, its events recorded by the agent that did the work.
import { randomUUID } from 'node:crypto'
import { sql, type Kysely } from 'kysely'
import type { Clock } from '../clock.ts'
import { prepared, preparedInsert, preparedWrite } from './prepared.ts'
import type { Database, Db, InstanceActionEventRow, InstanceActionRow } from './schema.ts'

export type NewInstanceAction = Omit<InstanceActionRow, 'id' | 'start_time' | 'updated_at' | 'message'>

export class InstanceActionsRepo {
  readonly #db: Kysely<Database>
  readonly #clock: Clock
  // Every action records one and the agent starts and finishes its events: compiled once (prepared.ts).
  readonly #record
  readonly #startEvent
  readonly #finishEvent
  readonly #finishOpenEvent
  readonly #touch
  readonly #touchFailed

  constructor(db: Kysely<Database>, clock: Clock) {
    this.#db = db
    this.#clock = clock
    this.#record = preparedInsert<InstanceActionRow>(db, 'instance_actions')
    this.#startEvent = preparedWrite(db, ([id, event, startTime, host, serverId, requestId]) =>
      db
        .insertInto('instance_action_events')
        .columns(['id', 'action_id', 'event', 'start_time', 'host'])
        .expression((eb) =>
          eb
            .selectFrom('instance_actions')
            .select([
              eb.val(id!).as('id'),
              'instance_actions.id as action_id',
              eb.val(event!).as('event'),
              eb.val(startTime!).as('start_time'),
              eb.val(host!).as('host'),
            ])
            .where('server_id', '=', serverId!)
            .where('request_id', '=', requestId!)
            // A literal: SQLite prepares an INSERT ... SELECT whose LIMIT is a parameter anew at every run.
            .limit(sql.lit(1)),
        ),
    )
    const finish = (onlyIfOpen: boolean) =>
      prepared(db, ([finishTime, result, traceback, details, id]) => {
        let q = db
          .updateTable('instance_action_events')
          .set({ finish_time: finishTime!, result: result!, traceback: traceback!, details: details! })
          .where('id', '=', id!)
        if (onlyIfOpen) q = q.where('finish_time', 'is', null)
        return q.returning('action_id')
      })
    this.#finishEvent = finish(false)
    this.#finishOpenEvent = finish(true)
    this.#touch = preparedWrite(db, ([now, id]) => db.updateTable('instance_actions').set({ updated_at: now! }).where('id', '=', id!))
    this.#touchFailed = preparedWrite(db, ([message, now, id]) =>
      db.updateTable('instance_actions').set({ message: message!, updated_at: now! }).where('id', '=', id!),
    )
  }

  #now(): string {
    return this.#clock.now().toISOString()
  }

  async record(a: NewInstanceAction, db: Db): Promise<void> {
    const now = this.#now()
    await this.#record({ id: randomUUID(), ...a, start_time: now, updated_at: now, message: null }, db)
  }

  /** A server's actions, newest first. */
  async list(serverId: string): Promise<InstanceActionRow[]> {
    return this.#db
      .selectFrom('instance_actions')
      .selectAll()
      .where('server_id', '=', serverId)
      .orderBy('start_time', 'desc')
      .orderBy('id', 'desc')
      .execute()
  }

  /**
   * A page of a server's actions, newest first (Nova's created_at, id descending): after the
   * action `after` (a row of this server), at most `limit`, updated at or after `changesSince`
   * and at or before `changesBefore` (ISO).
   */
  async page(
    serverId: string,
    p: { limit?: number; after?: InstanceActionRow; changesSince?: string; changesBefore?: string },
  ): Promise<InstanceActionRow[]> {
    let q = this.#db.selectFrom('instance_actions').selectAll().where('server_id', '=', serverId)
    if (p.changesSince !== undefined) q = q.where('updated_at', '>=', p.changesSince)
    if (p.changesBefore !== undefined) q = q.where('updated_at', '<=', p.changesBefore)
    const after = p.after
    if (after) {
      q = q.where((eb) =>
        eb.or([eb('start_time', '<', after.start_time), eb.and([eb('start_time', '=', after.start_time), eb('id', '<', after.id)])]),
      )
    }
    if (p.limit !== undefined) q = q.limit(p.limit)
    return q.orderBy('start_time', 'desc').orderBy('id', 'desc').execute()
  }

  /** The project of a server, deleted or not (2.21 shows the actions of deleted servers). */
  async serverProject(serverId: string, includeDeleted: boolean): Promise<{ id: string; project_id: string } | undefined> {
    let q = this.#db.selectFrom('servers').select(['id', 'project_id']).where('id', '=', serverId)
    if (!includeDeleted) q = q.where('deleted', '=', 0)
    return q.executeTakeFirst()
  }

  async byRequest(serverId: string, requestId: string): Promise<InstanceActionRow | undefined> {
    return this.#db
      .selectFrom('instance_actions')
      .selectAll()
      .where('server_id', '=', serverId)
      .where('request_id', '=', requestId)
      .executeTakeFirst()
  }

  /** An action's events, newest first (Nova's action_events_get: created_at desc, id desc). */
  async events(actionId: string): Promise<InstanceActionEventRow[]> {
    return this.#db
      .selectFrom('instance_action_events')
      .selectAll()
      .where('action_id', '=', actionId)
      .orderBy('start_time', 'desc')
      .orderBy('id', 'desc')
      .execute()
  }

  /** The event of the action that `requestId` started, in one statement; undefined without one. */
  async startEvent(serverId: string, requestId: string, event: string, host: string | null): Promise<string | undefined> {
    const id = randomUUID()
    const n = await this.#startEvent([id, event, this.#now(), host, serverId, requestId])
    return n > 0 ? id : undefined
  }

  /** `onlyIfOpen`: leave an event that is already finished (a later attempt closed it) as it is. */
  async finishEvent(
    eventId: string | undefined,
    result: 'Success' | 'Error',
    error?: string,
    db: Db = this.#db,
    opts: { onlyIfOpen?: boolean } = {},
  ): Promise<void> {
    if (!eventId) return
    const now = this.#now()
    const finish = opts.onlyIfOpen ? this.#finishOpenEvent : this.#finishEvent
    const [ev] = await finish([now, result, error ?? null, error ?? null, eventId], db)
    if (!ev) return
    if (result === 'Error') await this.#touchFailed(['Error', now, ev.action_id], db)
    else await this.#touch([now, ev.action_id], db)
  }

  /**
   * Finish, with Error and `reason`, the events of an action that an earlier attempt of its task
   * started and never finished (its agent was killed, or lost its lease). Returns how many.
   */
  async finishAbandonedEvents(serverId: string, requestId: string, reason: string, db: Db = this.#db): Promise<number> {
    const action = await db
      .selectFrom('instance_actions')
      .select('id')
      .where('server_id', '=', serverId)
      .where('request_id', '=', requestId)
      .executeTakeFirst()
    if (!action) return 0
    const now = this.#now()
    const r = await db
      .updateTable('instance_action_events')
      .set({ finish_time: now, result: 'Error', traceback: reason, details: reason })
      .where('action_id', '=', action.id)
      .where('finish_time', 'is', null)
      .executeTakeFirst()
    const n = Number(r.numUpdatedRows)
    if (n > 0) await db.updateTable('instance_actions').set({ updated_at: now }).where('id', '=', action.id).execute()
    return n
  }

  /** An event done as it began (a request handed over to the host that acts on it), in the caller's transaction. */
  async recordEvent(serverId: string, requestId: string, event: string, host: string | null, db: Db): Promise<void> {
    await this.#eventDoneAtOnce(serverId, requestId, event, { result: 'Success', traceback: null, details: null, host }, db)
  }

  /** An event that failed as it began (no host for a new server: Nova's conductor event), and its action marked Error. */
  async recordFailedEvent(serverId: string, requestId: string, event: string, error: string, db: Db = this.#db): Promise<void> {
    const actionId = await this.#eventDoneAtOnce(
      serverId,
      requestId,
      event,
      { result: 'Error', traceback: error, details: error, host: null },
      db,
    )
    if (actionId !== undefined)
      await db.updateTable('instance_actions').set({ message: 'Error', updated_at: this.#now() }).where('id', '=', actionId).execute()
  }

  /** An event that starts and finishes now, on the action of `requestId`; the action's id, or undefined if there is none. */
  async #eventDoneAtOnce(
    serverId: string,
    requestId: string,
    event: string,
    end: { result: string; traceback: string | null; details: string | null; host: string | null },
    db: Db,
  ): Promise<string | undefined> {
    const action = await db
      .selectFrom('instance_actions')
      .select('id')
      .where('server_id', '=', serverId)
      .where('request_id', '=', requestId)
      .executeTakeFirst()
    if (!action) return undefined
    const now = this.#now()
    await db
      .insertInto('instance_action_events')
      .values({ id: randomUUID(), action_id: action.id, event, start_time: now, finish_time: now, ...end })
      .execute()
    return action.id
  }

  /** An action that will not complete (its task was abandoned, then found stale): message Error, as Nova marks a failed one. */
  async markFailed(serverId: string, requestId: string, db: Db = this.#db): Promise<void> {
    await db
      .updateTable('instance_actions')
      .set({ message: 'Error', updated_at: this.#now() })
      .where('server_id', '=', serverId)
      .where('request_id', '=', requestId)
      .execute()
  }
}
