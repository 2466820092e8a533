// Opens the database named by a URL: `sqlite:PATH`, `sqlite::memory:` or `postgres://...`.
// Everything above this file speaks kysely, one code path for both dialects.
import { chmodSync, closeSync, existsSync, mkdirSync, openSync } from 'node:fs'
import path from 'node:path'
import SQLite from 'better-sqlite3'
import { Kysely, Migrator, PostgresDialect, sql, SqliteDialect } from 'kysely'
import type Pg from 'pg'
import { describeDatabaseUrl } from '../config.ts'
import { migrationProvider } from './migrations.ts'
import type { Database } from './schema.ts'

export type Dialect = 'sqlite' | 'postgres'

export interface Store {
  readonly db: Kysely<Database>
  readonly dialect: Dialect
  /**
   * PostgreSQL only: LISTEN on `channel` over a connection of its own (re-established when lost),
   * calling `onMessage` with each NOTIFY payload. Resolves once listening; returns the unlisten.
   * Undefined on SQLite, where one process owns the database and wakes itself in memory.
   * `onState(false)` when the connection is lost (notifications are missed until it is back),
   * `onState(true)` once it listens again.
   */
  readonly listen?: (
    channel: string,
    onMessage: (payload: string) => void,
    onState?: (listening: boolean) => void,
  ) => Promise<() => Promise<void>>
  /**
   * SQLite only: how many statements that may change the database this process has run (one
   * process owns a SQLite database: nothing else writes it). A read made while it was N is still
   * true while it is N: what a hot read may keep in memory instead of asking again.
   */
  readonly writes?: () => number
  close(): Promise<void>
}

// Never print a password that may sit in a PostgreSQL URL.
export { describeDatabaseUrl }

// Loaded for a PostgreSQL URL only: a start on SQLite does not pay for loading it.
let pg: typeof Pg

export async function openStore(url: string): Promise<Store> {
  let db: Kysely<Database>
  let dialect: Dialect
  let listen: Store['listen']
  let writes: Store['writes']
  if (url.startsWith('sqlite:')) {
    let sqlite: SQLite.Database
    try {
      sqlite = openSqlite(url.slice('sqlite:'.length))
    } catch (err) {
      throw new Error(`cannot open the database ${url}: ${reason(err)}`)
    }
    const database = withStatementCache(sqlite)
    db = new Kysely<Database>({ dialect: new SqliteDialect({ database }) })
    dialect = 'sqlite'
    writes = database.writes
  } else if (url.startsWith('postgres://') || url.startsWith('postgresql://')) {
    pg = (await import('pg')).default
    await reachPostgres(url)
    // bigint (int8) and count(*) come back as strings by default: numbers, as SQLite gives them.
    const types = {
      getTypeParser: (oid: number, format?: 'text' | 'binary') =>
        oid === 20 ? (v: string) => Number(v) : (pg.types.getTypeParser(oid, format as 'text') as (v: string) => unknown),
    }
    const pool = new pg.Pool({ connectionString: url, max: 10, types })
    // An idle connection that breaks (the server restarts) is dropped from the pool and the next
    // query opens a new one; without a listener the pool's 'error' event would end the process.
    pool.on('error', () => {})
    db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) })
    dialect = 'postgres'
    listen = (channel, onMessage, onState) => listenPostgres(url, channel, onMessage, onState)
  } else {
    throw new Error(`unsupported database URL ${describeDatabaseUrl(url)} (use sqlite:PATH or postgres://...)`)
  }
  // Kysely looks for its own tables in every schema of a PostgreSQL: name ours, the first of the
  // search_path, or a Skiff in schema B would take the tables of a Skiff in schema A for its own.
  const migrationTableSchema =
    dialect === 'postgres' ? (await sql<{ schema: string }>`select current_schema() as schema`.execute(db)).rows[0]?.schema : undefined
  const migrator = new Migrator({ db, provider: migrationProvider, ...(migrationTableSchema ? { migrationTableSchema } : {}) })
  const { error } = await migrator.migrateToLatest()
  if (error) {
    await db.destroy()
    throw error instanceof Error ? error : new Error(String(error))
  }
  const unlisteners = new Set<() => Promise<void>>()
  return {
    db,
    dialect,
    ...(writes ? { writes } : {}),
    ...(listen
      ? {
          listen: async (channel: string, onMessage: (payload: string) => void, onState?: (listening: boolean) => void) => {
            const stop = await listen(channel, onMessage, onState)
            const once = async () => {
              unlisteners.delete(once)
              await stop()
            }
            unlisteners.add(once)
            return once
          },
        }
      : {}),
    async close() {
      await Promise.allSettled([...unlisteners].map((u) => u()))
      await db.destroy()
    },
  }
}

/**
 * The database holds password and token hashes and sealed secrets: owner-only, whatever the
 * umask. SQLite gives its -wal and -shm files the mode of the database file, so that file is
 * made 0600 before SQLite opens it; files left with wider modes by an older Skiff are narrowed.
 */
function openSqlite(file: string): SQLite.Database {
  if (file === ':memory:') return new SQLite(file)
  mkdirSync(path.dirname(path.resolve(file)), { recursive: true, mode: 0o700 })
  closeSync(openSync(file, 'a', 0o600))
  chmodSync(file, 0o600)
  const sqlite = new SQLite(file)
  try {
    // WAL lets readers proceed while the agent writes; busy_timeout waits instead of failing.
    sqlite.pragma('journal_mode = WAL')
    sqlite.pragma('synchronous = NORMAL')
    sqlite.pragma('busy_timeout = 5000')
    sqlite.pragma('foreign_keys = ON')
    for (const f of [`${file}-wal`, `${file}-shm`]) if (existsSync(f)) chmodSync(f, 0o600)
  } catch (err) {
    sqlite.close()
    throw err
  }
  return sqlite
}

/**
 * One connection before the pool is made, with a deadline: an unreachable server is a clear
 * start-up error within seconds, not a stack trace (nor a wait of minutes for TCP to give up).
 */
async function reachPostgres(url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 })
  client.on('error', () => {})
  try {
    await client.connect()
  } catch (err) {
    throw new Error(`cannot connect to the database ${describeDatabaseUrl(url)}: ${reason(err)}`)
  } finally {
    await client.end().catch(() => {})
  }
}

/** The message of an error, also of Node's AggregateError (every address refused), which has none. */
function reason(err: unknown): string {
  const e = err as Error & { code?: string; errors?: Error[] }
  return (e.message || e.errors?.map((x) => x.message).join('; ') || e.code || String(err)).split('\n')[0]!
}

/**
 * A LISTEN connection. A notification sent while it is down is lost, so callers keep a slow
 * poll as a safety net; after a reconnect `onMessage('')` tells them to look for missed work.
 */
async function listenPostgres(
  url: string,
  channel: string,
  onMessage: (payload: string) => void,
  onState?: (listening: boolean) => void,
): Promise<() => Promise<void>> {
  if (!/^[a-z_][a-z0-9_]*$/.test(channel)) throw new Error(`bad channel name ${channel}`)
  let client: Pg.Client | undefined
  let stopped = false
  let retry: NodeJS.Timeout | undefined
  const reconnect = () => {
    retry = setTimeout(() => {
      if (stopped) return
      connect().then(
        () => {
          onState?.(true)
          onMessage('')
        },
        () => reconnect(),
      )
    }, 500)
    retry.unref()
  }
  const connect = async (): Promise<void> => {
    // TCP keep-alive: a connection lost without a reset (a network cut) ends within seconds, not hours.
    const c = new pg.Client({ connectionString: url, keepAlive: true, keepAliveInitialDelayMillis: 1000 })
    c.on('notification', (n) => {
      if (n.channel === channel) onMessage(n.payload ?? '')
    })
    c.on('error', () => {
      /* 'end' follows; reconnect there */
    })
    c.on('end', () => {
      if (stopped || client !== c) return
      client = undefined
      onState?.(false)
      reconnect()
    })
    try {
      await c.connect()
      await c.query(`LISTEN ${channel}`)
    } catch (err) {
      await c.end().catch(() => {})
      throw err
    }
    if (stopped) {
      await c.end()
      return
    }
    client = c
  }
  await connect()
  return async () => {
    stopped = true
    if (retry) clearTimeout(retry)
    const c = client
    client = undefined
    await c?.end().catch(() => {})
  }
}

/**
 * Kysely's SQLite driver prepares every query anew: SQLite parses and plans the same text again
 * each time (more than half of a simple GET's database time). Statements are reused by text;
 * better-sqlite3 runs them synchronously, so one statement is never used by two queries at once.
 *
 * Rows are read as arrays and made into objects by a function compiled once per statement:
 * better-sqlite3 builds each row object key by key through V8's API, which costs about twice
 * as much (a page of 100 servers: 0.9 ms against 0.4 ms). The objects are the same: keys in
 * column order, a later column of the same name winning.
 */
function withStatementCache(sqlite: SQLite.Database, max = 500) {
  const cache = new Map<string, CachedStatement>()
  let writes = 0
  const wrote = () => void writes++
  return {
    close: () => sqlite.close(),
    /** Statements run that may change the database (Store.writes). */
    writes: () => writes,
    prepare(sql: string) {
      let stmt = cache.get(sql)
      if (!stmt) {
        stmt = cachedStatement(sqlite.prepare(sql), wrote)
        // `in (?, ?, ...)` lists make one text per length: bounded, oldest out first.
        if (cache.size >= max) cache.delete(cache.keys().next().value!)
        cache.set(sql, stmt)
      }
      return stmt
    },
  }
}

/** What kysely's SQLite driver uses of a statement. */
interface CachedStatement {
  readonly reader: boolean
  all(params: unknown[]): unknown[]
  run(params: unknown[]): SQLite.RunResult
  iterate(params: unknown[]): IterableIterator<unknown>
}

/** `wrote` is called before each run of a statement that may change the database. */
function cachedStatement(stmt: SQLite.Statement, wrote: () => void): CachedStatement {
  return stmt.readonly ? asObjects(stmt) : counted(asObjects(stmt), wrote)
}

/** A statement whose rows come as objects, made by a function compiled once (see above). */
function asObjects(stmt: SQLite.Statement): CachedStatement {
  if (!stmt.reader) return stmt as unknown as CachedStatement
  let toObjects = rowMapper(stmt)
  if (!toObjects) return stmt as unknown as CachedStatement
  stmt.raw(true)
  const all = (params: unknown[]) => {
    const rows = stmt.all(params) as unknown[][]
    // A `select *` prepared before a migration added a column: SQLite re-prepares it, so read the names again.
    if (rows.length > 0 && rows[0]!.length !== toObjects!.width) toObjects = rowMapper(stmt)!
    return toObjects!(rows)
  }
  return {
    reader: true,
    all,
    run: (params) => stmt.run(params),
    *iterate(params) {
      for (const row of stmt.iterate(params)) {
        if ((row as unknown[]).length !== toObjects!.width) toObjects = rowMapper(stmt)!
        yield toObjects!([row as unknown[]])[0]
      }
    },
  }
}

/** A statement that may write (an INSERT ... RETURNING reads too): every run counted first. */
function counted(stmt: CachedStatement, wrote: () => void): CachedStatement {
  return {
    reader: stmt.reader,
    all: (params) => (wrote(), stmt.all(params)),
    run: (params) => (wrote(), stmt.run(params)),
    iterate: (params) => (wrote(), stmt.iterate(params)),
  }
}

/** Arrays of column values into row objects; undefined for a column named __proto__ (an object literal would set the prototype). */
function rowMapper(stmt: SQLite.Statement): (((rows: unknown[][]) => unknown[]) & { width: number }) | undefined {
  const names = stmt.columns().map((c) => c.name)
  if (names.includes('__proto__')) return undefined
  // The names are quoted by JSON.stringify: the text is column names, never data.
  // eslint-disable-next-line @typescript-eslint/no-implied-eval
  const fn = new Function(
    'rows',
    `for (let i = 0; i < rows.length; i++) { const r = rows[i]; rows[i] = { ${names
      .map((n, i) => `${JSON.stringify(n)}: r[${i}]`)
      .join(', ')} } } return rows`,
  ) as (rows: unknown[][]) => unknown[]
  return Object.assign(fn, { width: names.length })
}
