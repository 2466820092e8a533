// How many SQL statements one request of each read target runs, and what they cost: Skiff is
// started with bench/sql-trace.ts preloaded (it wraps better-sqlite3's prepare and run), then the
// same requests as api-read.ts are made one at a time, then rescue/unrescue cycles as
// bench/rescue.ts makes them (the POSTs, the worker's statements and the client's polls).
//
//   node --import tsx bench/sql-per-request.ts [--requests 200] [--servers 100] [--preload bench/experiments/x.ts,...]
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { api, createServers, demoToken, option, ROOT, runMain, startSkiff, table, tempDir, waitAllActive } from './harness.ts'

interface Stat {
  prepares: number
  prepareNs: number
  runs: number
  runNs: number
  rows: number
}

await runMain(async () => {
  const requests = option('requests', 200)
  const serverCount = option('servers', 100)
  const traceFile = path.join(tempDir('skiff-bench-sql-'), 'trace.json')
  const skiff = await startSkiff({
    nodeArgs: [
      '--import',
      'tsx',
      '--import',
      path.join(ROOT, 'bench/sql-trace.ts'),
      ...option('preload', '')
        .split(',')
        .filter(Boolean)
        .flatMap((f) => ['--import', path.resolve(f)]),
    ],
    serveArgs: ['--simulated-delay', '0', '--action-rate-limit', '0'],
    env: { SKIFF_BENCH_SQL_TRACE: traceFile },
  })
  const token = await demoToken(skiff)
  const { ids } = await createServers(skiff, token, serverCount, 8)
  await waitAllActive(skiff, token, serverCount, 120_000)

  /** Counts since the last call (the child writes them on SIGUSR2 and starts over). */
  const collect = async (): Promise<Record<string, Stat>> => {
    skiff.child.kill('SIGUSR2')
    await new Promise((resolve) => setTimeout(resolve, 300))
    return JSON.parse(readFileSync(traceFile, 'utf8')) as Record<string, Stat>
  }
  const report = (label: string, n: number, stats: Record<string, Stat>) => {
    const rows = Object.entries(stats).sort((a, b) => b[1].prepareNs + b[1].runNs - (a[1].prepareNs + a[1].runNs))
    const total = rows.reduce(
      (acc, [, s]) => ({
        runs: acc.runs + s.runs,
        prepares: acc.prepares + s.prepares,
        ns: acc.ns + s.prepareNs + s.runNs,
        prepNs: acc.prepNs + s.prepareNs,
      }),
      { runs: 0, prepares: 0, ns: 0, prepNs: 0 },
    )
    console.log(
      `\n${label}: ${n} requests, one at a time. Per request: ${(total.runs / n).toFixed(1)} statements run, ` +
        `${(total.prepares / n).toFixed(1)} prepared, ${(total.ns / n / 1000).toFixed(0)} µs in SQLite (of which prepare ${(total.prepNs / n / 1000).toFixed(0)} µs)`,
    )
    console.log(
      table(
        ['statement (SQL, shortened)', 'runs/req', 'prepares/req', 'prepare µs/req', 'run µs/req', 'rows/run'],
        rows.map(([sql, s]) => [
          sql
            .replace(/\s+/g, ' ')
            .replace(/\(\?(, \?)+\)/g, '(?, …)')
            .slice(0, 110),
          (s.runs / n).toFixed(1),
          (s.prepares / n).toFixed(1),
          (s.prepareNs / n / 1000).toFixed(1),
          (s.runNs / n / 1000).toFixed(1),
          s.runs ? (s.rows / s.runs).toFixed(0) : '',
        ]),
      ),
    )
  }

  await collect()
  for (let i = 0; i < requests; i++) {
    const r = await api(token, 'GET', `${skiff.compute}/v2.1/servers/${ids[i % ids.length]}`)
    if (r.status !== 200) throw new Error(`GET server: ${r.status}`)
  }
  report('(a) GET /v2.1/servers/{id}', requests, await collect())
  const n = Math.max(1, Math.round(requests / 4))
  for (let i = 0; i < n; i++) {
    const r = await api(token, 'GET', `${skiff.compute}/v2.1/servers/detail`)
    if (r.status !== 200) throw new Error(`GET detail: ${r.status}`)
  }
  report(`(b) GET /v2.1/servers/detail (${serverCount} servers)`, n, await collect())

  const settle = async (id: string, status: string) => {
    const deadline = performance.now() + 10_000
    for (;;) {
      const r = await api<{ server: { status: string; 'OS-EXT-STS:task_state': string | null } }>(
        token,
        'GET',
        `${skiff.compute}/v2.1/servers/${id}`,
      )
      if (r.body.server.status === status && r.body.server['OS-EXT-STS:task_state'] === null) return
      if (performance.now() > deadline) throw new Error(`server ${id} not ${status} in 10 s`)
    }
  }
  const cycles = Math.max(1, Math.round(requests / 10))
  for (let i = 0; i < cycles + 2; i++) {
    if (i === 2) await collect() // the first two warm up
    const id = ids[0]!
    const r = await api(token, 'POST', `${skiff.compute}/v2.1/servers/${id}/action`, { rescue: null })
    if (r.status !== 200) throw new Error(`rescue: ${r.status}`)
    await settle(id, 'RESCUE')
    const u = await api(token, 'POST', `${skiff.compute}/v2.1/servers/${id}/action`, { unrescue: null })
    if (u.status !== 202) throw new Error(`unrescue: ${u.status}`)
    await settle(id, 'ACTIVE')
  }
  report('(c) rescue POST → RESCUE, unrescue POST → ACTIVE (with the polls)', cycles, await collect())
})
