// The simulated hypervisor's fault rules, in the database: created through any API process,
// applied by whichever agent runs the matching phase (the driver reads them through the
// FaultRules interface). Adding or removing a rule moves the version in the same transaction;
// counting a use does not (a driver holding a rule used up elsewhere just fails to take it).
import type { Kysely } from 'kysely'
import type { Clock } from '../clock.ts'
import { prepared } from './prepared.ts'
import { newFaultId, type ActiveFault, type FaultRule, type FaultRules } from '../drivers/simulated/fault-rules.ts'
import type { Database, SimulatorFaultRow } from './schema.ts'

const toRule = (r: SimulatorFaultRow): ActiveFault => ({
  id: r.id,
  operation: r.operation as ActiveFault['operation'],
  ...(r.server_id !== null ? { serverId: r.server_id } : {}),
  ...(r.error !== null ? { error: r.error } : {}),
  ...(r.delay_ms !== null ? { delayMs: r.delay_ms } : {}),
  ...(r.hang ? { hang: true } : {}),
  ...(r.remaining !== null ? { count: r.remaining } : {}),
})

export class FaultRulesRepo implements FaultRules {
  readonly #db: Kysely<Database>
  readonly #clock: Clock

  /** Read before every operation of the simulated driver: compiled once (prepared.ts). */
  readonly #version

  constructor(db: Kysely<Database>, clock: Clock) {
    this.#db = db
    this.#clock = clock
    this.#version = prepared(db, () => db.selectFrom('simulator_faults_version').select('version').where('id', '=', 1))
  }

  async version(): Promise<number> {
    const [row] = await this.#version([])
    return Number(row?.version ?? 0)
  }

  async list(): Promise<ActiveFault[]> {
    const rows = await this.#db.selectFrom('simulator_faults').selectAll().orderBy('seq').execute()
    return rows.map(toRule)
  }

  async take(ids: string[]): Promise<ActiveFault[]> {
    if (ids.length === 0) return []
    return this.#db.transaction().execute(async (trx) => {
      // The compare-and-set on the uses left: of two agents after the last use, one updates the
      // row (PostgreSQL locks it; the other re-checks `remaining > 0` after the first commits
      // and finds nothing); SQLite has one writer.
      const counted = await trx
        .updateTable('simulator_faults')
        .set((eb) => ({ remaining: eb('remaining', '-', 1) }))
        .where('id', 'in', ids)
        .where('remaining', '>', 0)
        .returningAll()
        .execute()
      const forever = await trx.selectFrom('simulator_faults').selectAll().where('id', 'in', ids).where('remaining', 'is', null).execute()
      const usedUp = counted.filter((r) => r.remaining !== null && r.remaining <= 0).map((r) => r.id)
      if (usedUp.length) await trx.deleteFrom('simulator_faults').where('id', 'in', usedUp).where('remaining', '<=', 0).execute()
      return [...counted, ...forever].sort((a, b) => Number(a.seq) - Number(b.seq)).map(toRule)
    })
  }

  async add(rule: FaultRule): Promise<ActiveFault> {
    return this.#db.transaction().execute(async (trx) => {
      const seq = await this.#bump(trx)
      const row: SimulatorFaultRow = {
        id: newFaultId(),
        seq,
        operation: rule.operation,
        // Server ids are lower-case UUIDs; the API's uuid format also accepts upper case.
        server_id: rule.serverId?.toLowerCase() ?? null,
        error: rule.error ?? null,
        delay_ms: rule.delayMs ?? null,
        hang: rule.hang ? 1 : 0,
        remaining: rule.count ?? null,
        created_at: this.#clock.now().toISOString(),
      }
      await trx.insertInto('simulator_faults').values(row).execute()
      return toRule(row)
    })
  }

  async remove(id: string): Promise<boolean> {
    return this.#db.transaction().execute(async (trx) => {
      const r = await trx.deleteFrom('simulator_faults').where('id', '=', id).executeTakeFirst()
      if (r.numDeletedRows === 0n) return false
      await this.#bump(trx)
      return true
    })
  }

  async clear(): Promise<void> {
    await this.#db.transaction().execute(async (trx) => {
      await trx.deleteFrom('simulator_faults').execute()
      await this.#bump(trx)
    })
  }

  /** Move the version on, in the caller's transaction (its row lock orders concurrent changes). */
  async #bump(trx: Kysely<Database>): Promise<number> {
    const row = await trx
      .updateTable('simulator_faults_version')
      .set((eb) => ({ version: eb('version', '+', 1) }))
      .where('id', '=', 1)
      .returning('version')
      .executeTakeFirstOrThrow()
    return Number(row.version)
  }
}
