// Rescue latency as a client sees it: from the rescue POST to status RESCUE (task_state null),
// and from the unrescue POST to ACTIVE — median and p99 over N cycles, simulated driver with
// zero delay; then the same with 16 servers rescued in parallel. Real Nova on a machine of this
// size: 238 ms and 216 ms (medians, anchors/nova/PERF.md).
//
//   node --import tsx bench/rescue.ts [--cycles 50] [--parallel 16] [--cpu-prof DIR] [--bin OTHER/bin/skiff.js]
//
// --bin: another checkout's build (built, with its node_modules) instead of this one's.
// --cpu-prof DIR: the Skiff child runs under `node --cpu-prof`, its profile written to DIR at exit
// (read it with bench/cpuprofile-top.ts).
import path from 'node:path'
import {
  api,
  cpuMsOf,
  createServers,
  demoToken,
  median,
  option,
  runMain,
  startSkiff,
  table,
  waitAllActive,
  type SkiffProcess,
} from './harness.ts'

const NOVA = { rescue: 238, unrescue: 216 }

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

async function cycle(s: SkiffProcess, token: string, id: string): Promise<Cycle> {
  const t0 = performance.now()
  const r = await api(token, 'POST', `${s.compute}/v2.1/servers/${id}/action`, { rescue: null })
  if (r.status !== 200) throw new Error(`rescue: ${r.status} ${JSON.stringify(r.body)}`)
  const rescuePost = performance.now() - t0
  await waitStatus(s, token, id, 'RESCUE')
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
  const skiff = await startSkiff({
    serveArgs: ['--simulated-delay', '0', '--action-rate-limit', '0'],
    nodeArgs: cpuProf ? ['--cpu-prof', `--cpu-prof-dir=${path.resolve(cpuProf)}`] : [],
    bin: option('bin', '') || undefined,
  })
  const token = await demoToken(skiff)
  const { ids } = await createServers(skiff, token, parallel, 4)
  await waitAllActive(skiff, token, parallel, 60_000, 50)

  // Warm-up: first requests pay for JIT and statement preparation.
  for (let i = 0; i < 3; i++) await cycle(skiff, token, ids[0]!)

  const serial = { rescue: [] as number[], rescuePost: [] as number[], unrescue: [] as number[] }
  // Skiff's CPU time for the serial cycles (user + system, /proc): the work a cycle costs, which
  // a busy machine disturbs less than the latency.
  const cpu0 = cpuMsOf(skiff.pid)
  for (let i = 0; i < cycles; i++) {
    const c = await cycle(skiff, token, ids[0]!)
    serial.rescue.push(c.rescue)
    serial.rescuePost.push(c.rescuePost)
    serial.unrescue.push(c.unrescue)
  }

  const cpuPerCycle = (cpuMsOf(skiff.pid) - cpu0) / cycles
  const par = { rescue: [] as number[], unrescue: [] as number[] }
  const rounds = Math.max(1, Math.round(cycles / parallel))
  for (let round = 0; round < rounds; round++) {
    const results = await Promise.all(ids.map((id) => cycle(skiff, token, id)))
    for (const c of results) {
      par.rescue.push(c.rescue)
      par.unrescue.push(c.unrescue)
    }
  }

  const row = (label: string, xs: number[], nova: number) => [
    label,
    String(xs.length),
    ms(median(xs)),
    ms(p99(xs)),
    `${nova} ms`,
    `${(nova / median(xs)).toFixed(0)}x`,
  ]
  console.log(`\nRescue latency, simulated driver with zero delay (client polls GET back to back)\n`)
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
        row(`rescue POST -> RESCUE, ${parallel} in parallel`, par.rescue, NOVA.rescue),
        row(`unrescue POST -> ACTIVE, ${parallel} in parallel`, par.unrescue, NOVA.unrescue),
      ],
    ),
  )
  console.log(`\nSkiff's CPU time per serial cycle (rescue, its polls, unrescue, its polls): ${cpuPerCycle.toFixed(2)} ms`)
})
