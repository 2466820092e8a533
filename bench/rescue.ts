// Rescue latency as a client sees it: from the rescue POST to status RESCUE (task_state null),
// and from the unrescue POST to ACTIVE — median and p99 over N cycles, simulated driver with
// zero delay; then the same with 16 servers rescued in parallel. Real Nova on a machine of this
// size: 238 ms and 216 ms (medians, anchors/nova/PERF.md).
//
//   node --import tsx bench/rescue.ts [--cycles 50] [--parallel 16] [--warmup 500] [--client http|fetch]
//                                     [--cpu-prof DIR] [--bin OTHER/bin/skiff.js]
//
// --warmup: cycles run first and not counted. A process serving rescues all day runs this code
// hot (V8 optimizes it after some hundreds of runs: 5.5 ms a rescue in the first hundred cycles
// of a process, 3.5 ms after 700, on the machine of 2026-12-02); the figures are of that state.
// --client: node:http with kept-alive connections (default), or fetch (undici), which costs the
// client itself some tenths of a millisecond a request.
// The floor: the same client's POST and GET answered by a bare node:http server, one after the
// other; a rescue takes at least that (and its first poll). Printed beside the rescue figures,
// for comparing machines.
// --bin: another checkout's build (built, with its node_modules) instead of this one's.
// --cpu-prof DIR: the Skiff child runs under `node --cpu-prof`, its profile written to DIR at exit
// (read it with bench/cpuprofile-top.ts).
import { mkdirSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import {
  api as fetchApi,
  cpuMsOf,
  createServers,
  demoToken,
  keepAliveApi,
  median,
  monotonicUs,
  option,
  runMain,
  startBare,
  startSkiff,
  table,
  tempDir,
  waitAllActive,
  type ProfilePhase,
  type SkiffProcess,
} from './harness.ts'

const NOVA = { rescue: 238, unrescue: 216 }

const api = option('client', 'http') === 'fetch' ? fetchApi : keepAliveApi()

const p99 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.ceil(xs.length * 0.99) - 1)]!
const ms = (x: number) => `${x.toFixed(1)} ms`

interface Server {
  status: string
  'OS-EXT-STS:task_state': string | null
}

/** Poll back to back (no pause: a client waiting as hard as it can) until the status is reached. */
async function waitStatus(s: SkiffProcess, token: string, id: string, status: string, timeoutMs = 10_000): Promise<void> {
  const deadline = performance.now() + timeoutMs
  for (;;) {
    const r = await api<{ server: Server }>(token, 'GET', `${s.compute}/v2.1/servers/${id}`)
    if (r.body.server.status === status && r.body.server['OS-EXT-STS:task_state'] === null) return
    if (r.body.server.status === 'ERROR') throw new Error(`server ${id} went to ERROR`)
    if (performance.now() > deadline) throw new Error(`server ${id} not ${status} after ${timeoutMs} ms`)
  }
}

interface Cycle {
  rescue: number
  /** From the rescue POST until its answer. */
  rescuePost: number
  unrescue: number
}

/**
 * With --cpu-prof: when each counted rescue's POST and its polls ran, on the clock of V8's profile
 * (µs), for `cpuprofile-top.ts --phases DIR/phases.json --target rescue-post` (or rescue-poll).
 */
const phases: ProfilePhase[] = []

async function cycle(s: SkiffProcess, token: string, id: string, timed = false): Promise<Cycle> {
  const t0 = performance.now()
  const us0 = monotonicUs()
  const r = await api(token, 'POST', `${s.compute}/v2.1/servers/${id}/action`, { rescue: null })
  if (r.status !== 200) throw new Error(`rescue: ${r.status} ${JSON.stringify(r.body)}`)
  const rescuePost = performance.now() - t0
  const us1 = monotonicUs()
  await waitStatus(s, token, id, 'RESCUE')
  if (timed)
    phases.push(
      { target: 'rescue-post', rep: 1, startUs: us0, endUs: us1 },
      { target: 'rescue-poll', rep: 1, startUs: us1, endUs: monotonicUs() },
    )
  const t1 = performance.now()
  const u = await api(token, 'POST', `${s.compute}/v2.1/servers/${id}/action`, { unrescue: null })
  if (u.status !== 202) throw new Error(`unrescue: ${u.status} ${JSON.stringify(u.body)}`)
  await waitStatus(s, token, id, 'ACTIVE')
  return { rescue: t1 - t0, rescuePost, unrescue: performance.now() - t1 }
}

await runMain(async () => {
  const cycles = option('cycles', 50)
  const parallel = option('parallel', 16)
  const cpuProf = option('cpu-prof', '')
  // The child writes its profile there only at exit; phases.json goes there before.
  if (cpuProf) mkdirSync(path.resolve(cpuProf), { recursive: true })
  const skiff = await startSkiff({
    serveArgs: ['--simulated-delay', '0', '--action-rate-limit', '0'],
    nodeArgs: cpuProf ? ['--cpu-prof', `--cpu-prof-dir=${path.resolve(cpuProf)}`] : [],
    bin: option('bin', '') || undefined,
  })
  const token = await demoToken(skiff)
  const { ids } = await createServers(skiff, token, parallel, 4)
  await waitAllActive(skiff, token, parallel, 60_000, 50)

  // Warm-up: first requests pay for JIT and statement preparation; V8 optimizes the path after some hundreds.
  const warmup = option('warmup', 500)
  const cold: number[] = []
  for (let i = 0; i < warmup; i++) cold.push((await cycle(skiff, token, ids[0]!)).rescue)

  const serial = { rescue: [] as number[], rescuePost: [] as number[], unrescue: [] as number[] }
  // Skiff's CPU time for the serial cycles (user + system, /proc): the work a cycle costs, which
  // a busy machine disturbs less than the latency.
  const cpu0 = cpuMsOf(skiff.pid)
  for (let i = 0; i < cycles; i++) {
    const c = await cycle(skiff, token, ids[0]!, cpuProf !== '')
    serial.rescue.push(c.rescue)
    serial.rescuePost.push(c.rescuePost)
    serial.unrescue.push(c.unrescue)
  }

  const cpuPerCycle = (cpuMsOf(skiff.pid) - cpu0) / cycles
  if (cpuProf) writeFileSync(path.join(path.resolve(cpuProf), 'phases.json'), JSON.stringify(phases, null, 1) + '\n')
  const par = { rescue: [] as number[], unrescue: [] as number[] }
  const rounds = Math.max(1, Math.round(cycles / parallel))
  for (let round = 0; round < rounds; round++) {
    const results = await Promise.all(ids.map((id) => cycle(skiff, token, id)))
    for (const c of results) {
      par.rescue.push(c.rescue)
      par.unrescue.push(c.unrescue)
    }
  }

  // The floor: a POST and a GET of the same client answered by a bare node:http server.
  const bareDir = tempDir('skiff-bench-bare-')
  writeFileSync(path.join(bareDir, 'answer.json'), '{"adminPass": "a-rescue-answer"}')
  const bare = await startBare(path.join(bareDir, 'answer.json'))
  const floorOnce = async () => {
    const t0 = performance.now()
    await api(token, 'POST', bare.url, { rescue: null })
    await api(token, 'GET', bare.url)
    return performance.now() - t0
  }
  for (let i = 0; i < warmup; i++) await floorOnce()
  const floor: number[] = []
  for (let i = 0; i < cycles; i++) floor.push(await floorOnce())

  const row = (label: string, xs: number[], nova: number) => [
    label,
    String(xs.length),
    ms(median(xs)),
    ms(p99(xs)),
    `${nova} ms`,
    `${(nova / median(xs)).toFixed(0)}x`,
  ]
  console.log(
    `\nRescue latency, simulated driver with zero delay (client polls GET back to back; ` +
      `${option('client', 'http') === 'fetch' ? 'fetch' : 'node:http, kept alive'}; after ${warmup} warm-up cycles)\n`,
  )
  console.log(
    table(
      ['measure', 'n', 'median', 'p99', 'Nova median', 'Nova/Skiff'],
      [
        row('rescue POST -> RESCUE, one server', serial.rescue, NOVA.rescue),
        [
          ' of which the POST until its answer',
          String(serial.rescuePost.length),
          ms(median(serial.rescuePost)),
          ms(p99(serial.rescuePost)),
          '',
          '',
        ],
        row('unrescue POST -> ACTIVE, one server', serial.unrescue, NOVA.unrescue),
        ['floor: POST + GET to bare node:http', String(floor.length), ms(median(floor)), ms(p99(floor)), '', ''],
        ...(cold.length ? [row('rescue POST -> RESCUE, warm-up cycles', cold, NOVA.rescue)] : []),
        row(`rescue POST -> RESCUE, ${parallel} in parallel`, par.rescue, NOVA.rescue),
        row(`unrescue POST -> ACTIVE, ${parallel} in parallel`, par.unrescue, NOVA.unrescue),
      ],
    ),
  )
  console.log(`\nSkiff's CPU time per serial cycle (rescue, its polls, unrescue, its polls): ${cpuPerCycle.toFixed(2)} ms`)
})
