// The real OpenStack clients (Debian's python3-openstackclient, python3-novaclient,
// python3-openstacksdk) pointed at a SkiffProcess, the way a user runs them.
import { test } from 'node:test'
import { runCli } from './cli-runner.ts'
import { describeRun, ok, pollUntil, run, type RunOptions, type RunResult } from './process.ts'
import type { Account, SkiffProcess } from './skiff-process.ts'

/** Debian's modules are visible only to Debian's interpreter, not to a pyenv `python3` first on PATH. */
export const PYTHON = '/usr/bin/python3'

export type Client = 'openstack' | 'nova' | 'openstacksdk'

async function missingClients(wanted: readonly Client[]): Promise<string[]> {
  const probes: Record<Client, () => Promise<RunResult>> = {
    openstack: () => run('openstack', ['--version'], { timeoutMs: 30_000 }),
    nova: () => run('nova', ['--version'], { timeoutMs: 30_000 }),
    openstacksdk: () => run(PYTHON, ['-c', 'import openstack'], { timeoutMs: 30_000 }),
  }
  const missing: string[] = []
  for (const c of wanted) {
    const r = await probes[c]().catch(() => undefined)
    if (!r || r.code !== 0) missing.push(c)
  }
  return missing
}

/**
 * `{ skip }` for the suites that need `wanted`. Absent clients skip the suite with a message, except
 * in CI (CI or SKIFF_E2E_REQUIRE_CLIENTS set), which installs them: there their absence is a failure.
 */
export async function clientGate(wanted: readonly Client[]): Promise<{ skip: string | false }> {
  const missing = await missingClients(wanted)
  if (missing.length === 0) return { skip: false }
  const reason = `Debian OpenStack clients not installed (${missing.join(', ')}): apt-get install python3-openstackclient python3-novaclient python3-openstacksdk (see .ci/run)`
  if (process.env.CI || process.env.SKIFF_E2E_REQUIRE_CLIENTS) {
    test('the OpenStack clients the end-to-end tests need are installed', () => {
      throw new Error(reason)
    })
  }
  return { skip: reason }
}

export interface ServerView {
  id: string
  name: string
  status: string
  'OS-EXT-STS:task_state'?: string | null
  'OS-EXT-STS:vm_state'?: string
  [k: string]: unknown
}

/** The clients, bound to one Skiff. */
export class Clients {
  constructor(readonly skiff: SkiffProcess) {}

  /** `openstack ARGS` with clouds.yaml (OS_CLIENT_CONFIG_FILE + OS_CLOUD) for `account`. */
  openstack(account: Account, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
    return runCli('openstack', args, { env: this.skiff.cloudEnv(account), ...opts })
  }

  /** `openstack ARGS -f json`, which must succeed; its output parsed. */
  async openstackJson<T = Record<string, unknown>>(account: Account, args: readonly string[], opts: RunOptions = {}): Promise<T> {
    const r = ok(await this.openstack(account, [...args, '-f', 'json'], opts))
    try {
      return JSON.parse(r.stdout) as T
    } catch {
      throw new Error(`output is not JSON\n${describeRun(r)}`)
    }
  }

  /** `nova ARGS` with the OS_* variables of the account's openrc (novaclient does not read clouds.yaml). */
  nova(account: Account, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
    return runCli('nova', args, { env: this.skiff.openrcEnv(account), ...opts })
  }

  /** `openstack server create --image skiff-base --flavor m1.tiny … --wait NAME` as `account`: the server, ACTIVE. */
  createServer<T extends ServerView = ServerView>(account: Account, name: string, extraArgs: readonly string[] = []): Promise<T> {
    return this.openstackJson<T>(account, [
      'server',
      'create',
      '--image',
      'skiff-base',
      '--flavor',
      'm1.tiny',
      ...extraArgs,
      '--wait',
      name,
    ])
  }

  /** `openstack server show ID -f json` as `account`. */
  showServer(account: Account, id: string): Promise<ServerView> {
    return this.openstackJson<ServerView>(account, ['server', 'show', id])
  }

  /**
   * Poll `server show` until `status` with no task running (as tempest waits); fails at once on
   * ERROR, and after the deadline with the last view.
   */
  async waitForStatus(account: Account, id: string, status: string, timeoutMs = 60_000): Promise<ServerView> {
    let last: ServerView | undefined
    return pollUntil(
      `server ${id} to be ${status}`,
      async () => {
        last = await this.showServer(account, id)
        if (last.status === 'ERROR' && status !== 'ERROR')
          throw new Error(`server ${id} went to ERROR: ${JSON.stringify(last.fault ?? last)}`)
        return last.status === status && !last['OS-EXT-STS:task_state'] ? last : undefined
      },
      { timeoutMs, intervalMs: 50, describe: () => `last seen: ${JSON.stringify(last)}` },
    )
  }
}
