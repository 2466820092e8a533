// Experiment, not a fix: what caching better-sqlite3 statements by SQL text would gain. Kysely's
// SQLite driver calls db.prepare(sql) for every query (SQLite parses and plans the SQL again each
// time); src/store/db.ts could hand SqliteDialect a database whose prepare() is memoized like this.
// Preloaded into the Skiff child: `api-read.ts --preload bench/experiments/statement-cache.ts`.
import { createRequire } from 'node:module'

type Statement = object
const require = createRequire(import.meta.url)
const Database = require('better-sqlite3') as { prototype: { prepare(sql: string): Statement } }
const prepare = Database.prototype.prepare
const caches = new WeakMap<object, Map<string, Statement>>()
// `in (?, ?, …)` lists make one text per list length: bound the cache rather than grow forever.
const MAX = 500

Database.prototype.prepare = function (this: object, sql: string) {
  let cache = caches.get(this)
  if (!cache) caches.set(this, (cache = new Map()))
  let stmt = cache.get(sql)
  if (!stmt) {
    stmt = prepare.call(this, sql)
    if (cache.size >= MAX) cache.delete(cache.keys().next().value!)
    cache.set(sql, stmt)
  }
  return stmt
}
