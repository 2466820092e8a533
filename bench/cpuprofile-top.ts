// Where the CPU went, from a V8 .cpuprofile (`node --cpu-prof`): self time by function, by
// package or source file, and inclusive time of Skiff's own functions.
//
//   node --import tsx bench/cpuprofile-top.ts PROFILE.cpuprofile [--phases DIR/phases.json --target a [--rep 2]] [--top 25]
//
// With --phases (written by `api-read.ts --cpu-prof DIR`), only the samples taken while that
// target was under load count, so setup (creating servers) and the other targets stay out;
// --rep keeps one run of it (a fast run and a slow one side by side).
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { ROOT, option, table, type ProfilePhase } from './harness.ts'

interface CallFrame {
  functionName: string
  url: string
  lineNumber: number
  columnNumber: number
}
interface ProfileNode {
  id: number
  callFrame: CallFrame
  hitCount?: number
  children?: number[]
}
interface Profile {
  nodes: ProfileNode[]
  startTime: number
  endTime: number
  samples: number[]
  timeDeltas: number[]
}
const file = process.argv.slice(2).find((a, i, all) => !a.startsWith('--') && !all[i - 1]?.startsWith('--'))
if (!file) {
  console.error('usage: cpuprofile-top.ts PROFILE.cpuprofile [--phases phases.json --target a [--rep 2]] [--top 25]')
  process.exit(2)
}
const top = option('top', 25)
const phasesFile = option('phases', '')
const target = option('target', '')
const rep = option('rep', 0)

// tsx runs TypeScript as esbuild output with the whitespace minified: one line per file, so V8's
// positions must go through the source map of that output, which tsx keeps in its cache dir.
interface Transformed {
  code: string
  lines: { col: number; srcLine: number }[][]
}
const tsxCache = new Map<string, Transformed[]>()
function loadTsxCache() {
  const dir = path.join(tmpdir(), `tsx-${process.getuid?.() ?? 0}`)
  let names: string[]
  try {
    names = readdirSync(dir)
  } catch {
    return
  }
  for (const name of names) {
    try {
      const entry = JSON.parse(readFileSync(path.join(dir, name), 'utf8')) as {
        code?: string
        map?: { sources?: string[]; mappings?: string }
      }
      const src = entry.map?.sources?.[0]
      if (!entry.code || !src || !entry.map?.mappings) continue
      const list = tsxCache.get(src) ?? []
      list.push({
        code: entry.code,
        lines: decodeMappings(entry.map.mappings),
        mtime: statSync(path.join(dir, name)).mtimeMs,
      } as Transformed & { mtime: number })
      list.sort((a, b) => (b as Transformed & { mtime: number }).mtime - (a as Transformed & { mtime: number }).mtime)
      tsxCache.set(src, list)
    } catch {
      /* not a transform */
    }
  }
}
const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'
/** Source-map v3 mappings: for each generated line, (generated column, original line) pairs. */
function decodeMappings(mappings: string): { col: number; srcLine: number }[][] {
  const out: { col: number; srcLine: number }[][] = []
  let srcLine = 0
  for (const line of mappings.split(';')) {
    const segs: { col: number; srcLine: number }[] = []
    let col = 0
    for (const seg of line.split(',')) {
      if (!seg) continue
      const v: number[] = []
      let shift = 0,
        value = 0
      for (const ch of seg) {
        const d = B64.indexOf(ch)
        value += (d & 31) << shift
        if (d & 32) {
          shift += 5
          continue
        }
        v.push(value & 1 ? -(value >>> 1) : value >>> 1)
        shift = 0
        value = 0
      }
      col += v[0] ?? 0
      if (v.length >= 4) {
        srcLine += v[2]!
        segs.push({ col, srcLine })
      }
    }
    out.push(segs)
  }
  return out
}
/** Does `f` fit this transform: its name just before or after its column, or a function starting there? */
function fits(t: Transformed, f: CallFrame): boolean {
  const line = t.code.split('\n')[f.lineNumber] ?? ''
  const name = f.functionName.replace(/^#/, '')
  // V8 puts a method's column at its parameter list, just after the name; an arrow's at its parameters.
  if (name) return line.slice(Math.max(0, f.columnNumber - name.length - 16), f.columnNumber + 80 + name.length).includes(name)
  return /^(async\s*)?(\(|[\w$]+\s*=>|function\b)/.test(line.slice(f.columnNumber))
}
/**
 * The original line of a frame in a .ts file. tsx's cache may hold several transforms of a file
 * (edited since, or transformed by two tsx instances): the one that fits the most of the
 * profile's frames of that file wins, the newest on a tie.
 */
const chosen = new Map<string, Transformed | undefined>()
function tsLine(file: string, f: CallFrame): number | undefined {
  if (tsxCache.size === 0) loadTsxCache()
  if (!chosen.has(file)) {
    const frames = prof.nodes.map((n) => n.callFrame).filter((c) => c.url === f.url)
    let best: Transformed | undefined
    let bestScore = -1
    for (const t of tsxCache.get(file) ?? []) {
      const score = frames.filter((c) => fits(t, c)).length
      if (score > bestScore) {
        best = t
        bestScore = score
      }
    }
    chosen.set(file, best)
  }
  const t = chosen.get(file)
  if (!t || !fits(t, f)) return undefined
  let line: number | undefined
  for (const s of t.lines[f.lineNumber] ?? []) {
    if (s.col <= f.columnNumber) line = s.srcLine
    else break
  }
  return line === undefined ? undefined : line + 1
}

const prof = JSON.parse(readFileSync(file, 'utf8')) as Profile
const byId = new Map(prof.nodes.map((n) => [n.id, n]))
const parent = new Map<number, number>()
for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id)

const windows = phasesFile
  ? (JSON.parse(readFileSync(phasesFile, 'utf8')) as ProfilePhase[]).filter(
      (p) => (!target || p.target === target) && (!rep || p.rep === rep),
    )
  : []
const inWindow = (t: number) => !phasesFile || windows.some((w) => t >= w.startUs && t <= w.endUs)

/** Short location: src/... or node_modules/<pkg>/..., relative to the repo; node:internal as is. */
const where = (f: CallFrame) => {
  if (!f.url) return ''
  const file = f.url.startsWith('file://') ? new URL(f.url).pathname : f.url
  const p = f.url.startsWith('file://') ? path.relative(ROOT, file) : f.url
  const line = file.endsWith('.ts') ? tsLine(file, f) : undefined
  return `${p}:${line ?? f.lineNumber + 1}`
}
/** The bucket a frame belongs to: a package, a Skiff source file, node internals or V8's own. */
const bucket = (f: CallFrame) => {
  if (!f.url) return f.functionName.startsWith('(') ? f.functionName : '(native)'
  if (f.url.startsWith('node:')) return 'node: core'
  const p = f.url.startsWith('file://') ? path.relative(ROOT, new URL(f.url).pathname) : f.url
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(p)
  return m ? m[1]! : p
}
const fnKey = (f: CallFrame) => `${f.functionName || '(anonymous)'} ${where(f)}`

// The time of sample i is the delta that follows it (V8 records the delta before each sample).
const self = new Map<string, number>()
const inclusive = new Map<string, number>()
const buckets = new Map<string, number>()
let total = 0
let t = prof.startTime
for (let i = 0; i < prof.samples.length; i++) {
  t += prof.timeDeltas[i] ?? 0
  const dt = prof.timeDeltas[i + 1] ?? 0
  if (!inWindow(t)) continue
  const node = byId.get(prof.samples[i]!)!
  total += dt
  self.set(fnKey(node.callFrame), (self.get(fnKey(node.callFrame)) ?? 0) + dt)
  buckets.set(bucket(node.callFrame), (buckets.get(bucket(node.callFrame)) ?? 0) + dt)
  const seen = new Set<string>()
  for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
    const f = byId.get(id)!.callFrame
    const k = fnKey(f)
    if (!seen.has(k)) {
      seen.add(k)
      inclusive.set(k, (inclusive.get(k) ?? 0) + dt)
    }
  }
}

const ms = (us: number) => (us / 1000).toFixed(0)
const pct = (us: number) => `${((100 * us) / total).toFixed(1)}%`
const rank = (m: Map<string, number>, filter: (k: string) => boolean = () => true) =>
  [...m]
    .filter(([k]) => filter(k))
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)

console.log(
  `${file}${target ? `, target (${target})` : ''}: ${ms(total)} ms of samples` + (phasesFile ? ` in ${windows.length} load windows` : ''),
)
const idle = self.get('(idle) ') ?? 0
console.log(`idle ${pct(idle)}; busy ${pct(total - idle)}`)
console.log()
console.log(
  table(
    ['self time by package / file', 'ms', 'share'],
    rank(buckets).map(([k, v]) => [k, ms(v), pct(v)]),
  ),
)
console.log()
console.log(
  table(
    ['self time by function', 'ms', 'share'],
    rank(self).map(([k, v]) => [k, ms(v), pct(v)]),
  ),
)
console.log()
// dist/ is the compiled build (bin/skiff.js); its lines are those of the emitted JavaScript.
console.log(
  table(
    ['inclusive time, Skiff functions (src/, dist/)', 'ms', 'share'],
    rank(inclusive, (k) => / (src|dist)\//.test(k)).map(([k, v]) => [k, ms(v), pct(v)]),
  ),
)
