// How long `skiff serve` takes from the exec of node to its first answered request, and its
// memory then: the compiled build (`node bin/skiff.js serve`, what `npm start` runs) beside the
// TypeScript sources run through tsx (what bin/skiff.js did before dist/).
//
//   node --import tsx bench/start.ts     (or: npm run bench:start; it builds dist/ first)
//     --runs N      starts of each kind (5; env BENCH_RUNS); the median is printed
//     --entry E     dist, tsx or both (both; env BENCH_ENTRY)
//     --bin FILE    also another checkout's bin/skiff.js (e.g. of an older commit, with node_modules)
//
// Each run: free ports chosen here, `serve` with the default options (simulated driver, agent in
// the process) and --log-level warn; from the spawn, the roots (GET /) of identity, compute and
// image, each polled every 2 ms until it answers (in the order Skiff starts listening on them):
// the time is when the last one did. "first start" is a fresh data dir (database created,
// migrations, bootstrap accounts); "again" starts a second time on the data dir the first left.
// CPU is the process's user + system time by then (/proc/<pid>/stat): on a busy machine the
// wall-clock time varies with the load, the CPU time much less.
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
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

/** User + system CPU time of a process so far, ms (clock ticks of 10 ms). */
function cpuMsOf(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8')
    .replace(/^.*\) /s, '')
    .split(' ')
  return (Number(fields[11]) + Number(fields[12])) * 10
}

interface Run {
  ms: number
  cpuMs: number
  rssMiB: number
  childrenMiB: number
}

/** One start on `dataDir`: ms from spawn until all three roots have answered, RSS at that moment. */
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
    // The dashboard, block storage and the serial proxy on any free port (by environment: an older checkout given with --bin ignores it).
    {
      cwd: ROOT,
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, SKIFF_DASHBOARD_PORT: '0', SKIFF_VOLUME_PORT: '0', SKIFF_SERIAL_PROXY_PORT: '0' },
    },
  )
  let stderr = ''
  child.stderr.on('data', (b: Buffer) => {
    stderr += b.toString()
  })
  try {
    for (const port of [identity, compute, image]) {
      for (;;) {
        if (child.exitCode !== null) throw new Error(`skiff exited (${child.exitCode}) before answering:\n${stderr}`)
        if (performance.now() - t0 > 60_000) throw new Error(`no answer on port ${port} within 60 s:\n${stderr}`)
        // Version discovery: 300 Multiple Choices (identity, image) or 200 (compute).
        const ok = await fetch(`http://127.0.0.1:${port}/`).then(
          (r) => r.arrayBuffer().then(() => r.status < 400),
          () => false,
        )
        if (ok) break
        await new Promise((resolve) => setTimeout(resolve, 2))
      }
    }
    return {
      ms: performance.now() - t0,
      cpuMs: cpuMsOf(child.pid!),
      rssMiB: memoryOf(child.pid!).rssMiB,
      childrenMiB: childrenRssMiB(child.pid!),
    }
  } finally {
    await stopChild(child)
  }
}

await runMain(async () => {
  const runs = option('runs', 5)
  const which = option('entry', 'both')
  const bin = option('bin', '')
  const names = which === 'both' ? ['tsx', 'dist'] : [which]
  for (const e of names) if (!ENTRIES[e]) throw new Error(`--entry: dist, tsx or both, not '${e}'`)
  const entries: [string, string[]][] = names.map((e) => [e, ENTRIES[e]!])
  if (bin) entries.unshift([bin, [path.resolve(bin)]])
  if (names.includes('dist')) ensureBuilt()
  console.log(
    `skiff serve, spawn → all three listeners answered: ${runs} runs each, median; node ${process.version}, load average ${loadavg()[0]!.toFixed(2)}`,
  )
  const results = new Map(entries.map(([name]) => [name, { first: [] as Run[], again: [] as Run[] }]))
  // Runs of each entry take turns, so that a change in the machine's load falls on all of them.
  for (let i = 0; i < runs; i++) {
    for (const [name, args] of entries) {
      const dir = tempDir('skiff-start-')
      results.get(name)!.first.push(await startOnce(args, dir))
      results.get(name)!.again.push(await startOnce(args, dir))
    }
  }
  const rows: string[][] = []
  for (const [name, { first, again }] of results) {
    for (const [label, rs] of [
      ['first start', first],
      ['again', again],
    ] as const) {
      rows.push([
        `${name}, ${label}`,
        `${median(rs.map((r) => r.ms)).toFixed(0)} ms`,
        `${Math.min(...rs.map((r) => r.ms)).toFixed(0)}–${Math.max(...rs.map((r) => r.ms)).toFixed(0)} ms`,
        `${median(rs.map((r) => r.cpuMs)).toFixed(0)} ms`,
        `${median(rs.map((r) => r.rssMiB)).toFixed(0)} MiB`,
        `${median(rs.map((r) => r.childrenMiB)).toFixed(0)} MiB`,
      ])
    }
  }
  console.log(table(['entry', 'median', 'range', 'CPU', 'RSS', 'children RSS'], rows))
})
