// Experiment: Skiff's CPU per GET of a server for this build and another, at the same fixed
// request rate (below either's ceiling), runs interleaved. On a shared 2-core machine requests per
// second at saturation move by a fifth from one run to the next; CPU time at a fixed rate moves less.
//
//   BIN=OTHER/bin/skiff.js RATE=6000 ROUNDS=6 node --import tsx bench/experiments/fixed-rate.ts
import autocannon from 'autocannon'
import { cpuMsOf, createServers, demoToken, median, runMain, startSkiff, waitAllActive } from '../harness.ts'

await runMain(async () => {
  const rate = Number(process.env.RATE ?? 6000)
  const rounds = Number(process.env.ROUNDS ?? 6)
  const targets = []
  for (const bin of [undefined, process.env.BIN]) {
    const s = await startSkiff({ bin })
    const token = await demoToken(s)
    const { ids } = await createServers(s, token, 100, 8)
    await waitAllActive(s, token, 100, 120_000)
    targets.push({ name: bin ? 'other' : 'this', s, token, ids, cpu: [] as number[] })
  }
  for (let r = 0; r < rounds + 1; r++) {
    for (const t of r % 2 ? [...targets].reverse() : targets) {
      const c0 = cpuMsOf(t.s.pid)
      const res = await autocannon({
        url: t.s.compute,
        connections: 16,
        overallRate: rate,
        duration: 4,
        headers: { 'x-auth-token': t.token },
        requests: t.ids.map((id) => ({ method: 'GET', path: `/v2.1/servers/${id}` })),
      })
      if (res.non2xx || res.errors) throw new Error('errors')
      if (r > 0) t.cpu.push(((cpuMsOf(t.s.pid) - c0) * 1000) / res.requests.total)
    }
  }
  for (const t of targets)
    console.log(`${t.name}: median ${median(t.cpu).toFixed(1)} µs/req  [${t.cpu.map((x) => x.toFixed(1)).join(' ')}]`)
})
