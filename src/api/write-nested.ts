// A JSON value written as text by a work list, not by recursion: the values are clients', of any
// depth (bodies deeper than MAX_JSON_DEPTH are refused, but nothing here may depend on it). The
// style says how scalars, keys and separators look (Python's repr, canonical JSON, ...).

export interface NestedStyle {
  scalar(v: unknown): string
  /** A key with what follows it before its value (`'k': `, `"k":`). */
  key(k: string): string
  comma: string
  /** An object's entries in the order written (default: as they are). */
  entries?(o: Record<string, unknown>): [string, unknown][]
}

/** A value still to write, as opposed to text to emit as it is. */
class Pending {
  constructor(readonly v: unknown) {}
}

export function writeNested(value: unknown, style: NestedStyle): string {
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
        if (i > 0) todo.push(style.comma)
      }
      out.push('[')
    } else if (v !== null && typeof v === 'object') {
      const entries = style.entries ? style.entries(v as Record<string, unknown>) : Object.entries(v as Record<string, unknown>)
      todo.push('}')
      for (let i = entries.length - 1; i >= 0; i--) {
        const [k, x] = entries[i]!
        todo.push(new Pending(x), style.key(k))
        if (i > 0) todo.push(style.comma)
      }
      out.push('{')
    } else {
      out.push(style.scalar(v))
    }
  }
  return out.join('')
}
