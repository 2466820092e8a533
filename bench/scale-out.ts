// Scale-out on PostgreSQL: 1,000 simulated hosts (one `skiff agent --simulated-hosts 1000`) and
// 100,000 servers, with one and then two API processes (`skiff serve --no-agent`):
//  - GET /servers/detail?limit=1000 throughput (autocannon, spread over the API processes);
//  - rescue POST -> RESCUE latency (p50/p99) at a steady 50 rescues/s, open loop (a rescue is
//    sent every 20 ms whatever the previous ones do), each followed by its unrescue.
// Clients wait on the server event streams (SSE, the feed reading every 10 ms), not by polling.
// The 100,000 servers are written straight into the database (the API would take minutes);
// the rescued ones are created through the API and placed by the scheduler.
//
//   DATABASE_URL=postgres://postgres@127.0.0.1:5432/test node --import tsx bench/scale-out.ts \
//     [--hosts 1000] [--servers 100000] [--rate 50] [--seconds 20] [--list-seconds 10] [--delay 0]
//     [--apis 2]
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { api, demoToken, load, onCleanup, option, runMain, startAgent, startSkiff, table, tempDir, type SkiffProcess } from './harness.ts'
import { REBUILD_USAGE_COUNTERS } from '../src/store/migrations-usage-counters.ts'

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(s.length * p) - 1))] ?? NaN
}
const ms = (x: number) => `${x.toFixed(1)} ms`

async function waitStatus(s: SkiffProcess, token: string, id: string, status: string, timeoutMs = 30_000): Promise<void> {
  const deadline = performance.now() + timeoutMs
  for (;;) {
    const r = await api<{ server: { status: string; 'OS-EXT-STS:task_state': string | null; fault?: unknown } }>(
      token,
      'GET',
      `${s.compute}/v2.1/servers/${id}`,
    )
    if (r.body.server.status === status && r.body.server['OS-EXT-STS:task_state'] === null) return
    if (r.body.server.status === 'ERROR') throw new Error(`server ${id} went to ERROR: ${JSON.stringify(r.body.server.fault)}`)
    if (performance.now() > deadline) throw new Error(`server ${id} not ${status} after ${timeoutMs} ms`)
    // Every waiting client polls: 10 ms keeps the figures fine-grained without the polls being the load.
    await new Promise((r) => setTimeout(r, 10))
  }
}

/**
 * Waits on the server event streams (GET /servers/{id}/events, on each API process) instead
 * of polling: a thousand polls a second would be the load measured. The feed reads every 10 ms.
 */
class StateWatch {
  readonly #state = new Map<string, string>()
  readonly #waiters = new Map<string, { want: string; resolve: () => void }>()
  readonly #abort = new AbortController()

  /** One stream per server (a project stream would start with all 100,000 of them). */
  static async open(s: SkiffProcess, token: string, ids: string[]): Promise<StateWatch> {
    const w = new StateWatch()
    await Promise.all(ids.map((id) => w.#follow(s, token, id)))
    return w
  }

  async #follow(s: SkiffProcess, token: string, id: string): Promise<void> {
    const res = await fetch(`${s.compute}/v2.1/servers/${id}/events`, { headers: { 'x-auth-token': token }, signal: this.#abort.signal })
    if (res.status !== 200 || !res.body) throw new Error(`events: ${res.status}`)
    const reader = res.body.getReader()
    const decoder = new TextDecoder()
    void (async () => {
      let buf = ''
      try {
        for (;;) {
          const { value, done } = await reader.read()
          if (done) return
          buf += decoder.decode(value, { stream: true })
          let nl: number
          while ((nl = buf.indexOf('\n')) >= 0) {
            const line = buf.slice(0, nl)
            buf = buf.slice(nl + 1)
            if (!line.startsWith('data:')) continue
            const e = JSON.parse(line.slice(5)) as { id: string; status: string; 'OS-EXT-STS:task_state': string | null }
            const key = e['OS-EXT-STS:task_state'] === null ? e.status : `${e.status}/${e['OS-EXT-STS:task_state']}`
            this.#state.set(e.id, key)
            const waiter = this.#waiters.get(e.id)
            if (waiter && waiter.want === key) {
              this.#waiters.delete(e.id)
              waiter.resolve()
            }
          }
        }
      } catch {
        /* closed */
      }
    })()
  }

  /** Resolves when the server is `status` with no task (it may already be). */
  until(id: string, status: string, timeoutMs = 30_000): Promise<void> {
    if (this.#state.get(id) === status) return Promise.resolve()
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters.delete(id)
        reject(new Error(`server ${id} not ${status} after ${timeoutMs} ms`))
      }, timeoutMs)
      this.#waiters.set(id, {
        want: status,
        resolve: () => {
          clearTimeout(timer)
          resolve()
        },
      })
    })
  }

  close(): void {
    this.#abort.abort()
  }
}

/** Open loop: one rescue every 1000/rate ms on the next idle server, for `seconds`; returns the POST -> RESCUE latencies. */
async function rescueAtRate(
  apis: SkiffProcess[],
  watches: StateWatch[],
  token: string,
  ids: string[],
  rate: number,
  seconds: number,
): Promise<{ lat: number[]; late: number }> {
  const idle = [...ids]
  const lat: number[] = []
  const inflight = new Set<Promise<void>>()
  let late = 0
  const t0 = performance.now()
  const total = rate * seconds
  for (let i = 0; i < total; i++) {
    const due = t0 + (i * 1000) / rate
    const wait = due - performance.now()
    if (wait > 0) await new Promise((r) => setTimeout(r, wait))
    const id = idle.shift()
    if (!id) {
      late++
      continue
    }
    const s = apis[i % apis.length]!
    // A server is watched on one stream for good: another process's stream may not have shown
    // the end of its last cycle yet, and its stale RESCUE would answer this cycle's wait.
    const watch = watches[ids.indexOf(id) % watches.length]!
    const p = (async () => {
      const start = performance.now()
      const rescued = watch.until(id, 'RESCUE')
      const r = await api(token, 'POST', `${s.compute}/v2.1/servers/${id}/action`, { rescue: null })
      if (r.status !== 200) throw new Error(`rescue: ${r.status} ${r.text}`)
      await rescued
      lat.push(performance.now() - start)
      const back = watch.until(id, 'ACTIVE')
      const u = await api(token, 'POST', `${s.compute}/v2.1/servers/${id}/action`, { unrescue: null })
      if (u.status !== 202) throw new Error(`unrescue: ${u.status} ${u.text}`)
      await back
      idle.push(id)
    })()
    inflight.add(p)
    void p.finally(() => inflight.delete(p))
  }
  await Promise.all(inflight)
  return { lat, late }
}

await runMain(async () => {
  const base = process.env.SKIFF_TEST_DATABASE_URL || process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test'
  const hosts = option('hosts', 1000)
  const nServers = option('servers', 100_000)
  const rate = option('rate', 50)
  const seconds = option('seconds', 20)
  const listSeconds = option('list-seconds', 10)
  const delay = option('delay', 0)
  const maxApis = option('apis', 2)

  const schema = `skiff_bench_${randomBytes(4).toString('hex')}`
  const admin = new pg.Client({ connectionString: base })
  await admin.connect()
  await admin.query(`CREATE SCHEMA ${schema}`)
  const u = new URL(base)
  u.searchParams.set('options', `-c search_path=${schema}`)
  // Every connection of this run (ours, Skiff's) is named after its schema: on Ctrl-C or a crash
  // their statements are ended (a bulk INSERT would otherwise run on after the client is gone).
  u.searchParams.set('application_name', schema)
  const url = u.toString()
  onCleanup(async () => {
    await admin.query('select pg_terminate_backend(pid) from pg_stat_activity where application_name = $1', [schema])
    await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
    await admin.end()
  })
  const dataDir = tempDir('skiff-scale-bench-')
  const serveArgs = [
    '--no-agent',
    '--database-url',
    url,
    '--action-rate-limit',
    '0',
    '--server-events-interval',
    '10',
    // Room for the written servers and the rescued ones created through the API.
    '--quota-instances',
    String(nServers * 2 + 10_000),
    '--quota-cores',
    String(nServers * 20 + 100_000),
    '--quota-ram',
    String(nServers * 40_000 + 20_000_000),
  ]
  const apis = [await startSkiff({ dataDir, serveArgs })]
  const token = await demoToken(apis[0]!)

  let t = performance.now()
  await startAgent([
    '--host',
    'sim',
    '--simulated-hosts',
    String(hosts),
    '--database-url',
    url,
    '--data-dir',
    dataDir,
    '--simulated-delay',
    String(delay),
  ])
  const agentStartS = (performance.now() - t) / 1000

  // The bulk: servers of the demo project spread over the hosts, ACTIVE, no addresses.
  const db = new pg.Client({ connectionString: url })
  // Ended by the cleanup's pg_terminate_backend when the run stops early: not an error then.
  db.on('error', () => {})
  await db.connect()
  t = performance.now()
  const demo = (
    await db.query<{ id: string; user_id: string }>(
      `select p.id, u.id as user_id from projects p join users u on u.default_project_id = p.id where p.name = 'demo'`,
    )
  ).rows[0]!
  const image = (await db.query<{ id: string }>(`select id from images where name = 'skiff-base'`)).rows[0]!
  // Written with the triggers off (one statement would update the project's usage row a million
  // times in one transaction), then the usage counters are made from the rows, as the migration does.
  await db.query('begin')
  await db.query('set local session_replication_role = replica')
  await db.query(
    `
    insert into servers (id, name, project_id, user_id, image_id, flavor_id, vm_state, power_state, host, reservation_id, launched_at, created_at, updated_at)
    select gen_random_uuid()::text, 'bulk-' || g, $1, $2, $3, '1', 'active', 1, 'sim-' || (1 + g % $4), 'r-bulk', ts, ts, ts
    from generate_series(1, $5::int) g,
      lateral (select to_char((now() - make_interval(secs => g)) at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as ts) x`,
    [demo.id, demo.user_id, image.id, hosts, nServers],
  )
  await db.query('set local session_replication_role = origin')
  for (const statement of REBUILD_USAGE_COUNTERS) await db.query(statement)
  await db.query('commit')
  await db.query('analyze')
  const bulkS = (performance.now() - t) / 1000

  // Servers to rescue, through the API: the scheduler places them on the simulated hosts.
  const ids: string[] = []
  for (let i = 0; i < Math.max(20, rate); i++) {
    const r = await api<{ server: { id: string } }>(token, 'POST', `${apis[0]!.compute}/v2.1/servers`, {
      server: { name: `r${i}`, imageRef: image.id, flavorRef: '1' },
    })
    if (r.status !== 202) throw new Error(`create: ${r.status} ${r.text}`)
    ids.push(r.body.server.id)
  }
  for (const id of ids) await waitStatus(apis[0]!, token, id, 'ACTIVE', 60_000)
  const spread = (await db.query<{ n: string }>(`select count(distinct host) as n from servers where id = any($1)`, [ids])).rows[0]!.n

  const rows: string[][] = []
  for (let n = 1; n <= maxApis; n++) {
    if (apis.length < n) apis.push(await startSkiff({ dataDir, serveArgs }))
    const used = apis.slice(0, n)
    const lists = await Promise.all(
      used.map((s) => load({ url: s.compute, paths: ['/v2.1/servers/detail?limit=1000'], token, connections: 4, durationS: listSeconds })),
    )
    const rps = lists.reduce((a, l) => a + l.rps, 0)
    const watches = await Promise.all(used.map((s) => StateWatch.open(s, token, ids)))
    const { lat, late } = await rescueAtRate(used, watches, token, ids, rate, seconds)
    for (const w of watches) w.close()
    rows.push([
      String(n),
      `${rps.toFixed(1)} req/s`,
      `${(rps * 1000).toFixed(0)} servers/s`,
      ms(
        pct(
          lists.map((l) => l.p50),
          0.5,
        ),
      ),
      String(lat.length),
      ms(pct(lat, 0.5)),
      ms(pct(lat, 0.99)),
      String(late),
    ])
  }
  await db.end()
  console.log(
    `\nScale-out on PostgreSQL: ${hosts} simulated hosts (agent up in ${agentStartS.toFixed(1)} s), ${nServers} servers (written in ${bulkS.toFixed(1)} s),`,
  )
  console.log(`${ids.length} servers rescued in turn, placed on ${spread} hosts; simulated operations take ${delay} ms\n`)
  console.log(
    table(
      [
        'API processes',
        'detail?limit=1000',
        '= servers listed',
        'list p50',
        'rescues',
        `rescue p50 @${rate}/s`,
        'rescue p99',
        'skipped (no idle server)',
      ],
      rows,
    ),
  )
})
