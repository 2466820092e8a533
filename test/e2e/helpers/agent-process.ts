// A real `skiff agent` in a child process, as an operator starts one per hypervisor host.
import { spawn, type ChildProcess } from 'node:child_process'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { cleanEnv } from './skiff-process.ts'
import { SKIFF } from './skiff-command.ts'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..')

export interface AgentProcess {
  pid: number
  output(): string
  /** SIGKILL: the agent dies at whatever it was doing. */
  kill9(): Promise<void>
  stop(): Promise<void>
}

const running = new Set<ChildProcess>()
process.once('exit', () => {
  for (const c of running) c.kill('SIGKILL')
})

export async function startAgentProcess(opts: {
  host: string
  databaseUrl: string
  dataDir: string
  extraArgs?: string[]
  startTimeoutMs?: number
}): Promise<AgentProcess> {
  const args = [
    ...SKIFF,
    'agent',
    '--host',
    opts.host,
    '--database-url',
    opts.databaseUrl,
    '--data-dir',
    opts.dataDir,
    '--log-level',
    process.env.SKIFF_E2E_LOG_LEVEL ?? 'warn',
    // Agents of one machine: each its own serial relay port (a qemu agent's; others open none).
    '--serial-relay-port',
    '0',
    ...(opts.extraArgs ?? []),
  ]
  const env = Object.fromEntries(Object.entries(cleanEnv()).filter(([k]) => !k.startsWith('SKIFF_')))
  const child = spawn(process.execPath, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] })
  running.add(child)
  let log = ''
  const remember = (b: Buffer) => {
    log += b.toString('utf8')
    if (log.length > 64_000) log = log.slice(-48_000)
  }
  child.stderr!.on('data', remember)
  const exited = new Promise<void>((resolve) =>
    child.once('exit', () => {
      running.delete(child)
      resolve()
    }),
  )
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`agent did not start in time\n${log}`)), opts.startTimeoutMs ?? 30_000)
    child.stdout!.on('data', (b: Buffer) => {
      remember(b)
      if (log.includes('is running.')) {
        clearTimeout(timer)
        resolve()
      }
    })
    void exited.then(() => {
      clearTimeout(timer)
      reject(new Error(`agent exited before it was ready\n${log}`))
    })
  })
  const alive = () => child.exitCode === null && child.signalCode === null
  return {
    pid: child.pid!,
    output: () => log,
    async kill9() {
      if (alive()) {
        child.kill('SIGKILL')
        await exited
      }
    },
    async stop() {
      if (!alive()) return
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
      await exited
      clearTimeout(timer)
    },
  }
}
