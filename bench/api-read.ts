// Read throughput of the compute API against real Nova's figures and against the machine's
// ceiling (a bare node:http server answering the same bytes).
//
//   node --import tsx bench/api-read.ts            (or: npm run bench)
//     --duration S     seconds per measurement (10; env BENCH_DURATION)
//     --reps N         measurements of each target, medians reported (3; env BENCH_REPS)
//     --connections C  concurrent keep-alive connections (16; env BENCH_CONNECTIONS)
//     --warmup S       unrecorded run of each target first, JIT and caches warm (2; env BENCH_WARMUP)
//     --servers N      servers created for the demo user (100; env BENCH_SERVERS)
//     --only a,b,c,d   targets to run (all; env BENCH_ONLY)
//     --cpu-prof DIR   run the Skiff child under `node --cpu-prof`, profile written to DIR at exit
//                      (summarize with bench/cpuprofile-top.ts; figures are slower while profiling)
//     --preload F,G    modules imported into the Skiff child before it starts (bench/experiments/*:
//                      measure a suggested change without touching src/)
//     --bin FILE       also another checkout's bin/skiff.js (built, with node_modules; e.g. an older
//                      commit): its (a) and (b) run interleaved with this one's, as (a0) and (b0)
//
// Targets, each measured with autocannon at C connections for S seconds:
//   (a) GET /v2.1/servers/{id}  (cycling through the servers)
//   (b) GET /v2.1/servers/detail (all N servers)
//   (c) node:http answering (a)'s bytes: what this machine can do at all with HTTP/1.1 + JSON
//   (d) node:http answering (b)'s bytes: the same ceiling for the detail list
// Skiff/bare is (a) against (c) and (b) against (d).
// The runs are interleaved (a b c d, a b c d, ...) so a noisy neighbour hurts all targets alike.
// Each run also reads the server's CPU time (/proc/<pid>/stat) and prints it per request.
import { mkdirSync, writeFileSync } from 'node:fs'
import { loadavg, cpus } from 'node:os'
import path from 'node:path'
import {
  api,
  cpuMsOf,
  createServers,
  demoToken,
  load,
  median,
  memoryOf,
  monotonicUs,
  option,
  ROOT,
  runMain,
  startBare,
  startSkiff,
  table,
  tempDir,
  waitAllActive,
  type LoadResult,
  type ProfilePhase,
} from './harness.ts'

/** Real Nova 26, fake driver, same machine size (shared/anchors/nova/PERF.md), c=16, 10 s. */
const NOVA = {
  a: { rps: [54, 62], p50: [250, 271], p99: [303, 664] },
  b: { rps: [10, 15], p50: [965, 1248], p99: [1500, 3591] },
} as const

type Target = 'a' | 'b' | 'c' | 'd' | 'a0' | 'b0'
const LABEL: Record<Target, string> = {
  a: '(a) GET /v2.1/servers/{id}',
  b: '(b) GET /v2.1/servers/detail',
  c: '(c) bare node:http, same bytes as (a)',
  d: '(d) bare node:http, same bytes as (b)',
  a0: '(a0) the same, --bin',
  b0: '(b0) the same, --bin',
}

const fmt = (n: number, digits = 0) => n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })
const range = (r: readonly number[]) => `${fmt(r[0]!)}–${fmt(r[1]!)}`
/** autocannon's latency histogram counts whole milliseconds: below 1 ms reads 0. */
const ms = (v: number) => (v < 1 ? '<1' : fmt(v))

await runMain(async () => {
  const durationS = option('duration', 10)
  const reps = Math.max(1, option('reps', 3))
  const connections = option('connections', 16)
  const warmupS = option('warmup', 2)
  const serverCount = option('servers', 100)
  const only = new Set(
    option('only', 'a,b,c,d')
      .split(',')
      .map((x) => x.trim()) as Target[],
  )
  const cpuProf = option('cpu-prof', '')
  // The child writes its profile there only at exit; phases.json goes there before.
  if (cpuProf) mkdirSync(path.resolve(cpuProf), { recursive: true })
  const load0 = loadavg()[0]!

  console.log(
    `Skiff read benchmark: ${connections} connections, ${durationS} s per run, ${reps} runs per target (medians), ` +
      `${cpus().length} CPUs, node ${process.version}, load average ${load0.toFixed(2)} at start`,
  )

  const t0 = performance.now()
  const preload = option('preload', '')
    .split(',')
    .filter(Boolean)
    .map((f) => path.resolve(f))
  const nodeArgs = [
    ...(cpuProf ? ['--cpu-prof', `--cpu-prof-dir=${path.resolve(cpuProf)}`] : []),
    ...(preload.length ? ['--import', 'tsx', ...preload.flatMap((f) => ['--import', f])] : []),
  ]
  if (preload.length) console.log(`Skiff child preloads: ${preload.map((f) => path.relative(ROOT, f)).join(', ')}`)
  const skiff = await startSkiff({ nodeArgs })
  const token = await demoToken(skiff)
  const { ids, postMs } = await createServers(skiff, token, serverCount, 8)
  await waitAllActive(skiff, token, serverCount, 120_000)
  const bin = option('bin', '')
  const before = bin ? await startSkiff({ bin }) : undefined
  const beforeToken = before ? await demoToken(before) : ''
  const beforeIds = before ? (await createServers(before, beforeToken, serverCount, 8)).ids : []
  if (before) await waitAllActive(before, beforeToken, serverCount, 120_000)
  console.log(
    `Skiff pid ${skiff.pid} up; ${serverCount} servers created (POSTs ${fmt(postMs)} ms) and ACTIVE after ${fmt(performance.now() - t0)} ms from start`,
  )

  // What the targets answer: (c) answers exactly (a)'s bytes, (d) (b)'s.
  const one = await api(token, 'GET', `${skiff.compute}/v2.1/servers/${ids[0]}`)
  const all = await api<{ servers: unknown[] }>(token, 'GET', `${skiff.compute}/v2.1/servers/detail`)
  if (one.status !== 200 || all.status !== 200 || all.body.servers.length !== serverCount)
    throw new Error('unexpected answers before the load')
  const bareDir = tempDir('skiff-bench-bare-')
  writeFileSync(path.join(bareDir, 'server.json'), one.text)
  writeFileSync(path.join(bareDir, 'detail.json'), all.text)
  console.log(`Answer sizes: (a) ${fmt(one.bytes)} bytes, (b) ${fmt(all.bytes)} bytes (${serverCount} servers)`)
  const bare = await startBare(path.join(bareDir, 'server.json'))
  const bareDetail = only.has('d') ? await startBare(path.join(bareDir, 'detail.json')) : undefined

  const specs: Record<Target, { url: string; paths: string[]; token?: string }> = {
    a: { url: skiff.compute, paths: ids.map((id) => `/v2.1/servers/${id}`), token },
    b: { url: skiff.compute, paths: ['/v2.1/servers/detail'], token },
    c: { url: bare.url, paths: ['/'] },
    d: { url: bareDetail?.url ?? '', paths: ['/'] },
    a0: { url: before?.compute ?? '', paths: beforeIds.map((id) => `/v2.1/servers/${id}`), token: beforeToken },
    b0: { url: before?.compute ?? '', paths: ['/v2.1/servers/detail'], token: beforeToken },
  }
  const pidOf: Record<Target, number> = {
    a: skiff.pid,
    b: skiff.pid,
    c: bare.child.pid!,
    d: bareDetail?.child.pid ?? 0,
    a0: before?.pid ?? 0,
    b0: before?.pid ?? 0,
  }
  const targets = (['a', 'a0', 'b', 'b0', 'c', 'd'] as const).filter((t) => only.has(t.slice(0, 1) as Target) && (before || t.length === 1))

  if (warmupS > 0) {
    for (const t of targets) await load({ ...specs[t], connections, durationS: warmupS })
  }
  const results: Record<Target, (LoadResult & { cpuUs: number })[]> = { a: [], b: [], c: [], d: [], a0: [], b0: [] }
  // When profiling: the load windows on the monotonic clock V8's profile timestamps use (µs),
  // so bench/cpuprofile-top.ts can keep only one target's samples.
  const phases: (ProfilePhase & { target: Target })[] = []
  for (let rep = 1; rep <= reps; rep++) {
    for (const t of targets) {
      const startUs = monotonicUs()
      const cpu0 = cpuMsOf(pidOf[t])
      const r = await load({ ...specs[t], connections, durationS })
      // The server's own CPU per request: steadier than req/s on a machine others keep busy.
      const cpuUs = ((cpuMsOf(pidOf[t]) - cpu0) * 1000) / Math.max(1, r.requests)
      phases.push({ target: t, rep, startUs, endUs: monotonicUs() })
      if (r.errors || r.non2xx) throw new Error(`${LABEL[t]}: ${r.errors} errors/timeouts, ${r.non2xx} non-2xx answers`)
      results[t].push({ ...r, cpuUs })
      console.log(
        `  run ${rep}/${reps} ${LABEL[t].padEnd(38)} ${fmt(r.rps, 1).padStart(9)} req/s  p50 ${ms(r.p50)} ms  p99 ${ms(r.p99)} ms  CPU ${fmt(cpuUs, 1)} µs/req`,
      )
    }
  }
  const mem = memoryOf(skiff.pid)
  if (cpuProf) writeFileSync(path.join(path.resolve(cpuProf), 'phases.json'), JSON.stringify(phases, null, 1) + '\n')

  const med = (t: Target) => ({
    rps: median(results[t].map((r) => r.rps)),
    p50: median(results[t].map((r) => r.p50)),
    p99: median(results[t].map((r) => r.p99)),
    min: Math.min(...results[t].map((r) => r.rps)),
    max: Math.max(...results[t].map((r) => r.rps)),
    cpuUs: median(results[t].map((r) => r.cpuUs)),
  })
  // Each Skiff target against the bare server answering its bytes.
  const bareOf = (t: Target) => (t.startsWith('a') ? 'c' : 'd')
  const rows = targets.map((t) => {
    const m = med(t)
    const bareRps = only.has(bareOf(t)) ? med(bareOf(t)).rps : NaN
    const nova = t === 'a' || t === 'b' ? NOVA[t] : undefined
    return [
      LABEL[t],
      fmt(m.rps, 1),
      `${fmt(m.min, 0)}–${fmt(m.max, 0)}`,
      ms(m.p50),
      ms(m.p99),
      t === 'c' || t === 'd' ? '1' : Number.isNaN(bareRps) ? '–' : (m.rps / bareRps).toFixed(3),
      fmt(m.cpuUs, 1),
      nova ? range(nova.rps) : '',
      nova ? range(nova.p50) : '',
      nova ? range(nova.p99) : '',
      nova ? `×${fmt(m.rps / nova.rps[1], 0)}–${fmt(m.rps / nova.rps[0], 0)}` : '',
    ]
  })
  console.log()
  console.log(
    table(
      [
        'measure (c=' + connections + ', ' + durationS + ' s, median of ' + reps + ')',
        'req/s',
        'req/s range',
        'p50 ms',
        'p99 ms',
        'Skiff/bare',
        'CPU µs/req',
        'Nova req/s',
        'Nova p50 ms',
        'Nova p99 ms',
        'Skiff/Nova',
      ],
      rows,
    ),
  )
  console.log()
  console.log(
    `Skiff process: VmRSS ${fmt(mem.rssMiB, 1)} MiB, VmHWM (peak) ${fmt(mem.hwmMiB, 1)} MiB. ` +
      `Load average ${loadavg()[0]!.toFixed(2)} at end (was ${load0.toFixed(2)}). Total ${fmt((performance.now() - t0) / 1000, 0)} s.`,
  )
  if (cpuProf) {
    console.log(`CPU profile of the Skiff child: ${path.resolve(cpuProf)}/*.cpuprofile (written at its exit), load windows in phases.json.`)
    console.log(`  node --import tsx bench/cpuprofile-top.ts ${cpuProf}/<file>.cpuprofile --phases ${cpuProf}/phases.json --target a`)
  }
  console.log(
    'autocannon runs in this process, on the same CPUs as Skiff and the bare server: above a few thousand req/s it is part of what is measured.',
  )
  console.log('Nova: real Nova 26 with the fake driver on a 2-core machine (shared/anchors/nova/PERF.md; (b) there lists 101 servers).')
})
