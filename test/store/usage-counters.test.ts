// The counters of what servers take (migration 0019), on both dialects: per host (the
// scheduler's) and per project and user (the quotas'). After any sequence of writes to servers
// and migrations, by anyone, they are what counting the rows gives (the sums run before them).
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { sql } from 'kysely'
import { openStore, type Store } from '../../src/store/db.ts'
import { COUNTED_HOST_USAGE, COUNTED_PROJECT_USAGE } from '../../src/store/migrations-usage-counters.ts'
import { PlacementRepo } from '../../src/store/placement-repo.ts'
import { ServersRepo } from '../../src/store/servers-repo.ts'
import { systemClock } from '../../src/clock.ts'
import type { FlavorRow, MigrationRow } from '../../src/store/schema.ts'
import { freshDatabase, type TestDatabase } from '../helpers/database.ts'
import { serverRow } from '../helpers/rows.ts'

let database: TestDatabase
let store: Store
const NOW = '2026-12-01T00:00:00.000Z'
const HOSTS = ['h1', 'h2', 'h3']
const FLAVORS: [string, number, number, number][] = [
  ['u1', 1, 512, 1],
  ['u2', 2, 2048, 20],
  ['u3', 4, 8192, 80],
]

const flavor = ([id, vcpus, ram, disk]: (typeof FLAVORS)[number]): FlavorRow => ({
  id,
  name: `usage-${id}`,
  ram,
  vcpus,
  disk,
  ephemeral: 0,
  swap: 0,
  rxtx_factor: 1,
  is_public: 1,
  disabled: 0,
  description: null,
  extra_specs: '{}',
  created_at: NOW,
  deleted: 0,
})

const server = (id: string, host: string | null, flavor_id: string, project_id = 'p', user_id = 'u') =>
  serverRow(id, { host, flavor_id, project_id, user_id })

let moves = 0
const move = (server_id: string, alloc_host: string | null, alloc_flavor_id: string | null): MigrationRow => ({
  id: ++moves,
  uuid: `m-${moves}`,
  server_id,
  project_id: 'p',
  user_id: 'u',
  migration_type: 'resize',
  status: 'pre-migrating',
  source_compute: null,
  dest_compute: alloc_host,
  old_flavor_id: 'u1',
  new_flavor_id: alloc_flavor_id ?? 'u1',
  old_vm_state: 'active',
  alloc_host,
  alloc_flavor_id,
  request_id: 'req',
  created_at: NOW,
  updated_at: NOW,
  requested: null,
  dest_host: null,
  progress: null,
})

before(async () => {
  database = await freshDatabase()
  store = await openStore(database.url)
  await store.db.insertInto('flavors').values(FLAVORS.map(flavor)).execute()
  for (const name of HOSTS) {
    await store.db
      .insertInto('hosts')
      .values({
        name,
        started_at: NOW,
        heartbeat_at: NOW,
        driver: 'simulated',
        vcpus: 64,
        ram_mb: 65536,
        disk_gb: 1000,
        agent_id: null,
        lease_until: null,
        disabled_reason: null,
      })
      .execute()
  }
})
after(async () => {
  await store?.close()
  await database?.drop()
})

/** Per host: [vcpus, ram, disk, allocations], from the counters (zeros left out) and from the rows. */
async function both() {
  const key = (r: Record<string, unknown>) => Object.values(r).map(Number)
  const counters = new Map<string, number[]>()
  for (const r of await store.db.selectFrom('host_usage').selectAll().execute()) {
    const { host, ...rest } = r
    if (key(rest).some((n) => n !== 0)) counters.set(host, key(rest))
  }
  const counted = new Map<string, number[]>()
  const rows = await sql.raw<Record<string, unknown>>(COUNTED_HOST_USAGE).execute(store.db)
  for (const r of rows.rows) {
    const [host, ...rest] = Object.values(r)
    counted.set(String(host), rest.map(Number))
  }
  return { counters, counted }
}

/** Per project and user: [instances, cores, ram], from the counters (zeros left out) and from the rows. */
async function bothProjects() {
  const counters: Record<string, number[]> = {}
  for (const r of await store.db.selectFrom('project_usage').selectAll().execute()) {
    const v = [r.instances, r.cores, r.ram].map(Number)
    if (v.some((n) => n !== 0)) counters[`${r.project_id}/${r.user_id}`] = v
  }
  const counted: Record<string, number[]> = {}
  const rows = await sql.raw<Record<string, unknown>>(COUNTED_PROJECT_USAGE).execute(store.db)
  for (const r of rows.rows) counted[`${String(r.project_id)}/${String(r.user_id)}`] = [r.instances, r.cores, r.ram].map(Number)
  return { counters, counted }
}

async function expectCounted(what: string) {
  const { counters, counted } = await both()
  assert.deepEqual(Object.fromEntries(counters), Object.fromEntries(counted), what)
  const projects = await bothProjects()
  assert.deepEqual(projects.counters, projects.counted, `${what} (projects)`)
}

test('the counters follow creates, moves, resizes, deletes and the moves of servers, step by step', async () => {
  const db = store.db
  await db
    .insertInto('servers')
    .values(server('a', 'h1', 'u1'))
    .execute()
  await db
    .insertInto('servers')
    .values(server('b', 'h1', 'u2'))
    .execute()
  await db
    .insertInto('servers')
    .values(server('c', null, 'u3'))
    .execute()
  await expectCounted('created')
  const placement = new PlacementRepo(db, store.dialect)
  const h1 = (await placement.allHosts()).find((h) => h.name === 'h1')
  assert.deepEqual(
    { vcpus: h1?.used_vcpus, ram: h1?.used_ram_mb, disk: h1?.used_disk_gb, n: h1?.servers },
    { vcpus: 3, ram: 2560, disk: 21, n: 2 },
  )
  // The quotas' use: the project's, and one user's within it.
  await db
    .insertInto('servers')
    .values(server('d', 'h2', 'u2', 'p', 'u2'))
    .execute()
  const servers = new ServersRepo(db, systemClock)
  assert.deepEqual(await servers.usage('p'), { instances: 4, cores: 9, ram: 12800 })
  assert.deepEqual(await servers.usage('p', db, 'u2'), { instances: 1, cores: 2, ram: 2048 })
  assert.deepEqual(await servers.usage('nobody'), { instances: 0, cores: 0, ram: 0 })
  await db.deleteFrom('servers').where('id', '=', 'd').execute()

  await db.updateTable('servers').set({ host: 'h2' }).where('id', '=', 'c').execute()
  await expectCounted('scheduled')
  // A resize to h3: the new flavor held there while the server is still on h1.
  await db
    .insertInto('migrations')
    .values(move('a', 'h3', 'u3'))
    .execute()
  await expectCounted('resize claimed')
  await db.updateTable('servers').set({ host: 'h3', flavor_id: 'u3' }).where('id', '=', 'a').execute()
  await db.updateTable('migrations').set({ alloc_host: 'h1', alloc_flavor_id: 'u1' }).where('server_id', '=', 'a').execute()
  await expectCounted('resized, the old flavor held on the source')
  await db.updateTable('migrations').set({ alloc_host: null, alloc_flavor_id: null }).where('server_id', '=', 'a').execute()
  await expectCounted('confirmed')
  // An update of other columns changes nothing; one that writes the same host neither.
  await db.updateTable('servers').set({ name: 'x', host: 'h3' }).where('id', '=', 'a').execute()
  await expectCounted('renamed')
  // A server deleted with a move holding room: both freed; undeleted: both back.
  await db
    .insertInto('migrations')
    .values(move('b', 'h2', 'u3'))
    .execute()
  await db.updateTable('servers').set({ deleted: 1 }).where('id', '=', 'b').execute()
  await expectCounted('deleted with a move')
  await db.updateTable('servers').set({ deleted: 0 }).where('id', '=', 'b').execute()
  await expectCounted('undeleted')
  // Offloaded (no host), then rows removed outright.
  await db.updateTable('servers').set({ host: null }).where('id', '=', 'c').execute()
  await expectCounted('offloaded')
  await db.deleteFrom('migrations').where('server_id', '=', 'b').execute()
  await db.deleteFrom('servers').where('id', '=', 'b').execute()
  await expectCounted('purged')
})

test('random writes of servers and moves, in transactions too: the counters stay what the rows count', async () => {
  const db = store.db
  let seed = 42
  const rnd = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31
    return seed % n
  }
  const pick = <T>(xs: readonly T[]): T => xs[rnd(xs.length)]!
  const hostOrNull = () => (rnd(5) === 0 ? null : pick(HOSTS))
  const flavorId = () => pick(FLAVORS)[0]
  const ids: string[] = []
  for (let i = 0; i < 300; i++) {
    const id = ids.length > 0 && rnd(4) !== 0 ? pick(ids) : undefined
    const step = rnd(7)
    await db.transaction().execute(async (trx) => {
      if (id === undefined) {
        const nid = `r${i}`
        ids.push(nid)
        await trx
          .insertInto('servers')
          .values(server(nid, hostOrNull(), flavorId(), pick(['p', 'q']), pick(['u', 'v'])))
          .execute()
      } else if (step === 0) await trx.updateTable('servers').set({ host: hostOrNull() }).where('id', '=', id).execute()
      else if (step === 1)
        await trx.updateTable('servers').set({ flavor_id: flavorId(), host: hostOrNull() }).where('id', '=', id).execute()
      else if (step === 2)
        await trx
          .updateTable('servers')
          .set({ deleted: rnd(2), user_id: pick(['u', 'v']) })
          .where('id', '=', id)
          .execute()
      else if (step === 3)
        await trx
          .insertInto('migrations')
          .values(move(id, hostOrNull(), rnd(4) === 0 ? null : flavorId()))
          .execute()
      else if (step === 4)
        await trx
          .updateTable('migrations')
          .set({ alloc_host: hostOrNull(), alloc_flavor_id: flavorId() })
          .where('server_id', '=', id)
          .execute()
      else if (step === 5) await trx.deleteFrom('migrations').where('server_id', '=', id).execute()
      else {
        await trx.deleteFrom('migrations').where('server_id', '=', id).execute()
        await trx.deleteFrom('servers').where('id', '=', id).execute()
        ids.splice(ids.indexOf(id), 1)
      }
    })
    if (i % 25 === 0) await expectCounted(`after step ${i}`)
  }
  await expectCounted('at the end')
  const { counted } = await both()
  assert.ok(counted.size >= 2, 'the random writes left servers on several hosts')
})
