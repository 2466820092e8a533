// Block storage (Cinder v3) through the volume listener, and Nova's os-volume_attachments: what a
// client observes (status codes, Cinder's fault bodies and messages, the states a volume goes
// through, the server's volumes_attached), on the simulated driver with its fault injection.
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { activeServer, startTestSkiff, waitFor, waitForStatus, type TestSkiff } from '../helpers/skiff.ts'

let skiff: TestSkiff
let demo: string
let reader: string
let alt: string
let admin: string
let project: string
let adminProject: string

const v3 = (path: string) => `/v3/${project}${path}`

async function volumeOf(id: string, token = demo) {
  const url = token === admin ? `/v3/${adminProject}/volumes/${id}` : v3(`/volumes/${id}`)
  const res = await skiff.volume('GET', url, { token })
  return res.statusCode === 200 ? (res.json().volume as Record<string, any>) : undefined
}
async function waitVolume(id: string, status: string) {
  return waitFor(`volume ${id} to be ${status}`, async () => {
    const v = await volumeOf(id)
    return v?.status === status ? v : undefined
  })
}
async function newVolume(size = 1, extra: Record<string, unknown> = {}, token = demo): Promise<string> {
  const res = await skiff.volume('POST', v3('/volumes'), { token, body: { volume: { size, ...extra } } })
  assert.equal(res.statusCode, 202, res.body)
  const id = res.json().volume.id as string
  await waitVolume(id, 'available')
  return id
}

before(async () => {
  skiff = await startTestSkiff({ actionRateLimit: 0 })
  demo = await skiff.token('demo')
  reader = await skiff.token('reader_demo')
  alt = await skiff.token('alt_demo')
  admin = await skiff.token('admin')
  const me = await skiff.apps.identity.inject({
    method: 'GET',
    url: '/v3/auth/tokens',
    headers: { 'x-auth-token': demo, 'x-subject-token': demo },
  })
  project = me.json().token.project.id
  adminProject = (
    await skiff.apps.identity.inject({
      method: 'GET',
      url: '/v3/auth/tokens',
      headers: { 'x-auth-token': admin, 'x-subject-token': admin },
    })
  ).json().token.project.id
  // These tests make more volumes in demo than Cinder's default quota of 10.
  const q = await skiff.volume('PUT', `/v3/${adminProject}/os-quota-sets/${project}`, {
    token: admin,
    body: { quota_set: { volumes: -1, snapshots: -1 } },
  })
  assert.equal(q.statusCode, 200, q.body)
})
after(() => skiff.close())

describe('discovery', () => {
  test('version documents at / (300) and /v3, as Cinder Zed: 3.0 to 3.70', async () => {
    const root = await skiff.volume('GET', '/')
    assert.equal(root.statusCode, 300)
    const [doc] = root.json().versions
    assert.equal(doc.id, 'v3.0')
    assert.equal(doc.min_version, '3.0')
    assert.equal(doc.version, '3.70')
    assert.equal(doc.status, 'CURRENT')
    assert.equal((await skiff.volume('GET', '/v3')).statusCode, 200)
  })

  test("the catalog has volumev3 and block-storage at /v3/{the token's project}", async () => {
    const res = await skiff.apps.identity.inject({ method: 'GET', url: '/v3/auth/catalog', headers: { 'x-auth-token': demo } })
    const catalog = res.json().catalog as { type: string; name: string; endpoints: { url: string }[] }[]
    for (const type of ['volumev3', 'block-storage']) {
      const svc = catalog.find((s) => s.type === type)
      assert.ok(svc, type)
      assert.equal(svc.endpoints[0]!.url, `http://127.0.0.1:8776/v3/${project}`)
    }
  })

  test('microversions: echoed; latest is 3.70; above is 406 and a bad one 400, in Cinder words', async () => {
    const ok = await skiff.volume('GET', v3('/volumes'), { token: demo, headers: { 'openstack-api-version': 'volume 3.59' } })
    assert.equal(ok.statusCode, 200)
    assert.equal(ok.headers['openstack-api-version'], 'volume 3.59')
    assert.equal(ok.headers.vary, 'OpenStack-API-Version')
    const none = await skiff.volume('GET', v3('/volumes'), { token: demo })
    assert.equal(none.headers['openstack-api-version'], 'volume 3.0')
    const latest = await skiff.volume('GET', v3('/volumes'), { token: demo, headers: { 'openstack-api-version': 'volume latest' } })
    assert.equal(latest.headers['openstack-api-version'], 'volume 3.70')
    const high = await skiff.volume('GET', v3('/volumes'), { token: demo, headers: { 'openstack-api-version': 'volume 3.71' } })
    assert.equal(high.statusCode, 406)
    // Cinder's Fault has no name for 406: computeFault.
    assert.deepEqual(high.json(), {
      computeFault: { code: 406, message: 'Version 3.71 is not supported by the API. Minimum is 3.0 and maximum is 3.70.' },
    })
    const bad = await skiff.volume('GET', v3('/volumes'), { token: demo, headers: { 'openstack-api-version': 'volume 3.x' } })
    assert.equal(bad.statusCode, 400)
    assert.deepEqual(bad.json(), {
      badRequest: { code: 400, message: 'API Version String 3.x is of invalid format. Must be of format MajorNum.MinorNum.' },
    })
  })

  test("another project in the URL is Cinder's 400; no token is 401", async () => {
    const res = await skiff.volume('GET', `/v3/${'0'.repeat(32)}/volumes`, { token: demo })
    assert.equal(res.statusCode, 400)
    assert.deepEqual(res.json(), { badRequest: { code: 400, message: 'Malformed request url' } })
    assert.equal((await skiff.volume('GET', v3('/volumes'))).statusCode, 401)
  })
})

describe('volumes', () => {
  test('create (202, creating) → available; show, list, detail; Cinder’s keys', async () => {
    const res = await skiff.volume('POST', v3('/volumes'), {
      token: demo,
      body: {
        volume: {
          size: 1,
          name: 'v1',
          description: 'd',
          metadata: { a: 'b' },
          imageRef: null,
          volume_type: null,
          snapshot_id: null,
          backup_id: null,
        },
      },
    })
    assert.equal(res.statusCode, 202, res.body)
    const created = res.json().volume
    assert.equal(created.status, 'creating')
    assert.equal(created.size, 1)
    assert.equal(created.volume_type, '__DEFAULT__')
    assert.equal(created.bootable, 'false')
    assert.equal(created['os-vol-tenant-attr:tenant_id'], undefined, 'create answers without the extended attributes')
    const v = await waitVolume(created.id, 'available')
    assert.equal(v['os-vol-tenant-attr:tenant_id'], project)
    assert.equal(v['os-vol-host-attr:host'], undefined, 'admins only')
    assert.deepEqual(v.metadata, { a: 'b' })
    assert.deepEqual(v.attachments, [])
    assert.equal(v.links[0].href, `http://127.0.0.1:8776/v3/${project}/volumes/${v.id}`)
    const asAdmin = (await volumeOf(v.id, admin))!
    assert.match(asAdmin['os-vol-host-attr:host'], /.+@.+#.+/)
    const list = await skiff.volume('GET', v3('/volumes'), { token: demo })
    assert.ok(list.json().volumes.some((x: { id: string; name: string }) => x.id === v.id && x.name === 'v1'))
    const detail = await skiff.volume('GET', v3('/volumes/detail?name=v1'), { token: reader })
    assert.deepEqual(
      detail.json().volumes.map((x: { id: string }) => x.id),
      [v.id],
    )
    // Another project's volume does not exist for its caller.
    const other = await skiff.volume('GET', v3(`/volumes/${v.id}`).replace(project, await altProject()), { token: alt })
    assert.equal(other.statusCode, 404)
    assert.deepEqual(other.json(), { itemNotFound: { code: 404, message: `Volume ${v.id} could not be found.` } })
  })

  test('a reader may look but not create: Cinder’s policy message', async () => {
    const res = await skiff.volume('POST', v3('/volumes'), { token: reader, body: { volume: { size: 1 } } })
    assert.equal(res.statusCode, 403)
    assert.deepEqual(res.json(), { forbidden: { code: 403, message: "Policy doesn't allow volume:create to be performed." } })
  })

  test('bad sizes are 400s in Cinder’s words', async () => {
    const zero = await skiff.volume('POST', v3('/volumes'), { token: demo, body: { volume: { size: 0 } } })
    assert.equal(zero.statusCode, 400)
    const none = await skiff.volume('POST', v3('/volumes'), { token: demo, body: { volume: { name: 'x' } } })
    assert.equal(none.statusCode, 400)
    assert.equal(none.json().badRequest.message, "Invalid input received: Volume size 'None' must be an integer and greater than 0")
    const type = await skiff.volume('POST', v3('/volumes'), { token: demo, body: { volume: { size: 1, volume_type: 'gold' } } })
    assert.equal(type.statusCode, 404)
    assert.equal(type.json().itemNotFound.message, 'Volume type with name gold could not be found.')
  })

  test('update name, description, metadata; metadata API; set bootable', async () => {
    const id = await newVolume()
    const res = await skiff.volume('PUT', v3(`/volumes/${id}`), {
      token: demo,
      body: { volume: { name: 'renamed', description: 'new', metadata: { k: 'v' } } },
    })
    assert.equal(res.statusCode, 200, res.body)
    assert.equal(res.json().volume.name, 'renamed')
    const merged = await skiff.volume('POST', v3(`/volumes/${id}/metadata`), { token: demo, body: { metadata: { k2: 'v2' } } })
    assert.deepEqual(merged.json(), { metadata: { k: 'v', k2: 'v2' } })
    assert.equal((await skiff.volume('DELETE', v3(`/volumes/${id}/metadata/k`), { token: demo })).statusCode, 200)
    assert.deepEqual((await volumeOf(id))!.metadata, { k2: 'v2' })
    const boot = await skiff.volume('POST', v3(`/volumes/${id}/action`), { token: demo, body: { 'os-set_bootable': { bootable: true } } })
    assert.equal(boot.statusCode, 200)
    assert.equal((await volumeOf(id))!.bootable, 'true')
    const item = await skiff.volume('PUT', v3(`/volumes/${id}/metadata/k3`), { token: demo, body: { meta: { k3: 'v3' } } })
    assert.deepEqual(item.json(), { meta: { k3: 'v3' } })
    const mismatch = await skiff.volume('PUT', v3(`/volumes/${id}/metadata/k3`), { token: demo, body: { meta: { k4: 'v' } } })
    assert.deepEqual(mismatch.json(), { badRequest: { code: 400, message: 'Request body and URI mismatch' } })
    const summary = await skiff.volume('GET', v3('/volumes/summary'), { token: demo, headers: { 'openstack-api-version': 'volume 3.36' } })
    assert.equal(summary.statusCode, 200, summary.body)
    assert.ok(summary.json()['volume-summary'].total_count >= 1)
    assert.deepEqual(summary.json()['volume-summary'].metadata.k3, ['v3'])
    // Own keys only: a key every object inherits is not a key of this volume.
    for (const key of ['toString', 'constructor', '__proto__']) {
      const show = await skiff.volume('GET', v3(`/volumes/${id}/metadata/${key}`), { token: demo })
      assert.deepEqual(show.json(), { itemNotFound: { code: 404, message: `Volume ${id} has no metadata with key ${key}.` } })
      const del = await skiff.volume('DELETE', v3(`/volumes/${id}/metadata/${key}`), { token: demo })
      assert.equal(del.statusCode, 404, del.body)
    }
    // Writers at once (as two API processes would be): none loses another's key.
    const writes = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        skiff.volume('POST', v3(`/volumes/${id}/metadata`), { token: demo, body: { metadata: { [`c${i}`]: String(i) } } }),
      ),
    )
    assert.deepEqual(
      writes.map((w) => w.statusCode),
      writes.map(() => 200),
    )
    const after = (await volumeOf(id))!.metadata as Record<string, string>
    for (let i = 0; i < 8; i++) assert.equal(after[`c${i}`], String(i))
    // os-reserve twice: Cinder's 400; os-unreserve gives it back.
    assert.equal((await skiff.volume('POST', v3(`/volumes/${id}/action`), { token: demo, body: { 'os-reserve': null } })).statusCode, 202)
    const again = await skiff.volume('POST', v3(`/volumes/${id}/action`), { token: demo, body: { 'os-reserve': null } })
    assert.equal(
      again.json().badRequest.message,
      'Invalid volume: Volume status must be available to reserve, but the status is attaching.',
    )
    assert.equal((await skiff.volume('POST', v3(`/volumes/${id}/action`), { token: demo, body: { 'os-unreserve': null } })).statusCode, 202)
    assert.equal((await volumeOf(id))!.status, 'available')
    const readerPut = await skiff.volume('PUT', v3(`/volumes/${id}`), { token: reader, body: { volume: { name: 'r' } } })
    assert.equal(readerPut.statusCode, 403)
  })

  test('os-extend: available → extending → available, bigger; smaller is 400', async () => {
    const id = await newVolume(1)
    const res = await skiff.volume('POST', v3(`/volumes/${id}/action`), { token: demo, body: { 'os-extend': { new_size: 3 } } })
    assert.equal(res.statusCode, 202, res.body)
    await waitFor('extended', async () => (await volumeOf(id))?.size === 3 && (await volumeOf(id))?.status === 'available')
    assert.equal(skiff.driver.describeVolume(id)?.sizeGb, 3)
    const smaller = await skiff.volume('POST', v3(`/volumes/${id}/action`), { token: demo, body: { 'os-extend': { new_size: 2 } } })
    assert.equal(smaller.statusCode, 400)
    assert.equal(
      smaller.json().badRequest.message,
      'Invalid input received: New size for extend must be greater than current size. (current: 3, extended: 2).',
    )
    const unknown = await skiff.volume('POST', v3(`/volumes/${id}/action`), { token: demo, body: { 'os-frobnicate': {} } })
    assert.deepEqual(unknown.json(), { badRequest: { code: 400, message: 'There is no such action: os-frobnicate' } })
  })

  test('delete: 202, deleting, then gone (404)', async () => {
    const id = await newVolume()
    assert.equal((await skiff.volume('DELETE', v3(`/volumes/${id}`), { token: demo })).statusCode, 202)
    await waitFor('volume gone', async () => (await volumeOf(id)) === undefined)
    assert.equal(skiff.driver.describeVolume(id), undefined)
  })

  test('list: limit, marker and the next link; sort; invalid filters for non-admins', async () => {
    const ids = [await newVolume(1, { name: 'page-a' }), await newVolume(2, { name: 'page-b' }), await newVolume(3, { name: 'page-c' })]
    const first = await skiff.volume('GET', v3('/volumes/detail?limit=2&sort=size:asc&size=2'), { token: demo })
    assert.equal(first.statusCode, 200, first.body)
    const bySize = await skiff.volume('GET', v3('/volumes/detail?sort=size:desc&limit=1'), { token: demo })
    const top = bySize.json()
    assert.equal(top.volumes.length, 1)
    // Cinder's next link comes with every full page, the last one too.
    const lastPage = await skiff.volume('GET', v3(`/volumes?name=page-a&limit=1`), { token: demo })
    assert.equal(lastPage.json().volumes_links.length, 1)
    assert.ok(top.volumes_links[0].href.includes(`marker=${top.volumes[0].id}`), JSON.stringify(top.volumes_links))
    const asc = await skiff.volume('GET', v3('/volumes?sort_key=created_at&sort_dir=asc'), { token: demo })
    const order = asc.json().volumes.map((v: { id: string }) => v.id)
    assert.ok(order.indexOf(ids[0]) < order.indexOf(ids[2]))
    const marker = await skiff.volume('GET', v3(`/volumes?sort_key=created_at&sort_dir=asc&marker=${ids[0]}`), { token: demo })
    const after = marker.json().volumes.map((v: { id: string }) => v.id)
    assert.ok(!after.includes(ids[0]) && after.includes(ids[1]) && after.includes(ids[2]))
    const bad = await skiff.volume('GET', v3('/volumes?foo=1'), { token: demo })
    assert.deepEqual(bad.json(), { badRequest: { code: 400, message: 'Invalid filters foo are found in query options.' } })
    // cinderclient always sends all_tenants: ignored for non-admins.
    assert.equal((await skiff.volume('GET', v3('/volumes/detail?all_tenants=1'), { token: demo })).statusCode, 200)
    const both = await skiff.volume('GET', v3('/volumes?sort=size&sort_key=size'), { token: demo })
    assert.equal(both.statusCode, 400)
  })

  test('a failed creation (fault injection) leaves the volume in error', async () => {
    const fault = await skiff.compute('POST', '/v2.1/os-simulator/faults', {
      token: admin,
      body: { fault: { operation: 'createVolume', error: 'disk full', count: 1 } },
    })
    assert.equal(fault.statusCode, 201, fault.body)
    const res = await skiff.volume('POST', v3('/volumes'), { token: demo, body: { volume: { size: 1 } } })
    await waitVolume(res.json().volume.id, 'error')
    // An errored volume may be deleted.
    assert.equal((await skiff.volume('DELETE', v3(`/volumes/${res.json().volume.id}`), { token: demo })).statusCode, 202)
  })
})

describe('snapshots and quotas', () => {
  test('snapshot create → available; a volume with snapshots cannot be deleted; a volume from the snapshot', async () => {
    const id = await newVolume(1, { name: 'snapped' })
    skiff.driver.writeVolumeFile(id, '/etc/motd', 'hello')
    const res = await skiff.volume('POST', v3('/snapshots'), {
      token: demo,
      body: { snapshot: { volume_id: id, name: 's1', force: false } },
    })
    assert.equal(res.statusCode, 202, res.body)
    const sid = res.json().snapshot.id as string
    assert.equal(res.json().snapshot.status, 'creating')
    const snap = await waitFor('snapshot available', async () => {
      const s = await skiff.volume('GET', v3(`/snapshots/${sid}`), { token: demo })
      return s.json().snapshot?.status === 'available' ? s.json().snapshot : undefined
    })
    assert.equal(snap['os-extended-snapshot-attributes:progress'], '100%')
    assert.equal(snap['os-extended-snapshot-attributes:project_id'], project)
    const list = await skiff.volume('GET', v3('/snapshots/detail'), { token: reader })
    assert.ok(list.json().snapshots.some((s: { id: string }) => s.id === sid))
    const del = await skiff.volume('DELETE', v3(`/volumes/${id}`), { token: demo })
    assert.equal(del.statusCode, 400)
    assert.match(del.json().badRequest.message, /^Invalid volume: Volume status must be available .* have snapshots/)
    const fromSnap = await skiff.volume('POST', v3('/volumes'), { token: demo, body: { volume: { snapshot_id: sid } } })
    assert.equal(fromSnap.statusCode, 202, fromSnap.body)
    const copy = await waitVolume(fromSnap.json().volume.id, 'available')
    assert.equal(copy.size, 1)
    assert.equal(copy.snapshot_id, sid)
    assert.deepEqual(skiff.driver.describeVolume(copy.id)?.files, { '/etc/motd': 'hello' })
    const smeta = await skiff.volume('POST', v3(`/snapshots/${sid}/metadata`), { token: demo, body: { metadata: { a: '1' } } })
    assert.deepEqual(smeta.json(), { metadata: { a: '1' } })
    const sitem = await skiff.volume('PUT', v3(`/snapshots/${sid}/metadata/a`), { token: demo, body: { meta: { a: '2' } } })
    assert.deepEqual(sitem.json(), { meta: { a: '2' } })
    assert.equal((await skiff.volume('DELETE', v3(`/snapshots/${sid}/metadata/a`), { token: demo })).statusCode, 200)
    const sgone = await skiff.volume('GET', v3(`/snapshots/${sid}/metadata/a`), { token: demo })
    assert.deepEqual(sgone.json(), { itemNotFound: { code: 404, message: `Snapshot ${sid} has no metadata with key a.` } })
    const upd = await skiff.volume('PUT', v3(`/snapshots/${sid}`), { token: demo, body: { snapshot: { name: 's2' } } })
    assert.equal(upd.json().snapshot.name, 's2')
    assert.equal((await skiff.volume('DELETE', v3(`/snapshots/${sid}`), { token: demo })).statusCode, 202)
    await waitFor('snapshot gone', async () => (await skiff.volume('GET', v3(`/snapshots/${sid}`), { token: demo })).statusCode === 404)
    assert.equal((await skiff.volume('DELETE', v3(`/volumes/${id}`), { token: demo })).statusCode, 202)
  })

  test('types: __DEFAULT__ only', async () => {
    const types = await skiff.volume('GET', v3('/types'), { token: reader })
    assert.deepEqual(
      types.json().volume_types.map((t: { name: string }) => t.name),
      ['__DEFAULT__'],
    )
    const def = await skiff.volume('GET', v3('/types/default'), { token: demo })
    assert.equal(def.json().volume_type.name, '__DEFAULT__')
    assert.equal(
      (await skiff.volume('GET', v3(`/types/${'1'.repeat(8)}-1111-4111-8111-${'1'.repeat(12)}`), { token: demo })).statusCode,
      404,
    )
  })

  test('quotas: shown to the project, set by admins, enforced at create with Cinder’s 413', async () => {
    const altId = await altProject()
    const shown = await skiff.volume('GET', `/v3/${altId}/os-quota-sets/${altId}?usage=true`, { token: alt })
    assert.equal(shown.statusCode, 200, shown.body)
    assert.deepEqual(shown.json().quota_set.volumes, { limit: 10, in_use: 0, reserved: 0 })
    const denied = await skiff.volume('PUT', `/v3/${altId}/os-quota-sets/${altId}`, { token: alt, body: { quota_set: { gigabytes: 2 } } })
    assert.equal(denied.statusCode, 403)
    const set = await skiff.volume('PUT', `/v3/${adminProject}/os-quota-sets/${altId}`, {
      token: admin,
      body: { quota_set: { gigabytes: 2, volumes: 1 } },
    })
    assert.equal(set.statusCode, 200, set.body)
    assert.equal(set.json().quota_set.gigabytes, 2)
    const big = await skiff.volume('POST', `/v3/${altId}/volumes`, { token: alt, body: { volume: { size: 3 } } })
    assert.equal(big.statusCode, 413)
    assert.equal(big.headers['retry-after'], '0')
    assert.deepEqual(big.json(), {
      overLimit: {
        code: 413,
        message: 'Requested volume or snapshot exceeds allowed gigabytes quota. Requested 3G, quota is 2G and 0G has been consumed.',
        retryAfter: '0',
      },
    })
    assert.equal((await skiff.volume('POST', `/v3/${altId}/volumes`, { token: alt, body: { volume: { size: 1 } } })).statusCode, 202)
    const second = await skiff.volume('POST', `/v3/${altId}/volumes`, { token: alt, body: { volume: { size: 1 } } })
    assert.equal(second.statusCode, 413)
    assert.equal(second.json().overLimit.message, "Maximum number of volumes allowed (1) exceeded for quota 'volumes'.")
    assert.equal((await skiff.volume('DELETE', `/v3/${adminProject}/os-quota-sets/${altId}`, { token: admin })).statusCode, 200)
  })
})

describe('attach and detach (Nova os-volume_attachments)', () => {
  const mv = (v: string) => ({ 'openstack-api-version': `compute ${v}` })

  test('attach: attaching → in-use; the server shows it; detach: detaching → available', async () => {
    const server = await activeServer(skiff, demo, 'vol-srv')
    const vol = await newVolume(1)
    const res = await skiff.compute('POST', `/v2.1/servers/${server}/os-volume_attachments`, {
      token: demo,
      headers: mv('2.79'),
      body: { volumeAttachment: { volumeId: vol, tag: 'data', delete_on_termination: false } },
    })
    assert.equal(res.statusCode, 200, res.body)
    assert.deepEqual(res.json(), {
      volumeAttachment: { id: vol, serverId: server, volumeId: vol, device: '/dev/vdb', tag: 'data', delete_on_termination: false },
    })
    const v = await waitVolume(vol, 'in-use')
    assert.equal(v.attachments.length, 1)
    assert.equal(v.attachments[0].server_id, server)
    assert.equal(v.attachments[0].device, '/dev/vdb')
    assert.deepEqual(skiff.driver.volumesOf(server), [{ volumeId: vol, device: '/dev/vdb' }])
    const shown = await skiff.compute('GET', `/v2.1/servers/${server}`, { token: demo, headers: mv('2.3') })
    assert.deepEqual(shown.json().server['os-extended-volumes:volumes_attached'], [{ id: vol, delete_on_termination: false }])
    const at21 = await skiff.compute('GET', `/v2.1/servers/${server}`, { token: demo })
    assert.deepEqual(at21.json().server['os-extended-volumes:volumes_attached'], [{ id: vol }])
    const list = await skiff.compute('GET', `/v2.1/servers/${server}/os-volume_attachments`, { token: reader, headers: mv('2.89') })
    const [a] = list.json().volumeAttachments
    assert.equal(a.id, undefined)
    assert.equal(a.volumeId, vol)
    assert.match(a.attachment_id, /^[0-9a-f-]{36}$/)
    assert.match(a.bdm_uuid, /^[0-9a-f-]{36}$/)
    // An attached volume cannot be deleted (Cinder's 400, as Tempest's test_delete_attached_volume expects).
    const del = await skiff.volume('DELETE', v3(`/volumes/${vol}`), { token: demo })
    assert.equal(del.statusCode, 400)
    // Nor attached again.
    const again = await skiff.compute('POST', `/v2.1/servers/${server}/os-volume_attachments`, {
      token: demo,
      body: { volumeAttachment: { volumeId: vol } },
    })
    assert.equal(again.statusCode, 400)
    assert.equal(again.json().badRequest.message, `Invalid volume: volume ${vol} is already attached to instances: ${server}`)
    const detach = await skiff.compute('DELETE', `/v2.1/servers/${server}/os-volume_attachments/${vol}`, { token: demo })
    assert.equal(detach.statusCode, 202, detach.body)
    await waitVolume(vol, 'available')
    assert.deepEqual(skiff.driver.volumesOf(server), [])
    const gone = await skiff.compute('GET', `/v2.1/servers/${server}/os-volume_attachments/${vol}`, { token: demo })
    assert.equal(gone.statusCode, 404)
    assert.equal(gone.json().itemNotFound.message, `Instance ${server} is not attached to volume ${vol}`)
    const actions = await skiff.compute('GET', `/v2.1/servers/${server}/os-instance-actions`, { token: demo })
    assert.deepEqual(
      actions
        .json()
        .instanceActions.map((x: { action: string }) => x.action)
        .slice(0, 2),
      ['detach_volume', 'attach_volume'],
    )
  })

  test('a rescue keeps the attached volumes: the rescue view shows each where the rescue system sees it', async () => {
    const server = await activeServer(skiff, demo, 'vol-rescue-view')
    const vol = await newVolume(1)
    const a = await skiff.compute('POST', `/v2.1/servers/${server}/os-volume_attachments`, {
      token: demo,
      body: { volumeAttachment: { volumeId: vol } },
    })
    assert.equal(a.statusCode, 200, a.body)
    await waitVolume(vol, 'in-use')
    const r = await skiff.compute('POST', `/v2.1/servers/${server}/action`, { token: demo, body: { rescue: null } })
    assert.equal(r.statusCode, 200, r.body)
    await waitForStatus(skiff, demo, server, 'RESCUE')
    const view = await skiff.compute('GET', `/v2.1/servers/${server}/rescue`, { token: demo })
    assert.equal(view.statusCode, 200, view.body)
    assert.deepEqual(
      view.json().rescue.disks.map((d: { role: string; device: string; volume_id?: string }) => [d.role, d.device, d.volume_id ?? null]),
      [
        ['rescue', '/dev/vda', null],
        ['server', '/dev/vdb', null],
        ['config_drive', '/dev/vdc', null],
        ['volume', '/dev/vdd', vol],
      ],
    )
    assert.deepEqual(
      skiff.driver.volumesOf(server).map((v) => v.volumeId),
      [vol],
      'still plugged in',
    )
    assert.equal((await skiff.compute('POST', `/v2.1/servers/${server}/action`, { token: demo, body: { unrescue: null } })).statusCode, 202)
    await waitForStatus(skiff, demo, server, 'ACTIVE')
    assert.equal((await volumeOf(vol))?.status, 'in-use')
  })

  test("refused while rescued: Nova's 409; a reader gets 403", async () => {
    const server = await activeServer(skiff, demo, 'vol-rescue')
    const vol = await newVolume(1)
    const r = await skiff.compute('POST', `/v2.1/servers/${server}/action`, { token: demo, body: { rescue: null } })
    assert.equal(r.statusCode, 200, r.body)
    await waitForStatus(skiff, demo, server, 'RESCUE')
    const res = await skiff.compute('POST', `/v2.1/servers/${server}/os-volume_attachments`, {
      token: demo,
      body: { volumeAttachment: { volumeId: vol } },
    })
    assert.equal(res.statusCode, 409)
    assert.deepEqual(res.json(), {
      conflictingRequest: { code: 409, message: `Cannot 'attach_volume' instance ${server} while it is in vm_state rescued` },
    })
    const byReader = await skiff.compute('POST', `/v2.1/servers/${server}/os-volume_attachments`, {
      token: reader,
      body: { volumeAttachment: { volumeId: vol } },
    })
    assert.equal(byReader.statusCode, 403)
    const unknown = await skiff.compute('POST', `/v2.1/servers/${server}/os-volume_attachments`, {
      token: demo,
      body: { volumeAttachment: { volumeId: '00000000-0000-4000-8000-000000000000' } },
    })
    assert.equal(unknown.statusCode, 409, 'the state is checked before the volume')
  })

  test("suspended: attach and detach are Nova's 409 up front; the volume is untouched", async () => {
    const server = await activeServer(skiff, demo, 'vol-suspended')
    const vol = await newVolume(1)
    const held = await newVolume(1)
    const a = await skiff.compute('POST', `/v2.1/servers/${server}/os-volume_attachments`, {
      token: demo,
      body: { volumeAttachment: { volumeId: held } },
    })
    assert.equal(a.statusCode, 200, a.body)
    await waitVolume(held, 'in-use')
    const s = await skiff.compute('POST', `/v2.1/servers/${server}/action`, { token: demo, body: { suspend: null } })
    assert.equal(s.statusCode, 202, s.body)
    await waitForStatus(skiff, demo, server, 'SUSPENDED')
    const attach = await skiff.compute('POST', `/v2.1/servers/${server}/os-volume_attachments`, {
      token: demo,
      body: { volumeAttachment: { volumeId: vol } },
    })
    assert.deepEqual(attach.json(), {
      conflictingRequest: { code: 409, message: `Cannot 'attach_volume' instance ${server} while it is in vm_state suspended` },
    })
    const detach = await skiff.compute('DELETE', `/v2.1/servers/${server}/os-volume_attachments/${held}`, { token: demo })
    assert.deepEqual(detach.json(), {
      conflictingRequest: { code: 409, message: `Cannot 'detach_volume' instance ${server} while it is in vm_state suspended` },
    })
    assert.equal((await volumeOf(vol))?.status, 'available')
    assert.equal((await volumeOf(held))?.status, 'in-use')
  })

  test('os-extend of an in-use volume: 3.42 grows it under the running guest (in-use again); below, Cinder refuses', async () => {
    const server = await activeServer(skiff, demo, 'vol-extend-inuse')
    const vol = await newVolume(1)
    const a = await skiff.compute('POST', `/v2.1/servers/${server}/os-volume_attachments`, {
      token: demo,
      body: { volumeAttachment: { volumeId: vol } },
    })
    assert.equal(a.statusCode, 200, a.body)
    await waitVolume(vol, 'in-use')
    const extend = (size: number, version?: string) =>
      skiff.volume('POST', v3(`/volumes/${vol}/action`), {
        token: demo,
        headers: version ? { 'openstack-api-version': `volume ${version}` } : {},
        body: { 'os-extend': { new_size: size } },
      })
    const old = await extend(2, '3.41')
    assert.deepEqual(old.json(), {
      badRequest: {
        code: 400,
        message: `Invalid volume: Volume ${vol} status must be '{'status': 'available'}' to extend, currently in-use.`,
      },
    })
    const res = await extend(2, '3.42')
    assert.equal(res.statusCode, 202, res.body)
    await waitFor('extended', async () => {
      const v = await volumeOf(vol)
      return v?.size === 2 && v.status === 'in-use'
    })
    assert.equal(skiff.driver.describeVolume(vol)?.sizeGb, 2)
    assert.deepEqual(skiff.driver.volumesOf(server), [{ volumeId: vol, device: '/dev/vdb' }], 'still plugged in')
    const out = await skiff.compute('POST', `/v2.1/servers/${server}/action`, { token: demo, body: { 'os-getConsoleOutput': {} } })
    assert.match(out.json().output, /vdb: detected capacity change from 1073741824 to 2147483648/)
    // Nova records the volume-extended event as the server's extend_volume action.
    const actions = await skiff.compute('GET', `/v2.1/servers/${server}/os-instance-actions`, { token: demo })
    const extendAction = actions.json().instanceActions.find((x: { action: string }) => x.action === 'extend_volume')
    assert.ok(extendAction, JSON.stringify(actions.json()))
    const detail = await skiff.compute('GET', `/v2.1/servers/${server}/os-instance-actions/${extendAction.request_id}`, {
      token: admin,
      headers: mv('2.51'),
    })
    assert.deepEqual(
      detail.json().instanceAction.events.map((e: { event: string; result: string }) => [e.event, e.result]),
      [['compute_extend_volume', 'Success']],
    )
    // An available volume at 3.42 is the plain extend.
    const free = await newVolume(1)
    const r2 = await skiff.volume('POST', v3(`/volumes/${free}/action`), {
      token: demo,
      headers: { 'openstack-api-version': 'volume 3.42' },
      body: { 'os-extend': { new_size: 2 } },
    })
    assert.equal(r2.statusCode, 202, r2.body)
    await waitFor('extended', async () => (await volumeOf(free))?.status === 'available' && (await volumeOf(free))?.size === 2)
  })

  test('a failed attach (fault injection) leaves the volume available and no attachment', async () => {
    const server = await activeServer(skiff, demo, 'vol-fail')
    const vol = await newVolume(1)
    await skiff.compute('POST', '/v2.1/os-simulator/faults', {
      token: admin,
      body: { fault: { operation: 'attachVolume', server_id: server, error: 'no PCI slot', count: 1 } },
    })
    const res = await skiff.compute('POST', `/v2.1/servers/${server}/os-volume_attachments`, {
      token: demo,
      body: { volumeAttachment: { volumeId: vol } },
    })
    assert.equal(res.statusCode, 200)
    await waitFor('rolled back', async () => {
      const v = await volumeOf(vol)
      return v?.status === 'available'
    })
    const list = await skiff.compute('GET', `/v2.1/servers/${server}/os-volume_attachments`, { token: demo })
    assert.deepEqual(list.json().volumeAttachments, [])
  })

  test('deleting the server frees its volumes; delete_on_termination deletes them', async () => {
    const server = await activeServer(skiff, demo, 'vol-del')
    const keep = await newVolume(1)
    const drop = await newVolume(1)
    for (const [vol, dot] of [
      [keep, false],
      [drop, true],
    ] as const) {
      const res = await skiff.compute('POST', `/v2.1/servers/${server}/os-volume_attachments`, {
        token: demo,
        headers: mv('2.79'),
        body: { volumeAttachment: { volumeId: vol, delete_on_termination: dot } },
      })
      assert.equal(res.statusCode, 200, res.body)
      await waitVolume(vol, 'in-use')
    }
    assert.equal((await skiff.compute('DELETE', `/v2.1/servers/${server}`, { token: demo })).statusCode, 204)
    await waitFor('server gone', async () => (await skiff.compute('GET', `/v2.1/servers/${server}`, { token: demo })).statusCode === 404)
    await waitVolume(keep, 'available')
    assert.equal(await volumeOf(drop), undefined)
  })
})

let altProjectId: string | undefined
async function altProject(): Promise<string> {
  if (altProjectId) return altProjectId
  const me = await skiff.apps.identity.inject({
    method: 'GET',
    url: '/v3/auth/tokens',
    headers: { 'x-auth-token': alt, 'x-subject-token': alt },
  })
  altProjectId = me.json().token.project.id as string
  return altProjectId
}

describe('boot from volume (block device mapping v2) and the rescue of volume-backed servers', () => {
  const mv = (v: string) => ({ 'openstack-api-version': `compute ${v}` })
  const bootFromImage = async (name: string, extra: Record<string, unknown> = {}) => {
    const res = await skiff.compute('POST', '/v2.1/servers', {
      token: demo,
      body: {
        server: {
          name,
          imageRef: '',
          flavorRef: '1',
          block_device_mapping_v2: [
            {
              uuid: await skiff.imageId('skiff-base'),
              source_type: 'image',
              destination_type: 'volume',
              boot_index: 0,
              volume_size: 1,
              ...extra,
            },
          ],
        },
      },
    })
    assert.equal(res.statusCode, 202, res.body)
    const id = res.json().server.id as string
    await waitForStatus(skiff, demo, id, 'ACTIVE')
    return id
  }

  test('an image copied to a new volume is the root disk: /dev/vda, in-use, bootable; the server has no image', async () => {
    const server = await bootFromImage('bfv-image', { delete_on_termination: true })
    const shown = (await skiff.compute('GET', `/v2.1/servers/${server}`, { token: demo, headers: mv('2.79') })).json().server
    assert.equal(shown.image, '')
    const [root] = shown['os-extended-volumes:volumes_attached']
    assert.equal(root.delete_on_termination, true)
    const v = (await volumeOf(root.id))!
    assert.equal(v.status, 'in-use')
    assert.equal(v.bootable, 'true')
    assert.equal(v.attachments[0].device, '/dev/vda')
    assert.deepEqual(skiff.driver.volumesOf(server), [{ volumeId: root.id, device: '/dev/vda' }])
    const detach = await skiff.compute('DELETE', `/v2.1/servers/${server}/os-volume_attachments/${root.id}`, { token: demo })
    assert.equal(detach.statusCode, 400)
    assert.equal(detach.json().badRequest.message, 'Cannot detach a root device volume')
    assert.equal((await skiff.compute('DELETE', `/v2.1/servers/${server}`, { token: demo })).statusCode, 204)
    await waitFor('root volume deleted with its server', async () => (await volumeOf(root.id)) === undefined)
  })

  test('shelve of a volume-backed server: offloaded at once without an image (Nova); unshelve boots its volume again', async () => {
    const server = await bootFromImage('bfv-shelve')
    const root = (await skiff.compute('GET', `/v2.1/servers/${server}`, { token: demo, headers: mv('2.79') })).json().server[
      'os-extended-volumes:volumes_attached'
    ][0].id as string
    const images = async () =>
      (
        await skiff.apps.image.inject({ method: 'GET', url: `/v2/images?instance_uuid=${server}`, headers: { 'x-auth-token': demo } })
      ).json().images as unknown[]
    const shelve = await skiff.compute('POST', `/v2.1/servers/${server}/action`, { token: demo, body: { shelve: null } })
    assert.equal(shelve.statusCode, 202, shelve.body)
    await waitForStatus(skiff, demo, server, 'SHELVED_OFFLOADED')
    assert.deepEqual(await images(), [], 'no shelve image')
    const actions = (await skiff.compute('GET', `/v2.1/servers/${server}/os-instance-actions`, { token: demo })).json().instanceActions
    const request = actions.find((a: { action: string }) => a.action === 'shelve').request_id as string
    const events = (
      await skiff.compute('GET', `/v2.1/servers/${server}/os-instance-actions/${request}`, { token: demo, headers: mv('2.51') })
    ).json().instanceAction.events as { event: string; result: string }[]
    assert.deepEqual(
      events.map((e) => [e.event, e.result]),
      [['compute_shelve_offload_instance', 'Success']],
    )
    assert.equal((await volumeOf(root))!.status, 'in-use', 'the root volume stays attached')
    const unshelve = await skiff.compute('POST', `/v2.1/servers/${server}/action`, { token: demo, body: { unshelve: null } })
    assert.equal(unshelve.statusCode, 202, unshelve.body)
    await waitForStatus(skiff, demo, server, 'ACTIVE')
    const shown = (await skiff.compute('GET', `/v2.1/servers/${server}`, { token: demo, headers: mv('2.79') })).json().server
    assert.equal(shown.image, '', 'still volume-backed')
    assert.deepEqual(skiff.driver.volumesOf(server), [{ volumeId: root, device: '/dev/vda' }])
  })

  test('an existing volume as the root; without a size, an image to a volume is a 400', async () => {
    const vol = await newVolume(1)
    const res = await skiff.compute('POST', '/v2.1/servers', {
      token: demo,
      body: {
        server: {
          name: 'bfv-volume',
          flavorRef: '1',
          block_device_mapping_v2: [{ uuid: vol, source_type: 'volume', destination_type: 'volume', boot_index: '0' }],
        },
      },
    })
    assert.equal(res.statusCode, 202, res.body)
    await waitForStatus(skiff, demo, res.json().server.id, 'ACTIVE')
    await waitVolume(vol, 'in-use')
    const noSize = await skiff.compute('POST', '/v2.1/servers', {
      token: demo,
      body: {
        server: {
          name: 'bfv-nosize',
          imageRef: '',
          flavorRef: '1',
          block_device_mapping_v2: [
            { uuid: await skiff.imageId('skiff-base'), source_type: 'image', destination_type: 'volume', boot_index: 0 },
          ],
        },
      },
    })
    assert.equal(noSize.statusCode, 400)
    assert.equal(
      noSize.json().badRequest.message,
      "Block Device Mapping is Invalid: Images with destination_type 'volume' need to have a non-zero size specified",
    )
  })

  test('volumes over the block storage quota: the build is aborted as on Nova (ERROR, Cinder’s reason), no volume made', async () => {
    const altId = await altProject()
    const gigabytes = async () =>
      (await skiff.volume('GET', `/v3/${altId}/os-quota-sets/${altId}?usage=true`, { token: alt })).json().quota_set.gigabytes as {
        limit: number
        in_use: number
      }
    const used = (await gigabytes()).in_use
    const set = await skiff.volume('PUT', `/v3/${adminProject}/os-quota-sets/${altId}`, {
      token: admin,
      body: { quota_set: { gigabytes: used + 1 } },
    })
    assert.equal(set.statusCode, 200, set.body)
    try {
      const res = await skiff.compute('POST', '/v2.1/servers', {
        token: alt,
        body: {
          server: {
            name: 'bfv-over-quota',
            flavorRef: '1',
            block_device_mapping_v2: [
              { uuid: await skiff.imageId('skiff-base'), source_type: 'image', destination_type: 'volume', boot_index: 0, volume_size: 2 },
            ],
          },
        },
      })
      assert.equal(res.statusCode, 202, res.body)
      const id = res.json().server.id as string
      const shown = await waitForStatus(skiff, alt, id, 'ERROR')
      assert.deepEqual(shown.fault, {
        code: 500,
        message: `Build of instance ${id} aborted: Requested volume or snapshot exceeds allowed gigabytes quota. Requested 2G, quota is ${used + 1}G and ${used}G has been consumed.`,
        created: shown.fault.created,
      })
      assert.deepEqual(shown['os-extended-volumes:volumes_attached'], [])
      assert.deepEqual(await gigabytes(), { limit: used + 1, in_use: used, reserved: 0 })
      assert.equal((await skiff.compute('DELETE', `/v2.1/servers/${id}`, { token: alt })).statusCode, 204)
    } finally {
      assert.equal((await skiff.volume('DELETE', `/v3/${adminProject}/os-quota-sets/${altId}`, { token: admin })).statusCode, 200)
    }
  })

  test("rescue: below 2.87 Nova's 400; at 2.87 with a stable-device rescue image, RESCUE with the volume still attached", async () => {
    const server = await bootFromImage('bfv-rescue')
    const old = await skiff.compute('POST', `/v2.1/servers/${server}/action`, { token: demo, body: { rescue: null } })
    assert.equal(old.statusCode, 400)
    assert.deepEqual(old.json(), {
      badRequest: { code: 400, message: `Instance ${server} cannot be rescued: Cannot rescue a volume-backed instance` },
    })
    const plain = await skiff.compute('POST', `/v2.1/servers/${server}/action`, {
      token: demo,
      headers: mv('2.87'),
      body: { rescue: null },
    })
    assert.equal(plain.statusCode, 400, 'the rescue image must name its bus and device')
    // An image that asks for stable device rescue.
    const img = async (method: string, url: string, payload?: unknown, headers: Record<string, string> = {}) =>
      skiff.apps.image.inject({
        method: method as 'GET',
        url,
        headers: { 'x-auth-token': demo, ...headers },
        ...(payload !== undefined ? { payload: payload as object } : {}),
      })
    const created = await img('POST', '/v2/images', {
      name: 'stable-rescue',
      disk_format: 'raw',
      container_format: 'bare',
      hw_rescue_bus: 'virtio',
      hw_rescue_device: 'disk',
    })
    assert.equal(created.statusCode, 201, created.body)
    const imageId = created.json().id as string
    assert.equal(
      (await img('PUT', `/v2/images/${imageId}/file`, Buffer.from('rescue'), { 'content-type': 'application/octet-stream' })).statusCode,
      204,
    )
    const ok = await skiff.compute('POST', `/v2.1/servers/${server}/action`, {
      token: demo,
      headers: mv('2.87'),
      body: { rescue: { rescue_image_ref: imageId } },
    })
    assert.equal(ok.statusCode, 200, ok.body)
    await waitForStatus(skiff, demo, server, 'RESCUE')
    // Stable device rescue: the server's disks keep their places, the rescue disk comes last and boots.
    const disks = skiff.driver.describe(server)!.disks
    assert.match(disks.at(-1)!, new RegExp(`^rescue image ${imageId} \\(.*boot order 1\\)$`))
    assert.ok(
      disks.some((d) => d.startsWith('volume ') && d.endsWith('/dev/vda')),
      JSON.stringify(disks),
    )
    assert.equal((await skiff.compute('POST', `/v2.1/servers/${server}/action`, { token: demo, body: { unrescue: null } })).statusCode, 202)
    await waitForStatus(skiff, demo, server, 'ACTIVE')
  })
})
