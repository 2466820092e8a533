// Python's str()/repr() of JSON values: Nova's validation messages quote values the way
// jsonschema (Python) prints them, e.g. "Value: {'foo': 'bar'}. 123 is not of type 'string'".
// Iterative, with its own work list: the value is a client's, and a recursive walk of a deeply
// nested one would overflow the stack (bodies are refused above MAX_JSON_DEPTH, but this must
// not depend on it).
import { writeNested } from './write-nested.ts'

function reprScalar(v: unknown): string {
  if (v === null || v === undefined) return 'None'
  if (v === true) return 'True'
  if (v === false) return 'False'
  if (typeof v === 'string') return v.includes("'") && !v.includes('"') ? `"${v}"` : `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`
  return String(v)
}

const REPR = { scalar: reprScalar, key: (k: string) => `${reprScalar(k)}: `, comma: ', ' }

export function pyRepr(value: unknown): string {
  return writeNested(value, REPR)
}

/** str(): strings bare, everything else as repr. */
export const pyStr = (v: unknown) => (typeof v === 'string' ? v : pyRepr(v))
