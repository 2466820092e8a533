// Two hosts on one database, each with its own data dir, as real processes: the second start must
// leave every client file of the first working; it says the passwords are unknown there and
// points to `skiff credentials`, which copies what a data dir knows or, with --reset, sets new
// passwords (only then do the old files stop working).
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { after, before, describe, test } from 'node:test'
import { describeRun, run } from './helpers/process.ts'
import { ANY_FREE_PORTS, cleanEnv, parseOpenrc, startSkiffProcess, type SkiffProcess } from './helpers/skiff-process.ts'
import { SKIFF } from './helpers/skiff-command.ts'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
const env = Object.fromEntries(Object.entries(cleanEnv()).filter(([k]) => !k.startsWith('SKIFF_')))

const skiff = (args: string[]) => run(process.execPath, [...SKIFF, ...args], { cwd: ROOT, env, timeoutMs: 60_000 })

/** `skiff serve` on `dataDir` until its banner is out (a data dir that knows no password prints no file), then SIGTERM. */
async function serveBanner(args: string[]): Promise<string> {
  const child = spawn(process.execPath, [...SKIFF, 'serve', ...ANY_FREE_PORTS, '--no-agent', '--log-level', 'warn', ...args], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no banner within 60 s:\n${out}`)), 60_000)
      child.stdout!.on('data', (b: Buffer) => {
        out += b.toString('utf8')
        if (/^(Try: |Passwords not known)/m.test(out) && out.endsWith('\n')) {
          clearTimeout(timer)
          resolve()
        }
      })
      child.stderr!.on('data', (b: Buffer) => {
        out += b.toString('utf8')
      })
      void exited.then((code) => {
        clearTimeout(timer)
        reject(new Error(`skiff exited (${code}):\n${out}`))
      })
    })
  } finally {
    child.kill('SIGTERM')
    await exited
  }
  return out
}

async function login(identityUrl: string, openrcOrPassword: { user: string; password: string }): Promise<number> {
  const { user, password } = openrcOrPassword
  const res = await fetch(`${identityUrl}/auth/tokens`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      auth: {
        identity: { methods: ['password'], password: { user: { name: user, domain: { name: 'Default' }, password } } },
        scope: { project: { name: user === 'reader_demo' ? 'demo' : user, domain: { name: 'Default' } } },
      },
    }),
  })
  await res.arrayBuffer()
  return res.status
}

const account = (file: string) => {
  const v = parseOpenrc(readFileSync(file, 'utf8'))
  return { user: v.OS_USERNAME!, password: v.OS_PASSWORD! }
}

describe('two hosts, one database, their own data dirs', () => {
  const root = mkdtempSync(path.join(tmpdir(), 'skiff-creds-'))
  const database = `sqlite:${path.join(root, 'shared', 'skiff.sqlite')}`
  const dirA = path.join(root, 'a')
  const dirB = path.join(root, 'b')
  let a: SkiffProcess
  let port = ''
  let original: Record<string, { user: string; password: string }> = {}

  before(async () => {
    a = await startSkiffProcess({ dataDir: dirA, extraArgs: ['--database-url', database] })
    port = new URL(a.urls.identity).port
    original = {
      admin: account(a.openrc.admin),
      demo: account(a.openrc.demo),
      alt: account(a.openrc.alt),
      reader: account(a.openrc.reader),
    }
  })
  after(async () => {
    await a?.stop()
    rmSync(root, { recursive: true, force: true })
  })

  test('a second `skiff serve` with a sealing key of its own is refused: one line, exit 1', async () => {
    const r = await skiff(['serve', '--data-dir', path.join(root, 'c'), '--database-url', database, ...ANY_FREE_PORTS])
    const why = describeRun(r)
    assert.equal(r.code, 1, why)
    assert.equal(
      r.stderr,
      `skiff: the sealing key in ${path.join(root, 'c', 'secret.key')} does not match this deployment's (copy secret.key from the first host, or pass --secret-key-file)\n`,
      why,
    )
    assert.equal(r.stdout, '', why)
  })

  test("a second `skiff serve` says the passwords are unknown there, writes no file, and the first one's files keep working", async () => {
    // The deployment's sealing key, as an operator gives it to a new host.
    const banner = await serveBanner(['--data-dir', dirB, '--database-url', database, '--secret-key-file', path.join(dirA, 'secret.key')])
    assert.match(banner, /^Skiff is running\.$/m)
    assert.match(banner, /^Passwords not known in .*\/b for admin, demo, alt_demo, reader_demo: .*skiff credentials --reset/m, banner)
    assert.doesNotMatch(banner, /clouds\.yaml\s*$/m)
    assert.ok(!existsSync(path.join(dirB, 'clouds.yaml')))
    for (const acc of Object.values(original))
      assert.equal(await login(a.urls.identity, acc), 201, `${acc.user} with the first host's file`)
  })

  test('`skiff credentials` where the passwords are unknown: one line that says how to get them, exit 1', async () => {
    const r = await skiff(['credentials', '--data-dir', dirB, '--database-url', database])
    assert.equal(r.code, 1, describeRun(r))
    assert.match(
      r.stderr,
      /^skiff: passwords not known in .*\/b for admin, demo, alt_demo, reader_demo .*copy clouds\.yaml .* or run `skiff credentials --reset`/,
      describeRun(r),
    )
    assert.equal(r.stderr.trim().split('\n').length, 1, describeRun(r))
  })

  test('`skiff credentials` where they are known rewrites the same files', async () => {
    const r = await skiff(['credentials', '--data-dir', dirA, '--database-url', database, '--identity-port', port])
    assert.equal(r.code, 0, describeRun(r))
    assert.match(r.stdout, /clouds\.yaml/)
    assert.deepEqual(account(a.openrc.demo), original.demo)
    assert.match(readFileSync(a.cloudsYaml, 'utf8'), new RegExp(`auth_url: '${a.urls.identity}'`))
  })

  test('`skiff credentials --reset alt_demo` sets a new password for that account only; files 0600', async () => {
    const bad = await skiff(['credentials', '--reset', 'nobody', '--data-dir', dirB, '--database-url', database])
    assert.equal(bad.code, 1, describeRun(bad))
    assert.match(bad.stderr, /^skiff: not a bootstrap account: nobody/)

    const r = await skiff(['credentials', '--reset', 'alt_demo', '--data-dir', dirB, '--database-url', database, '--identity-port', port])
    // The other accounts are still unknown in B: exit 1 after writing alt_demo's files.
    assert.equal(r.code, 1, describeRun(r))
    assert.match(r.stdout, /New passwords for alt_demo\./)
    const alt = account(path.join(dirB, 'alt-openrc'))
    assert.notEqual(alt.password, original.alt!.password)
    assert.equal(statSync(path.join(dirB, 'alt-openrc')).mode & 0o777, 0o600)
    assert.equal(statSync(path.join(dirB, 'clouds.yaml')).mode & 0o777, 0o600)
    assert.equal(await login(a.urls.identity, alt), 201)
    assert.equal(await login(a.urls.identity, original.alt!), 401)
    for (const acc of [original.admin!, original.demo!, original.reader!]) assert.equal(await login(a.urls.identity, acc), 201, acc.user)
  })
})
