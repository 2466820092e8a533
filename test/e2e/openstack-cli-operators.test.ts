// An operator's commands through the real `openstack` and `nova` CLIs against one `skiff serve`:
// quotas (show, set, defaults), usage, hypervisors and their statistics, availability zones and
// aggregates (a server created in a zone lands on the aggregate's host), and resetting a
// server's state. Each command once, in order.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import { clientGate, Clients } from './helpers/clients.ts'
import { describeRun, ok } from './helpers/process.ts'
import { startSkiffProcess, type SkiffProcess } from './helpers/skiff-process.ts'

const gate = await clientGate(['openstack', 'nova'])
const tag = `${process.pid}-${randomBytes(3).toString('hex')}`
const T = { timeout: 120_000 }

let skiff: SkiffProcess
let cli: Clients

type Row = Record<string, unknown>

describe('operator commands of the openstack and nova CLIs against skiff serve', { ...gate, concurrency: false }, () => {
  let host = ''
  let serverId = ''

  before(async () => {
    skiff = await startSkiffProcess({ simulatedDelayMs: 20 })
    cli = new Clients(skiff)
  })
  after(async () => {
    await skiff?.stop()
  })

  test('quota show (demo): the defaults of its project', T, async () => {
    const q = await cli.openstackJson<Row>('demo', ['quota', 'show'])
    assert.equal(q.cores, 2000, JSON.stringify(q))
    assert.equal(q.instances, 1000)
    assert.equal(q.ram, 4096000)
    assert.equal(q['key-pairs'] ?? q.key_pairs, 100)
  })

  test('quota set --cores 4 demo (admin), then quota show --default is unchanged', T, async () => {
    ok(await cli.openstack('admin', ['quota', 'set', '--cores', '4', 'demo']))
    const q = await cli.openstackJson<Row>('admin', ['quota', 'show', 'demo'])
    assert.equal(q.cores, 4, JSON.stringify(q))
    const d = await cli.openstackJson<Row>('demo', ['quota', 'show', '--default'])
    assert.equal(d.cores, 2000, JSON.stringify(d))
  })

  test('hypervisor list, hypervisor show, hypervisor stats show', T, async () => {
    const list = await cli.openstackJson<Row[]>('admin', ['hypervisor', 'list'])
    assert.equal(list.length, 1, JSON.stringify(list))
    host = String(list[0]!['Hypervisor Hostname'])
    assert.equal(list[0]!.State, 'up')
    const show = await cli.openstackJson<Row>('admin', ['hypervisor', 'show', host])
    assert.equal(show.hypervisor_hostname, host, JSON.stringify(show))
    assert.equal(show.state, 'up')
    const stats = await cli.openstackJson<Row>('admin', ['hypervisor', 'stats', 'show'])
    assert.equal(stats.count, 1, JSON.stringify(stats))
    assert.equal(typeof stats.vcpus, 'number')
  })

  test('aggregate create --zone az1 agg1, aggregate add host, aggregate show; availability zone list has az1', T, async () => {
    const agg = `agg-${tag}`
    const created = await cli.openstackJson<Row>('admin', ['aggregate', 'create', '--zone', 'az1', agg])
    assert.equal(created.name, agg, JSON.stringify(created))
    assert.equal(created.availability_zone, 'az1')
    ok(await cli.openstack('admin', ['aggregate', 'add', 'host', agg, host]))
    const shown = await cli.openstackJson<Row>('admin', ['aggregate', 'show', agg])
    assert.deepEqual(shown.hosts, [host], JSON.stringify(shown))
    assert.equal(shown.availability_zone, 'az1')
    // --compute: Skiff has no network or volume service for the client to ask.
    const zones = await cli.openstackJson<Row[]>('demo', ['availability', 'zone', 'list', '--compute'])
    assert.ok(
      zones.some((z) => z['Zone Name'] === 'az1' && z['Zone Status'] === 'available'),
      JSON.stringify(zones),
    )
  })

  test('server create --availability-zone az1 lands on the aggregate host, in az1', T, async () => {
    const s = await cli.createServer('admin', `op-${tag}`, ['--availability-zone', 'az1'])
    serverId = s.id
    assert.equal(s.status, 'ACTIVE')
    assert.equal(s['OS-EXT-AZ:availability_zone'], 'az1', JSON.stringify(s))
    assert.equal(s['OS-EXT-SRV-ATTR:host'], host)
  })

  test('usage list (admin) and usage show (demo)', T, async () => {
    const list = await cli.openstackJson<Row[]>('admin', ['usage', 'list'])
    // The admin project's row: its server, with its flavor's figures.
    const mine = list.find((r) => Array.isArray(r.Servers) && (r.Servers as Row[]).some((s) => s.instance_id === serverId))
    assert.ok(mine, JSON.stringify(list))
    assert.ok(Number(mine['CPU Hours']) > 0)
    const show = await cli.openstackJson<Row>('demo', ['usage', 'show'])
    assert.ok('Servers' in show, JSON.stringify(show))
  })

  test('server set --state error, then nova reset-state --active', T, async () => {
    ok(await cli.openstack('admin', ['server', 'set', '--state', 'error', serverId]))
    const err = await cli.showServer('admin', serverId)
    assert.equal(err.status, 'ERROR')
    assert.equal(err['OS-EXT-STS:task_state'], null)
    const r = ok(await cli.nova('admin', ['reset-state', '--active', serverId]))
    assert.match(r.stdout, new RegExp(`Reset state for server ${serverId} succeeded; new state is active`), describeRun(r))
    const back = await cli.showServer('admin', serverId)
    assert.equal(back.status, 'ACTIVE')
    assert.equal(back['OS-EXT-STS:vm_state'], 'active')
  })
})
