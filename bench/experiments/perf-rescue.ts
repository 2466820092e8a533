// Experiment: what a rescue cycle costs Skiff (rescue, its polls, unrescue, its polls, one after
// another): wall time and CPU time per cycle, and with PERF=1 a `perf record` of the process during
// them (/tmp/perf-rescue.data; JIT frames named by --perf-basic-prof-only-functions). BIN= another build.
//
//   PERF=1 node --import tsx bench/experiments/perf-rescue.ts && perf report -i /tmp/perf-rescue.data --no-children
import { spawn } from 'node:child_process'
import { api, cpuMsOf, createServers, demoToken, runMain, startSkiff, waitAllActive } from '../harness.ts'

await runMain(async () => {
  const s = await startSkiff({
    nodeArgs: ['--perf-basic-prof-only-functions'],
    serveArgs: ['--simulated-delay', '0', '--action-rate-limit', '0'],
    bin: process.env.BIN || undefined,
  })
  const token = await demoToken(s)
  const { ids } = await createServers(s, token, 1, 1)
  await waitAllActive(s, token, 1, 60_000)
  const id = ids[0]!
  let gets = 0
  const settle = async (status: string) => {
    for (;;) {
      gets++
      const r = await api<{ server: { status: string; 'OS-EXT-STS:task_state': string | null } }>(
        token,
        'GET',
        `${s.compute}/v2.1/servers/${id}`,
      )
      if (r.body.server.status === status && r.body.server['OS-EXT-STS:task_state'] === null) return
    }
  }
  const cycle = async () => {
    await api(token, 'POST', `${s.compute}/v2.1/servers/${id}/action`, { rescue: null })
    await settle('RESCUE')
    await api(token, 'POST', `${s.compute}/v2.1/servers/${id}/action`, { unrescue: null })
    await settle('ACTIVE')
  }
  for (let i = 0; i < 20; i++) await cycle()
  gets = 0
  const perf = process.env.PERF
    ? spawn('perf', ['record', '-F', '4999', '-g', '-o', '/tmp/perf-rescue.data', '-p', String(s.pid)], { stdio: 'ignore' })
    : undefined
  await new Promise((r) => setTimeout(r, 500))
  const c0 = cpuMsOf(s.pid)
  const t0 = performance.now()
  const n = 150
  for (let i = 0; i < n; i++) await cycle()
  const wall = (performance.now() - t0) / n
  const cpu = (cpuMsOf(s.pid) - c0) / n
  perf?.kill('SIGINT')
  if (perf) await new Promise((r) => perf.on('exit', r))
  console.log(`per cycle: wall ${wall.toFixed(2)} ms, Skiff CPU ${cpu.toFixed(2)} ms, GETs ${(gets / n).toFixed(2)}`)
})
