// The scheduler: a new server goes to a live host with room for its flavor (vCPUs, RAM, disk),
// the emptiest first; no room anywhere is Nova's "No valid host" fault. Runs on both dialects.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { startTestSkiff, waitFor, waitForStatus, type TestSkiff } from '../helpers/skiff.ts'

let skiff: TestSkiff
let admin: string
let imageId: string

before(async () => {
  // The in-process agent's host, skiff-1, has room for two m1.tiny (1 vCPU, 512 MB, 1 GB) and no more.
  skiff = await startTestSkiff({ hostVcpus: 2, hostRamMb: 1024, hostDiskGb: 100 })
  admin = await skiff.token('admin')
  const images = await skiff.apps.image.inject({ method: 'GET', url: '/v2/images?name=skiff-base', headers: { 'x-auth-token': admin } })
  imageId = images.json().images[0].id
})
after(async () => {
  await skiff?.close()
})

const create = async (name: string, flavorRef = '1') => {
  const res = await skiff.compute('POST', '/v2.1/servers', { token: admin, body: { server: { name, imageRef: imageId, flavorRef } } })
  assert.equal(res.statusCode, 202, res.body)
  return res.json().server.id as string
}
const show = async (id: string) => (await skiff.compute('GET', `/v2.1/servers/${id}`, { token: admin })).json().server

test('servers fill the hosts with room; a flavor that fits nowhere, or a full cloud, ends in ERROR with No valid host', async () => {
  const a = await create('a')
  await waitForStatus(skiff, admin, a, 'ACTIVE')
  assert.equal((await show(a))['OS-EXT-SRV-ATTR:host'], 'skiff-1')

  // A second host, with more free RAM: the next server goes there (no agent: it stays BUILD).
  const now = new Date().toISOString()
  await skiff.store.db
    .insertInto('hosts')
    .values({ name: 'skiff-2', started_at: now, heartbeat_at: now, driver: 'simulated', vcpus: 4, ram_mb: 4096, disk_gb: 100 })
    .execute()
  const b = await create('b')
  assert.equal((await show(b))['OS-EXT-SRV-ATTR:host'], 'skiff-2')

  // m1.medium (2 vCPUs, 4096 MB) fits on neither host now.
  const big = await show(await create('big', '3'))
  assert.equal(big.status, 'ERROR')
  assert.match(big.fault.message, /No valid host was found/)

  // Fill both: skiff-2 has 3 vCPUs and 3584 MB left, skiff-1 one of each; then nothing fits.
  const hosts: string[] = []
  for (let i = 0; i < 4; i++) hosts.push((await show(await create(`f${i}`)))['OS-EXT-SRV-ATTR:host'])
  assert.deepEqual(hosts.sort(), ['skiff-1', 'skiff-2', 'skiff-2', 'skiff-2'])
  const full = await show(await create('full'))
  assert.equal(full.status, 'ERROR')
  assert.match(full.fault.message, /No valid host was found/)

  // A deleted server gives its room back.
  assert.equal((await skiff.compute('DELETE', `/v2.1/servers/${a}`, { token: admin })).statusCode, 204)
  await waitFor(
    'the server to be gone',
    async () => (await skiff.compute('GET', `/v2.1/servers/${a}`, { token: admin })).statusCode === 404,
  )
  const c = await show(await create('c'))
  assert.equal(c['OS-EXT-SRV-ATTR:host'], 'skiff-1')
})

test('a host that stopped heartbeating gets no new servers', async () => {
  await skiff.store.db
    .updateTable('hosts')
    .set({ heartbeat_at: new Date(Date.now() - 3_600_000).toISOString(), vcpus: 100, ram_mb: 100_000 })
    .where('name', '=', 'skiff-2')
    .execute()
  const s = await show(await create('after-down'))
  assert.notEqual(s['OS-EXT-SRV-ATTR:host'], 'skiff-2')
})

test('server groups across hosts: anti-affinity spreads members over hosts, affinity keeps them on one', async () => {
  const other = await startTestSkiff()
  try {
    const token = await other.token('admin')
    const images = await other.apps.image.inject({ method: 'GET', url: '/v2/images?name=skiff-base', headers: { 'x-auth-token': token } })
    const imageRef = images.json().images[0].id
    const now = new Date().toISOString()
    await other.store.db
      .insertInto('hosts')
      .values({ name: 'skiff-2', started_at: now, heartbeat_at: now, driver: 'simulated', vcpus: 64, ram_mb: 65536, disk_gb: 1000 })
      .execute()
    const hostsOf = async (policy: string, n: number) => {
      const g = await other.compute('POST', '/v2.1/os-server-groups', {
        token,
        body: { server_group: { name: policy, policies: [policy] } },
      })
      assert.equal(g.statusCode, 200, g.body)
      const out: (string | null)[] = []
      for (let i = 0; i < n; i++) {
        const r = await other.compute('POST', '/v2.1/servers', {
          token,
          body: { server: { name: `${policy}-${i}`, imageRef, flavorRef: '1' }, 'os:scheduler_hints': { group: g.json().server_group.id } },
        })
        assert.equal(r.statusCode, 202, r.body)
        out.push((await other.compute('GET', `/v2.1/servers/${r.json().server.id}`, { token })).json().server['OS-EXT-SRV-ATTR:host'])
      }
      return out
    }
    const anti = await hostsOf('anti-affinity', 3)
    assert.deepEqual(anti.slice(0, 2).sort(), ['skiff-1', 'skiff-2'])
    assert.equal(anti[2], null, 'a third member has no host left: ERROR')
    const aff = await hostsOf('affinity', 3)
    assert.equal(new Set(aff).size, 1)
    assert.notEqual(aff[0], null)
  } finally {
    await other.close()
  }
})
