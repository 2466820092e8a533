// How long `skiff serve` takes from the exec of node to its first answered request, and its
// memory then: the compiled build (`node bin/skiff.js serve`, what `npm start` runs) beside the
// TypeScript sources run through tsx (what bin/skiff.js did before dist/).
//
//   node --import tsx bench/start.ts     (or: npm run bench:start; it builds dist/ first)
//     --runs N      starts of each kind (5; env BENCH_RUNS); the median is printed
//     --entry E     dist, tsx or both (both; env BENCH_ENTRY)
//
// Each run: free ports chosen here, `serve` with the default options (simulated driver, agent in
// the process) and --log-level warn; the identity root (GET /) polled every 2 ms from the spawn
// until it answers 200. "first start" is a fresh data dir (database created, migrations, bootstrap
// accounts); "again" starts a second time on the data dir the first start left.
import { spawn } from 'node:child_process'
import { createServer } from 'node:net'
import { loadavg } from 'node:os'
import path from 'node:path'
import { childrenRssMiB, ensureBuilt, median, memoryOf, option, ROOT, runMain, stopChild, table, tempDir } from './harness.ts'

const ENTRIES: Record<string, string[]> = {
  dist: [path.join(ROOT, 'bin/skiff.js')],
  tsx: ['--import', 'tsx', path.join(ROOT, 'src/cli/main.ts')],
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number }
      srv.close(() => resolve(port))
    })
  })
}

interface Run {
  ms: number
  rssMiB: number
  childrenMiB: number
}

/** One start on `dataDir`: ms from spawn to the identity root's first 200, RSS at that moment. */
async function startOnce(entry: string[], dataDir: string): Promise<Run> {
  const [identity, compute, image] = [await freePort(), await freePort(), await freePort()]
  const t0 = performance.now()
  const child = spawn(
    process.execPath,
    [
      ...entry,
      'serve',
      '--data-dir',
      dataDir,
      '--identity-port',
      String(identity),
      '--compute-port',
      String(compute),
      '--image-port',
      String(image),
      '--log-level',
      'warn',
    ],
    { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] },
  )
  let stderr = ''
  child.stderr.on('data', (b: Buffer) => {
    stderr += b.toString()
  })
  try {
    for (;;) {
      if (child.exitCode !== null) throw new Error(`skiff exited (${child.exitCode}) before answering:\n${stderr}`)
      if (performance.now() - t0 > 60_000) throw new Error(`no answer within 60 s:\n${stderr}`)
      const ok = await fetch(`http://127.0.0.1:${identity}/`).then(
        (r) => r.arrayBuffer().then(() => r.status === 200 || r.status === 300),
        () => false,
      )
      if (ok) {
        const ms = performance.now() - t0
        return { ms, rssMiB: memoryOf(child.pid!).rssMiB, childrenMiB: childrenRssMiB(child.pid!) }
      }
      await new Promise((resolve) => setTimeout(resolve, 2))
    }
  } finally {
    await stopChild(child)
  }
}

await runMain(async () => {
  const runs = option('runs', 5)
  const which = option('entry', 'both')
  const entries = which === 'both' ? ['tsx', 'dist'] : [which]
  for (const e of entries) if (!ENTRIES[e]) throw new Error(`--entry: dist, tsx or both, not '${e}'`)
  if (entries.includes('dist')) ensureBuilt()
  console.log(
    `skiff serve, spawn → first answered request: ${runs} runs each, median; node ${process.version}, load average ${loadavg()[0]!.toFixed(2)}`,
  )
  const rows: string[][] = []
  for (const e of entries) {
    const first: Run[] = []
    const again: Run[] = []
    for (let i = 0; i < runs; i++) {
      const dir = tempDir('skiff-start-')
      first.push(await startOnce(ENTRIES[e]!, dir))
      again.push(await startOnce(ENTRIES[e]!, dir))
    }
    for (const [label, rs] of [
      ['first start', first],
      ['again', again],
    ] as const) {
      rows.push([
        `${e}, ${label}`,
        `${median(rs.map((r) => r.ms)).toFixed(0)} ms`,
        `${Math.min(...rs.map((r) => r.ms)).toFixed(0)}–${Math.max(...rs.map((r) => r.ms)).toFixed(0)} ms`,
        `${median(rs.map((r) => r.rssMiB)).toFixed(0)} MiB`,
        `${median(rs.map((r) => r.childrenMiB)).toFixed(0)} MiB`,
      ])
    }
  }
  console.log(table(['entry', 'median', 'range', 'RSS', 'children RSS'], rows))
})
