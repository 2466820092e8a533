// The real `openstack` and `nova` CLIs (Debian's python3-openstackclient 6 and novaclient) at the
// microversions people ask for — 2.1, 2.26, 2.47, 2.79, 2.87 and 2.92, the highest Debian's
// clients know — against a real `skiff serve`: create, show, list, tags (from 2.26; below, the
// clients themselves refuse), rescue, unrescue, delete. openstacksdk's default negotiation is
// rescue-clients.test.ts's. One version after the other; states are polled over HTTP (a CLI run
// takes seconds).
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import { clientGate, Clients, type ServerView } from './helpers/clients.ts'
import { ok, pollUntil } from './helpers/process.ts'
import { openrcToken, startSkiffProcess, type SkiffProcess } from './helpers/skiff-process.ts'

const gate = await clientGate(['openstack', 'nova'])
const tag = `${process.pid}-${randomBytes(3).toString('hex')}`
const T = { timeout: 600_000 }
/** One CLI run's deadline: the clients take seconds each, more on a loaded machine. */
const CLI = { timeoutMs: 240_000 }

let skiff: SkiffProcess
let cli: Clients

/** Has the version this change (the same gates as src/api/microversion-changes.ts, by number). */
const since = (v: string, minor: number) => Number(v.split('.')[1]) >= minor
const VERSIONS = ['2.1', '2.26', '2.47', '2.79', '2.87', '2.92']

describe('the openstack and nova CLIs at microversions 2.1, 2.26, 2.47, 2.79, 2.87, 2.92', { ...gate, concurrency: false }, () => {
  before(async () => {
    skiff = await startSkiffProcess({ simulatedDelayMs: 20 })
    cli = new Clients(skiff)
  })
  after(async () => {
    await skiff?.stop()
  })

  /** The server's status, read over HTTP (a CLI per poll is seconds each). */
  async function waitStatus(id: string, status: string) {
    const token = await openrcToken(skiff.urls.identity, skiff.openrc.demo)
    await pollUntil(
      `server ${id} to be ${status}`,
      async () => {
        const res = await fetch(`${skiff.urls.compute}/servers/${id}`, { headers: { 'x-auth-token': token } })
        const s = ((await res.json()) as { server: { status: string; 'OS-EXT-STS:task_state': string | null } }).server
        return s.status === status && !s['OS-EXT-STS:task_state'] ? s : undefined
      },
      { timeoutMs: 60_000, intervalMs: 50 },
    )
  }

  for (const v of VERSIONS) {
    test(`--os-compute-api-version ${v}: server create, show, list, set/unset --tag, rescue, unrescue, delete`, T, async () => {
      const os = (args: string[]) => ['--os-compute-api-version', v, ...args]
      const name = `mv-${v.replace('.', '-')}-${tag}`
      const create = ['server', 'create', '--image', 'skiff-base', '--flavor', 'm1.tiny']
      if (since(v, 37)) create.push('--nic', 'none')
      if (since(v, 52)) create.push('--tag', 'first')
      const id = (await cli.openstackJson<ServerView>('demo', os([...create, name]), CLI)).id
      await waitStatus(id, 'ACTIVE')
      const listed = await cli.openstackJson<Record<string, unknown>[]>('demo', os(['server', 'list', '--name', name]), CLI)
      assert.deepEqual(
        listed.map((r) => r.ID),
        [id],
      )
      if (!since(v, 26)) {
        // Tags are 2.26's: the CLI refuses before asking.
        const refused = await cli.openstack('demo', os(['server', 'set', '--tag', 'second', id]), CLI)
        assert.notEqual(refused.code, 0)
        assert.match(refused.stderr, /2\.26 or greater is required/)
        const shown = await cli.openstackJson<ServerView>('demo', os(['server', 'show', id]), CLI)
        assert.equal(shown.name, name)
        assert.equal(shown.flavor, 'm1.tiny (1)')
        assert.equal(shown.tags, undefined)
      }
      if (since(v, 26)) {
        ok(await cli.openstack('demo', os(['server', 'set', '--tag', 'second', id]), CLI))
        const shown = await cli.openstackJson<ServerView>('demo', os(['server', 'show', id]), CLI)
        assert.equal(shown.name, name)
        // 2.47: the flavor itself (OSC shows its fields); below, a link (OSC shows name and id).
        if (since(v, 47)) assert.equal((shown.flavor as { original_name: string }).original_name, 'm1.tiny', JSON.stringify(shown.flavor))
        else assert.equal(shown.flavor, 'm1.tiny (1)')
        assert.deepEqual(shown.tags, since(v, 52) ? ['first', 'second'] : ['second'])
        if (since(v, 90)) assert.equal(shown['OS-EXT-SRV-ATTR:hostname'], name.toLowerCase())
        const tagged = await cli.openstackJson<Record<string, unknown>[]>('demo', os(['server', 'list', '--tags', 'second']), CLI)
        assert.deepEqual(
          tagged.map((r) => r.ID),
          [id],
        )
        ok(await cli.openstack('demo', os(['server', 'unset', '--tag', 'second', id]), CLI))
      }
      ok(await cli.openstack('demo', os(['server', 'rescue', id]), CLI))
      await waitStatus(id, 'RESCUE')
      ok(await cli.openstack('demo', os(['server', 'unrescue', id]), CLI))
      await waitStatus(id, 'ACTIVE')
      ok(await cli.openstack('demo', os(['server', 'delete', id]), CLI))
    })
  }

  for (const v of VERSIONS) {
    test(`nova --os-compute-api-version ${v}: boot, show, list, server-tag-add/-list, rescue, unrescue, delete`, T, async () => {
      const name = `mv-nova-${v.replace('.', '-')}-${tag}`
      const nova = (args: string[]) => cli.nova('demo', ['--os-compute-api-version', v, ...args], CLI)
      // `--nic none` is 2.37's; below it the server gets the default network.
      const boot = ['boot', '--image', 'skiff-base', '--flavor', 'm1.tiny', ...(since(v, 37) ? ['--nic', 'none'] : []), '--poll', name]
      ok(await nova(boot))
      const show = ok(await nova(['show', name])).stdout
      const id = /\| id\s+\| ([0-9a-f-]{36}) /.exec(show)![1]!
      if (since(v, 73)) assert.match(show, /\| locked_reason\s+\| -\s+\|/)
      if (since(v, 47)) assert.match(show, /\| flavor:original_name\s+\| m1\.tiny\s+\|/)
      else assert.match(show, /\| flavor\s+\| m1\.tiny \(1\)\s+\|/)
      assert.match(ok(await nova(['list', '--name', name])).stdout, new RegExp(id))
      if (since(v, 26)) {
        ok(await nova(['server-tag-add', name, 'first']))
        assert.match(ok(await nova(['server-tag-list', name])).stdout, /\| first \|/)
      }
      ok(await nova(['rescue', name]))
      await waitStatus(id, 'RESCUE')
      ok(await nova(['unrescue', name]))
      await waitStatus(id, 'ACTIVE')
      ok(await nova(['delete', name]))
    })
  }
})
