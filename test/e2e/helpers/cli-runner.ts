// The real `openstack` and `nova` CLIs without paying their imports for every command: a few
// long-lived Debian Pythons (cli_runner.py) that have imported the clients fork a process per
// command, which runs the console script's own main() with the command's argv, environment and
// stdin. A command takes tenths of a second instead of seconds. SKIFF_E2E_CLI=process runs each
// command from scratch instead (`openstack ...` as a process).
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process'
import type { Socket } from 'node:net'
import path from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { commandLine, run, type RunOptions, type RunResult } from './process.ts'

const PYTHON = '/usr/bin/python3'
const SCRIPT = path.join(path.dirname(fileURLToPath(import.meta.url)), 'cli_runner.py')
/** Runners kept at most: commands of one test file seldom run more than this side by side. */
const MAX_RUNNERS = 4

export type CliProgram = 'openstack' | 'nova'

interface Answer {
  code: number | null
  stdout: string
  stderr: string
  timedOut: boolean
}

/** One Python process answering one command at a time. */
class Runner {
  readonly #child: ChildProcessWithoutNullStreams
  #waiting: ((a: Answer | Error) => void) | undefined
  #dead = false

  constructor() {
    this.#child = spawn(PYTHON, [SCRIPT], { stdio: ['pipe', 'pipe', 'pipe'] })
    const lines = createInterface({ input: this.#child.stdout })
    lines.on('line', (line) => this.#settle(JSON.parse(line) as Answer))
    let stderr = ''
    this.#child.stderr.on('data', (b: Buffer) => (stderr = (stderr + b.toString()).slice(-4000)))
    this.#child.on('error', (e) => this.#die(e))
    this.#child.on('close', (code) => this.#die(new Error(`cli_runner.py exited (${code}): ${stderr.trim()}`)))
    this.#idle()
  }

  get dead(): boolean {
    return this.#dead
  }

  /** Answers one command; rejects when the runner dies under it. */
  call(request: object): Promise<Answer> {
    this.#busy()
    return new Promise((resolve, reject) => {
      this.#waiting = (a) => {
        this.#idle()
        if (a instanceof Error) reject(a)
        else resolve(a)
      }
      this.#child.stdin.write(JSON.stringify(request) + '\n')
    })
  }

  kill(): void {
    this.#child.kill('SIGKILL')
  }

  #settle(a: Answer | Error): void {
    const w = this.#waiting
    this.#waiting = undefined
    w?.(a)
  }

  #die(e: Error): void {
    this.#dead = true
    this.#settle(e)
  }

  // An idle runner must not keep the test process alive; a busy one holds it (as a child would).
  #idle(): void {
    for (const h of this.#handles()) h.unref()
  }

  #busy(): void {
    for (const h of this.#handles()) h.ref()
  }

  /** The child and its pipes (sockets, though typed as streams). */
  #handles(): { ref(): unknown; unref(): unknown }[] {
    const c = this.#child
    return [c, ...[c.stdin, c.stdout, c.stderr].map((p) => p as unknown as Socket)]
  }
}

const idle: Runner[] = []

function takeRunner(): Runner {
  for (;;) {
    const r = idle.pop()
    if (!r) break
    if (!r.dead) return r
  }
  return new Runner()
}

function giveBack(r: Runner): void {
  if (!r.dead && idle.length < MAX_RUNNERS) idle.push(r)
  else r.kill()
}

/** `prog args` as the real CLI, with the options of process.ts's run (never rejects for an exit code). */
export async function runCli(prog: CliProgram, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  if (process.env.SKIFF_E2E_CLI === 'process') return run(prog, args, opts)
  const runner = takeRunner()
  const answer = await runner.call({
    prog,
    args,
    env: opts.env ?? process.env,
    cwd: opts.cwd,
    input: opts.input === undefined ? '' : opts.input.toString(),
    timeout: (opts.timeoutMs ?? 90_000) / 1000,
  })
  giveBack(runner)
  return { ...answer, command: commandLine(prog, args) }
}
