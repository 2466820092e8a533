// The deployment's one row (migrations-deployment.ts).
import type { Kysely } from 'kysely'
import type { Clock } from '../clock.ts'
import type { Database } from './schema.ts'

export class DeploymentRepo {
  readonly #db: Kysely<Database>
  readonly #clock: Clock

  constructor(db: Kysely<Database>, clock: Clock) {
    this.#db = db
    this.#clock = clock
  }

  /** The stored sealing canary; `make()`'s, stored now, if there was none (the first start wins a race). */
  async sealingCanary(make: () => string): Promise<string> {
    await this.#db
      .insertInto('deployment')
      .values({ id: 1, sealing_canary: make(), created_at: this.#clock.now().toISOString() })
      .onConflict((oc) => oc.column('id').doNothing())
      .execute()
    const row = await this.#db.selectFrom('deployment').select('sealing_canary').where('id', '=', 1).executeTakeFirstOrThrow()
    return row.sealing_canary
  }
}
