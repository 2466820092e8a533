// A real `skiff serve` in a child process, as a user starts it: free ports, a temp data dir,
// the URLs and credential files read from what it prints. Stopped (and its dir removed) by stop().
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { SKIFF } from './skiff-command.ts'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..')

export type Account = 'admin' | 'demo' | 'alt' | 'reader'
const CLOUD: Record<Account, string> = { admin: 'skiff-admin', demo: 'skiff-demo', alt: 'skiff-alt', reader: 'skiff-reader' }
const OPENRC: Record<Account, string> = { admin: 'admin-openrc', demo: 'demo-openrc', alt: 'alt-openrc', reader: 'reader-openrc' }

export interface SkiffProcess {
  pid: number
  dataDir: string
  /** As printed: identity ends in /v3, compute in /v2.1, image is the Glance root. */
  urls: { identity: string; compute: string; image: string; volume: string; dashboard?: string; serial?: string }
  cloudsYaml: string
  openrc: Record<Account, string>
  /** Environment for a client using clouds.yaml: OS_CLIENT_CONFIG_FILE + OS_CLOUD. */
  cloudEnv(account: Account): NodeJS.ProcessEnv
  /** Environment for a client using the OS_* variables of the account's openrc (the nova CLI needs these). */
  openrcEnv(account: Account): NodeJS.ProcessEnv
  /** Everything skiff printed so far (the tail), for failure messages. */
  output(): string
  stop(): Promise<void>
}

export interface StartOptions {
  /** Time each simulated hypervisor operation takes, ms. */
  simulatedDelayMs?: number
  /** Fail if Skiff has not printed its URLs and files within this. */
  startTimeoutMs?: number
  extraArgs?: string[]
  /** Use this data dir (shared with other processes; the caller removes it) instead of a temp one. */
  dataDir?: string
}

/** The caller's environment without anything that could point a client somewhere else. */
export function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith('OS_') || /^(https?|no|all)_proxy$/i.test(k)) continue
    env[k] = v
  }
  env.NO_PROXY = env.no_proxy = '127.0.0.1,localhost'
  // Python clients: no stray warnings on stderr from a user's site config, plain UTF-8 output.
  env.PYTHONWARNINGS = 'ignore'
  env.PYTHONIOENCODING = 'utf-8'
  return env
}

/** A project-scoped token for the account of an openrc file, from the identity root (`.../v3`). */
export async function openrcToken(identityUrl: string, openrcFile: string): Promise<string> {
  const rc = parseOpenrc(readFileSync(openrcFile, 'utf8'))
  const auth = await fetch(`${identityUrl}/auth/tokens`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      auth: {
        identity: {
          methods: ['password'],
          password: { user: { name: rc.OS_USERNAME, domain: { name: 'Default' }, password: rc.OS_PASSWORD } },
        },
        scope: { project: { name: rc.OS_PROJECT_NAME, domain: { name: 'Default' } } },
      },
    }),
  })
  if (auth.status !== 201) throw new Error(`login as ${rc.OS_USERNAME}: ${auth.status} ${await auth.text()}`)
  return auth.headers.get('x-subject-token')!
}

/** `export K='v'` lines of an openrc, as Skiff writes them (single-quoted, '\'' escapes). */
export function parseOpenrc(text: string): Record<string, string> {
  const vars: Record<string, string> = {}
  for (const line of text.split('\n')) {
    const m = /^export\s+([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line.trim())
    if (!m) continue
    let v = m[2]!
    if (v.startsWith("'")) v = v.slice(1, -1).replace(/'\\''/g, "'")
    else if (v.startsWith('"')) v = v.slice(1, -1)
    vars[m[1]!] = v
  }
  return vars
}

const running = new Set<ChildProcess>()
// Never leave a skiff behind, even when the test process dies on an uncaught error.
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL')
})

/** Every listener of `skiff serve` on a port the system picks: test Skiffs never collide. */
export const ANY_FREE_PORTS = [
  '--identity-port',
  '0',
  '--compute-port',
  '0',
  '--image-port',
  '0',
  '--dashboard-port',
  '0',
  '--volume-port',
  '0',
  '--serial-proxy-port',
  '0',
]

export async function startSkiffProcess(opts: StartOptions = {}): Promise<SkiffProcess> {
  const dataDir = opts.dataDir ?? mkdtempSync(path.join(tmpdir(), 'skiff-e2e-'))
  const startTimeoutMs = opts.startTimeoutMs ?? 60_000
  const args = [
    ...SKIFF,
    'serve',
    '--data-dir',
    dataDir,
    ...ANY_FREE_PORTS,
    '--simulated-delay',
    String(opts.simulatedDelayMs ?? 20),
    '--log-level',
    process.env.SKIFF_E2E_LOG_LEVEL ?? 'warn',
    ...(opts.extraArgs ?? []),
  ]
  // No SKIFF_* from the caller's environment: the test decides the configuration.
  const env = Object.fromEntries(Object.entries(cleanEnv()).filter(([k]) => !k.startsWith('SKIFF_')))
  const child = spawn(process.execPath, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] })
  running.add(child)

  let log = ''
  const remember = (b: Buffer) => {
    log += b.toString('utf8')
    if (log.length > 64_000) log = log.slice(-48_000)
  }
  child.stderr!.on('data', remember)

  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      running.delete(child)
      resolve(code)
    }),
  )

  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
      await exited
      clearTimeout(timer)
    }
    if (!opts.dataDir) rmSync(dataDir, { recursive: true, force: true })
  }

  // Read the banner: "Skiff is running.", the three URLs, then the credential files.
  const urls: Partial<SkiffProcess['urls']> = {}
  const files: string[] = []
  let seenBanner = false
  let pending = ''
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`skiff did not start within ${startTimeoutMs} ms`)), startTimeoutMs)
    const done = () => {
      clearTimeout(timer)
      resolve()
    }
    child.stdout!.on('data', (b: Buffer) => {
      remember(b)
      pending += b.toString('utf8')
      const lines = pending.split('\n')
      pending = lines.pop()!
      for (const line of lines) {
        if (line.trim() === 'Skiff is running.') seenBanner = true
        if (!seenBanner) continue
        const u = /^\s+(identity|compute|image|volume|dashboard|serial)\s+((?:https?|ws):\/\/\S+?)\/?(?:\s+\(console proxy\))?\s*$/.exec(
          line,
        )
        if (u) urls[u[1] as keyof SkiffProcess['urls']] = u[2]!
        const f = /^\s+(\/\S*(?:clouds\.yaml|-openrc))\s*$/.exec(line)
        if (f) files.push(f[1]!)
        if (
          urls.identity &&
          urls.compute &&
          urls.image &&
          urls.volume &&
          files.some((x) => x.endsWith('clouds.yaml')) &&
          files.filter((x) => x.endsWith('-openrc')).length >= 3
        )
          done()
      }
    })
    void exited.then((code) => {
      clearTimeout(timer)
      reject(new Error(`skiff exited (code ${code}) before it was ready`))
    })
    child.once('error', (e) => {
      clearTimeout(timer)
      reject(new Error(`cannot start skiff: ${e.message}`))
    })
  })

  try {
    await ready
  } catch (e) {
    await stop()
    throw new Error(`${(e as Error).message}\n$ node ${args.join(' ')}\n--- skiff output ---\n${log.trim() || '(none)'}`)
  }

  const byName = (suffix: string) => {
    const f = files.find((x) => path.basename(x) === suffix)
    if (!f) throw new Error(`skiff did not print the path of ${suffix}; it printed:\n${log}`)
    return f
  }
  const cloudsYaml = byName('clouds.yaml')
  const openrc = { admin: byName(OPENRC.admin), demo: byName(OPENRC.demo), alt: byName(OPENRC.alt), reader: byName(OPENRC.reader) }

  return {
    pid: child.pid!,
    dataDir,
    urls: urls as SkiffProcess['urls'],
    cloudsYaml,
    openrc,
    cloudEnv: (account) => ({ ...cleanEnv(), OS_CLIENT_CONFIG_FILE: cloudsYaml, OS_CLOUD: CLOUD[account] }),
    openrcEnv: (account) => ({ ...cleanEnv(), ...parseOpenrc(readFileSync(openrc[account], 'utf8')) }),
    output: () => log,
    stop,
  }
}
