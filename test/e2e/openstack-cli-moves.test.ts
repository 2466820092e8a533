// The commands that move or resize a server, through Debian's `openstack` and `nova` CLIs against a
// real `skiff serve` with two simulated hosts: server resize / resize confirm / resize revert,
// server migrate (cold, then confirmed), server migrate --live-migration, server migration list,
// server migration abort and force complete (a live migration the simulator holds in its copy),
// and nova evacuate once an admin forced the server's host down.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { after, before, describe, test } from 'node:test'
import { clientGate, Clients, type ServerView } from './helpers/clients.ts'
import { ok } from './helpers/process.ts'
import { openrcToken, startSkiffProcess, type SkiffProcess } from './helpers/skiff-process.ts'

const gate = await clientGate(['openstack', 'nova'])
const tag = `${process.pid}-${randomBytes(3).toString('hex')}`
const T = { timeout: 180_000 }

let skiff: SkiffProcess
let cli: Clients

type Viewed = ServerView & { 'OS-EXT-SRV-ATTR:host'?: string; flavor?: { original_name?: string; name?: string } }

describe('openstack server resize, migrate, live migration, migration list; nova evacuate', { ...gate, concurrency: false }, () => {
  let id = ''
  before(async () => {
    skiff = await startSkiffProcess({ simulatedDelayMs: 20, extraArgs: ['--simulated-hosts', '2'] })
    cli = new Clients(skiff)
    id = (await cli.createServer('demo', `mv-${tag}`)).id
  })
  after(async () => {
    await skiff?.stop()
  })

  /** The server as an admin sees it (host included), once it is `want` with no task. */
  const until = async (want: string) => (await cli.waitForStatus('admin', id, want)) as Viewed
  const flavorName = (s: Viewed) => (typeof s.flavor === 'string' ? s.flavor : (s.flavor?.original_name ?? s.flavor?.name ?? ''))

  test('server resize --flavor m1.small → VERIFY_RESIZE; resize confirm → ACTIVE on m1.small', T, async () => {
    ok(await cli.openstack('demo', ['server', 'resize', '--flavor', 'm1.small', '--wait', id]))
    assert.match(flavorName(await until('VERIFY_RESIZE')), /m1\.small/)
    ok(await cli.openstack('demo', ['server', 'resize', 'confirm', id]))
    assert.match(flavorName(await until('ACTIVE')), /m1\.small/)
  })

  test('server resize --flavor m1.medium, then resize revert → ACTIVE, back on m1.small', T, async () => {
    ok(await cli.openstack('demo', ['server', 'resize', '--flavor', 'm1.medium', '--wait', id]))
    await until('VERIFY_RESIZE')
    ok(await cli.openstack('demo', ['server', 'resize', 'revert', id]))
    assert.match(flavorName(await until('ACTIVE')), /m1\.small/)
  })

  test('server migrate (admin) → the other host, confirmed; a member is refused', T, async () => {
    const from = (await until('ACTIVE'))['OS-EXT-SRV-ATTR:host']
    const refused = await cli.openstack('demo', ['server', 'migrate', id])
    assert.notEqual(refused.code, 0)
    assert.match(refused.stderr, /Policy doesn't allow os_compute_api:os-migrate-server:migrate to be performed/)
    ok(await cli.openstack('admin', ['server', 'migrate', '--wait', id]))
    await until('VERIFY_RESIZE')
    ok(await cli.openstack('admin', ['server', 'resize', 'confirm', id]))
    const moved = await until('ACTIVE')
    assert.ok(moved['OS-EXT-SRV-ATTR:host'] && moved['OS-EXT-SRV-ATTR:host'] !== from, `still on ${from}`)
  })

  test(
    'server migrate --live-migration (admin) → ACTIVE on the other host; server migration list (2.23) shows the moves by type',
    T,
    async () => {
      const from = (await until('ACTIVE'))['OS-EXT-SRV-ATTR:host']
      ok(await cli.openstack('admin', ['server', 'migrate', '--live-migration', '--wait', id]))
      const moved = await until('ACTIVE')
      assert.ok(moved['OS-EXT-SRV-ATTR:host'] && moved['OS-EXT-SRV-ATTR:host'] !== from, `still on ${from}`)
      // The type of a move is shown from 2.23 (migration_type).
      const list = await cli.openstackJson<Record<string, unknown>[]>('admin', [
        '--os-compute-api-version',
        '2.23',
        'server',
        'migration',
        'list',
        '--server',
        id,
      ])
      const types = list.map((m) => m['Type'])
      assert.ok(types.includes('migration'), JSON.stringify(list))
      assert.ok(types.includes('live-migration'), JSON.stringify(list))
    },
  )

  test('server migration abort (2.24) and force complete (2.22) of a live migration the simulator holds in its copy', T, async () => {
    const token = await openrcToken(skiff.urls.identity, skiff.openrc.admin)
    const api = async (method: string, p: string, body?: unknown) => {
      const res = await fetch(`${skiff.urls.compute}${p}`, {
        method,
        headers: { 'x-auth-token': token, 'content-type': 'application/json', 'openstack-api-version': 'compute 2.80' },
        body: body === undefined ? undefined : JSON.stringify(body),
      })
      return { status: res.status, body: (await res.json().catch(() => ({}))) as Record<string, any> }
    }
    /** A live migration of the server, its copy hung by the simulator until an admin acts; its id once `running`. */
    const held = async () => {
      const fault = await api('POST', '/os-simulator/faults', { fault: { operation: 'liveMigrate', server_id: id, hang: true, count: 1 } })
      assert.equal(fault.status, 201, JSON.stringify(fault.body))
      ok(await cli.openstack('admin', ['server', 'migrate', '--live-migration', id]))
      for (const t0 = Date.now(); Date.now() - t0 < 60_000; await sleep(100)) {
        const m = (await api('GET', `/os-migrations?instance_uuid=${id}&migration_type=live-migration`)).body.migrations[0]
        if (m?.status === 'running') return String(m.id)
      }
      throw new Error('the live migration did not reach running')
    }
    const status = async (mid: string) =>
      (await api('GET', `/os-migrations?instance_uuid=${id}&migration_type=live-migration`)).body.migrations.find(
        (m: { id: number }) => String(m.id) === mid,
      )?.status
    const from = (await until('ACTIVE'))['OS-EXT-SRV-ATTR:host']
    const aborted = await held()
    ok(await cli.openstack('admin', ['--os-compute-api-version', '2.24', 'server', 'migration', 'abort', id, aborted]))
    const stayed = await until('ACTIVE')
    assert.equal(stayed['OS-EXT-SRV-ATTR:host'], from, 'an aborted live migration leaves the server where it was')
    assert.equal(await status(aborted), 'cancelled')
    const forced = await held()
    ok(await cli.openstack('admin', ['--os-compute-api-version', '2.22', 'server', 'migration', 'force', 'complete', id, forced]))
    const moved = await until('ACTIVE')
    assert.ok(moved['OS-EXT-SRV-ATTR:host'] && moved['OS-EXT-SRV-ATTR:host'] !== from, `still on ${from}`)
    assert.equal(await status(forced), 'completed')
  })

  test('nova evacuate: refused while the host is up; once forced down, ACTIVE on the other host', T, async () => {
    const from = (await until('ACTIVE'))['OS-EXT-SRV-ATTR:host']!
    const up = await cli.nova('admin', ['evacuate', id])
    assert.notEqual(up.code, 0)
    assert.match(up.stderr, new RegExp(`Compute service of ${from} is still in use`))
    ok(await cli.openstack('admin', ['--os-compute-api-version', '2.11', 'compute', 'service', 'set', '--down', from, 'nova-compute']))
    try {
      ok(await cli.nova('admin', ['evacuate', id]))
      const moved = await until('ACTIVE')
      assert.notEqual(moved['OS-EXT-SRV-ATTR:host'], from)
    } finally {
      ok(await cli.openstack('admin', ['--os-compute-api-version', '2.11', 'compute', 'service', 'set', '--up', from, 'nova-compute']))
    }
  })
})
