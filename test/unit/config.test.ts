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
  assert.throws(() => loadConfig({}, { SKIFF_COMPUTE_PORT: 'eighty' }), (e: Error) => e instanceof ConfigError && /--compute-port/.test(e.message))
  assert.throws(() => loadConfig({ agent: 'maybe' }, {}), ConfigError)
  assert.throws(() => loadConfig({ driver: 'xen' }, {}), /unknown driver 'xen'/)
})

test("the README's configuration table lists every option and its variable", () => {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8')
  for (const o of OPTIONS) {
    assert.ok(readme.includes(`\`${o.flag}\``), `README lacks ${o.flag}`)
    assert.ok(readme.includes(`\`${o.env}\``), `README lacks ${o.env}`)
  }
})
