// Glance's parsing helpers of the image list, against what Glance's own Python answers (the
// expectations were printed by oslo_utils.timeutils and glance/common/utils.py on this machine).
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { listOrder, parseIsoTime, splitFilterOp, splitFilterValueForQuotes } from '../../src/images/image-list.ts'

test('parseIsoTime: parse_isotime then normalize_time, undefined where Python raises', () => {
  const cases: Record<string, string | undefined> = {
    '2026': '2026-01-01T00:00:00',
    '2026-03': '2026-03-01T00:00:00',
    '202603': undefined, // YYYYMM is not allowed
    '2026-3-7': '2026-03-07T00:00:00',
    '20260307': '2026-03-07T00:00:00',
    '2026-03-07T10': '2026-03-07T10:00:00',
    '2026-03-07T1030': '2026-03-07T10:30:00',
    '2026-03-07T10:30:15': '2026-03-07T10:30:15',
    '2026-03-07 10:30:15': '2026-03-07T10:30:15',
    '2026-03-07T10:30:15.5Z': '2026-03-07T10:30:15.500000',
    '2026-03-07T10:30:15,123456789Z': '2026-03-07T10:30:15.123456',
    '2026-03-07T10:30:15+01:00': '2026-03-07T09:30:15',
    '2026-03-07T10:30:15-0530': '2026-03-07T16:00:15',
    '2026-03-07T10:30:15+01': '2026-03-07T09:30:15',
    '2026-03-07T00:30:15+01:00': '2026-03-06T23:30:15',
    '2026-02-29': undefined,
    '2024-02-29': '2024-02-29T00:00:00',
    '2026-13-01': undefined,
    '2026-03-07T24:00:00': undefined,
    '2026-03-07T10:60': undefined,
    '2026-03-07T10:30:60': undefined,
    '2026-03-07t10:30:15Z': undefined,
    '2026-03-07T10:30:15z': undefined,
    yesterday: undefined,
    '': undefined,
    '2026-03-07T10:30:15+24:00': undefined,
    '2026-03-07T10:30:15+23:59': '2026-03-06T10:31:15',
    '0000-01-01': undefined,
    // Python: OverflowError (Glance answers 500); Skiff: not a time (400).
    '0001-01-01T00:00:00+01:00': undefined,
    '9999-12-31T23:59:59-01:00': undefined,
    '2026-03-07T10:30:5': '2026-03-07T10:30:05',
    '2026-03-07T10:30:15.000000Z': '2026-03-07T10:30:15',
    'gt:2026': undefined,
    '2026-03-07T103015Z': '2026-03-07T10:30:15',
    '2026-03-07T10:30:15.0000001Z': '2026-03-07T10:30:15',
  }
  for (const [input, expected] of Object.entries(cases)) assert.equal(parseIsoTime(input), expected, JSON.stringify(input))
})

test('splitFilterOp: the operator before the first colon, unless the whole is a time', () => {
  const cases: Record<string, [string, string]> = {
    x: ['eq', 'x'],
    'eq:x': ['eq', 'x'],
    'in:a,b': ['in', 'a,b'],
    'gt:2026-01-01T00:00:00Z': ['gt', '2026-01-01T00:00:00Z'],
    '2026-01-01T00:00:00Z': ['eq', '2026-01-01T00:00:00Z'],
    'a:b:c': ['a', 'b:c'],
    ':x': ['', 'x'],
    'x:': ['x', ''],
  }
  for (const [input, expected] of Object.entries(cases)) assert.deepEqual(splitFilterOp(input), expected, input)
})

test('splitFilterValueForQuotes: commas separate, quotes keep commas (and escapes) inside', () => {
  const cases: Record<string, string[]> = {
    'a,b': ['a', 'b'],
    '"a,b",c': ['a,b', 'c'],
    'a,,b': ['a', '', 'b'],
    ',a': ['', 'a'],
    'a,': ['a'],
    '"a\\"b",c': ['a\\"b', 'c'],
    '""': [''],
    '"",x': ['', 'x'],
    'a b ,c': ['a b ', 'c'],
  }
  for (const [input, expected] of Object.entries(cases)) assert.deepEqual(splitFilterValueForQuotes(input), expected, input)
})

test("listOrder: one direction for every key and the tie-breakers, else Glance's desc for them", () => {
  assert.deepEqual(listOrder(['created_at'], ['desc']), [
    { key: 'created_at', dir: 'desc' },
    { key: 'id', dir: 'desc' },
  ])
  assert.deepEqual(listOrder(['name', 'size'], ['asc']), [
    { key: 'name', dir: 'asc' },
    { key: 'size', dir: 'asc' },
    { key: 'created_at', dir: 'asc' },
    { key: 'id', dir: 'asc' },
  ])
  assert.deepEqual(listOrder(['name', 'id'], ['asc', 'asc']), [
    { key: 'name', dir: 'asc' },
    { key: 'id', dir: 'asc' },
    { key: 'created_at', dir: 'desc' },
  ])
})
