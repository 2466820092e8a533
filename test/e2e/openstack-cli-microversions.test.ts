// Debian's `openstack` CLI at the microversions where keypairs, flavors, server groups and compute
// services changed (--os-compute-api-version), against a real `skiff serve`.
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { clientGate, Clients } from './helpers/clients.ts'
import { ok } from './helpers/process.ts'
import { startSkiffProcess, type SkiffProcess } from './helpers/skiff-process.ts'
import { newEd25519PublicKey } from './helpers/ssh-keys.ts'

const gate = await clientGate(['openstack'])
const T = { timeout: 120_000 }
const at = (v: string, ...args: string[]) => ['--os-compute-api-version', v, ...args]

let skiff: SkiffProcess
let cli: Clients
let work: string

describe(
  'the openstack CLI at the microversions of keypairs, flavors, server groups, compute services',
  { ...gate, concurrency: false },
  () => {
    before(async () => {
      skiff = await startSkiffProcess({ simulatedDelayMs: 20 })
      cli = new Clients(skiff)
      work = mkdtempSync(path.join(tmpdir(), 'skiff-e2e-mv-'))
    })
    after(async () => {
      await skiff?.stop()
      if (work) rmSync(work, { recursive: true, force: true })
    })

    test('keypair create --type ssh (2.2), list (2.35), --user (2.10), create at 2.92 with a name holding @ and .', T, async () => {
      const key = newEd25519PublicKey('mv')
      const file = path.join(work, 'k.pub')
      writeFileSync(file, `${key.line}\n`)
      const kp = await cli.openstackJson('demo', at('2.2', 'keypair', 'create', '--public-key', file, '--type', 'ssh', 'mv-kp'))
      assert.equal(kp.type, 'ssh')
      assert.equal(kp.fingerprint, key.fingerprint)
      const listed = await cli.openstackJson<{ Name: string; Type: string }[]>('demo', at('2.35', 'keypair', 'list'))
      assert.deepEqual(
        listed.map((k) => [k.Name, k.Type]),
        [['mv-kp', 'ssh']],
      )
      const me = await cli.openstackJson<{ user_id: string }>('demo', ['token', 'issue'])
      const asAdmin = await cli.openstackJson<{ Name: string }[]>('admin', at('2.10', 'keypair', 'list', '--user', me.user_id))
      assert.deepEqual(
        asAdmin.map((k) => k.Name),
        ['mv-kp'],
      )
      const dotted = await cli.openstackJson('demo', at('2.92', 'keypair', 'create', '--public-key', file, 'me@host.example'))
      assert.equal(dotted.name, 'me@host.example')
      ok(await cli.openstack('demo', at('2.92', 'keypair', 'delete', 'me@host.example')))
    })

    test('flavor create --description (2.55), flavor set --description, flavor show with properties (2.61)', T, async () => {
      const f = await cli.openstackJson(
        'admin',
        at('2.55', 'flavor', 'create', '--ram', '64', '--disk', '1', '--vcpus', '1', '--description', 'tiny one', 'mv-flavor'),
      )
      assert.equal(f.description, 'tiny one')
      ok(await cli.openstack('admin', at('2.55', 'flavor', 'set', '--description', 'changed', 'mv-flavor')))
      ok(await cli.openstack('admin', at('2.61', 'flavor', 'set', '--property', 'hw:cpu_policy=shared', 'mv-flavor')))
      const shown = await cli.openstackJson('admin', at('2.61', 'flavor', 'show', 'mv-flavor'))
      assert.equal(shown.description, 'changed')
      assert.deepEqual(shown.properties, { 'hw:cpu_policy': 'shared' })
    })

    test('server group create --policy soft-anti-affinity (2.15), with --rule (2.64)', T, async () => {
      const soft = await cli.openstackJson('demo', at('2.15', 'server', 'group', 'create', '--policy', 'soft-anti-affinity', 'mv-soft'))
      assert.match(String(soft.policies ?? soft.policy), /soft-anti-affinity/)
      const ruled = await cli.openstackJson(
        'demo',
        at('2.64', 'server', 'group', 'create', '--policy', 'anti-affinity', '--rule', 'max_server_per_host=2', 'mv-rule'),
      )
      assert.equal(ruled.policy, 'anti-affinity')
      assert.match(JSON.stringify(ruled.rules), /max_server_per_host/)
    })

    test('compute service list (2.53: uuid ids), compute service set --disable (2.53) and --enable (2.11)', T, async () => {
      const services = await cli.openstackJson<{ ID: string; Host: string; Status: string }[]>(
        'admin',
        at('2.53', 'compute', 'service', 'list'),
      )
      assert.match(services[0]!.ID, /^[0-9a-f-]{36}$/)
      const host = services[0]!.Host
      ok(
        await cli.openstack(
          'admin',
          at('2.53', 'compute', 'service', 'set', '--disable', '--disable-reason', 'maint', host, 'nova-compute'),
        ),
      )
      const disabled = await cli.openstackJson<{ Status: string }[]>('admin', at('2.53', 'compute', 'service', 'list', '--long'))
      assert.equal(disabled[0]!.Status, 'disabled')
      ok(await cli.openstack('admin', at('2.11', 'compute', 'service', 'set', '--enable', host, 'nova-compute')))
      const enabled = await cli.openstackJson<{ Status: string }[]>('admin', at('2.11', 'compute', 'service', 'list'))
      assert.equal(enabled[0]!.Status, 'enabled')
    })
  },
)
