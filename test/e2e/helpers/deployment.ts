// A deployment of several hosts made by scripts/deployment.sh, as the README tells an operator:
// API processes and agents each with its own data dir and (as root, with `ip`) its own network
// namespace, one PostgreSQL. The script runs the sources through tsx (helpers/skiff-command.ts).
import { randomInt } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { describeRun, ok, run, type RunResult } from './process.ts'
import { cleanEnv } from './skiff-process.ts'
import { ROOT, SKIFF } from './skiff-command.ts'

const SCRIPT = path.join(ROOT, 'scripts', 'deployment.sh')

export interface DeployedApi {
  name: string
  /** As the process printed them: identity ends in /v3, compute in /v2.1, image is the Glance root. */
  urls: { identity: string; compute: string; image: string }
  dataDir: string
  clientFiles: string[]
}

export interface Deployment {
  dir: string
  netns: boolean
  apis: DeployedApi[]
  /** The agents' host names (hv1...), their data dirs under `dir`. */
  agents: string[]
  dataDir(host: string): string
  pid(host: string): number
  /** `scripts/deployment.sh start|stop DIR HOST`: a host's process started again, or stopped cleanly. */
  start(host: string): Promise<void>
  stop(host: string): Promise<void>
  /** SIGKILL: the process dies at whatever it was doing. */
  kill9(host: string): Promise<void>
  /** `skiff ARGS` on `host` (its namespace, data dir and database URL), expected to end by itself. */
  skiff(host: string, args: string[]): Promise<RunResult>
  /** Every process's log tail, for failure messages. */
  logs(): string
  down(): Promise<void>
}

const env = () => Object.fromEntries(Object.entries(cleanEnv()).filter(([k]) => !k.startsWith('SKIFF_')))

export async function startDeployment(opts: {
  databaseUrl: string
  apis: number
  agents: number
  apiArgs?: string[]
  agentArgs?: string[]
}): Promise<Deployment> {
  const dir = mkdtempSync(path.join(tmpdir(), 'skiff-deploy-'))
  // Names and addresses of their own, so that two runs side by side do not meet.
  const name = `sk${randomInt(0x10000).toString(16)}`
  const subnet = `10.${randomInt(100, 250)}`
  const logLevel = process.env.SKIFF_E2E_LOG_LEVEL ?? 'warn'
  const script = (args: string[], timeoutMs = 360_000) => run(SCRIPT, args, { cwd: ROOT, env: env(), timeoutMs })
  const r = await script([
    'up',
    '--dir',
    dir,
    '--apis',
    String(opts.apis),
    '--agents',
    String(opts.agents),
    '--database-url',
    opts.databaseUrl,
    '--name',
    name,
    '--subnet',
    subnet,
    '--skiff',
    [process.execPath, ...SKIFF].join(' '),
    '--api-args',
    ['--log-level', logLevel, ...(opts.apiArgs ?? [])].join(' '),
    '--agent-args',
    ['--log-level', logLevel, ...(opts.agentArgs ?? [])].join(' '),
  ])
  const logs = () =>
    [
      'forward',
      ...Array.from({ length: opts.apis }, (_, i) => `api${i + 1}`),
      ...Array.from({ length: opts.agents }, (_, i) => `hv${i + 1}`),
    ]
      .map((h) => {
        try {
          const f = h === 'forward' ? path.join(dir, 'forward.log') : path.join(dir, h, 'log')
          return `--- ${h}\n${readFileSync(f, 'utf8').split('\n').slice(-15).join('\n')}`
        } catch {
          return `--- ${h}: no log`
        }
      })
      .join('\n')
  const down = async () => {
    const d = await script(['down', dir, '--purge'], 60_000)
    if (d.code !== 0) throw new Error(`deployment down failed\n${describeRun(d)}`)
  }
  if (r.code !== 0) {
    // The script takes down what it started when it fails; the directory is ours.
    rmSync(dir, { recursive: true, force: true })
    throw new Error(`scripts/deployment.sh up failed\n${describeRun(r)}`)
  }

  // Its report: a line per host, then (for an API) its URLs and client files, indented.
  const apis: DeployedApi[] = []
  const agents: string[] = []
  for (const line of r.stdout.split('\n')) {
    const host = /^(api\d+|hv\d+)\b.*data dir (\S+),/.exec(line)
    if (host) {
      if (host[1]!.startsWith('api'))
        apis.push({ name: host[1]!, urls: { identity: '', compute: '', image: '' }, dataDir: host[2]!, clientFiles: [] })
      else agents.push(host[1]!)
      continue
    }
    const api = apis.at(-1)
    const url = /^ {2}(identity|compute|image) (http:\/\/\S+)$/.exec(line)
    if (api && url) api.urls[url[1] as keyof DeployedApi['urls']] = url[2]!
    const file = /^ {2}client file (\S+)$/.exec(line)
    if (api && file) api.clientFiles.push(file[1]!)
  }
  if (apis.length !== opts.apis || agents.length !== opts.agents || apis.some((a) => !a.urls.compute || a.clientFiles.length !== 5)) {
    await down()
    throw new Error(`unexpected report from scripts/deployment.sh up\n${describeRun(r)}`)
  }

  const pid = (host: string) => Number(readFileSync(path.join(dir, host, 'pid'), 'utf8'))
  return {
    dir,
    netns: /^network namespaces: yes/m.test(r.stdout),
    apis,
    agents,
    dataDir: (host) => path.join(dir, host, 'data'),
    pid,
    async start(host) {
      ok(await script(['start', dir, host]))
    },
    async stop(host) {
      ok(await script(['stop', dir, host], 60_000))
    },
    async kill9(host) {
      const p = pid(host)
      process.kill(p, 'SIGKILL')
      // Gone when signal 0 finds no such process (the script's child, reaped by init once orphaned).
      for (const deadline = Date.now() + 10_000; Date.now() < deadline;) {
        try {
          process.kill(p, 0)
          if (/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${p}/stat`, 'utf8'))) return // a zombie not reaped yet
        } catch {
          return
        }
        await new Promise((resolve) => setTimeout(resolve, 20))
      }
      throw new Error(`${host} (pid ${p}) still there 10 s after SIGKILL`)
    },
    skiff: (host, args) => script(['skiff', dir, host, ...args], 60_000),
    logs,
    down,
  }
}
