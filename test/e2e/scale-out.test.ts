// Scale-out on PostgreSQL: API processes (`skiff serve --no-agent`) and one `skiff agent` per
// host, real processes sharing one database and nothing else (no broker). Needs a PostgreSQL:
// SKIFF_TEST_DATABASE_URL or DATABASE_URL (CI sets it); skipped without one.
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import pg from 'pg'
import { freshDatabase, testPostgresUrl, type TestDatabase } from '../helpers/database.ts'
import { startAgentProcess, type AgentProcess } from './helpers/agent-process.ts'
import { pollUntil } from './helpers/process.ts'
import { openrcToken, startSkiffProcess, type SkiffProcess } from './helpers/skiff-process.ts'

const skip = testPostgresUrl() ? false : 'needs PostgreSQL (SKIFF_TEST_DATABASE_URL or DATABASE_URL)'

describe('scale-out: API processes and host agents on one PostgreSQL', { skip }, () => {
  let database: TestDatabase
  let dataDir: string
  const apis: SkiffProcess[] = []
  let agent: AgentProcess | undefined
  let agent2: AgentProcess | undefined
  let sql: pg.Client
  let token = ''
  let imageId = ''
  // Each simulated hypervisor operation takes this long in the agent: time to kill it mid-task.
  const delayMs = 1500
  const agentArgs = ['--simulated-delay', String(delayMs), '--host-down-after', '4']

  const api = async (i: number, method: string, url: string, body?: unknown) => {
    const res = await fetch(`${apis[i]!.urls.compute}${url.replace(/^\/v2\.1/, '')}`, {
      method,
      headers: { 'x-auth-token': token, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    })
    const text = await res.text()
    return { status: res.status, body: text ? (JSON.parse(text) as Record<string, any>) : {} }
  }
  const show = async (id: string) => (await api(0, 'GET', `/v2.1/servers/${id}`)).body.server as Record<string, any>
  const settled = (id: string, statuses: string[], timeoutMs = 30_000) =>
    pollUntil(
      `server ${id} to be ${statuses.join(' or ')}`,
      async () => {
        const s = await show(id)
        return statuses.includes(s.status) && s['OS-EXT-STS:task_state'] === null ? s : undefined
      },
      { timeoutMs, intervalMs: 50 },
    )
  const tasks = async () =>
    (await sql.query<{ kind: string; state: string; subject_id: string }>('select kind, state, subject_id from tasks')).rows
  /** Events never finished: every attempt's event ends, the abandoned one's with Error. */
  const unfinishedEvents = async () =>
    (await sql.query<{ event: string }>('select event from instance_action_events where finish_time is null')).rows
  /** An action's events, as an admin would see them (a member sees none at 2.1, Nova's policy). */
  const adminEvents = async (id: string, requestId: string) => {
    return (
      await sql.query<{ event: string; result: string | null; finish_time: string | null; traceback: string | null }>(
        `select e.event, e.result, e.finish_time, e.traceback from instance_action_events e join instance_actions a on a.id = e.action_id
       where a.server_id = $1 and a.request_id = $2 order by e.start_time`,
        [id, requestId],
      )
    ).rows
  }

  before(async () => {
    database = await freshDatabase('postgres')
    dataDir = mkdtempSync(path.join(tmpdir(), 'skiff-scale-'))
    const apiArgs = ['--no-agent', '--database-url', database.url, '--host-down-after', '4']
    // The first API process bootstraps the database; the second finds it done. They share the
    // data dir as a deployment shares its sealing key (secret.key) and credentials.
    apis.push(await startSkiffProcess({ dataDir, extraArgs: apiArgs }))
    apis.push(await startSkiffProcess({ dataDir, extraArgs: apiArgs }))
    agent = await startAgentProcess({ host: 'skiff-1', databaseUrl: database.url, dataDir, extraArgs: agentArgs })
    sql = new pg.Client({ connectionString: database.url })
    await sql.connect()
    token = await openrcToken(apis[0]!.urls.identity, apis[0]!.openrc.demo)
    const images = (await (
      await fetch(`${apis[0]!.urls.image}/v2/images?name=skiff-base`, { headers: { 'x-auth-token': token } })
    ).json()) as { images: { id: string }[] }
    imageId = images.images[0]!.id
  })

  after(async () => {
    await agent?.stop()
    await agent2?.stop()
    for (const a of apis) await a.stop()
    await sql?.end()
    await database?.drop()
    rmSync(dataDir, { recursive: true, force: true })
  })

  test('create → ACTIVE, rescue → RESCUE across processes; an agent killed mid-rescue resumes it after restart', async () => {
    const created = await api(0, 'POST', '/v2.1/servers', { server: { name: 'so1', imageRef: imageId, flavorRef: '1' } })
    assert.equal(created.status, 202, JSON.stringify(created.body))
    const id = created.body.server.id as string
    await settled(id, ['ACTIVE'])

    // Rescue through the second API process; the agent hears of it by NOTIFY.
    const rescue = await api(1, 'POST', `/v2.1/servers/${id}/action`, { rescue: null })
    assert.equal(rescue.status, 200, JSON.stringify(rescue.body))
    // Killed once the attempt has begun its event: the story below has that attempt in it.
    await pollUntil(
      'the agent to be running the rescue',
      async () =>
        (await tasks()).some((t) => t.subject_id === id && t.state === 'running') &&
        (await unfinishedEvents()).some((e) => e.event === 'compute_rescue_instance'),
      { timeoutMs: 10_000, intervalMs: 20 },
    )
    await agent!.kill9()
    assert.equal((await show(id))['OS-EXT-STS:task_state'], 'rescuing')
    assert.deepEqual(
      (await tasks()).map((t) => [t.kind, t.state]),
      [['server.rescue', 'running']],
    )

    agent = await startAgentProcess({ host: 'skiff-1', databaseUrl: database.url, dataDir, extraArgs: agentArgs })
    await settled(id, ['RESCUE', 'ACTIVE'])
    assert.equal((await show(id)).status, 'RESCUE')
    assert.deepEqual(await tasks(), [])
    // One coherent story: the killed attempt's event ended with Error (its agent stopped), the
    // restarted agent's with Success; the action did not fail.
    const [action] = (await api(0, 'GET', `/v2.1/servers/${id}/os-instance-actions`)).body.instanceActions as {
      action: string
      request_id: string
      message: string | null
    }[]
    assert.equal(action!.action, 'rescue')
    assert.equal(action!.message, null)
    const events = await adminEvents(id, action!.request_id)
    assert.deepEqual(
      events.map((e) => e.result),
      ['Error', 'Success'],
      JSON.stringify(events),
    )
    assert.match(events[0]!.traceback ?? '', /agent .*stopped/)
    assert.deepEqual(await unfinishedEvents(), [])

    const unrescue = await api(0, 'POST', `/v2.1/servers/${id}/action`, { unrescue: null })
    assert.equal(unrescue.status, 202)
    await settled(id, ['ACTIVE'])
  })

  test('parallel rescues of one server over two API processes: exactly one 200, the rest 409', async () => {
    const created = await api(0, 'POST', '/v2.1/servers', { server: { name: 'so2', imageRef: imageId, flavorRef: '1' } })
    const id = created.body.server.id as string
    await settled(id, ['ACTIVE'])
    const answers = await Promise.all(
      Array.from({ length: 100 }, (_, i) => api(i % 2, 'POST', `/v2.1/servers/${id}/action`, { rescue: null })),
    )
    const counts: Record<number, number> = {}
    for (const a of answers) counts[a.status] = (counts[a.status] ?? 0) + 1
    assert.deepEqual(counts, { 200: 1, 409: 99 })
    await settled(id, ['RESCUE'])
  })

  test('two agents; an agent killed -9 in the middle of 50 rescue/unrescue cycles: after its restart every server ACTIVE or RESCUE, no task left', async () => {
    agent2 = await startAgentProcess({
      host: 'skiff-2',
      databaseUrl: database.url,
      dataDir,
      extraArgs: ['--simulated-delay', '150', '--host-down-after', '4'],
    })
    const ids: string[] = []
    for (let i = 0; i < 4; i++)
      ids.push(
        (await api(i % 2, 'POST', '/v2.1/servers', { server: { name: `cyc${i}`, imageRef: imageId, flavorRef: '1' } })).body.server
          .id as string,
      )
    await Promise.all(ids.map((id) => settled(id, ['ACTIVE'])))
    // The scheduler spreads them: both hosts have servers (the host is for admins' eyes; read it in the table).
    const placed = await sql.query<{ host: string }>('select distinct host from servers where id = any($1) order by host', [ids])
    assert.deepEqual(
      placed.rows.map((r) => r.host),
      ['skiff-1', 'skiff-2'],
    )
    let next = 0
    const cycles = ids.map(async (id) => {
      for (;;) {
        const n = next++
        if (n >= 50) return
        const r = await api(n % 2, 'POST', `/v2.1/servers/${id}/action`, { rescue: null })
        assert.equal(r.status, 200, `cycle ${n} of ${id}: ${JSON.stringify(r.body)}`)
        const s = await settled(id, ['RESCUE', 'ACTIVE'], 60_000)
        if (s.status === 'RESCUE') {
          const u = await api((n + 1) % 2, 'POST', `/v2.1/servers/${id}/action`, { unrescue: null })
          assert.equal(u.status, 202, `cycle ${n} of ${id}: ${JSON.stringify(u.body)}`)
          await settled(id, ['ACTIVE'], 60_000)
        }
      }
    })
    // Kill skiff-1's agent while it runs one of them, then bring it back.
    await pollUntil('a third of the cycles to have started', async () => next >= 17, { timeoutMs: 60_000, intervalMs: 20 })
    await pollUntil(
      'skiff-1 to be running a task',
      async () => {
        const { rows } = await sql.query(
          `select 1 from tasks t join servers s on s.id = t.subject_id where t.state = 'running' and s.host = 'skiff-1'`,
        )
        return rows.length > 0
      },
      { timeoutMs: 30_000, intervalMs: 10 },
    )
    await agent!.kill9()
    agent = await startAgentProcess({
      host: 'skiff-1',
      databaseUrl: database.url,
      dataDir,
      extraArgs: ['--simulated-delay', '150', '--host-down-after', '4'],
    })
    await Promise.all(cycles)
    for (const id of ids) {
      const s = await show(id)
      assert.ok(['ACTIVE', 'RESCUE'].includes(s.status), `${id} is ${s.status}`)
      assert.equal(s['OS-EXT-STS:task_state'], null)
    }
    assert.deepEqual(await tasks(), [])
    assert.deepEqual(await unfinishedEvents(), [], "every event of the killed agent's attempts was finished")
  })

  test('an API process killed -9 in the middle of 40 creates over two API processes: every accepted request is carried out, nothing is left in a task', async () => {
    const answered: string[] = []
    let sent = 0
    const burst = Array.from({ length: 4 }, async () => {
      for (;;) {
        const n = sent++
        if (n >= 40) return
        try {
          const r = await api(n % 2, 'POST', '/v2.1/servers', { server: { name: `k${n}`, imageRef: imageId, flavorRef: '1' } })
          if (r.status === 202) answered.push(r.body.server.id as string)
        } catch {
          /* the killed process: no answer, so nothing was promised */
        }
      }
    })
    await pollUntil('a quarter of the creates to be answered', async () => answered.length >= 10, { timeoutMs: 30_000, intervalMs: 5 })
    process.kill(apis[1]!.pid, 'SIGKILL')
    await Promise.all(burst)
    await apis[1]!.stop()
    for (const id of answered) await settled(id, ['ACTIVE'], 60_000)
    // Whatever committed without an answer is carried out too: nothing stays BUILD or in a task.
    await pollUntil(
      'every server to be idle and the queue empty',
      async () => {
        const busy = await sql.query(`select id from servers where deleted = 0 and task_state is not null`)
        return busy.rows.length === 0 && (await tasks()).length === 0
      },
      { timeoutMs: 60_000, intervalMs: 100 },
    )
    apis[1] = await startSkiffProcess({ dataDir, extraArgs: ['--no-agent', '--database-url', database.url, '--host-down-after', '4'] })
  })

  test('an agent stopped for good: its host goes down, actions on its servers answer 503', async () => {
    const { rows } = await sql.query<{ id: string }>(`select id from servers where host = 'skiff-1' and deleted = 0 limit 1`)
    const id = rows[0]!.id
    const before = await settled(id, ['ACTIVE', 'RESCUE'])
    await agent!.stop()
    agent = undefined
    await pollUntil(
      'the host to miss its heartbeats',
      async () => {
        const { rows } = await sql.query<{ heartbeat_at: string }>(`select heartbeat_at from hosts where name = 'skiff-1'`)
        return Date.now() - Date.parse(rows[0]!.heartbeat_at) > 4200
      },
      { timeoutMs: 10_000, intervalMs: 100 },
    )
    // An action its state allows, so that only the dead host can refuse it.
    const r = await api(1, 'POST', `/v2.1/servers/${id}/action`, before.status === 'RESCUE' ? { unrescue: null } : { 'os-stop': null })
    assert.equal(r.status, 503)
    assert.deepEqual(r.body, { serviceUnavailable: { code: 503, message: 'Compute service of skiff-1 is unavailable at this time.' } })
  })
})
