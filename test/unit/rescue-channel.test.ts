import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { test } from 'node:test'
import { promisify } from 'node:util'
import { newHostKey, secretLines } from '../../src/drivers/qemu/rescue-channel.ts'

const run = promisify(execFile)

test('a host key: a new one each time, in the file format dropbear reads, with the fingerprint OpenSSH prints', async (t) => {
  const a = newHostKey()
  const b = newHostKey()
  assert.match(a.fingerprint, /^SHA256:[A-Za-z0-9+/]{43}$/)
  assert.notEqual(a.fingerprint, b.fingerprint)
  // string "ssh-ed25519", then string seed||public (64 bytes)
  assert.equal(a.dropbear.readUInt32BE(0), 11)
  assert.equal(a.dropbear.subarray(4, 15).toString(), 'ssh-ed25519')
  assert.equal(a.dropbear.readUInt32BE(15), 64)
  assert.equal(a.dropbear.length, 4 + 11 + 4 + 64)
  if (!existsSync('/usr/bin/dropbearkey')) return t.skip('dropbearkey not installed')
  const dir = await mkdtemp(path.join(tmpdir(), 'skiff-hk-'))
  try {
    await writeFile(path.join(dir, 'k'), a.dropbear, { mode: 0o600 })
    const { stdout } = await run('dropbearkey', ['-y', '-f', path.join(dir, 'k')])
    assert.match(stdout, new RegExp(`Fingerprint: ${a.fingerprint.replace(/[+/]/g, '\\$&')}`))
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})

test('the secrets message: every value base64 on its own line, the password never in clear, apply last', () => {
  const hostKey = newHostKey()
  const lines = secretLines(
    { adminPass: 'p w\nx', authorizedKeys: ['ssh-ed25519 AAAA a@b\n', 'ssh-rsa BBBB'], hostname: 'vm-one', hostKey },
    1_700_000_000_500,
  )
  assert.equal(lines.at(-1), 'apply')
  assert.ok(lines.every((l) => /^[a-z]+( [A-Za-z0-9+/=]+)?$/.test(l)))
  const get = (k: string) => lines.filter((l) => l.startsWith(k + ' ')).map((l) => l.slice(k.length + 1))
  assert.equal(Buffer.from(get('pass')[0]!, 'base64').toString(), 'p w\nx')
  assert.deepEqual(
    get('key').map((k) => Buffer.from(k, 'base64').toString()),
    ['ssh-ed25519 AAAA a@b', 'ssh-rsa BBBB'],
  )
  assert.deepEqual(get('time'), ['1700000000'])
  assert.deepEqual(Buffer.from(get('hostkey')[0]!, 'base64'), hostKey.dropbear)
  assert.equal(Buffer.from(get('seed')[0]!, 'base64').length, 64)
})
