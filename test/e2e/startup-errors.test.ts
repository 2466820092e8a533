// Start-up errors as an operator meets them: `node bin/skiff.js serve|agent` with one bad option
// (or environment variable, or config file). Each must end at once with exactly one line on
// stderr, `skiff: ...`, exit code 1, no stack trace, and nothing on stdout: nothing listened.
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { after, describe, test } from 'node:test'
import { describeRun, run } from './helpers/process.ts'
import { ANY_FREE_PORTS, cleanEnv } from './helpers/skiff-process.ts'
import { SKIFF } from './helpers/skiff-command.ts'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
const dir = mkdtempSync(path.join(tmpdir(), 'skiff-startup-'))
after(() => rmSync(dir, { recursive: true, force: true }))
const aFile = path.join(dir, 'a-file')
writeFileSync(aFile, 'not a directory\n')
const badJson = path.join(dir, 'bad.json')
writeFileSync(badJson, '{"computePort": ')

interface Case {
  name: string
  args: string[]
  env?: Record<string, string>
  says: RegExp
}

// Every case would otherwise start: fresh data dir, free ports, the simulated driver.
const SERVE: Case[] = [
  {
    name: 'unreachable PostgreSQL',
    args: ['--database-url', 'postgres://nouser@127.0.0.1:1/x'],
    says: /cannot connect to the database postgres:\/\/nouser@127\.0\.0\.1:1\/x: .*ECONNREFUSED/,
  },
  {
    name: 'PostgreSQL password stays hidden',
    args: ['--database-url', 'postgres://u:s3cret@127.0.0.1:1/x'],
    says: /postgres:\/\/u:\*\*\*@127\.0\.0\.1:1\/x(?![\s\S]*s3cret)/,
  },
  {
    name: 'compute port above 65535',
    args: ['--compute-port', '99999'],
    says: /--compute-port expects an integer from 0 to 65535, got '99999'/,
  },
  { name: 'negative image port', args: ['--image-port', '-1'], says: /--image-port/ },
  {
    name: 'dashboard port above 65535',
    args: ['--dashboard-port', '70000'],
    says: /--dashboard-port expects an integer from 0 to 65535, got '70000'/,
  },
  {
    name: 'serial proxy port above 65535',
    args: ['--serial-proxy-port', '70000'],
    says: /--serial-proxy-port expects an integer from 0 to 65535, got '70000'/,
  },
  { name: 'bad value in the environment', args: [], env: { SKIFF_LOG_LEVEL: 'loud' }, says: /--log-level .*'loud'/ },
  {
    name: 'unknown log level',
    args: ['--log-level', 'loud'],
    says: /--log-level expects fatal, error, warn, info, debug, trace or silent, got 'loud'/,
  },
  {
    name: 'unsupported database scheme',
    args: ['--database-url', 'mysql://db/skiff'],
    says: /--database-url expects sqlite:PATH, sqlite::memory: or postgres:\/\/USER@HOST\/DB, got 'mysql:\/\/db\/skiff'/,
  },
  {
    name: 'data dir under a file',
    args: ['--data-dir', path.join(aFile, 'data')],
    says: /cannot create the data dir .*a-file\/data: ENOTDIR/,
  },
  {
    name: 'SQLite file under a file',
    args: ['--database-url', `sqlite:${path.join(aFile, 'db', 'skiff.sqlite')}`],
    says: /cannot open the database sqlite:.*a-file/,
  },
  {
    name: 'timer beyond what Node can wait',
    args: ['--keep-alive-timeout', '99999999999'],
    says: /--keep-alive-timeout expects an integer from 0 to 2147483647/,
  },
  { name: 'unknown driver', args: ['--driver', 'xen'], says: /unknown driver 'xen'/ },
  { name: 'unreadable config file', args: ['--config', badJson], says: /cannot read config file .*bad\.json/ },
  { name: 'unknown option', args: ['--no-such-option'], says: /unknown option '--no-such-option'/ },
]

const AGENT: Case[] = [
  { name: 'unreachable PostgreSQL', args: ['--database-url', 'postgres://nouser@127.0.0.1:1/x'], says: /cannot connect to the database/ },
  { name: 'unknown log level', args: ['--log-level', 'loud'], says: /--log-level/ },
  { name: 'data dir under a file', args: ['--data-dir', path.join(aFile, 'data')], says: /cannot create the data dir/ },
  { name: 'no simulated hosts', args: ['--simulated-hosts', '0'], says: /--simulated-hosts expects a positive integer/ },
]

async function skiff(args: string[], env: Record<string, string> = {}) {
  const base = Object.fromEntries(Object.entries(cleanEnv()).filter(([k]) => !k.startsWith('SKIFF_')))
  // A deadline for a hang, not a speed check: a start under tsx on a loaded 2-core machine took 25 s.
  return run(process.execPath, [...SKIFF, ...args], { cwd: ROOT, env: { ...base, ...env }, timeoutMs: 90_000 })
}

function assertOneLine(r: Awaited<ReturnType<typeof skiff>>, says: RegExp) {
  const why = describeRun(r)
  assert.equal(r.code, 1, why)
  const lines = r.stderr.split('\n').filter((l) => l !== '')
  assert.equal(lines.length, 1, `one line on stderr\n${why}`)
  assert.match(lines[0]!, /^skiff: /, why)
  assert.match(lines[0]!, says, why)
  assert.equal(r.stdout, '', `nothing on stdout (nothing listened)\n${why}`)
}

describe('skiff serve: a bad option is one line and exit 1', { concurrency: 3 }, () => {
  for (const c of SERVE) {
    test(c.name, async () => {
      const dataDir = path.join(dir, `serve-${SERVE.indexOf(c)}`)
      const r = await skiff(['serve', '--data-dir', dataDir, ...ANY_FREE_PORTS, ...c.args], c.env)
      assertOneLine(r, c.says)
    })
  }
})

describe('skiff agent: a bad option is one line and exit 1', { concurrency: 3 }, () => {
  for (const c of AGENT) {
    test(c.name, async () => {
      const dataDir = path.join(dir, `agent-${AGENT.indexOf(c)}`)
      assertOneLine(await skiff(['agent', '--host', 'hv1', '--data-dir', dataDir, ...c.args], c.env), c.says)
    })
  }
})
