// Token revocation across API processes on one PostgreSQL: each process caches validated tokens;
// a revocation through one must be refused by the other within a second (NOTIFY, or the 1 s cap
// while the LISTEN connection is down). Two whole Skiffs in this process, one database.
// Skipped without PostgreSQL (SQLite is one process).
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import pg from 'pg'
import { syncCredentials } from '../../src/bootstrap.ts'
import { IdentityRepo } from '../../src/store/identity-repo.ts'
import { freshDatabase, testPostgresUrl, type TestDatabase } from '../helpers/database.ts'
import { startTestSkiff, waitFor, type TestSkiff } from '../helpers/skiff.ts'

const skip = testPostgresUrl() ? false : 'needs PostgreSQL (SKIFF_TEST_DATABASE_URL or DATABASE_URL)'

describe('token revocation across API processes', { skip }, () => {
  let database: TestDatabase
  let a: TestSkiff
  let b: TestSkiff

  before(async () => {
    database = await freshDatabase('postgres')
    a = await startTestSkiff({ databaseUrl: database.url })
    b = await startTestSkiff({ databaseUrl: database.url, agentHost: 'skiff-2', secretKeyFile: `${a.dataDir}/secret.key` })
  })
  after(async () => {
    await b?.close()
    await a?.close()
    await database?.drop()
  })

  const login = async (user: string, password: string) => {
    const res = await a.apps.identity.inject({
      method: 'POST',
      url: '/v3/auth/tokens',
      payload: {
        auth: {
          identity: { methods: ['password'], password: { user: { name: user, domain: { name: 'Default' }, password } } },
          scope: { project: { name: user, domain: { name: 'Default' } } },
        },
      },
    })
    assert.equal(res.statusCode, 201, res.body)
    return String(res.headers['x-subject-token'])
  }
  const statusOnB = async (token: string) => (await b.compute('GET', '/v2.1/servers', { token })).statusCode
  /** B refuses the token within a second of `since` (polled, no sleeps). */
  const refusedWithinASecond = async (token: string, since: number) => {
    await waitFor('B to refuse the revoked token', async () => (await statusOnB(token)) === 401, 1000, 2)
    const ms = Date.now() - since
    assert.ok(ms < 1000, `refused after ${ms} ms`)
  }

  test('DELETE /v3/auth/tokens on A: B refuses the token it had cached within a second', async () => {
    const token = await login('demo', a.passwords.demo!)
    assert.equal(await statusOnB(token), 200) // cached on B now (for 30 s without the NOTIFY)
    assert.equal(await statusOnB(token), 200)
    const t0 = Date.now()
    const res = await a.apps.identity.inject({
      method: 'DELETE',
      url: '/v3/auth/tokens',
      headers: { 'x-auth-token': await a.token('admin'), 'x-subject-token': token },
    })
    assert.equal(res.statusCode, 204, res.body)
    await refusedWithinASecond(token, t0)
  })

  test("a password reset on A revokes the user's tokens on B within a second", async () => {
    const token = await login('alt_demo', a.passwords.alt_demo!)
    assert.equal(await statusOnB(token), 200)
    const t0 = Date.now()
    await syncCredentials({
      accounts: new IdentityRepo(a.store.db, a.store.dialect),
      dataDir: a.dataDir,
      authUrl: a.authUrl,
      set: { alt_demo: 'a-new-password-1' },
    })
    await refusedWithinASecond(token, t0)
  })

  test("while B's LISTEN connection is down, a revocation still reaches B within a second", async () => {
    const token = await login('demo', a.passwords.demo!)
    assert.equal(await statusOnB(token), 200)
    // Cut every LISTEN connection of this database (A's and B's): notifications are lost until they reconnect.
    const sql = new pg.Client({ connectionString: database.url })
    await sql.connect()
    try {
      const r = await sql.query(
        `select pg_terminate_backend(pid) from pg_stat_activity where query = 'LISTEN skiff_revocations' and datname = current_database() and pid <> pg_backend_pid()`,
      )
      assert.ok(r.rowCount! >= 2)
    } finally {
      await sql.end()
    }
    assert.equal(await statusOnB(token), 200)
    const t0 = Date.now()
    const res = await a.apps.identity.inject({
      method: 'DELETE',
      url: '/v3/auth/tokens',
      headers: { 'x-auth-token': token, 'x-subject-token': token },
    })
    assert.equal(res.statusCode, 204, res.body)
    await refusedWithinASecond(token, t0)
  })
})
