// Experiment: SQLite prepares an INSERT ... SELECT whose LIMIT is a bound parameter again at
// every run (seen with gdb on sqlite3Reprepare in a rescue cycle: instance-actions-repo's
// startEvent, built by kysely with `limit ?`). The same statement with a literal LIMIT, timed:
//
//   node --import tsx bench/experiments/reprep.ts
import { createRequire } from 'node:module'
const require = createRequire(import.meta.url)
const Database = require('better-sqlite3')
const db = new Database(':memory:')
db.exec(`create table a (id text primary key, server_id text, request_id text); create index a_sr on a(server_id, request_id);
create table e (id text primary key, action_id text not null, event text, start_time text, host text)`)
for (let i = 0; i < 100; i++) db.prepare('insert into a values (?,?,?)').run('a' + i, 's' + i, 'r' + i)
const variants = {
  paramLimit: `insert into e (id, action_id, event, start_time, host) select ? as id, a.id as action_id, ? as event, ? as start_time, ? as host from a where server_id = ? and request_id = ? limit ?`,
  literalLimit: `insert into e (id, action_id, event, start_time, host) select ? as id, a.id as action_id, ? as event, ? as start_time, ? as host from a where server_id = ? and request_id = ? limit 1`,
}
for (const [name, sql] of Object.entries(variants)) {
  const st = db.prepare(sql)
  const args = (i: number) =>
    name === 'paramLimit'
      ? [`e${name}${i}`, 'ev', 't', 'h', 's' + (i % 100), 'r' + (i % 100), 1]
      : [`e${name}${i}`, 'ev', 't', 'h', 's' + (i % 100), 'r' + (i % 100)]
  for (let i = 0; i < 2000; i++) st.run(...args(i))
  const t = performance.now()
  for (let i = 2000; i < 22000; i++) st.run(...args(i))
  console.log(name, (((performance.now() - t) * 1000) / 20000).toFixed(2), 'µs/run')
}
