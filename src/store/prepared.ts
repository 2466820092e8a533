// Hot queries compiled once. Kysely builds a tree of frozen nodes and compiles it to SQL on every
// call: for a lookup by id that is about as much CPU as SQLite takes to run it, and on the write
// path of an action (a rescue: some twenty statements, each run a few times a minute) a quarter
// of the process's CPU (`perf record`, bench/rescue.ts). A prepared query is built once with
// stand-ins for its values (once per list length for `in (...)` lists) and then run with the
// values put in the stand-ins' places: the same SQL text, the same dialect.
import type { Compilable, CompiledQuery, QueryResult } from 'kysely'
import type { Database, Db } from './schema.ts'

/** Compiled forms kept per query: one per length of the value list (`in` lists of a page of servers). */
const MAX_SHAPES = 64

interface Shape {
  compiled: CompiledQuery
  slots: number[]
}

/**
 * `build(values)` returns the query with `values` (stand-in strings) where the caller's values go;
 * the returned function runs it on `db` (or a transaction) with the values given: its rows.
 */
export function prepared<R>(db: Db, build: (values: string[]) => Compilable<R>): (values: readonly unknown[], on?: Db) => Promise<R[]> {
  const run = compiledOnce(db, build)
  return async (values, on) => (await run(values, on)).rows
}

/** The same for a write without RETURNING: how many rows it changed. */
export function preparedWrite(
  db: Db,
  build: (values: string[]) => Compilable<unknown>,
): (values: readonly unknown[], on?: Db) => Promise<number> {
  const run = compiledOnce(db, build)
  return async (values, on) => Number((await run(values, on)).numAffectedRows ?? 0n)
}

/**
 * An insert of one row into `table`, compiled once per set of columns (a row built by one object
 * literal has one): every column of the row is a value.
 */
export function preparedInsert<Row extends object>(db: Db, table: keyof Database): (row: Row, on?: Db) => Promise<void> {
  const byColumns = new Map<string, (values: readonly unknown[], on?: Db) => Promise<number>>()
  return async (row, on) => {
    const columns = Object.keys(row) as (keyof Row & string)[]
    const key = columns.join(',')
    let run = byColumns.get(key)
    if (!run) {
      run = preparedWrite(db, (values) => db.insertInto(table).values(Object.fromEntries(columns.map((c, i) => [c, values[i]])) as never))
      byColumns.set(key, run)
    }
    await run(
      columns.map((c) => row[c]),
      on,
    )
  }
}

function compiledOnce<R>(
  db: Db,
  build: (values: string[]) => Compilable<R>,
): (values: readonly unknown[], on?: Db) => Promise<QueryResult<R>> {
  const shapes = new Map<number, Shape>()
  const shapeOf = (n: number): Shape => {
    let shape = shapes.get(n)
    if (shape) return shape
    const stands = Array.from({ length: n }, (_, i) => `\u0000skiff-value-${i}\u0000`)
    const index = new Map(stands.map((s, i) => [s, i]))
    const compiled = build(stands).compile()
    const slots = compiled.parameters.map((p) => (typeof p === 'string' ? (index.get(p) ?? -1) : -1))
    if (new Set(slots.filter((s) => s >= 0)).size !== n)
      throw new Error(`prepared query: every value must be a parameter, once: ${compiled.sql}`)
    shape = { compiled, slots }
    if (shapes.size >= MAX_SHAPES) shapes.delete(shapes.keys().next().value!)
    shapes.set(n, shape)
    return shape
  }
  return (values, on = db) => {
    const { compiled, slots } = shapeOf(values.length)
    const parameters = compiled.parameters.map((p, i) => (slots[i]! >= 0 ? values[slots[i]!] : p))
    return on.executeQuery<R>({ ...compiled, parameters } as CompiledQuery<R>)
  }
}
