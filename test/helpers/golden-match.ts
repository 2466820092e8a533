// Matching an answer against a golden sample: status, the headers clients depend on, and the
// body, where a golden string may hold {placeholders}. A bound placeholder must equal its value;
// an unbound one must match its pattern (and is bound if the golden says `bind`, so that both
// request-id headers carry one value). Shared by the golden tests (nova-transcripts,
// nova-servers-microversions).
import type { LightMyRequestResponse } from 'fastify'

export interface Expected {
  status: number
  headers: Record<string, string>
  absentHeaders: string[]
  body: unknown
}
export type Placeholders = Record<string, { means: string; pattern?: string; bind?: boolean }>
export type Bindings = Map<string, string>

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
const TOKEN = /\{([a-z_]+)\}/g
const HAS_TOKEN = /\{[a-z_]+\}/

/** Substitute bound placeholders into a request (path or JSON body). */
export function fill<T>(v: T, ctx: Bindings): T {
  if (typeof v === 'string') return v.replace(TOKEN, (m, name: string) => ctx.get(name) ?? m) as T
  if (Array.isArray(v)) return v.map((x) => fill(x, ctx)) as T
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, fill(x, ctx)])) as T
  return v
}

/** The comparison functions for one golden file's placeholders. */
export function goldenMatcher(placeholders: Placeholders) {
  function matchTemplate(template: string, actual: unknown, ctx: Bindings): string | null {
    if (typeof actual !== 'string') return `expected a string like ${JSON.stringify(template)}, got ${JSON.stringify(actual)}`
    if (!HAS_TOKEN.test(template)) return template === actual ? null : `expected ${JSON.stringify(template)}, got ${JSON.stringify(actual)}`
    const toBind: string[] = []
    let source = ''
    let last = 0
    for (const m of template.matchAll(TOKEN)) {
      source += escape(template.slice(last, m.index))
      last = m.index + m[0].length
      const name = m[1]!
      const bound = ctx.get(name)
      const p = placeholders[name]
      if (!p) throw new Error(`golden: unknown placeholder {${name}}`)
      if (bound !== undefined) source += escape(bound)
      else if (p.pattern !== undefined) {
        source += `(${p.pattern})`
        toBind.push(p.bind ? name : '')
      } else throw new Error(`the situation binds no {${name}} (${p.means})`)
    }
    source += escape(template.slice(last))
    const m = new RegExp(`^${source}$`).exec(actual)
    if (!m) return `expected ${JSON.stringify(template)}, got ${JSON.stringify(actual)}`
    toBind.forEach((name, i) => {
      if (name) ctx.set(name, m[i + 1]!)
    })
    return null
  }

  function compareJson(expected: unknown, actual: unknown, at: string, ctx: Bindings, out: string[]): void {
    if (typeof expected === 'string') {
      const err = matchTemplate(expected, actual, ctx)
      if (err) out.push(`${at}: ${err}`)
    } else if (Array.isArray(expected)) {
      if (!Array.isArray(actual)) return void out.push(`${at}: expected an array, got ${JSON.stringify(actual)}`)
      if (expected.length !== actual.length) out.push(`${at}: expected ${expected.length} items, got ${actual.length}`)
      for (let i = 0; i < Math.min(expected.length, actual.length); i++) compareJson(expected[i], actual[i], `${at}[${i}]`, ctx, out)
    } else if (expected !== null && typeof expected === 'object') {
      if (actual === null || typeof actual !== 'object' || Array.isArray(actual))
        return void out.push(`${at}: expected an object, got ${JSON.stringify(actual)}`)
      const e = expected as Record<string, unknown>,
        a = actual as Record<string, unknown>
      for (const k of Object.keys(e)) if (!(k in a)) out.push(`${at}.${k}: missing`)
      for (const k of Object.keys(a)) if (!(k in e)) out.push(`${at}.${k}: not in Nova's answer (${JSON.stringify(a[k])})`)
      for (const k of Object.keys(e)) if (k in a) compareJson(e[k], a[k], `${at}.${k}`, ctx, out)
    } else if (!Object.is(expected, actual)) {
      out.push(`${at}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`)
    }
  }

  const mediaType = (v: string) => v.split(';')[0]!.trim().toLowerCase()
  const tokens = (v: string) =>
    v
      .split(',')
      .map((t) => t.trim().toLowerCase())
      .filter(Boolean)
      .sort()

  /** Every way the answer differs from `expected`; empty when it matches. */
  function differences(expected: Expected, res: LightMyRequestResponse, bindings: Bindings): string[] {
    const ctx = new Map(bindings)
    const out: string[] = []
    if (res.statusCode !== expected.status) out.push(`status: expected ${expected.status}, got ${res.statusCode}`)
    for (const [name, want] of Object.entries(expected.headers)) {
      const raw = res.headers[name]
      if (raw === undefined) {
        out.push(`header ${name}: missing`)
        continue
      }
      const got = Array.isArray(raw) ? raw.join(', ') : String(raw)
      if (name === 'content-type') {
        // The family (media type): Nova adds charset=UTF-8 on its faults only; parameters are not compared.
        if (mediaType(got) !== mediaType(want)) out.push(`header content-type: expected ${want}, got ${got}`)
      } else if (name === 'vary') {
        if (tokens(got).join() !== tokens(want).join()) out.push(`header vary: expected ${want}, got ${got}`)
      } else {
        const err = matchTemplate(want, got, ctx)
        if (err) out.push(`header ${name}: ${err}`)
      }
    }
    for (const name of expected.absentHeaders)
      if (res.headers[name] !== undefined) out.push(`header ${name}: Nova sends none, got ${String(res.headers[name])}`)
    if (expected.body === null) {
      if (res.body !== '') out.push(`body: expected none, got ${res.body}`)
    } else {
      let json: unknown
      try {
        json = JSON.parse(res.body)
      } catch {
        out.push(`body: not JSON: ${res.body}`)
      }
      if (json !== undefined) compareJson(expected.body, json, 'body', ctx, out)
    }
    return out
  }

  return { differences, fill, compareJson }
}
