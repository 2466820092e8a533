import assert from 'node:assert/strict'
import { test } from 'node:test'
import { generateInstancePassword } from '../../src/compute/admin-pass.ts'
import { hashPassword, verifyPassword } from '../../src/identity/password-hashing.ts'

test("instance passwords follow Nova's alphabet and rules", () => {
  const seen = new Set<string>()
  for (let i = 0; i < 500; i++) {
    const p = generateInstancePassword()
    assert.match(p, /^[2-9A-HJ-NP-Za-km-z]{12}$/)
    assert.match(p, /[2-9]/)
    assert.match(p, /[A-HJ-NP-Z]/)
    assert.match(p, /[a-km-z]/)
    seen.add(p)
  }
  assert.equal(seen.size, 500)
})

test('password hashes verify the right password only', async () => {
  const h = await hashPassword('s3cret')
  assert.match(h, /^scrypt\$/)
  assert.ok(!h.includes('s3cret'))
  assert.equal(await verifyPassword('s3cret', h), true)
  assert.equal(await verifyPassword('s3cre', h), false)
})
