// The version of a server row (migration 0017), on both dialects: every change of the row, and
// of every row its views show, bumps it, whoever writes (triggers, not the repositories); and
// every table that holds rows of a server is either among those or named here as not shown.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { sql, type RawBuilder } from 'kysely'
import { openStore, type Store } from '../../src/store/db.ts'
import { SERVER_VIEW_TABLES as TABLES_0017 } from '../../src/store/migrations-server-version.ts'
import { VOLUME_SERVER_VIEW_TABLES } from '../../src/store/migrations-volumes.ts'
import { freshDatabase, harnessDialect, type TestDatabase } from '../helpers/database.ts'
import { serverRow } from '../helpers/rows.ts'

/** Tables with a server_id that no server view shows (a change there need not bump the version). */
const NOT_SHOWN: Record<string, string> = {
  server_access: 'where SSH is reached: GET /servers/{id}/access, never the server view',
  rescues: "the rescue resource's own rows; the view shows the server's vm_state",
  simulator_faults: 'fault injection rules',
  migrations: "a server's moves (os-migrations); the view shows its flavor, host and states, from its own row",
  console_auth_tokens: 'serial console URL tokens (hashed), for the serial proxy; never in the server view',
  server_shelves: "the shelved image, time and host (Nova's system_metadata); the view shows the server's vm_state",
}

/** The tables whose rows bump their server's version: 0017's, and those added since with their own triggers. */
const SERVER_VIEW_TABLES = [...TABLES_0017, ...VOLUME_SERVER_VIEW_TABLES] as const

let database: TestDatabase
let store: Store
const ID = '11111111-2222-4333-8444-555555555555'
const OTHER = '11111111-2222-4333-8444-666666666666'

const row = (id: string) => serverRow(id, { name: 'v', hostname: 'v' })

before(async () => {
  database = await freshDatabase()
  store = await openStore(database.url)
  await store.db
    .insertInto('servers')
    .values([row(ID), row(OTHER)])
    .execute()
})
after(async () => {
  await store?.close()
  await database?.drop()
})

const version = async (id = ID) =>
  Number((await store.db.selectFrom('servers').select('version').where('id', '=', id).executeTakeFirstOrThrow()).version)

/** Runs `write`; asserts the version of ID went up (or stayed, `bumps` false) and OTHER's did not move. */
async function expectBump(what: string, write: () => Promise<unknown>, bumps = true) {
  const [before, other] = [await version(), await version(OTHER)]
  await write()
  const after = await version()
  if (bumps) assert.ok(after > before, `${what}: version ${before} → ${after}`)
  else assert.equal(after, before, `${what}: version moved`)
  assert.equal(await version(OTHER), other, `${what}: another server's version moved`)
}

test('a new server starts at 0; any update of its row bumps it', async () => {
  assert.equal(await version(), 0)
  const db = store.db
  await expectBump('name', () => db.updateTable('servers').set({ name: 'w' }).where('id', '=', ID).execute())
  await expectBump('status', () => db.updateTable('servers').set({ task_state: 'rebooting' }).where('id', '=', ID).execute())
  await expectBump('metadata', () => db.updateTable('servers').set({ metadata: '{"a":"b"}' }).where('id', '=', ID).execute())
  await expectBump('locked', () => db.updateTable('servers').set({ locked: 1 }).where('id', '=', ID).execute())
  // An update that writes the same values is an update too.
  await expectBump('same values', () => db.updateTable('servers').set({ locked: 1 }).where('id', '=', ID).execute())
})

test('rows its views show: insert, update and delete each bump the version', async () => {
  const db = store.db
  const now = '2026-12-01T00:00:01.000Z'
  await expectBump('address in', () =>
    db.insertInto('fixed_ips').values({ address: '10.0.0.3', server_id: ID, mac: 'fa:16:3e:00:00:01', allocated_at: now }).execute(),
  )
  await expectBump('address changed', () =>
    db.updateTable('fixed_ips').set({ mac: 'fa:16:3e:00:00:02' }).where('server_id', '=', ID).execute(),
  )
  await expectBump('address out', () => db.deleteFrom('fixed_ips').where('server_id', '=', ID).execute())
  await expectBump('fault', () =>
    db.insertInto('instance_faults').values({ id: 'f1', server_id: ID, code: 500, message: 'm', details: 'd', created_at: now }).execute(),
  )
  await expectBump('fault gone', () => db.deleteFrom('instance_faults').where('id', '=', 'f1').execute())
  await expectBump('tag', () => db.insertInto('server_tags').values({ server_id: ID, tag: 't' }).execute())
  await expectBump('tag gone', () => db.deleteFrom('server_tags').where('server_id', '=', ID).execute())
  await expectBump('group', () => db.insertInto('server_group_members').values({ group_id: 'g', server_id: ID }).execute())
  await expectBump('group gone', () => db.deleteFrom('server_group_members').where('server_id', '=', ID).execute())
  await expectBump('boot data', () =>
    db.insertInto('server_boot_data').values({ server_id: ID, key_data: null, user_data: 'eA==' }).execute(),
  )
  await expectBump('user data', () => db.updateTable('server_boot_data').set({ user_data: 'eQ==' }).where('server_id', '=', ID).execute())
  await expectBump('boot data gone', () => db.deleteFrom('server_boot_data').where('server_id', '=', ID).execute())
  const action = {
    id: 'a1',
    server_id: ID,
    action: 'reboot',
    request_id: 'req-1',
    user_id: 'u',
    project_id: 'p',
    start_time: now,
    updated_at: now,
    message: null,
  }
  await expectBump('action', () => db.insertInto('instance_actions').values(action).execute())
  await expectBump('action start', () =>
    db.updateTable('instance_actions').set({ start_time: '2026-12-01T00:00:02.000Z' }).where('id', '=', 'a1').execute(),
  )
  // Its message and update time are not in the server's view.
  await expectBump(
    'action message',
    () => db.updateTable('instance_actions').set({ message: 'Error', updated_at: now }).where('id', '=', 'a1').execute(),
    false,
  )
  const attachment = {
    id: 'att1',
    bdm_uuid: 'bdm1',
    volume_id: 'vol1',
    server_id: ID,
    device: '/dev/vdb',
    tag: null,
    delete_on_termination: 0,
    boot_index: null,
    status: 'attaching' as const,
    attached_at: null,
    created_at: now,
  }
  await expectBump('volume attached', () => db.insertInto('volume_attachments').values(attachment).execute())
  await expectBump('attachment status', () =>
    db.updateTable('volume_attachments').set({ status: 'attached' }).where('id', '=', 'att1').execute(),
  )
  await expectBump('volume detached', () => db.deleteFrom('volume_attachments').where('id', '=', 'att1').execute())
  // A row moved to another server bumps both.
  const other = await version(OTHER)
  await db.updateTable('server_tags').set({ server_id: OTHER }).where('server_id', '=', ID).execute() // none: no bump
  await db.insertInto('server_tags').values({ server_id: ID, tag: 'moving' }).execute()
  const mine = await version()
  await db.updateTable('server_tags').set({ server_id: OTHER }).where('server_id', '=', ID).execute()
  assert.ok((await version()) > mine)
  assert.ok((await version(OTHER)) > other)
})

test('every table with rows of a server is bumped by the triggers or named as not shown', async () => {
  const tables = await store.db.introspection.getTables()
  const withServer = tables.filter((t) => t.columns.some((c) => c.name === 'server_id')).map((t) => t.name)
  for (const t of withServer) {
    assert.ok(
      (SERVER_VIEW_TABLES as readonly string[]).includes(t) || NOT_SHOWN[t],
      `${t} holds rows of a server: bump the version (migration) or say why not`,
    )
  }
  for (const t of SERVER_VIEW_TABLES) assert.ok(withServer.includes(t), t)
})

test(
  'SQLite reads the refs and addresses of a page of servers from covering indexes',
  { skip: harnessDialect() !== 'sqlite' },
  async () => {
    const plan = async (q: RawBuilder<unknown>) =>
      (await sql<{ detail: string }>`explain query plan ${q}`.execute(store.db)).rows.map((r) => r.detail).join('\n')
    assert.match(
      await plan(sql`select server_id, address, mac from fixed_ips where server_id in (${ID}, ${OTHER}) order by allocated_at`),
      /USING COVERING INDEX fixed_ips_server_covering/,
    )
    assert.match(
      await plan(
        sql`select id, project_id, version, flavor_id, host from servers where project_id = ${'p'} and deleted = ${0} order by created_at desc, id desc`,
      ),
      /USING COVERING INDEX servers_refs/,
    )
  },
)
