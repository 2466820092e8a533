// Block storage through Debian's `openstack` CLI (cinderclient underneath for volumes, novaclient
// for the attachment) against a real `skiff serve` (simulated driver): volume create, list, show,
// set (name, property, size), snapshot create and delete, server add volume / remove volume, and
// volume delete. The CLI finds the service in the catalog (volumev3) at /v3/{project_id}.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import { clientGate, Clients } from './helpers/clients.ts'
import { failed, ok, pollUntil } from './helpers/process.ts'
import { startSkiffProcess, type SkiffProcess } from './helpers/skiff-process.ts'

const gate = await clientGate(['openstack'])
const tag = `${process.pid}-${randomBytes(3).toString('hex')}`
const T = { timeout: 120_000 }

let skiff: SkiffProcess
let cli: Clients

type VolumeView = Record<string, unknown> & { id: string; status: string; size: number; name: string }

describe('openstack volume ... and server add/remove volume', { ...gate, concurrency: false }, () => {
  let server = ''
  let volume = ''
  before(async () => {
    skiff = await startSkiffProcess({ simulatedDelayMs: 20 })
    cli = new Clients(skiff)
    const s = await cli.createServer('demo', `vsrv-${tag}`)
    server = s.id
  })
  after(async () => {
    await skiff?.stop()
  })

  const show = (ref: string) => cli.openstackJson<VolumeView>('demo', ['volume', 'show', ref])
  const until = (ref: string, status: string) =>
    pollUntil(`volume ${ref} to be ${status}`, async () => {
      const v = await show(ref)
      if (v.status === 'error') throw new Error(`volume ${ref} went to error`)
      return v.status === status ? v : undefined
    })

  test('volume create --size 1: creating, then available; list and show find it by name', T, async () => {
    const v = await cli.openstackJson<VolumeView>('demo', ['volume', 'create', '--size', '1', `v1-${tag}`])
    volume = v.id
    assert.equal(v.size, 1)
    assert.equal(v.name, `v1-${tag}`)
    await until(`v1-${tag}`, 'available')
    const list = await cli.openstackJson<{ ID: string; Name: string; Status: string; Size: number }[]>('demo', ['volume', 'list'])
    const row = list.find((r) => r.ID === volume)
    assert.ok(row, JSON.stringify(list))
    assert.equal(row.Status, 'available')
    const shown = await show(`v1-${tag}`)
    assert.equal(shown.id, volume)
    assert.equal(shown.type, '__DEFAULT__')
  })

  test('volume set: name, property and size', T, async () => {
    ok(await cli.openstack('demo', ['volume', 'set', '--name', `v1b-${tag}`, '--property', 'purpose=test', volume]))
    let v = await show(volume)
    assert.equal(v.name, `v1b-${tag}`)
    assert.match(JSON.stringify(v.properties), /purpose.{0,6}test/)
    ok(await cli.openstack('demo', ['volume', 'set', '--size', '2', volume]))
    v = await pollUntil('extended', async () => {
      const x = await show(volume)
      return x.size === 2 && x.status === 'available' ? x : undefined
    })
    assert.equal(v.size, 2)
  })

  test('volume snapshot create, list, delete', T, async () => {
    const s = await cli.openstackJson<Record<string, unknown>>('demo', ['volume', 'snapshot', 'create', '--volume', volume, `s1-${tag}`])
    assert.equal(s.name, `s1-${tag}`)
    await pollUntil('snapshot available', async () => {
      const x = await cli.openstackJson<Record<string, unknown>>('demo', ['volume', 'snapshot', 'show', `s1-${tag}`])
      return x.status === 'available' ? x : undefined
    })
    const list = await cli.openstackJson<{ Name: string }[]>('demo', ['volume', 'snapshot', 'list'])
    assert.ok(list.some((x) => x.Name === `s1-${tag}`))
    // A volume with a snapshot cannot be deleted (Cinder's 400).
    const r = failed(await cli.openstack('demo', ['volume', 'delete', volume]))
    assert.match(r.stderr + r.stdout, /have snapshots/)
    ok(await cli.openstack('demo', ['volume', 'snapshot', 'delete', `s1-${tag}`]))
    await pollUntil('snapshot gone', async () => {
      const l = await cli.openstackJson<{ Name: string }[]>('demo', ['volume', 'snapshot', 'list'])
      return !l.some((x) => x.Name === `s1-${tag}`)
    })
  })

  test('server add volume: in-use, attached to the server; server remove volume: available', T, async () => {
    ok(await cli.openstack('demo', ['server', 'add', 'volume', server, volume]))
    const v = await until(volume, 'in-use')
    assert.match(JSON.stringify(v.attachments), new RegExp(server))
    const s = await cli.showServer('demo', server)
    assert.match(JSON.stringify(s), new RegExp(volume))
    // Rescued: Nova's 409.
    ok(await cli.openstack('demo', ['server', 'rescue', server]))
    await cli.waitForStatus('demo', server, 'RESCUE')
    const refused = failed(await cli.openstack('demo', ['server', 'remove', 'volume', server, volume]))
    assert.match(refused.stderr, /Cannot 'detach_volume' instance .* while it is in vm_state rescued/)
    ok(await cli.openstack('demo', ['server', 'unrescue', server]))
    await cli.waitForStatus('demo', server, 'ACTIVE')
    ok(await cli.openstack('demo', ['server', 'remove', 'volume', server, volume]))
    await until(volume, 'available')
  })

  test('volume delete: gone from the list', T, async () => {
    ok(await cli.openstack('demo', ['volume', 'delete', volume]))
    await pollUntil('volume gone', async () => {
      const list = await cli.openstackJson<{ ID: string }[]>('demo', ['volume', 'list'])
      return !list.some((r) => r.ID === volume)
    })
  })

  test('server create --boot-from-volume: ACTIVE on a new volume; rescue refused at 2.1 in Nova words', T, async () => {
    const s = await cli.createServer('demo', `bfv-${tag}`, ['--boot-from-volume', '1'])
    assert.equal(s.status, 'ACTIVE')
    const shown = await cli.showServer('demo', s.id)
    assert.match(String(shown.image), /booted from volume/i)
    const root = /id\W{1,4}([0-9a-f-]{36})/.exec(JSON.stringify(shown.volumes_attached))?.[1]
    assert.ok(root, JSON.stringify(shown.volumes_attached))
    const v = await show(root)
    assert.equal(v.status, 'in-use')
    assert.equal(v.bootable, 'true')
    const r = failed(await cli.openstack('demo', ['server', 'rescue', s.id]))
    assert.match(r.stderr, /Cannot rescue a volume-backed instance/)
    ok(await cli.openstack('demo', ['server', 'delete', '--wait', s.id]))
    await until(root, 'available')
  })

  test('a reader may list volumes but not create one', T, async () => {
    ok(await cli.openstack('reader', ['volume', 'list']))
    const r = failed(await cli.openstack('reader', ['volume', 'create', '--size', '1', `r-${tag}`]))
    assert.match(r.stderr, /Policy doesn't allow volume:create to be performed/)
  })
})
