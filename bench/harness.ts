// What both benchmarks share: a Skiff (or a bare node:http server) in its own child process,
// a demo token, servers created through the API, autocannon runs, RSS from /proc, cleanup.
// Only public surfaces are used (the CLI, the HTTP APIs): the benchmark measures what a client sees.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import http from 'node:http'
import { fileURLToPath } from 'node:url'
import autocannon from 'autocannon'

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')

let built = false
/**
 * bin/skiff.js runs the compiled build (dist/), as `npm start` does: bring it up to date with the
 * sources first (tsc, incremental: a few seconds when nothing changed), once per benchmark.
 */
export function ensureBuilt(): void {
  if (built) return
  execFileSync(process.execPath, [path.join(ROOT, 'scripts/build.mjs')], {
    cwd: ROOT,
    stdio: 'inherit',
  })
  built = true
}

/** Everything started here, undone by `cleanup()` (also on Ctrl-C and on a crash). */
const children = new Set<ChildProcess>()
const tempDirs = new Set<string>()

export function tempDir(prefix: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), prefix))
  tempDirs.add(dir)
  return dir
}

/** Stop a child with SIGTERM (Skiff shuts down cleanly and, with --cpu-prof, writes its profile); SIGKILL after `graceMs`. */
export async function stopChild(child: ChildProcess, graceMs = 15_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) {
    children.delete(child)
    return
  }
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs)
  await exited
  clearTimeout(timer)
  children.delete(child)
}

/** More to undo after the children stop (latest first), e.g. a database schema. */
const steps: (() => Promise<void>)[] = []
export function onCleanup(step: () => Promise<void>): void {
  steps.unshift(step)
}

export async function cleanup(): Promise<void> {
  await Promise.allSettled([...children].map((c) => stopChild(c)))
  for (const step of steps.splice(0)) await step().catch((err: unknown) => console.error('cleanup:', err))
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true })
  tempDirs.clear()
}

let handlersInstalled = false
/** Run `main`, then clean up whatever happened; Ctrl-C cleans up too. */
export async function runMain(main: () => Promise<void>): Promise<void> {
  if (!handlersInstalled) {
    handlersInstalled = true
    // A terminal's Ctrl-C reaches every process of the group (npm, timeout and us): the second
    // signal must not cut the cleanup short.
    let stopping = false
    for (const sig of ['SIGINT', 'SIGTERM'] as const) {
      process.on(sig, () => {
        if (stopping) return
        stopping = true
        void cleanup().finally(() => process.exit(130))
      })
    }
  }
  try {
    await main()
  } catch (err) {
    console.error(err instanceof Error ? err.stack : err)
    process.exitCode = 1
  } finally {
    await cleanup()
  }
}

/** Wait for a line on the child's stdout that `match` accepts; fail if the child exits first. */
function waitForOutput(child: ChildProcess, what: string, done: (text: string) => boolean, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = ''
    let stderr = ''
    const timer = setTimeout(() => finish(new Error(`timed out after ${timeoutMs} ms waiting for ${what}\n${text}\n${stderr}`)), timeoutMs)
    const onData = (b: Buffer) => {
      text += b.toString()
      if (done(text)) finish()
    }
    const onErr = (b: Buffer) => {
      stderr += b.toString()
    }
    const onExit = (code: number | null) =>
      finish(new Error(`${what}: the process exited (${code}) before it was ready\n${text}\n${stderr}`))
    function finish(err?: Error) {
      clearTimeout(timer)
      child.stdout?.off('data', onData)
      child.stderr?.off('data', onErr)
      child.off('exit', onExit)
      if (err) reject(err)
      else resolve(text)
    }
    child.stdout?.on('data', onData)
    child.stderr?.on('data', onErr)
    child.once('exit', onExit)
  })
}

export interface SkiffProcess {
  child: ChildProcess
  pid: number
  dataDir: string
  identity: string
  compute: string
  image: string
  password: string
}

export interface SkiffOptions {
  /** Extra arguments for `node` itself (e.g. `--cpu-prof`), before the script. */
  nodeArgs?: string[]
  /** Extra `skiff serve` flags. */
  serveArgs?: string[]
  /** Extra environment variables for the child. */
  env?: Record<string, string>
  /** A data dir shared with other processes (the sealing key, the credentials) instead of a fresh one. */
  dataDir?: string
  /** Another checkout's bin/skiff.js (built, with its node_modules) instead of this one's. */
  bin?: string
}

/**
 * `node bin/skiff.js serve` on any free ports, its SQLite file in a fresh temp dir, the
 * simulated driver (the default), log level warn. Node is spawned directly, so the child's
 * pid is the Skiff process itself (its /proc/<pid>/status is Skiff's memory).
 */
export async function startSkiff(opts: SkiffOptions = {}): Promise<SkiffProcess> {
  const dataDir = opts.dataDir ?? tempDir('skiff-bench-')
  if (!opts.bin) ensureBuilt()
  const child = spawn(
    process.execPath,
    [
      ...(opts.nodeArgs ?? []),
      opts.bin ? path.resolve(opts.bin) : path.join(ROOT, 'bin/skiff.js'),
      'serve',
      '--data-dir',
      dataDir,
      '--identity-port',
      '0',
      '--compute-port',
      '0',
      '--image-port',
      '0',
      '--log-level',
      'warn',
      ...(opts.serveArgs ?? []),
    ],
    {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, SKIFF_DASHBOARD_PORT: '0', SKIFF_VOLUME_PORT: '0', SKIFF_SERIAL_PROXY_PORT: '0', ...opts.env },
    },
  )
  children.add(child)
  // Warnings keep coming on stderr while we measure; show them rather than let the pipe fill.
  const out = await waitForOutput(child, 'skiff serve', (t) => /^Try: /m.test(t), 60_000)
  child.stderr?.on('data', (b: Buffer) => process.stderr.write(`[skiff] ${b.toString()}`))
  child.stdout?.resume()
  const url = (name: string) => {
    const m = new RegExp(`^\\s+${name}\\s+(http://\\S+)`, 'm').exec(out)
    if (!m?.[1]) throw new Error(`no ${name} URL in skiff's output:\n${out}`)
    return m[1]
  }
  const rc = readFileSync(path.join(dataDir, 'demo-openrc'), 'utf8')
  const pw = /^export OS_PASSWORD='((?:[^']|'\\'')*)'$/m.exec(rc)
  if (!pw?.[1]) throw new Error('no OS_PASSWORD in demo-openrc')
  return {
    child,
    pid: child.pid!,
    dataDir,
    identity: url('identity').replace(/\/v3$/, ''),
    compute: url('compute').replace(/\/v2\.1$/, ''),
    image: url('image'),
    password: pw[1].replace(/'\\''/g, "'"),
  }
}

/** The bare node:http server (bench/bare-server.ts) answering `bodyFile`'s bytes, in its own process. */
/** `skiff agent` in its own process; resolves once it says it is running. */
export async function startAgent(args: string[], timeoutMs = 300_000): Promise<ChildProcess> {
  ensureBuilt()
  const child = spawn(process.execPath, [path.join(ROOT, 'bin/skiff.js'), 'agent', '--log-level', 'warn', ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  children.add(child)
  await waitForOutput(child, 'skiff agent', (t) => /is running\./.test(t), timeoutMs)
  child.stderr?.on('data', (b: Buffer) => process.stderr.write(`[agent] ${b.toString()}`))
  child.stdout?.resume()
  return child
}

export async function startBare(bodyFile: string): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'bench/bare-server.ts'), bodyFile], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  children.add(child)
  const out = await waitForOutput(child, 'bare server', (t) => /^listening \S+$/m.test(t), 30_000)
  child.stdout?.resume()
  return { child, url: /^listening (\S+)$/m.exec(out)![1]! }
}

/** A project-scoped token of the demo user (Keystone password auth). */
export async function demoToken(s: SkiffProcess): Promise<string> {
  const res = await fetch(`${s.identity}/v3/auth/tokens`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      auth: {
        identity: { methods: ['password'], password: { user: { name: 'demo', domain: { name: 'Default' }, password: s.password } } },
        scope: { project: { name: 'demo', domain: { name: 'Default' } } },
      },
    }),
  })
  if (res.status !== 201) throw new Error(`token: ${res.status} ${await res.text()}`)
  await res.arrayBuffer()
  return res.headers.get('x-subject-token')!
}

export async function api<T = unknown>(
  token: string,
  method: string,
  url: string,
  body?: unknown,
): Promise<{ status: number; body: T; text: string; bytes: number }> {
  const res = await fetch(url, {
    method,
    headers: { 'x-auth-token': token, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  })
  const text = await res.text()
  return { status: res.status, body: (text ? JSON.parse(text) : undefined) as T, text, bytes: Buffer.byteLength(text) }
}

/**
 * `api` over node:http with connections kept alive: a lean client for latency figures. fetch
 * (undici) spends 0.2 to 0.5 ms of the client's own per request on a 2-core machine, which a
 * latency of a few milliseconds would count as Skiff's.
 */
export function keepAliveApi(): typeof api {
  const agent = new http.Agent({ keepAlive: true })
  return (token, method, url, body) =>
    new Promise((resolve, reject) => {
      const data = body === undefined ? undefined : JSON.stringify(body)
      const headers: http.OutgoingHttpHeaders = { 'x-auth-token': token }
      if (data !== undefined) Object.assign(headers, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) })
      const req = http.request(url, { method, agent, headers }, (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8')
          try {
            resolve({ status: res.statusCode!, body: (text ? JSON.parse(text) : undefined) as never, text, bytes: Buffer.byteLength(text) })
          } catch (err) {
            reject(err as Error)
          }
        })
        res.on('error', reject)
      })
      req.on('error', reject)
      req.end(data)
    })
}

/**
 * A window of a benchmark's load, for `cpuprofile-top.ts --phases`: on the monotonic clock V8's
 * profile timestamps use (µs), so a profile's samples can be kept to one target (and run).
 */
export interface ProfilePhase {
  target: string
  rep: number
  startUs: number
  endUs: number
}

/** Now on that clock, in µs. */
export const monotonicUs = (): number => Number(process.hrtime.bigint() / 1000n)

/** Create `count` servers (m1.tiny, the base image), `concurrency` POSTs in flight. Returns their ids and how long the POSTs took. */
export async function createServers(
  s: SkiffProcess,
  token: string,
  count: number,
  concurrency: number,
): Promise<{ ids: string[]; postMs: number }> {
  const images = await api<{ images: { id: string }[] }>(token, 'GET', `${s.image}/v2/images?name=skiff-base`)
  const imageRef = images.body.images[0]?.id
  if (!imageRef) throw new Error(`no skiff-base image: ${JSON.stringify(images.body)}`)
  const ids: string[] = []
  let next = 0
  const t0 = performance.now()
  const worker = async () => {
    while (next < count) {
      const i = next++
      const r = await api<{ server: { id: string } }>(token, 'POST', `${s.compute}/v2.1/servers`, {
        server: { name: `bench-${String(i).padStart(4, '0')}`, imageRef, flavorRef: '1' },
      })
      if (r.status !== 202) throw new Error(`create #${i}: ${r.status} ${JSON.stringify(r.body)}`)
      ids.push(r.body.server.id)
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
  return { ids, postMs: performance.now() - t0 }
}

/** Poll the detail list until `count` servers are ACTIVE; any ERROR fails. */
export async function waitAllActive(s: SkiffProcess, token: string, count: number, timeoutMs: number, pollMs = 250): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const r = await api<{ servers: { id: string; status: string }[] }>(token, 'GET', `${s.compute}/v2.1/servers/detail`)
    if (r.status !== 200) throw new Error(`detail: ${r.status}`)
    const active = r.body.servers.filter((x) => x.status === 'ACTIVE').length
    const errored = r.body.servers.filter((x) => x.status === 'ERROR')
    if (errored.length) throw new Error(`${errored.length} servers went to ERROR, e.g. ${errored[0]!.id}`)
    if (active >= count) return
    if (Date.now() > deadline) throw new Error(`only ${active}/${count} servers ACTIVE after ${timeoutMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, pollMs))
  }
}

/** Memory of a process from /proc/<pid>/status, MiB: VmRSS (now) and VmHWM (peak since start). */
export function memoryOf(pid: number): { rssMiB: number; hwmMiB: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const kib = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN)
  return { rssMiB: kib('VmRSS') / 1024, hwmMiB: kib('VmHWM') / 1024 }
}

/**
 * CPU time a process has used so far (user + system, all its threads), ms, from /proc/<pid>/stat:
 * per request, a figure that a busy machine disturbs far less than requests per second.
 */
export function cpuMsOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  // Fields after the command name (which may hold spaces), from field 3: utime is 14, stime 15, in clock ticks (100 Hz).
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) * 10
}

/** VmRSS of a process's descendants, MiB (the sources run through tsx have its esbuild service as a child process; the compiled build has none). */
export function childrenRssMiB(pid: number): number {
  let total = 0
  let kids: string[]
  try {
    kids = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean)
  } catch {
    return 0
  }
  for (const kid of kids) {
    try {
      total += memoryOf(Number(kid)).rssMiB + childrenRssMiB(Number(kid))
    } catch {
      /* gone meanwhile */
    }
  }
  return total
}

export interface LoadResult {
  rps: number
  p50: number
  p99: number
  requests: number
  errors: number
  non2xx: number
}

/**
 * One autocannon run: `connections` keep-alive connections, each with one request in flight
 * (no pipelining, as a client would), for `durationS` seconds. Each connection cycles through `paths`.
 */
export async function load(opts: {
  url: string
  paths: string[]
  token?: string
  connections: number
  durationS: number
}): Promise<LoadResult> {
  const r = await autocannon({
    url: opts.url,
    connections: opts.connections,
    pipelining: 1,
    duration: opts.durationS,
    headers: opts.token ? { 'x-auth-token': opts.token } : {},
    // Static requests: autocannon builds each buffer once and every connection cycles through
    // them (a setupRequest callback would rebuild a buffer per request, on the client's CPU).
    requests: opts.paths.map((p) => ({ method: 'GET', path: p })),
  })
  return {
    // Completed requests over the measured time, rather than autocannon's mean of per-second samples.
    rps: r.requests.total / r.duration,
    p50: r.latency.p50,
    p99: r.latency.p99,
    requests: r.requests.total,
    errors: r.errors + r.timeouts,
    non2xx: r.non2xx,
  }
}

export const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

/** `--name value` flags, then `BENCH_NAME` from the environment, then the default. */
export function option(name: string, fallback: number): number
export function option(name: string, fallback: string): string
export function option(name: string, fallback: number | string): number | string {
  const argv = process.argv.slice(2)
  const at = argv.findIndex((a) => a === `--${name}` || a.startsWith(`--${name}=`))
  let raw: string | undefined
  if (at >= 0) raw = argv[at]!.includes('=') ? argv[at]!.slice(argv[at]!.indexOf('=') + 1) : argv[at + 1]
  raw ??= process.env[`BENCH_${name.toUpperCase().replace(/-/g, '_')}`]
  if (raw === undefined || raw === '') return fallback
  if (typeof fallback === 'number') {
    const n = Number(raw)
    if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} expects a non-negative number, got '${raw}'`)
    return n
  }
  return raw
}

/** A plain-text table, columns padded: the first and the `left` ones left-aligned, the others (figures) right-aligned. */
export function table(header: string[], rows: string[][], left: number[] = []): string {
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => (r[c] ?? '').length)))
  const line = (cells: string[]) =>
    cells
      .map((x, c) => (c === 0 || left.includes(c) ? x.padEnd(widths[c]!) : x.padStart(widths[c]!)))
      .join('  ')
      .trimEnd()
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n')
}
