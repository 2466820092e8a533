// Creates racing each other (several connections on PostgreSQL): the last room of a host is
// given once, and no two servers get the same address.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { startTestSkiff, waitFor, type TestSkiff } from '../helpers/skiff.ts'

let skiff: TestSkiff

before(async () => {
  skiff = await startTestSkiff({ hostVcpus: 10, actionRateLimit: 0 })
})
after(async () => {
  await skiff?.close()
})

test('30 creates at once on a host with room for 10: 10 placed, 20 No valid host, every address distinct', async () => {
  const admin = await skiff.token('admin')
  const images = await skiff.apps.image.inject({ method: 'GET', url: '/v2/images?name=skiff-base', headers: { 'x-auth-token': admin } })
  const imageRef = images.json().images[0].id
  const created = await Promise.all(
    Array.from({ length: 30 }, (_, i) =>
      skiff.compute('POST', '/v2.1/servers', { token: admin, body: { server: { name: `c${i}`, imageRef, flavorRef: '1' } } }),
    ),
  )
  for (const r of created) assert.equal(r.statusCode, 202, r.body)
  // Each settled: ACTIVE on the host, or ERROR for want of one (the agent gives the placed ones their addresses as it boots them).
  const servers = await waitFor('every server settled', async () => {
    const all = await Promise.all(
      created.map(async (r) => (await skiff.compute('GET', `/v2.1/servers/${r.json().server.id}`, { token: admin })).json().server),
    )
    return all.every((s) => s.status === 'ACTIVE' || s.status === 'ERROR') && all
  })
  const placed = servers.filter((s) => s['OS-EXT-SRV-ATTR:host'] === 'skiff-1')
  assert.equal(placed.length, 10)
  assert.equal(servers.filter((s) => s.status === 'ERROR' && /No valid host/.test(s.fault?.message ?? '')).length, 20)
  const addresses = servers.flatMap((s) =>
    Object.values(s.addresses as Record<string, { addr: string }[]>)
      .flat()
      .map((a) => a.addr),
  )
  assert.equal(new Set(addresses).size, addresses.length)
  assert.equal(addresses.length, 30)
})
