// Running commands and waiting for things, with deadlines everywhere: an e2e test that hangs
// tells nobody anything, one that fails with the last thing it saw does.
import { spawn } from 'node:child_process'

export interface RunResult {
  /** Exit code; null when the command was killed (timeout). */
  code: number | null
  stdout: string
  stderr: string
  timedOut: boolean
  /** The command line, for messages. */
  command: string
}

export interface RunOptions {
  env?: NodeJS.ProcessEnv
  cwd?: string
  /** Default 90 s: the slowest client call (`--wait` polls every 5 s) stays far below it. */
  timeoutMs?: number
  input?: string | Buffer
}

/** `cmd args` as a shell would need it typed, for messages. */
export function commandLine(cmd: string, args: readonly string[]): string {
  return [cmd, ...args].map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ')
}

/** Run `cmd args` (no shell), collect its output; never rejects for a non-zero exit. */
export function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const timeoutMs = opts.timeoutMs ?? 90_000
  const command = commandLine(cmd, args)
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: opts.env ?? process.env, cwd: opts.cwd, stdio: ['pipe', 'pipe', 'pipe'] })
    const out: Buffer[] = []
    const err: Buffer[] = []
    let timedOut = false
    const timer = setTimeout(() => {
      timedOut = true
      child.kill('SIGKILL')
    }, timeoutMs)
    child.stdout.on('data', (b: Buffer) => out.push(b))
    child.stderr.on('data', (b: Buffer) => err.push(b))
    child.on('error', (e) => {
      clearTimeout(timer)
      reject(new Error(`cannot run ${command}: ${e.message}`))
    })
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), timedOut, command })
    })
    child.stdin.on('error', () => {}) // a command that exits without reading its input
    child.stdin.end(opts.input)
  })
}

/** One readable paragraph about a finished command, for assertion messages. */
export function describeRun(r: RunResult): string {
  const tail = (s: string) => s.trim().split('\n').slice(-25).join('\n')
  return [
    `$ ${r.command}`,
    r.timedOut ? '(killed: timed out)' : `exit code ${r.code}`,
    r.stdout.trim() ? `stdout:\n${tail(r.stdout)}` : 'stdout: (empty)',
    r.stderr.trim() ? `stderr:\n${tail(r.stderr)}` : 'stderr: (empty)',
  ].join('\n')
}

/** The run must have exited 0; returns it for chaining. */
export function ok(r: RunResult): RunResult {
  if (r.code !== 0) throw new Error(`command failed\n${describeRun(r)}`)
  return r
}

/** The run must have failed (non-zero exit, not a timeout); returns it so its message can be checked. */
export function failed(r: RunResult): RunResult {
  if (r.timedOut) throw new Error(`command timed out instead of failing\n${describeRun(r)}`)
  if (r.code === 0) throw new Error(`command unexpectedly succeeded\n${describeRun(r)}`)
  return r
}

/**
 * Call `probe` until it returns something other than undefined/false; fail after `timeoutMs`
 * with `what` and the last value seen. No fixed sleeps: a short pause between probes only.
 */
export async function pollUntil<T>(
  what: string,
  probe: () => Promise<T | undefined | false>,
  opts: { timeoutMs?: number; intervalMs?: number; describe?: () => string } = {},
): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? 60_000
  const intervalMs = opts.intervalMs ?? 100
  const deadline = Date.now() + timeoutMs
  let last: unknown
  for (;;) {
    const v = await probe()
    if (v !== undefined && v !== false) return v
    last = v
    if (Date.now() > deadline) {
      const extra = opts.describe ? `\n${opts.describe()}` : last === undefined ? '' : `\nlast probe: ${String(last)}`
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${extra}`)
    }
    await new Promise((r) => setTimeout(r, intervalMs))
  }
}
