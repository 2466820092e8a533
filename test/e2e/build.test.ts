// The compiled build, as `npm ci && npm start` runs it: scripts/build.mjs builds dist/ and its
// bundle dist/skiff.mjs (tsc incrementally, so that what runs is the sources as they are now),
// then `node bin/skiff.js` serves from it and each of its commands loads. The other end-to-end tests run the sources through tsx (skiff-command.ts).
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { describeRun, run } from './helpers/process.ts'
import { ANY_FREE_PORTS, cleanEnv } from './helpers/skiff-process.ts'
import { ROOT } from './helpers/skiff-command.ts'

const BIN = path.join(ROOT, 'bin', 'skiff.js')
const env = Object.fromEntries(Object.entries(cleanEnv()).filter(([k]) => !k.startsWith('SKIFF_')))
const dir = mkdtempSync(path.join(tmpdir(), 'skiff-build-'))
after(() => rmSync(dir, { recursive: true, force: true }))

describe('the compiled build (dist/)', () => {
  before(async () => {
    const r = await run(process.execPath, [path.join(ROOT, 'scripts', 'build.mjs')], { cwd: ROOT, env, timeoutMs: 300_000 })
    assert.equal(r.code, 0, describeRun(r))
  })

  test('skiff serve answers, and stops on SIGTERM', async () => {
    const child = spawn(process.execPath, [BIN, 'serve', '--data-dir', path.join(dir, 'data'), ...ANY_FREE_PORTS, '--log-level', 'warn'], {
      cwd: ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
    let out = ''
    let err = ''
    child.stderr.on('data', (b: Buffer) => {
      err += b.toString()
    })
    try {
      const identity = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no banner within 60 s:\n${out}\n${err}`)), 60_000)
        child.stdout.on('data', (b: Buffer) => {
          out += b.toString()
          const m = /^\s+identity\s+(http:\/\/\S+)$/m.exec(out)
          if (m && /^Try: /m.test(out)) {
            clearTimeout(timer)
            resolve(m[1]!)
          }
        })
        void exited.then((code) => {
          clearTimeout(timer)
          reject(new Error(`exited (${code}) before its banner:\n${out}\n${err}`))
        })
      })
      const res = await fetch(identity)
      const text = await res.text()
      assert.equal(res.status, 200, text)
      assert.equal((JSON.parse(text) as { version: { id: string } }).version.id, 'v3.14')
      // The dashboard from dist/: its page, and htmx read from node_modules.
      const dashboard = /^\s+dashboard\s+(http:\/\/\S+?)\/?$/m.exec(out)?.[1]
      assert.ok(dashboard, out)
      const login = await fetch(`${dashboard}/login`)
      assert.equal(login.status, 200)
      assert.match(await login.text(), /<label for="login-user">User name<\/label>/)
      const htmx = await fetch(`${dashboard}/assets/htmx.min.js`)
      assert.equal(htmx.status, 200)
      assert.match(await htmx.text(), /htmx/)
    } finally {
      child.kill('SIGTERM')
    }
    assert.equal(await exited, 0, err)
  })

  test('every command loads from dist/', async () => {
    for (const cmd of [[], ['serve'], ['agent'], ['images'], ['images', 'build'], ['credentials']]) {
      const r = await run(process.execPath, [BIN, ...cmd, '--help'], { cwd: ROOT, env, timeoutMs: 30_000 })
      assert.equal(r.code, 0, describeRun(r))
      assert.match(r.stdout, /^Usage: skiff/, describeRun(r))
    }
    const bad = await run(process.execPath, [BIN, 'serve', '--log-level', 'loud'], { cwd: ROOT, env, timeoutMs: 30_000 })
    assert.equal(bad.code, 1, describeRun(bad))
    assert.match(bad.stderr, /^skiff: --log-level expects .*'loud'\n$/, describeRun(bad))
  })
})
