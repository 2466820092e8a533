// Memory of one Skiff process holding 1,000 servers (the default quota of a project), and how
// long creating them takes through the API.
//
//   node --import tsx bench/memory.ts            (or: npm run bench:memory)
//     --servers N       servers to create (1000; env BENCH_SERVERS; the default quota is 1000)
//     --concurrency K   POSTs in flight while creating (16; env BENCH_CONCURRENCY)
//     --duration S      seconds of concurrent detail listing at the end of the exercise (5; env BENCH_DURATION)
//     --rest S          idle seconds before "at rest" is read (60: V8 shrinks its heap some 40 s after the load; env BENCH_REST)
//
// Peak is VmHWM from /proc/<pid>/status (the kernel's high-water mark of the resident set since
// the process started); "now" is VmRSS. Both are of the Skiff process alone (identity, compute,
// image listeners and the agent all live in it).
import { loadavg } from 'node:os'
import {
  api,
  childrenRssMiB,
  createServers,
  demoToken,
  load,
  memoryOf,
  option,
  runMain,
  startSkiff,
  table,
  waitAllActive,
} from './harness.ts'

const fmt = (n: number, digits = 0) => n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

await runMain(async () => {
  const count = option('servers', 1000)
  const concurrency = option('concurrency', 16)
  const durationS = option('duration', 5)
  const restS = option('rest', 60)
  console.log(
    `Skiff memory benchmark: ${count} servers, ${concurrency} POSTs in flight, node ${process.version}, load average ${loadavg()[0]!.toFixed(2)}`,
  )

  const t0 = performance.now()
  const skiff = await startSkiff()
  const phases: string[][] = []
  // VmHWM says how high RSS went, not when: a sampler keeps the highest VmRSS seen in each phase.
  let phaseMax = 0
  let kidsMax = 0
  const sample = () => {
    try {
      phaseMax = Math.max(phaseMax, memoryOf(skiff.pid).rssMiB)
      kidsMax = Math.max(kidsMax, childrenRssMiB(skiff.pid))
    } catch {
      /* exited */
    }
  }
  const sampler = setInterval(sample, 50)
  const mark = (phase: string, note = '') => {
    sample()
    const m = memoryOf(skiff.pid)
    phases.push([phase, fmt(m.rssMiB, 1), fmt(phaseMax, 1), fmt(m.hwmMiB, 1), note])
    phaseMax = 0
  }
  mark('started, 0 servers', `${fmt(performance.now() - t0)} ms to ready`)
  const token = await demoToken(skiff)
  await api(token, 'GET', `${skiff.compute}/v2.1/servers/detail`)
  mark('after first requests (token, empty detail)')

  const tc = performance.now()
  const { postMs } = await createServers(skiff, token, count, concurrency)
  mark(`${count} POSTs answered`, `${fmt(postMs / 1000, 1)} s, ${fmt(count / (postMs / 1000), 1)} creates/s`)
  await waitAllActive(skiff, token, count, 15 * 60_000, 1000)
  const activeMs = performance.now() - tc
  mark(`all ${count} ACTIVE`, `${fmt(activeMs / 1000, 1)} s after the first POST`)

  // The exercise: each list a few times, one at a time, then detail under concurrent load.
  const timed = async (url: string) => {
    const t = performance.now()
    const r = await api<{ servers: unknown[] }>(token, 'GET', url)
    if (r.status !== 200) throw new Error(`${url}: ${r.status}`)
    return { ms: performance.now() - t, n: r.body.servers.length, bytes: r.bytes }
  }
  const lists = []
  const details = []
  for (let i = 0; i < 5; i++) lists.push(await timed(`${skiff.compute}/v2.1/servers`))
  for (let i = 0; i < 5; i++) details.push(await timed(`${skiff.compute}/v2.1/servers/detail`))
  const best = (xs: { ms: number }[]) => Math.min(...xs.map((x) => x.ms))
  mark(
    '5 × list, 5 × detail, one at a time',
    `list ${lists[0]!.n} servers ${fmt(lists[0]!.bytes / 1024)} KiB best ${fmt(best(lists))} ms; detail ${fmt(details[0]!.bytes / 1024)} KiB best ${fmt(best(details))} ms`,
  )
  const burst = await load({ url: skiff.compute, paths: ['/v2.1/servers/detail'], token, connections: 16, durationS })
  if (burst.errors || burst.non2xx) throw new Error(`detail under load: ${burst.errors} errors, ${burst.non2xx} non-2xx`)
  mark(`detail at c=16 for ${durationS} s`, `${fmt(burst.rps, 1)} req/s, p50 ${fmt(burst.p50)} ms, p99 ${fmt(burst.p99)} ms`)

  // At rest RSS moves on its own for a while (V8 shrinks and compacts its heap once the load
  // stops): keep a timeline, so "at rest" is not one lucky or unlucky reading.
  const timeline: string[] = []
  for (let s = 1; s <= restS; s++) {
    await sleep(1000)
    if (s % Math.max(1, Math.round(restS / 10)) === 0) timeline.push(`${s}s ${fmt(memoryOf(skiff.pid).rssMiB, 0)}`)
  }
  mark(`at rest (${restS} s idle)`, `VmRSS MiB: ${timeline.join(', ')}`)

  clearInterval(sampler)
  console.log()
  console.log(table(['phase (Skiff process)', 'VmRSS MiB at end', 'max VmRSS MiB in phase', 'VmHWM MiB', 'note'], phases, [4]))
  const m = memoryOf(skiff.pid)
  console.log()
  console.log(
    `Peak RSS (VmHWM) ${fmt(m.hwmMiB, 1)} MiB; RSS at rest ${fmt(m.rssMiB, 1)} MiB; ` +
      `${count} creates: POSTs ${fmt(postMs / 1000, 1)} s, all ACTIVE ${fmt(activeMs / 1000, 1)} s.`,
  )
  console.log(
    kidsMax > 0
      ? `Child processes of Skiff (tsx's esbuild service): at most ${fmt(kidsMax, 1)} MiB RSS, not included above.`
      : 'Skiff had no child process while sampled: the figures above are all of it.',
  )
  console.log(
    'Nova for comparison (shared/anchors/nova/PERF.md): 31 processes, RSS 2,986 MiB after listing 100 servers; 50 creates → ACTIVE 37–57 s.',
  )
})
