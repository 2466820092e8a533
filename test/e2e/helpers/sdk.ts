// Runs test/e2e/openstacksdk_checks.py (openstacksdk, with Debian's python) against a SkiffProcess
// and gives the TypeScript tests its per-check results to assert on.
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { PYTHON } from './clients.ts'
import { describeRun, run, type RunResult } from './process.ts'
import type { SkiffProcess } from './skiff-process.ts'

const SCRIPT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'openstacksdk_checks.py')

export interface SdkError {
  type: string
  /** Exception classes of the sdk the error is an instance of (ConflictException, NotFoundException, ...). */
  classes: string[]
  status: number | null
  message: string
  traceback: string
}

type Record_ = { check: string; value?: unknown; error?: SdkError }

export class SdkResults {
  readonly #byName = new Map<string, Record_>()
  constructor(readonly runResult: RunResult) {
    for (const line of runResult.stdout.split('\n')) {
      if (!line.startsWith('{"check"')) continue
      const r = JSON.parse(line) as Record_
      this.#byName.set(r.check, r)
    }
  }

  #get(name: string): Record_ {
    const r = this.#byName.get(name)
    if (!r) throw new Error(`the sdk script reported no check '${name}'\n${describeRun(this.runResult)}`)
    return r
  }

  /** The value a check observed; fails with the sdk's error if it raised. */
  value<T = any>(name: string): T {
    const r = this.#get(name)
    if (r.error)
      throw new Error(`sdk check '${name}' raised ${r.error.type} (HTTP ${r.error.status}): ${r.error.message}\n${r.error.traceback}`)
    return r.value as T
  }

  /** The error a check raised; fails if it did not raise. */
  error(name: string): SdkError {
    const r = this.#get(name)
    if (!r.error) throw new Error(`sdk check '${name}' did not raise; it answered ${JSON.stringify(r.value)}`)
    return r.error
  }

  /** Did the script run to its end? */
  get finished(): boolean {
    return this.#byName.has('done')
  }
}

export async function runSdkChecks(skiff: SkiffProcess, scenario: 'lifecycle' | 'rescue', args: string[] = []): Promise<SdkResults> {
  // The clouds are named on the command line; OS_CLIENT_CONFIG_FILE says where they are.
  const env = skiff.cloudEnv('demo')
  delete env.OS_CLOUD
  const r = await run(
    PYTHON,
    [SCRIPT, scenario, '--cloud', 'skiff-demo', '--alt-cloud', 'skiff-alt', '--admin-cloud', 'skiff-admin', ...args],
    { env, timeoutMs: 240_000 },
  )
  const results = new SdkResults(r)
  if (r.code !== 0 || !results.finished) throw new Error(`the openstacksdk script did not finish\n${describeRun(r)}`)
  return results
}
