// Python's str()/repr() of JSON values: Nova's validation messages quote values the way
// jsonschema (Python) prints them, e.g. "Value: {'foo': 'bar'}. 123 is not of type 'string'".
// Iterative, with its own work list: the value is a client's, and a recursive walk of a deeply
// nested one would overflow the stack (bodies are refused above MAX_JSON_DEPTH, but this must
// not depend on it).

/** A value still to print, as opposed to text to emit as it is. */
class Pending {
  constructor(readonly v: unknown) {}
}

function reprScalar(v: unknown): string {
  if (v === null || v === undefined) return 'None'
  if (v === true) return 'True'
  if (v === false) return 'False'
  if (typeof v === 'string') return v.includes("'") && !v.includes('"') ? `"${v}"` : `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`
  return String(v)
}

export function pyRepr(value: unknown): string {
  const out: string[] = []
  const todo: Array<string | Pending> = [new Pending(value)]
  while (todo.length > 0) {
    const t = todo.pop()!
    if (typeof t === 'string') {
      out.push(t)
      continue
    }
    const v = t.v
    if (Array.isArray(v)) {
      // Pushed in reverse: the work list is a stack.
      todo.push(']')
      for (let i = v.length - 1; i >= 0; i--) {
        todo.push(new Pending(v[i]))
        if (i > 0) todo.push(', ')
      }
      out.push('[')
    } else if (v !== null && typeof v === 'object') {
      const entries = Object.entries(v as Record<string, unknown>)
      todo.push('}')
      for (let i = entries.length - 1; i >= 0; i--) {
        const [k, x] = entries[i]!
        todo.push(new Pending(x), `${reprScalar(k)}: `)
        if (i > 0) todo.push(', ')
      }
      out.push('{')
    } else {
      out.push(reprScalar(v))
    }
  }
  return out.join('')
}

/** str(): strings bare, everything else as repr. */
export const pyStr = (v: unknown) => (typeof v === 'string' ? v : pyRepr(v))
