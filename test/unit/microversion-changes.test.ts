import assert from 'node:assert/strict'
import { test } from 'node:test'
import { atVersion, CHANGES, has, type Change } from '../../src/api/microversion-changes.ts'
import { MAX_VERSION } from '../../src/api/microversion.ts'

const v = (minor: number) => ({ major: 2, minor })

test('every change holds from its version on, and not one version before', () => {
  for (const [change, minor] of Object.entries(CHANGES) as [Change, number][]) {
    assert.equal(has(v(minor - 1), change), false, `${change} at 2.${minor - 1}`)
    assert.equal(has(v(minor), change), true, `${change} at 2.${minor}`)
    assert.equal(has(v(93), change), true, `${change} at 2.93`)
  }
})

test('one change per version, in the order of the version history (2.2 to 2.93)', () => {
  const minors = Object.values(CHANGES)
  assert.deepEqual(
    minors,
    Array.from({ length: 92 }, (_, i) => i + 2),
  )
})

test('atVersion picks the newest step the version has', () => {
  const steps = [
    ['serverDescription', 'b'],
    ['serverTags', 'c'],
  ] as const
  assert.equal(atVersion(v(18), 'a', steps), 'a')
  assert.equal(atVersion(v(19), 'a', steps), 'b')
  assert.equal(atVersion(v(25), 'a', steps), 'b')
  assert.equal(atVersion(v(26), 'a', steps), 'c')
  assert.equal(atVersion(v(93), 'a', steps), 'c')
  assert.equal(atVersion(MAX_VERSION, 'a', []), 'a')
})
