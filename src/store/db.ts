// Opens the database named by a URL: `sqlite:PATH`, `sqlite::memory:` or `postgres://...`.
// Everything above this file speaks kysely, one code path for both dialects.
import { mkdirSync } from 'node:fs'
import path from 'node:path'
import SQLite from 'better-sqlite3'
import { Kysely, Migrator, PostgresDialect, SqliteDialect } from 'kysely'
import pg from 'pg'
import { migrationProvider } from './migrations.ts'
import type { Database } from './schema.ts'

export type Dialect = 'sqlite' | 'postgres'

export interface Store {
  readonly db: Kysely<Database>
  readonly dialect: Dialect
  close(): Promise<void>
}

export function describeDatabaseUrl(url: string): string {
  // Never print a password that may sit in a PostgreSQL URL.
  return url.replace(/\/\/([^:/@]+):[^@]*@/, '//$1:***@')
}

export async function openStore(url: string): Promise<Store> {
  let db: Kysely<Database>
  let dialect: Dialect
  if (url.startsWith('sqlite:')) {
    const file = url.slice('sqlite:'.length)
    if (file !== ':memory:') mkdirSync(path.dirname(path.resolve(file)), { recursive: true })
    const sqlite = new SQLite(file)
    // WAL lets readers proceed while the agent writes; busy_timeout waits instead of failing.
    sqlite.pragma('journal_mode = WAL')
    sqlite.pragma('synchronous = NORMAL')
    sqlite.pragma('busy_timeout = 5000')
    sqlite.pragma('foreign_keys = ON')
    db = new Kysely<Database>({ dialect: new SqliteDialect({ database: withStatementCache(sqlite) }) })
    dialect = 'sqlite'
  } else if (url.startsWith('postgres://') || url.startsWith('postgresql://')) {
    db = new Kysely<Database>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: url, max: 10 }) }) })
    dialect = 'postgres'
  } else {
    throw new Error(`unsupported database URL ${describeDatabaseUrl(url)} (use sqlite:PATH or postgres://...)`)
  }
  const migrator = new Migrator({ db, provider: migrationProvider })
  const { error } = await migrator.migrateToLatest()
  if (error) {
    await db.destroy()
    throw error instanceof Error ? error : new Error(String(error))
  }
  return { db, dialect, close: () => db.destroy() }
}

/**
 * Kysely's SQLite driver prepares every query anew: SQLite parses and plans the same text again
 * each time (more than half of a simple GET's database time). Statements are reused by text;
 * better-sqlite3 runs them synchronously, so one statement is never used by two queries at once.
 */
function withStatementCache(sqlite: SQLite.Database, max = 500) {
  const cache = new Map<string, SQLite.Statement>()
  return {
    close: () => sqlite.close(),
    prepare(sql: string) {
      let stmt = cache.get(sql)
      if (!stmt) {
        stmt = sqlite.prepare(sql)
        // `in (?, ?, ...)` lists make one text per length: bounded, oldest out first.
        if (cache.size >= max) cache.delete(cache.keys().next().value!)
        cache.set(sql, stmt)
      }
      return stmt
    },
  }
}
