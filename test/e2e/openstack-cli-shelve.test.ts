// The everyday commands around snapshots and shelving, through Debian's `openstack` CLI against a
// real `skiff serve` (simulated driver): server suspend/resume, server image create, server backup
// create (with rotation), server shelve/unshelve; and rescue refused on a shelved server.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import { clientGate, Clients, type ServerView } from './helpers/clients.ts'
import { failed, ok } from './helpers/process.ts'
import { startSkiffProcess, type SkiffProcess } from './helpers/skiff-process.ts'

const gate = await clientGate(['openstack'])
const tag = `${process.pid}-${randomBytes(3).toString('hex')}`
const T = { timeout: 120_000 }

let skiff: SkiffProcess
let cli: Clients

describe('openstack server suspend/resume, image create, backup create, shelve/unshelve', { ...gate, concurrency: false }, () => {
  let id = ''
  before(async () => {
    skiff = await startSkiffProcess({ simulatedDelayMs: 20 })
    cli = new Clients(skiff)
    const s = await cli.createServer('demo', `shelf-${tag}`)
    id = s.id
  })
  after(async () => {
    await skiff?.stop()
  })

  const status = async () => (await cli.openstackJson<ServerView>('demo', ['server', 'show', id])).status
  const until = (want: string) => cli.waitForStatus('demo', id, want)

  test('server suspend → SUSPENDED, server resume → ACTIVE', T, async () => {
    ok(await cli.openstack('demo', ['server', 'suspend', id]))
    await until('SUSPENDED')
    ok(await cli.openstack('demo', ['server', 'resume', id]))
    await until('ACTIVE')
  })

  test('server image create --wait: an active snapshot image of the server', T, async () => {
    const img = await cli.openstackJson<Record<string, unknown>>('demo', [
      'server',
      'image',
      'create',
      '--name',
      `snap-${tag}`,
      '--wait',
      id,
    ])
    assert.equal(img.name, `snap-${tag}`)
    assert.equal((await cli.openstackJson<Record<string, unknown>>('demo', ['image', 'show', `snap-${tag}`])).status, 'active')
    const props = JSON.stringify(img.properties ?? img)
    assert.match(props, /image_type.{0,6}snapshot/)
    assert.match(props, new RegExp(id))
    await until('ACTIVE')
  })

  test('server backup create --rotate 1: the older daily backup is rotated out', T, async () => {
    const first = await cli.openstackJson<Record<string, unknown>>('demo', [
      'server',
      'backup',
      'create',
      '--name',
      `bk1-${tag}`,
      '--type',
      'daily',
      '--rotate',
      '1',
      '--wait',
      id,
    ])
    // The CLI prints the image as it found it before waiting: its status is read again after.
    assert.equal(first.name, `bk1-${tag}`)
    assert.equal((await cli.openstackJson<Record<string, unknown>>('demo', ['image', 'show', `bk1-${tag}`])).status, 'active')
    await until('ACTIVE')
    const second = await cli.openstackJson<Record<string, unknown>>('demo', [
      'server',
      'backup',
      'create',
      '--name',
      `bk2-${tag}`,
      '--type',
      'daily',
      '--rotate',
      '1',
      '--wait',
      id,
    ])
    assert.equal(second.name, `bk2-${tag}`)
    assert.equal((await cli.openstackJson<Record<string, unknown>>('demo', ['image', 'show', `bk2-${tag}`])).status, 'active')
    await until('ACTIVE')
    const names = (await cli.openstackJson<{ Name: string }[]>('demo', ['image', 'list'])).map((r) => r.Name)
    assert.ok(names.includes(`bk2-${tag}`), names.join(','))
    assert.ok(!names.includes(`bk1-${tag}`), names.join(','))
  })

  test('server shelve --wait → SHELVED_OFFLOADED; rescue refused as Nova; server unshelve --wait → ACTIVE', T, async () => {
    ok(await cli.openstack('demo', ['server', 'shelve', '--wait', id]))
    await until('SHELVED_OFFLOADED')
    const refused = failed(await cli.openstack('demo', ['server', 'rescue', id]))
    assert.match(refused.stderr, new RegExp(`Cannot 'rescue' instance ${id} while it is in vm_state shelved_offloaded`))
    ok(await cli.openstack('demo', ['server', 'unshelve', '--wait', id]))
    assert.equal(await status(), 'ACTIVE')
  })
})
