import assert from 'node:assert/strict'
import { readFileSync, writeFileSync, mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { test } from 'node:test'
import { ConfigError, loadConfig, OPTIONS } from '../../src/config.ts'

test('flags win over environment, environment over the file, the file over defaults', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'skiff-config-'))
  const file = path.join(dir, 'c.json')
  writeFileSync(file, JSON.stringify({ computePort: 1111, imagePort: 2222, identityPort: 3333 }))
  const c = loadConfig({ computePort: '4444' }, { SKIFF_IMAGE_PORT: '5555' }, file)
  assert.equal(c.computePort, 4444)
  assert.equal(c.imagePort, 5555)
  assert.equal(c.identityPort, 3333)
  assert.equal(c.host, '127.0.0.1')
})

test('the database defaults to a SQLite file in the data dir', () => {
  assert.equal(loadConfig({ dataDir: '/srv/skiff' }, {}).databaseUrl, 'sqlite:/srv/skiff/skiff.sqlite')
})

test('bad values are refused with the option named', () => {
  assert.throws(
    () => loadConfig({}, { SKIFF_COMPUTE_PORT: 'eighty' }),
    (e: Error) => e instanceof ConfigError && /--compute-port/.test(e.message),
  )
  assert.throws(() => loadConfig({ agent: 'maybe' }, {}), ConfigError)
  assert.throws(() => loadConfig({ driver: 'xen' }, {}), /unknown driver 'xen'/)
})

test('the image store: auto by default; the database store only with PostgreSQL', () => {
  assert.equal(loadConfig({}, {}).imageStore, 'auto')
  assert.equal(loadConfig({ imageStore: 'database', databaseUrl: 'postgres://skiff@db/skiff' }, {}).imageStore, 'database')
  assert.throws(() => loadConfig({ imageStore: 'database' }, {}), /--image-store database needs a PostgreSQL/)
  assert.throws(() => loadConfig({}, { SKIFF_IMAGE_STORE: 's3' }), /--image-store expects auto, file or database, got 's3'/)
})

test('instant rescue: on by default, off with --no-qemu-warm-rescue; the clean shutdown before a rescue keeps its 30 s unless shortened', () => {
  const c = loadConfig({}, {})
  assert.equal(c.qemuWarmRescue, true)
  assert.equal(c.qemuRescueStopTimeoutSeconds, 30)
  assert.equal(loadConfig({ qemuWarmRescue: false }, {}).qemuWarmRescue, false)
  assert.equal(loadConfig({}, { SKIFF_QEMU_WARM_RESCUE: 'false' }).qemuWarmRescue, false)
  assert.equal(loadConfig({}, { SKIFF_QEMU_RESCUE_STOP_TIMEOUT: '0' }).qemuRescueStopTimeoutSeconds, 0)
  assert.throws(() => loadConfig({}, { SKIFF_QEMU_RESCUE_STOP_TIMEOUT: '-1' }), /--qemu-rescue-stop-timeout/)
})

test("the README's configuration table lists every option and its variable", () => {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8')
  for (const o of OPTIONS) {
    assert.ok(readme.includes(`\`${o.flag}\``), `README lacks ${o.flag}`)
    assert.ok(readme.includes(`\`${o.env}\``), `README lacks ${o.env}`)
  }
})

test('values that would fail after a listener is up are refused by loadConfig, naming the option', () => {
  const refused = (flags: Record<string, unknown>, env: NodeJS.ProcessEnv, message: RegExp) =>
    assert.throws(
      () => loadConfig(flags, env),
      (e: Error) => e instanceof ConfigError && message.test(e.message),
      JSON.stringify({ flags, env }),
    )
  refused({ computePort: '99999' }, {}, /^--compute-port expects an integer from 0 to 65535, got '99999'$/)
  refused({}, { SKIFF_IDENTITY_PORT: '65536' }, /--identity-port/)
  refused({ logLevel: 'loud' }, {}, /^--log-level expects fatal, error, warn, info, debug, trace or silent, got 'loud'$/)
  refused({ databaseUrl: 'mysql://db/skiff' }, {}, /^--database-url expects sqlite:PATH/)
  refused({ databaseUrl: 'sqlite:' }, {}, /--database-url/)
  // The password of a URL never reaches a message.
  assert.throws(
    () => loadConfig({ databaseUrl: 'mysql://u:s3cret@db/skiff' }, {}),
    (e: Error) => /u:\*\*\*@db/.test(e.message) && !e.message.includes('s3cret'),
  )
  // Node fires a timer longer than 2^31-1 ms after 1 ms.
  refused({ keepAliveTimeoutMs: String(2 ** 31) }, {}, /--keep-alive-timeout expects an integer from 0 to 2147483647/)
  refused({ taskLeaseSeconds: '3000000' }, {}, /--task-lease/)
  assert.equal(loadConfig({ computePort: '65535', logLevel: 'silent', databaseUrl: 'postgresql://u@h/db' }, {}).computePort, 65535)
})
