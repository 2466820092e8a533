// Preloaded into the Skiff child by bench/sql-per-request.ts (`node --import tsx --import
// bench/sql-trace.ts bin/skiff.js ...`): counts every statement better-sqlite3 prepares and runs,
// and the time each takes, by SQL text. SIGUSR2 writes the counts to $SKIFF_BENCH_SQL_TRACE and
// starts over. Nothing in src/ knows about it.
import { writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'

interface Stat {
  prepares: number
  prepareNs: number
  runs: number
  runNs: number
  rows: number
}
type Stmt = { all(...a: unknown[]): unknown[]; get(...a: unknown[]): unknown; run(...a: unknown[]): unknown; source: string }

const require = createRequire(import.meta.url)
const Database = require('better-sqlite3') as { prototype: { prepare(sql: string): Stmt } }
const out = process.env.SKIFF_BENCH_SQL_TRACE
let stats = new Map<string, Stat>()
const stat = (sql: string) => {
  let s = stats.get(sql)
  if (!s) stats.set(sql, (s = { prepares: 0, prepareNs: 0, runs: 0, runNs: 0, rows: 0 }))
  return s
}

let patched = false
const prepare = Database.prototype.prepare
Database.prototype.prepare = function (this: unknown, sql: string) {
  const t = process.hrtime.bigint()
  const stmt = prepare.call(this, sql)
  const s = stat(sql)
  s.prepares++
  s.prepareNs += Number(process.hrtime.bigint() - t)
  if (!patched) {
    // Statements are native objects sharing one prototype: wrap its execute methods once.
    patched = true
    const proto = Object.getPrototypeOf(stmt) as Record<'all' | 'get' | 'run', (...a: unknown[]) => unknown>
    for (const m of ['all', 'get', 'run'] as const) {
      const orig = proto[m]
      proto[m] = function (this: Stmt, ...args: unknown[]) {
        const t0 = process.hrtime.bigint()
        const r = orig.apply(this, args)
        const st = stat(this.source)
        st.runs++
        st.runNs += Number(process.hrtime.bigint() - t0)
        st.rows += m === 'all' ? (r as unknown[]).length : m === 'get' ? (r === undefined ? 0 : 1) : 0
        return r
      }
    }
  }
  return stmt
}

process.on('SIGUSR2', () => {
  if (out) writeFileSync(out, JSON.stringify(Object.fromEntries(stats)))
  stats = new Map()
})
