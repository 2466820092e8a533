// ips, os-virtual-interfaces, os-server-password, forceDelete/restore, security groups on
// create, canonical access IPs, the rebuild view, and DELETE with an empty JSON body.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { startTestSkiff, waitForStatus, type TestSkiff } from '../helpers/skiff.ts'

let skiff: TestSkiff
let demo: string
let imageRef: string
let serverId: string
const UNKNOWN = '5f0d4a3e-1b2c-4d5e-8f90-a1b2c3d4e5f6'

const action = (id: string, body: unknown) => skiff.compute('POST', `/v2.1/servers/${id}/action`, { token: demo, body })
const create = (server: Record<string, unknown>) =>
  skiff.compute('POST', '/v2.1/servers', { token: demo, body: { server: { name: 's', imageRef, flavorRef: '1', ...server } } })

before(async () => {
  skiff = await startTestSkiff()
  demo = await skiff.token('demo')
  const images = await skiff.apps.image.inject({ method: 'GET', url: '/v2/images?name=skiff-base', headers: { 'x-auth-token': demo } })
  imageRef = images.json().images[0].id
  serverId = (await create({ accessIPv6: '0000:0000:0000:0000:0000:babe:220.12.22.2' })).json().server.id
  await waitForStatus(skiff, demo, serverId, 'ACTIVE')
})
after(() => skiff.close())

test('ips lists the addresses without extension keys; by network, or 404', async () => {
  const server = (await skiff.compute('GET', `/v2.1/servers/${serverId}`, { token: demo })).json().server
  const res = await skiff.compute('GET', `/v2.1/servers/${serverId}/ips`, { token: demo })
  assert.equal(res.statusCode, 200)
  const { addresses } = res.json()
  assert.deepEqual(Object.keys(addresses), ['private'])
  assert.deepEqual(
    addresses.private,
    server.addresses.private.map((a: { version: number; addr: string }) => ({ version: a.version, addr: a.addr })),
  )
  assert.deepEqual((await skiff.compute('GET', `/v2.1/servers/${serverId}/ips/private`, { token: demo })).json(), {
    private: addresses.private,
  })
  const other = await skiff.compute('GET', `/v2.1/servers/${serverId}/ips/public`, { token: demo })
  assert.deepEqual(other.json(), { itemNotFound: { code: 404, message: 'Instance is not a member of specified network' } })
  assert.equal((await skiff.compute('GET', `/v2.1/servers/${UNKNOWN}/ips`, { token: demo })).statusCode, 404)
  const badUrl = await skiff.compute('GET', `/v2.1/servers/${serverId}/ips/%ZZ`, { token: demo })
  assert.equal(badUrl.statusCode, 400)
  assert.equal(badUrl.json().badRequest.code, 400)
})

test('os-virtual-interfaces is Gone, as in Nova Zed at every version (before any lookup)', async () => {
  for (const version of ['2.1', '2.43', '2.44', '2.93']) {
    for (const id of [serverId, UNKNOWN]) {
      const res = await skiff.compute('GET', `/v2.1/servers/${id}/os-virtual-interfaces`, {
        token: demo,
        headers: { 'openstack-api-version': `compute ${version}` },
      })
      assert.equal(res.statusCode, 410)
      assert.deepEqual(res.json(), {
        computeFault: { code: 410, message: 'This resource is no longer available.  No forwarding address is given.' },
      })
    }
  }
})

test('os-server-password is "" until a guest leaves one; clearing answers 204', async () => {
  const res = await skiff.compute('GET', `/v2.1/servers/${serverId}/os-server-password`, { token: demo })
  assert.deepEqual(res.json(), { password: '' })
  const del = await skiff.compute('DELETE', `/v2.1/servers/${serverId}/os-server-password`, {
    token: demo,
    headers: { 'content-type': 'application/json' },
  })
  assert.equal(del.statusCode, 204)
  assert.equal((await skiff.compute('GET', `/v2.1/servers/${UNKNOWN}/os-server-password`, { token: demo })).statusCode, 404)
})

test('accessIPv6 is stored and shown in canonical form', async () => {
  const server = (await skiff.compute('GET', `/v2.1/servers/${serverId}`, { token: demo })).json().server
  assert.equal(server.accessIPv6, '::babe:dc0c:1602')
  const put = await skiff.compute('PUT', `/v2.1/servers/${serverId}`, {
    token: demo,
    body: { server: { accessIPv6: '2001:DB8:0:0:0:0:0:1' } },
  })
  assert.equal(put.json().server.accessIPv6, '2001:db8::1')
})

test('PUT and rebuild answer the core view: addresses without OS-EXT-IPS keys', async () => {
  const put = await skiff.compute('PUT', `/v2.1/servers/${serverId}`, { token: demo, body: { server: { name: 'renamed' } } })
  assert.deepEqual(Object.keys(put.json().server.addresses.private[0]).sort(), ['addr', 'version'])
  const rebuild = await action(serverId, { rebuild: { imageRef } })
  assert.equal(rebuild.statusCode, 202)
  const view = rebuild.json().server
  assert.deepEqual(Object.keys(view.addresses.private[0]).sort(), ['addr', 'version'])
  assert.equal(view['OS-EXT-STS:vm_state'], undefined)
  await waitForStatus(skiff, demo, serverId, 'ACTIVE')
})

test('an unknown security group is 400', async () => {
  const res = await create({ security_groups: [{ name: 'does_not_exist' }] })
  assert.equal(res.statusCode, 400)
  assert.match(res.json().badRequest.message, /^Security group does_not_exist not found for project [0-9a-f]{32}\.$/)
  const ok = await create({ security_groups: [{ name: 'default' }] })
  assert.equal(ok.statusCode, 202)
  await waitForStatus(skiff, demo, ok.json().server.id, 'ACTIVE')
  assert.equal((await action(ok.json().server.id, { forceDelete: null })).statusCode, 202)
})

test('restore is 404 for an unknown server and 409 for a live one; forceDelete 404', async () => {
  assert.equal((await action(UNKNOWN, { restore: null })).statusCode, 404)
  assert.equal((await action(UNKNOWN, { forceDelete: null })).statusCode, 404)
  const res = await action(serverId, { restore: null })
  assert.deepEqual(res.json(), {
    conflictingRequest: { code: 409, message: `Cannot 'restore' instance ${serverId} while it is in vm_state active` },
  })
})

test('DELETE with Content-Type application/json and no body is 204 (as tempest sends it)', async () => {
  const id = (await create({})).json().server.id
  await waitForStatus(skiff, demo, id, 'ACTIVE')
  const del = await skiff.compute('DELETE', `/v2.1/servers/${id}`, { token: demo, headers: { 'content-type': 'application/json' } })
  assert.equal(del.statusCode, 204)
  // A POST with an empty JSON body stays malformed.
  const post = await skiff.compute('POST', `/v2.1/servers/${serverId}/action`, {
    token: demo,
    headers: { 'content-type': 'application/json' },
  })
  assert.equal(post.statusCode, 400)
})
