// One deployment across hosts, started as the README says (scripts/deployment.sh): two API
// processes (`skiff serve --no-agent`) and two agents (`skiff agent`), four data dirs, as root
// each in its own network namespace, one PostgreSQL. Only the sealing key and the known passwords
// are copied from the first data dir; everything else goes through the database. Needs a
// PostgreSQL (SKIFF_TEST_DATABASE_URL or DATABASE_URL, as in CI); skipped without one.
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import pg from 'pg'
import { freshDatabase, testPostgresUrl, type TestDatabase } from '../helpers/database.ts'
import { activeServer, startTestSkiff } from '../helpers/skiff.ts'
import { describeRun, pollUntil, run } from './helpers/process.ts'
import { startDeployment, type Deployment } from './helpers/deployment.ts'
import { cleanEnv, parseOpenrc } from './helpers/skiff-process.ts'

const skip = testPostgresUrl() ? false : 'needs PostgreSQL (SKIFF_TEST_DATABASE_URL or DATABASE_URL)'

type Answer = { status: number; body: Record<string, any> }

describe('a deployment of two API hosts and two agent hosts (scripts/deployment.sh)', { skip }, () => {
  let database: TestDatabase
  let dep: Deployment
  let sql: pg.Client
  let demo = ''
  let admin = ''
  let imageId = ''

  const call = async (i: number, token: string, method: string, url: string, body?: unknown): Promise<Answer> => {
    const res = await fetch(`${dep.apis[i]!.urls.compute}${url}`, {
      method,
      headers: { 'x-auth-token': token, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    })
    const text = await res.text()
    return { status: res.status, body: text ? (JSON.parse(text) as Record<string, any>) : {} }
  }
  const show = async (id: string) => (await call(0, admin, 'GET', `/servers/${id}`)).body.server as Record<string, any>
  const settled = (id: string, statuses: string[], timeoutMs = 30_000) =>
    pollUntil(
      `server ${id} to be ${statuses.join(' or ')}`,
      async () => {
        const s = await show(id)
        return statuses.includes(s.status) && s['OS-EXT-STS:task_state'] === null ? s : undefined
      },
      { timeoutMs, intervalMs: 50, describe: () => dep.logs() },
    )
  const login = async (identity: string, rc: Record<string, string>) => {
    const res = await fetch(`${identity}/auth/tokens`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        auth: {
          identity: {
            methods: ['password'],
            password: { user: { name: rc.OS_USERNAME, domain: { name: 'Default' }, password: rc.OS_PASSWORD } },
          },
          scope: { project: { name: rc.OS_PROJECT_NAME, domain: { name: 'Default' } } },
        },
      }),
    })
    await res.arrayBuffer()
    return { status: res.status, token: res.headers.get('x-subject-token') ?? '' }
  }
  const openrcOf = (api: number, account: string) =>
    parseOpenrc(readFileSync(path.join(dep.apis[api]!.dataDir, `${account}-openrc`), 'utf8'))
  const tasks = async () =>
    (await sql.query<{ kind: string; state: string; subject_id: string }>('select kind, state, subject_id from tasks')).rows
  /** Events never finished: every attempt's event ends, the abandoned one's with Error. */
  const unfinishedEvents = async () =>
    (await sql.query<{ event: string }>('select event from instance_action_events where finish_time is null')).rows
  /** Servers on each agent host: an anti-affinity group puts one on each. */
  const onEachHost = async (prefix: string) => {
    const group = await call(0, demo, 'POST', '/os-server-groups', { server_group: { name: prefix, policies: ['anti-affinity'] } })
    assert.equal(group.status, 200, JSON.stringify(group.body))
    const ids: string[] = []
    for (let i = 0; i < dep.agents.length; i++) {
      const r = await call(i % 2, demo, 'POST', '/servers', {
        server: { name: `${prefix}${i}`, imageRef: imageId, flavorRef: '1' },
        'os:scheduler_hints': { group: group.body.server_group.id },
      })
      assert.equal(r.status, 202, JSON.stringify(r.body))
      ids.push(r.body.server.id as string)
    }
    const hosts = await Promise.all(ids.map(async (id) => (await settled(id, ['ACTIVE']))['OS-EXT-SRV-ATTR:host'] as string))
    assert.deepEqual([...hosts].sort(), dep.agents)
    return new Map(ids.map((id, i) => [hosts[i]!, id]))
  }

  before(async () => {
    database = await freshDatabase('postgres')
    dep = await startDeployment({
      databaseUrl: database.url,
      apis: 2,
      agents: 2,
      apiArgs: ['--host-down-after', '4'],
      agentArgs: ['--simulated-delay', '150', '--host-down-after', '4'],
    })
    sql = new pg.Client({ connectionString: database.url })
    await sql.connect()
    demo = (await login(dep.apis[0]!.urls.identity, openrcOf(0, 'demo'))).token
    admin = (await login(dep.apis[0]!.urls.identity, openrcOf(0, 'admin'))).token
    const images = (await (
      await fetch(`${dep.apis[0]!.urls.image}/v2/images?name=skiff-base`, { headers: { 'x-auth-token': demo } })
    ).json()) as { images: { id: string }[] }
    imageId = images.images[0]!.id
  })

  after(async () => {
    await sql?.end()
    await dep?.down()
    await database?.drop()
  })

  test('four hosts, four data dirs; as root each in its own network namespace', () => {
    const dirs = [...dep.apis.map((a) => a.dataDir), ...dep.agents.map((h) => dep.dataDir(h))]
    assert.equal(new Set(dirs).size, 4)
    assert.equal(new Set(dep.apis.map((a) => a.urls.compute)).size, 2)
    if (process.getuid?.() === 0) assert.ok(dep.netns, 'run as root: the hosts have network namespaces')
    // Only the deployment's key is shared, copied as an operator does.
    const key = (dir: string) => readFileSync(path.join(dir, 'secret.key'))
    for (const d of dirs) assert.ok(key(d).equals(key(dirs[0]!)))
  })

  test('every client file works on both API processes', async () => {
    const accounts = ['admin', 'demo', 'alt', 'reader']
    for (let file = 0; file < 2; file++) {
      // Each API process wrote files that name itself.
      const clouds = readFileSync(path.join(dep.apis[file]!.dataDir, 'clouds.yaml'), 'utf8')
      assert.match(clouds, new RegExp(`auth_url: '${dep.apis[file]!.urls.identity}'`))
      for (const account of accounts) {
        const rc = openrcOf(file, account)
        assert.equal(rc.OS_AUTH_URL, dep.apis[file]!.urls.identity)
        for (let at = 0; at < 2; at++) {
          const { status, token } = await login(dep.apis[at]!.urls.identity, rc)
          assert.equal(status, 201, `${account}-openrc of api${file + 1} at api${at + 1}`)
          // Its token on the other process too.
          assert.equal((await call(1 - at, token, 'GET', '/servers')).status, 200, `${account} of api${file + 1}, token of api${at + 1}`)
        }
      }
    }
    // clouds.yaml with the real client, where it is installed (the openrc files above cover the rest).
    const probe = await run('openstack', ['--version'], { timeoutMs: 30_000 }).catch(() => undefined)
    if (probe?.code !== 0) return
    for (let file = 0; file < 2; file++) {
      const env = { ...cleanEnv(), OS_CLIENT_CONFIG_FILE: path.join(dep.apis[file]!.dataDir, 'clouds.yaml'), OS_CLOUD: 'skiff-demo' }
      const r = await run('openstack', ['server', 'list', '-f', 'json'], { env })
      assert.equal(r.code, 0, describeRun(r))
    }
  })

  test('a token revoked on A is refused on B within a second', async () => {
    const { token } = await login(dep.apis[0]!.urls.identity, openrcOf(0, 'demo'))
    // B has validated it (and caches it).
    assert.equal((await call(1, token, 'GET', '/servers')).status, 200)
    const revoked = await fetch(`${dep.apis[0]!.urls.identity}/auth/tokens`, {
      method: 'DELETE',
      headers: { 'x-auth-token': token, 'x-subject-token': token },
    })
    assert.equal(revoked.status, 204)
    const t0 = Date.now()
    await pollUntil('B to refuse the revoked token', async () => (await call(1, token, 'GET', '/servers')).status === 401, {
      timeoutMs: 5_000,
      intervalMs: 20,
    })
    const ms = Date.now() - t0
    assert.ok(ms < 1000, `refused on B after ${ms} ms`)
  })

  test('an image uploaded through A downloads through B byte for byte and boots on the agent of either host', async () => {
    // Three chunks and a bit: the database store keeps 1 MiB rows.
    const data = randomBytes(3 * 1024 * 1024 + 777)
    const a = dep.apis[0]!
    const b = dep.apis[1]!
    const created = await fetch(`${a.urls.image}/v2/images`, {
      method: 'POST',
      headers: { 'x-auth-token': demo, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'uploaded-on-a', disk_format: 'qcow2', container_format: 'bare' }),
    })
    assert.equal(created.status, 201)
    const id = ((await created.json()) as { id: string }).id
    const put = await fetch(`${a.urls.image}/v2/images/${id}/file`, {
      method: 'PUT',
      headers: { 'x-auth-token': demo, 'content-type': 'application/octet-stream' },
      body: data,
    })
    assert.equal(put.status, 204, await put.text())
    const got = await fetch(`${b.urls.image}/v2/images/${id}/file`, { headers: { 'x-auth-token': demo } })
    assert.equal(got.status, 200)
    const bytes = Buffer.from(await got.arrayBuffer())
    assert.equal(bytes.length, data.length)
    assert.ok(bytes.equals(data), 'the same bytes through B')
    assert.equal(got.headers.get('content-md5'), createHash('md5').update(data).digest('hex'))

    // Booted on each agent host (an anti-affinity group), created through A and B in turn.
    const group = await call(0, demo, 'POST', '/os-server-groups', { server_group: { name: 'img', policies: ['anti-affinity'] } })
    const ids: string[] = []
    for (let i = 0; i < 2; i++) {
      const r = await call(i, demo, 'POST', '/servers', {
        server: { name: `img${i}`, imageRef: id, flavorRef: '1' },
        'os:scheduler_hints': { group: group.body.server_group.id },
      })
      assert.equal(r.status, 202, JSON.stringify(r.body))
      ids.push(r.body.server.id as string)
    }
    const booted = await Promise.all(ids.map((s) => settled(s, ['ACTIVE', 'ERROR'])))
    assert.deepEqual(
      booted.map((s) => [s.status, s.image.id]),
      [
        ['ACTIVE', id],
        ['ACTIVE', id],
      ],
    )
    assert.deepEqual(booted.map((s) => s['OS-EXT-SRV-ATTR:host'] as string).sort(), dep.agents)
  })

  test('console output is the same through A and B, and the same as one process shows', async () => {
    const id = (await onEachHost('con')).get('hv2')!
    const name = (await show(id)).name as string
    const a = await call(0, demo, 'POST', `/servers/${id}/action`, { 'os-getConsoleOutput': {} })
    const b = await call(1, demo, 'POST', `/servers/${id}/action`, { 'os-getConsoleOutput': {} })
    assert.equal(a.status, 200, JSON.stringify(a.body))
    assert.deepEqual(b, a)
    const tail = await call(1, demo, 'POST', `/servers/${id}/action`, { 'os-getConsoleOutput': { length: 1 } })
    assert.equal(tail.body.output, `${name} login: `)

    // One process (the in-process agent) shows the same console for a server of the same name
    // (the SSH host key is each VM's own).
    const one = await startTestSkiff()
    try {
      const token = await one.token('demo')
      const local = await activeServer(one, token, name)
      const res = await one.compute('POST', `/v2.1/servers/${local}/action`, { token, body: { 'os-getConsoleOutput': {} } })
      const hostKey = (s: string) => s.replace(/host key SHA256:\S+/g, 'host key SHA256:...')
      assert.equal(hostKey(a.body.output as string), hostKey(res.json().output as string))
    } finally {
      await one.close()
    }
  })

  test('a fault injected through A fails the next rescue, run by whichever agent; safely', async () => {
    const servers = await onEachHost('flt')
    for (const [host, id] of servers) {
      // A rule for every server: the agent that runs the next rescue uses it up.
      const made = await call(0, admin, 'POST', '/os-simulator/faults', {
        fault: { operation: 'rescue.boot', error: `rescue disk unreadable (${host})`, count: 1 },
      })
      assert.equal(made.status, 201, JSON.stringify(made.body))
      // Listed through the other API process too: the rules are rows.
      const listed = await call(1, admin, 'GET', '/os-simulator/faults')
      assert.deepEqual(
        listed.body.faults.map((f: { id: string; remaining: number }) => [f.id, f.remaining]),
        [[made.body.fault.id, 1]],
      )
      assert.equal((await call(1, demo, 'POST', `/servers/${id}/action`, { rescue: null })).status, 200)
      const back = await settled(id, ['ACTIVE', 'RESCUE'])
      assert.equal(back['OS-EXT-SRV-ATTR:host'], host)
      assert.equal(back.status, 'ACTIVE', 'safe failure: back on its own disk')
      assert.equal(back.fault?.message, `rescue disk unreadable (${host})`)
      assert.deepEqual((await call(1, admin, 'GET', '/os-simulator/faults')).body.faults, [], 'the one-shot rule was used up')
    }
    // The next rescue runs clean.
    const id = servers.get('hv1')!
    assert.equal((await call(0, demo, 'POST', `/servers/${id}/action`, { rescue: null })).status, 200)
    assert.equal((await settled(id, ['ACTIVE', 'RESCUE'])).status, 'RESCUE')
  })

  test('a second agent with an existing host name is refused: one line, exit 1', async () => {
    const holder = dep.pid('hv1')
    // On the other agent host: its namespace and data dir, the deployment's key.
    const r = await dep.skiff('hv2', ['agent', '--host', 'hv1', '--log-level', 'error'])
    const why = describeRun(r)
    assert.equal(r.code, 1, why)
    const lines = r.stderr.split('\n').filter((l) => l !== '')
    assert.equal(lines.length, 1, why)
    assert.match(
      lines[0]!,
      new RegExp(`^skiff: host hv1 is held by another agent \\(pid ${holder} on [^)]+\\) until \\d{4}-\\d\\d-\\d\\dT`),
      why,
    )
    assert.equal(r.stdout, '', why)
    const { rows } = await sql.query<{ agent_id: string }>(`select agent_id from hosts where name = 'hv1'`)
    assert.match(rows[0]!.agent_id, new RegExp(`^${holder}@`), 'the first agent keeps its host')
  })

  test('an agent killed -9 mid-rescue: started again, it runs the rescue to RESCUE; the action tells both attempts', async () => {
    const id = (await onEachHost('kil')).get('hv1')!
    // Long enough to kill it in the middle (a delay rule, used once: the second attempt runs at once).
    await call(0, admin, 'POST', '/os-simulator/faults', { fault: { operation: 'rescue.boot', server_id: id, delay_ms: 5_000, count: 1 } })
    const rescue = await call(1, demo, 'POST', `/servers/${id}/action`, { rescue: null })
    assert.equal(rescue.status, 200, JSON.stringify(rescue.body))
    await pollUntil(
      'the agent to be running the rescue',
      async () =>
        (await tasks()).some((t) => t.subject_id === id && t.state === 'running') &&
        (await unfinishedEvents()).some((e) => e.event === 'compute_rescue_instance'),
      { timeoutMs: 10_000, intervalMs: 20 },
    )
    await dep.kill9('hv1')
    assert.equal((await show(id))['OS-EXT-STS:task_state'], 'rescuing')
    await dep.start('hv1')
    assert.equal((await settled(id, ['RESCUE', 'ACTIVE'])).status, 'RESCUE')
    assert.deepEqual(await tasks(), [])
    const [action] = (await call(0, demo, 'GET', `/servers/${id}/os-instance-actions`)).body.instanceActions as {
      action: string
      request_id: string
      message: string | null
    }[]
    assert.equal(action!.action, 'rescue')
    assert.equal(action!.message, null)
    const events = (
      await sql.query<{ result: string | null; traceback: string | null }>(
        `select e.result, e.traceback from instance_action_events e join instance_actions a on a.id = e.action_id
         where a.server_id = $1 and a.request_id = $2 order by e.start_time`,
        [id, action!.request_id],
      )
    ).rows
    assert.deepEqual(
      events.map((e) => e.result),
      ['Error', 'Success'],
      JSON.stringify(events),
    )
    assert.match(events[0]!.traceback ?? '', /agent .*stopped/)
    assert.deepEqual(await unfinishedEvents(), [])
  })

  test('100 parallel rescues of one server over A and B: exactly one 200, the rest 409', async () => {
    const id = (await onEachHost('par')).get('hv2')!
    const answers = await Promise.all(
      Array.from({ length: 100 }, (_, i) => call(i % 2, demo, 'POST', `/servers/${id}/action`, { rescue: null })),
    )
    const counts: Record<number, number> = {}
    for (const a of answers) counts[a.status] = (counts[a.status] ?? 0) + 1
    assert.deepEqual(counts, { 200: 1, 409: 99 })
    await settled(id, ['RESCUE'])
  })

  test('kill -9 of an agent during 50 rescue/unrescue cycles over A and B: every server ends ACTIVE or RESCUE, no task left', async () => {
    const ids = [...(await onEachHost('cya')).values(), ...(await onEachHost('cyb')).values()]
    let next = 0
    const cycles = ids.map(async (id) => {
      for (;;) {
        const n = next++
        if (n >= 50) return
        const r = await call(n % 2, demo, 'POST', `/servers/${id}/action`, { rescue: null })
        assert.equal(r.status, 200, `cycle ${n} of ${id}: ${JSON.stringify(r.body)}`)
        const s = await settled(id, ['RESCUE', 'ACTIVE'], 60_000)
        if (s.status === 'RESCUE') {
          const u = await call((n + 1) % 2, demo, 'POST', `/servers/${id}/action`, { unrescue: null })
          assert.equal(u.status, 202, `cycle ${n} of ${id}: ${JSON.stringify(u.body)}`)
          await settled(id, ['ACTIVE'], 60_000)
        }
      }
    })
    // Kill hv1's agent while it runs one of them, then bring it back.
    await pollUntil('a third of the cycles to have started', async () => next >= 17, { timeoutMs: 60_000, intervalMs: 20 })
    await pollUntil(
      'hv1 to be running a task',
      async () =>
        (await sql.query(`select 1 from tasks t join servers s on s.id = t.subject_id where t.state = 'running' and s.host = 'hv1'`)).rows
          .length > 0,
      { timeoutMs: 30_000, intervalMs: 10 },
    )
    await dep.kill9('hv1')
    await dep.start('hv1')
    await Promise.all(cycles)
    for (const id of ids) {
      const s = await show(id)
      assert.ok(['ACTIVE', 'RESCUE'].includes(s.status), `${id} is ${s.status}`)
      assert.equal(s['OS-EXT-STS:task_state'], null)
    }
    assert.deepEqual(await tasks(), [])
    assert.deepEqual(await unfinishedEvents(), [], "every event of the killed agent's attempts was finished")
  })

  test('an API process killed -9 in the middle of 40 creates over A and B: every accepted request is carried out', async () => {
    const answered: string[] = []
    let sent = 0
    const burst = Array.from({ length: 4 }, async () => {
      for (;;) {
        const n = sent++
        if (n >= 40) return
        try {
          const r = await call(n % 2, demo, 'POST', '/servers', { server: { name: `k${n}`, imageRef: imageId, flavorRef: '1' } })
          if (r.status === 202) answered.push(r.body.server.id as string)
        } catch {
          /* the killed process: no answer, so nothing was promised */
        }
      }
    })
    await pollUntil('a quarter of the creates to be answered', async () => answered.length >= 10, { timeoutMs: 30_000, intervalMs: 5 })
    await dep.kill9('api2')
    await Promise.all(burst)
    for (const id of answered) await settled(id, ['ACTIVE'], 60_000)
    // Whatever committed without an answer is carried out too: nothing stays BUILD or in a task.
    await pollUntil(
      'every server to be idle and the queue empty',
      async () =>
        (await sql.query(`select id from servers where deleted = 0 and task_state is not null`)).rows.length === 0 &&
        (await tasks()).length === 0,
      { timeoutMs: 60_000, intervalMs: 100 },
    )
    await dep.start('api2')
    assert.equal((await call(1, demo, 'GET', '/servers')).status, 200)
  })

  test('an agent stopped for good: its host goes down, actions on its servers answer 503', async () => {
    const { rows } = await sql.query<{ id: string }>(`select id from servers where host = 'hv1' and deleted = 0 limit 1`)
    const id = rows[0]!.id
    const before = await settled(id, ['ACTIVE', 'RESCUE'])
    await dep.stop('hv1')
    await pollUntil(
      'the host to miss its heartbeats',
      async () => {
        const { rows } = await sql.query<{ heartbeat_at: string }>(`select heartbeat_at from hosts where name = 'hv1'`)
        return Date.now() - Date.parse(rows[0]!.heartbeat_at) > 4200
      },
      { timeoutMs: 10_000, intervalMs: 100 },
    )
    // An action its state allows, so that only the dead host can refuse it.
    const r = await call(1, demo, 'POST', `/servers/${id}/action`, before.status === 'RESCUE' ? { unrescue: null } : { 'os-stop': null })
    assert.equal(r.status, 503)
    assert.deepEqual(r.body, { serviceUnavailable: { code: 503, message: 'Compute service of hv1 is unavailable at this time.' } })
  })
})
