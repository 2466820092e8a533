// Volumes follow their server between two simulated hosts, as Nova with Cinder shows it: a volume
// served from another host than the server's is handed over at attach (then served from the
// server's host); a cold migration moves the attached volumes' host with the server (a revert
// brings it back); a live migration too. The volume stays in-use, attached at the same device.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { activeServer, startTestSkiff, waitFor, waitForStatus, type TestSkiff } from '../helpers/skiff.ts'

let skiff: TestSkiff
let admin: string
let demo: string
let project: string
let adminProject: string

const projectOf = async (token: string) =>
  (
    await skiff.apps.identity.inject({
      method: 'GET',
      url: '/v3/auth/tokens',
      headers: { 'x-auth-token': token, 'x-subject-token': token },
    })
  ).json().token.project.id as string

before(async () => {
  skiff = await startTestSkiff({ simulatedHosts: 2 })
  ;[admin, demo] = await Promise.all([skiff.token('admin'), skiff.token('demo')])
  ;[project, adminProject] = await Promise.all([projectOf(demo), projectOf(admin)])
})
after(() => skiff.close())

const mv = (v: string) => ({ 'openstack-api-version': `compute ${v}` })
const hostOf = async (id: string) =>
  (await skiff.compute('GET', `/v2.1/servers/${id}`, { token: admin })).json().server['OS-EXT-SRV-ATTR:host'] as string
/** The volume as an admin sees it: status, host (Cinder's `host@backend#pool`), attachments. */
const volume = async (id: string) => {
  const v = (await skiff.volume('GET', `/v3/${adminProject}/volumes/${id}`, { token: admin })).json().volume
  return { status: v.status as string, host: String(v['os-vol-host-attr:host']).split('@')[0], attachments: v.attachments }
}
const newVolume = async (token = demo) => {
  const res = await skiff.volume('POST', `/v3/${token === admin ? adminProject : project}/volumes`, {
    token,
    body: { volume: { size: 1 } },
  })
  assert.equal(res.statusCode, 202, res.body)
  const id = res.json().volume.id as string
  await waitFor(`volume ${id} available`, async () => (await volume(id)).status === 'available')
  return id
}
const attach = async (server: string, vol: string, token = demo) => {
  const res = await skiff.compute('POST', `/v2.1/servers/${server}/os-volume_attachments`, {
    token,
    body: { volumeAttachment: { volumeId: vol } },
  })
  assert.equal(res.statusCode, 200, res.body)
  return res.json().volumeAttachment.device as string
}
/** An admin's available volume and an admin's server placed on the other host (2.74 `host`). */
const volumeAndServerApart = async (name: string) => {
  const vol = await newVolume(admin)
  const from = (await volume(vol)).host
  const hosts = (await skiff.compute('GET', '/v2.1/os-hypervisors', { token: admin })).json().hypervisors as {
    hypervisor_hostname: string
  }[]
  const host = hosts.map((h) => h.hypervisor_hostname).find((h) => h !== from)!
  const res = await skiff.compute('POST', '/v2.1/servers', {
    token: admin,
    headers: mv('2.74'),
    body: { server: { name, imageRef: await skiff.imageId('skiff-base'), flavorRef: '1', networks: 'none', host } },
  })
  assert.equal(res.statusCode, 202, res.body)
  const server = res.json().server.id as string
  await waitForStatus(skiff, admin, server, 'ACTIVE')
  assert.equal(await hostOf(server), host)
  return { vol, from, server, host }
}

test('attach of a volume served from another host: handed over, then served from the server’s host, in-use', async () => {
  const { vol, server, host } = await volumeAndServerApart('vm-here')
  const device = await attach(server, vol, admin)
  await waitFor('in-use', async () => (await volume(vol)).status === 'in-use')
  assert.equal((await volume(vol)).host, host)
  assert.deepEqual(skiff.driver.volumesOf(server), [{ volumeId: vol, device }])
})

test('a failed attach across hosts: the volume is available again, still served from its own host', async () => {
  const { vol, server, from } = await volumeAndServerApart('vm-fail')
  const fault = await skiff.compute('POST', '/v2.1/os-simulator/faults', {
    token: admin,
    body: { fault: { operation: 'attachVolume', server_id: server, error: 'no PCI slot', count: 1 } },
  })
  assert.ok(fault.statusCode < 300, fault.body)
  await attach(server, vol, admin)
  await waitFor('available again', async () => (await volume(vol)).status === 'available')
  assert.equal((await volume(vol)).host, from)
  assert.deepEqual(skiff.driver.volumesOf(server), [])
})

test("cold migration: the volume's host follows the server; a revert brings it back; confirm keeps it there", async () => {
  const server = await activeServer(skiff, demo, 'vm-cold')
  const source = await hostOf(server)
  const vol = await newVolume()
  const device = await attach(server, vol)
  await waitFor('in-use', async () => (await volume(vol)).status === 'in-use')
  const migrate = async () => {
    const res = await skiff.compute('POST', `/v2.1/servers/${server}/action`, { token: admin, body: { migrate: null } })
    assert.equal(res.statusCode, 202, res.body)
    await waitForStatus(skiff, demo, server, 'VERIFY_RESIZE')
  }
  await migrate()
  const dest = await hostOf(server)
  assert.notEqual(dest, source)
  const moved = await volume(vol)
  assert.deepEqual([moved.status, moved.host, moved.attachments[0].device], ['in-use', dest, device])
  const revert = await skiff.compute('POST', `/v2.1/servers/${server}/action`, { token: demo, body: { revertResize: null } })
  assert.equal(revert.statusCode, 202, revert.body)
  await waitForStatus(skiff, demo, server, 'ACTIVE')
  assert.equal(await hostOf(server), source)
  assert.equal((await volume(vol)).host, source, 'back with the server')
  await migrate()
  const confirm = await skiff.compute('POST', `/v2.1/servers/${server}/action`, { token: demo, body: { confirmResize: null } })
  assert.equal(confirm.statusCode, 204, confirm.body)
  await waitForStatus(skiff, demo, server, 'ACTIVE')
  assert.equal((await volume(vol)).host, dest)
  assert.equal((await volume(vol)).status, 'in-use')
})

test("live migration: the volume's host follows the server", async () => {
  const server = await activeServer(skiff, demo, 'vm-live')
  const source = await hostOf(server)
  const vol = await newVolume()
  await attach(server, vol)
  await waitFor('in-use', async () => (await volume(vol)).status === 'in-use')
  assert.equal((await volume(vol)).host, source)
  const res = await skiff.compute('POST', `/v2.1/servers/${server}/action`, {
    token: admin,
    headers: mv('2.30'),
    body: { 'os-migrateLive': { host: null, block_migration: 'auto' } },
  })
  assert.equal(res.statusCode, 202, res.body)
  await waitFor('moved', async () => {
    const s = (await skiff.compute('GET', `/v2.1/servers/${server}`, { token: admin })).json().server
    return s['OS-EXT-SRV-ATTR:host'] !== source && !s['OS-EXT-STS:task_state']
  })
  const dest = await hostOf(server)
  assert.equal((await volume(vol)).host, dest)
  assert.equal((await volume(vol)).status, 'in-use')
})

test("a snapshot's data stays where it was taken: a volume made from it goes there, even after its volume moved", async () => {
  const { vol, server, host, from } = await volumeAndServerApart('vm-snap')
  // The volume moves to the server's host, is snapshotted there, then moves back with an attach to a server of its first host.
  await attach(server, vol, admin)
  await waitFor('in-use', async () => (await volume(vol)).status === 'in-use')
  assert.equal((await volume(vol)).host, host)
  const snap = await skiff.volume('POST', `/v3/${adminProject}/snapshots`, {
    token: admin,
    body: { snapshot: { volume_id: vol, force: true } },
  })
  assert.equal(snap.statusCode, 202, snap.body)
  const snapId = snap.json().snapshot.id as string
  const snapshotStatus = async () =>
    (await skiff.volume('GET', `/v3/${adminProject}/snapshots/${snapId}`, { token: admin })).json().snapshot?.status
  await waitFor('snapshot available', async () => (await snapshotStatus()) === 'available')
  const detach = await skiff.compute('DELETE', `/v2.1/servers/${server}/os-volume_attachments/${vol}`, { token: admin })
  assert.equal(detach.statusCode, 202, detach.body)
  await waitFor('available', async () => (await volume(vol)).status === 'available')
  const other = await skiff.compute('POST', '/v2.1/servers', {
    token: admin,
    headers: mv('2.74'),
    body: { server: { name: 'vm-snap-back', imageRef: await skiff.imageId('skiff-base'), flavorRef: '1', networks: 'none', host: from } },
  })
  assert.equal(other.statusCode, 202, other.body)
  await waitForStatus(skiff, admin, other.json().server.id, 'ACTIVE')
  await attach(other.json().server.id, vol, admin)
  await waitFor('in-use', async () => (await volume(vol)).status === 'in-use')
  assert.equal((await volume(vol)).host, from, 'the volume went back')
  const copy = await skiff.volume('POST', `/v3/${adminProject}/volumes`, { token: admin, body: { volume: { snapshot_id: snapId } } })
  assert.equal(copy.statusCode, 202, copy.body)
  const copyId = copy.json().volume.id as string
  await waitFor('copy available', async () => (await volume(copyId)).status === 'available')
  assert.equal((await volume(copyId)).host, host, 'made where the snapshot was taken')
  const del = await skiff.volume('DELETE', `/v3/${adminProject}/snapshots/${snapId}`, { token: admin })
  assert.equal(del.statusCode, 202, del.body)
  await waitFor('snapshot gone', async () => (await snapshotStatus()) === undefined)
})

test('unshelve of an offloaded server goes to the host serving its volumes, though the other has more room', async () => {
  const { vol, server, host } = await volumeAndServerApart('vm-shelved')
  await attach(server, vol, admin)
  await waitFor('in-use', async () => (await volume(vol)).status === 'in-use')
  assert.equal((await volume(vol)).host, host)
  // Another server on the volume's host: the scheduler alone would now pick the other host (most free RAM first).
  const res = await skiff.compute('POST', '/v2.1/servers', {
    token: admin,
    headers: mv('2.74'),
    body: { server: { name: 'neighbour', imageRef: await skiff.imageId('skiff-base'), flavorRef: '1', networks: 'none', host } },
  })
  assert.equal(res.statusCode, 202, res.body)
  await waitForStatus(skiff, admin, res.json().server.id, 'ACTIVE')
  // shelved_offload_time 0 (the default): offloaded at once.
  const shelve = await skiff.compute('POST', `/v2.1/servers/${server}/action`, { token: admin, body: { shelve: null } })
  assert.equal(shelve.statusCode, 202, shelve.body)
  await waitForStatus(skiff, admin, server, 'SHELVED_OFFLOADED')
  const unshelve = await skiff.compute('POST', `/v2.1/servers/${server}/action`, { token: admin, body: { unshelve: null } })
  assert.equal(unshelve.statusCode, 202, unshelve.body)
  await waitForStatus(skiff, admin, server, 'ACTIVE')
  assert.equal(await hostOf(server), host)
  const after = await volume(vol)
  assert.deepEqual([after.status, after.host], ['in-use', host])
})
