// The memo of serialized views: reused only for the same inputs, made again for any other.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { JsonMemo, keyOf, rowKey } from '../../src/api/json-memo.ts'

test('keyOf: different lists of values never give the same key', () => {
  const lists: unknown[][] = [
    ['ab', 'c'],
    ['a', 'bc'],
    ['abc'],
    ['s1:a'],
    [1, '1'],
    ['1', 1],
    [null],
    [undefined],
    ['null'],
    [true],
    ['true'],
    [],
    [''],
    ['', ''],
    [{ a: 1 }],
  ]
  const keys = lists.map(keyOf)
  assert.equal(new Set(keys).size, keys.length)
  assert.equal(keyOf(['ab', 'c']), keyOf(['ab', 'c']))
  assert.equal(rowKey({ id: 'x', n: 1 }), keyOf(['x', 1]))
})

test('JsonMemo: the same key reuses the text, another key makes it again', () => {
  const memo = new JsonMemo()
  let builds = 0
  const build = (v: unknown) => () => {
    builds++
    return { v }
  }
  assert.equal(memo.json('a', 'k1', build(1)), '{"v":1}')
  assert.equal(memo.json('a', 'k1', build(2)), '{"v":1}')
  assert.equal(builds, 1)
  assert.equal(memo.json('a', 'k2', build(2)), '{"v":2}')
  assert.equal(memo.json('b', 'k2', build(3)), '{"v":3}')
  assert.equal(builds, 3)
})

test('JsonMemo: bounded, the oldest entry goes first', () => {
  const memo = new JsonMemo(2)
  let builds = 0
  const build = () => {
    builds++
    return builds
  }
  memo.json('a', 'k', build)
  memo.json('b', 'k', build)
  memo.json('c', 'k', build) // a goes
  memo.json('b', 'k', build)
  assert.equal(builds, 3)
  memo.json('a', 'k', build)
  assert.equal(builds, 4)
})
