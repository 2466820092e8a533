// One agent per host name, with real `skiff agent` processes on one PostgreSQL (a second agent
// beside a live one is refused: deployment.test.ts, across hosts); an agent killed
// with -9 and started again on the same machine takes its host back at once; a clean stop frees
// the host; a holder on another machine keeps it until its lease runs out. Skipped without PostgreSQL.
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { after, before, describe, test } from 'node:test'
import pg from 'pg'
import { freshDatabase, testPostgresUrl, type TestDatabase } from '../helpers/database.ts'
import { startAgentProcess, type AgentProcess } from './helpers/agent-process.ts'
import { describeRun, run } from './helpers/process.ts'
import { cleanEnv } from './helpers/skiff-process.ts'
import { SKIFF } from './helpers/skiff-command.ts'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
const skip = testPostgresUrl() ? false : 'needs PostgreSQL (SKIFF_TEST_DATABASE_URL or DATABASE_URL)'

describe('host leases: one agent per host name', { skip }, () => {
  let database: TestDatabase
  let dataDir: string
  let sql: pg.Client
  let agent: AgentProcess | undefined

  before(async () => {
    database = await freshDatabase('postgres')
    dataDir = mkdtempSync(path.join(tmpdir(), 'skiff-lease-'))
    agent = await startAgentProcess({ host: 'hv1', databaseUrl: database.url, dataDir })
    sql = new pg.Client({ connectionString: database.url })
    await sql.connect()
  })
  after(async () => {
    await agent?.stop()
    await sql?.end()
    await database?.drop()
    rmSync(dataDir, { recursive: true, force: true })
  })

  /** `skiff agent --host hv1` that is expected to be refused at once. */
  const secondAgent = () => {
    const env = Object.fromEntries(Object.entries(cleanEnv()).filter(([k]) => !k.startsWith('SKIFF_')))
    return run(
      process.execPath,
      [...SKIFF, 'agent', '--host', 'hv1', '--database-url', database.url, '--data-dir', dataDir, '--log-level', 'error'],
      { cwd: ROOT, env, timeoutMs: 120_000 },
    )
  }
  const lease = async () =>
    (await sql.query<{ agent_id: string | null; lease_until: string | null }>(`select agent_id, lease_until from hosts where name = 'hv1'`))
      .rows[0]

  test('kill -9, then a new agent on this machine takes the host at once; a clean stop frees it', async () => {
    await agent!.kill9()
    agent = await startAgentProcess({ host: 'hv1', databaseUrl: database.url, dataDir })
    assert.match((await lease())!.agent_id!, new RegExp(`^${agent.pid}@`))
    const stopped = agent
    await stopped.stop()
    agent = undefined
    assert.deepEqual(await lease(), { agent_id: null, lease_until: null }, stopped.output())
  })

  test("an agent whose sealing key is not the deployment's is refused; --secret-key-file gives it the key", async () => {
    const fresh = mkdtempSync(path.join(tmpdir(), 'skiff-newhost-'))
    try {
      const env = Object.fromEntries(Object.entries(cleanEnv()).filter(([k]) => !k.startsWith('SKIFF_')))
      const r = await run(
        process.execPath,
        [...SKIFF, 'agent', '--host', 'hv2', '--database-url', database.url, '--data-dir', fresh, '--log-level', 'error'],
        { cwd: ROOT, env, timeoutMs: 120_000 },
      )
      const why = describeRun(r)
      assert.equal(r.code, 1, why)
      const lines = r.stderr.split('\n').filter((l) => l !== '')
      assert.equal(lines.length, 1, why)
      assert.equal(
        lines[0],
        `skiff: the sealing key in ${path.join(fresh, 'secret.key')} does not match this deployment's (copy secret.key from the first host, or pass --secret-key-file)`,
        why,
      )
      const second = await startAgentProcess({
        host: 'hv2',
        databaseUrl: database.url,
        dataDir: fresh,
        extraArgs: ['--secret-key-file', path.join(dataDir, 'secret.key')],
      })
      await second.stop()
    } finally {
      rmSync(fresh, { recursive: true, force: true })
    }
  })

  test('a holder on another machine keeps the host until its lease runs out', async () => {
    // Held for ten minutes: however slowly the refused agent starts (minutes on a machine at load 30), it meets the lease.
    const until = new Date(Date.now() + 600_000).toISOString()
    await sql.query(`update hosts set agent_id = '4242@elsewhere/0000#beef', lease_until = $1 where name = 'hv1'`, [until])
    const r = await secondAgent()
    assert.equal(r.code, 1, describeRun(r))
    assert.match(
      r.stderr,
      new RegExp(`^skiff: host hv1 is held by another agent \\(pid 4242 on elsewhere/0000\\) until ${until.replace(/\./g, '\\.')}`),
    )
    // Once the lease ran out (moved into the past here, not waited for) the host is free: a new agent starts.
    await sql.query(`update hosts set lease_until = $1 where name = 'hv1'`, [new Date(Date.now() - 1000).toISOString()])
    agent = await startAgentProcess({ host: 'hv1', databaseUrl: database.url, dataDir })
    assert.match((await lease())!.agent_id!, new RegExp(`^${agent.pid}@`))
  })
})
