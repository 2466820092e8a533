// The database a test runs on: in-memory SQLite, or — when SKIFF_TEST_DATABASE_URL or
// DATABASE_URL names a PostgreSQL — a fresh database on its server, dropped when the test is done.
// A database, not a schema: kysely's migrator looks at the tables of every schema of its
// database, and fails when a test running beside it drops its schema in the middle of that.
import { randomBytes } from 'node:crypto'
import pg from 'pg'

export type TestDialect = 'sqlite' | 'postgres'

/** The PostgreSQL the tests may use, if any. */
export function testPostgresUrl(): string | undefined {
  const url = process.env.SKIFF_TEST_DATABASE_URL || process.env.DATABASE_URL
  return url && /^postgres(ql)?:\/\//.test(url) ? url : undefined
}

/**
 * The dialect of this run: PostgreSQL when a URL is given, else SQLite. `npm test` (test/run.sh)
 * runs the store and API tests once without the URL and once with it.
 */
export function harnessDialect(): TestDialect {
  return testPostgresUrl() ? 'postgres' : 'sqlite'
}

export interface TestDatabase {
  url: string
  drop(): Promise<void>
}

/** A fresh, empty database of `dialect`: on PostgreSQL a database of its own on the given server. */
export async function freshDatabase(dialect: TestDialect = harnessDialect()): Promise<TestDatabase> {
  if (dialect === 'sqlite') return { url: 'sqlite::memory:', drop: async () => {} }
  const base = testPostgresUrl()
  if (!base) throw new Error('no PostgreSQL for the tests: set SKIFF_TEST_DATABASE_URL or DATABASE_URL')
  const name = `skiff_t_${randomBytes(6).toString('hex')}`
  await adminQuery(base, `CREATE DATABASE ${name}`)
  const u = new URL(base)
  u.pathname = `/${name}`
  return { url: u.toString(), drop: () => adminQuery(base, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) }
}

async function adminQuery(url: string, text: string): Promise<void> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    await client.query(text)
  } finally {
    await client.end()
  }
}
