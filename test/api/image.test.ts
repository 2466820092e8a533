// Glance v2 API on SQLite :memory: and a temp images dir, through fastify's inject().
import assert from 'node:assert/strict'
import { createHash, randomUUID } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, before, test } from 'node:test'
import type { FastifyInstance } from 'fastify'
import pino from 'pino'
import { createListener } from '../../src/api/listener.ts'
import { imageRoutes } from '../../src/api/routes/image.ts'
import { systemClock, type Clock } from '../../src/clock.ts'
import { loadConfig } from '../../src/config.ts'
import { IdentityService } from '../../src/identity/identity-service.ts'
import { ImageService } from '../../src/images/image-service.ts'
import { FileImageStore } from '../../src/images/image-store.ts'
import { openStore, type Store } from '../../src/store/db.ts'
import { IdentityRepo } from '../../src/store/identity-repo.ts'
import { projects, seedImageAccounts } from '../helpers/image-accounts.ts'
import { ImagesRepo } from '../../src/store/images-repo.ts'

const PATCH = 'application/openstack-images-v2.1-json-patch'

let store: Store
let app: FastifyInstance
let images: ImageService
let dir: string
const tokens: Record<'alice' | 'bob' | 'admin', string> = { alice: '', bob: '', admin: '' }

// A clock that moves 1 s per reading, so creation order is also created_at order.
let tick = Date.parse('2026-11-27T20:00:00Z')
const steppingClock: Clock = { now: () => new Date((tick += 1000)) }

before(async () => {
  store = await openStore('sqlite::memory:')
  const db = store.db
  dir = await mkdtemp(path.join(tmpdir(), 'skiff-images-'))
  const identity = new IdentityService(new IdentityRepo(db), systemClock, 3600)
  Object.assign(tokens, await seedImageAccounts(db, identity))
  images = new ImageService(new ImagesRepo(db, steppingClock), steppingClock, new FileImageStore(dir))
  app = createListener('image', {
    config: loadConfig({}, {}),
    logger: pino({ level: 'silent' }),
    identity,
    identityUri: 'http://127.0.0.1:5000/v3',
  })
  imageRoutes(app, { images, imageUrl: 'http://127.0.0.1:9292' })
  await app.ready()
})

after(async () => {
  await app.close()
  await store.close()
  await rm(dir, { recursive: true, force: true })
})

type Who = keyof typeof tokens
interface Call {
  as?: Who | null
  body?: unknown
  payload?: Buffer | string
  type?: string
}

async function call(method: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE', url: string, c: Call = {}) {
  const headers: Record<string, string> = {}
  const who = c.as === undefined ? 'alice' : c.as
  if (who) headers['x-auth-token'] = tokens[who]
  let payload: Buffer | string | undefined = c.payload
  if (c.body !== undefined) payload = JSON.stringify(c.body)
  if (payload !== undefined) headers['content-type'] = c.type ?? (method === 'PATCH' ? PATCH : 'application/json')
  const res = await app.inject({ method, url, headers, ...(payload !== undefined ? { payload } : {}) })
  const json = () => res.json() as Record<string, any>
  return { status: res.statusCode, headers: res.headers, raw: res.rawPayload, json }
}

async function create(body: Record<string, unknown>, as: Who = 'alice') {
  const r = await call('POST', '/v2/images', { as, body })
  assert.equal(r.status, 201, r.raw.toString())
  return r.json()
}

async function upload(id: string, data: Buffer, as: Who = 'alice') {
  return call('PUT', `/v2/images/${id}/file`, { as, payload: data, type: 'application/octet-stream' })
}

/** Glance (webob) error shape, with the status and the message expected. */
function assertGlanceError(r: Awaited<ReturnType<typeof call>>, status: number, message: string | RegExp) {
  assert.equal(r.status, status, r.raw.toString())
  const b = r.json()
  assert.deepEqual(Object.keys(b).sort(), ['code', 'message', 'title'])
  assert.match(b.code, new RegExp(`^${status} `))
  if (typeof message === 'string') assert.equal(b.message, message)
  else assert.match(b.message, message)
}

test('version documents need no token: 300 on /, 200 on /versions', async () => {
  const root = await call('GET', '/', { as: null })
  assert.equal(root.status, 300)
  const v = root.json().versions
  assert.deepEqual(v[0], { id: 'v2.15', status: 'CURRENT', links: [{ rel: 'self', href: 'http://127.0.0.1:9292/v2/' }] })
  assert.ok(v.slice(1).every((x: { status: string }) => x.status === 'SUPPORTED'))
  const versions = await call('GET', '/versions', { as: null })
  assert.equal(versions.status, 200)
  assert.deepEqual(versions.json(), root.json())
})

test('401 without a token', async () => {
  const r = await call('GET', '/v2/images', { as: null })
  assert.equal(r.status, 401)
  assert.match(String(r.headers['www-authenticate']), /^Keystone uri=/)
})

test('create → upload → show → download → patch → protected delete refused → delete → 404', async () => {
  const img = await create({
    name: 'cirros',
    disk_format: 'qcow2',
    container_format: 'bare',
    tags: ['a', 'a', 'b'],
    hw_rescue_device: 'cdrom',
  })
  assert.equal(img.status, 'queued')
  assert.equal(img.visibility, 'shared')
  assert.equal(img.owner, projects.p1)
  assert.deepEqual(img.tags, ['a', 'b'])
  assert.equal(img.hw_rescue_device, 'cdrom')
  assert.equal(img.size, null)
  assert.equal(img.self, `/v2/images/${img.id}`)
  assert.equal(img.file, `/v2/images/${img.id}/file`)
  assert.equal(img.schema, '/v2/schemas/image')
  assert.match(img.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/)

  const noData = await call('GET', `/v2/images/${img.id}/file`)
  assert.equal(noData.status, 204)

  // Larger than the 1 MiB JSON body limit: the upload streams and is not capped.
  const data = Buffer.alloc(3 * 1024 * 1024 + 17, 7)
  data.write('skiff image', 1000)
  const up = await upload(img.id, data)
  assert.equal(up.status, 204, up.raw.toString())

  const shown = (await call('GET', `/v2/images/${img.id}`)).json()
  assert.equal(shown.status, 'active')
  assert.equal(shown.size, data.length)
  assert.equal(shown.checksum, createHash('md5').update(data).digest('hex'))
  assert.equal(shown.os_hash_algo, 'sha512')
  assert.equal(shown.os_hash_value, createHash('sha512').update(data).digest('hex'))
  assert.deepEqual(await readdir(dir), [img.id], 'no temp file left behind')

  const down = await call('GET', `/v2/images/${img.id}/file`)
  assert.equal(down.status, 200)
  assert.equal(down.headers['content-type'], 'application/octet-stream')
  assert.equal(down.headers['content-md5'], shown.checksum)
  assert.ok(down.raw.equals(data))

  assertGlanceError(await upload(img.id, Buffer.from('again')), 409, 'Image status transition from active to saving is not allowed')

  const patched = await call('PATCH', `/v2/images/${img.id}`, {
    body: [
      { op: 'add', path: '/hw_rescue_bus', value: 'usb' },
      { op: 'replace', path: '/hw_rescue_device', value: 'disk' },
      { op: 'replace', path: '/name', value: 'cirros-2' },
      { op: 'add', path: '/tags', value: ['rescue'] },
      { op: 'replace', path: '/min_ram', value: 64 },
    ],
  })
  assert.equal(patched.status, 200, patched.raw.toString())
  assert.equal(patched.json().hw_rescue_bus, 'usb')
  assert.equal(patched.json().hw_rescue_device, 'disk')
  assert.equal(patched.json().name, 'cirros-2')
  assert.deepEqual(patched.json().tags, ['rescue'])
  assert.equal(patched.json().min_ram, 64)
  const removed = await call('PATCH', `/v2/images/${img.id}`, {
    body: [
      { op: 'remove', path: '/hw_rescue_bus' },
      { op: 'replace', path: '/protected', value: true },
    ],
  })
  assert.equal(removed.status, 200)
  assert.equal('hw_rescue_bus' in removed.json(), false)
  assert.equal(removed.json().protected, true)

  assertGlanceError(await call('DELETE', `/v2/images/${img.id}`), 403, `Image ${img.id} is protected and cannot be deleted.`)
  assert.equal((await call('PATCH', `/v2/images/${img.id}`, { body: [{ op: 'replace', path: '/protected', value: false }] })).status, 200)
  const del = await call('DELETE', `/v2/images/${img.id}`)
  assert.equal(del.status, 204)
  assert.equal(del.raw.length, 0)
  assertGlanceError(await call('GET', `/v2/images/${img.id}`), 404, `No image found with ID ${img.id}`)
  assert.equal(existsSync(path.join(dir, img.id)), false, 'the file goes with the record')
})

test('uploads need both formats; PUT requires application/octet-stream', async () => {
  const img = await create({ name: 'no-formats' })
  assertGlanceError(
    await upload(img.id, Buffer.from('x')),
    400,
    'Properties disk_format, container_format must be set prior to saving data.',
  )
  assertGlanceError(await call('PUT', `/v2/images/${img.id}/file`, { body: {} }), 415, 'Unsupported Content-Type')
  assertGlanceError(await call('POST', '/v2/images', { payload: 'x', type: 'application/octet-stream' }), 415, 'Unsupported Content-Type')
  const empty = await create({ name: 'empty', disk_format: 'raw', container_format: 'bare' })
  assert.equal((await upload(empty.id, Buffer.alloc(0))).status, 204)
  const shown = (await call('GET', `/v2/images/${empty.id}`)).json()
  assert.equal(shown.status, 'active')
  assert.equal(shown.size, 0)
})

test('list: filters, os_hidden, pagination with next', async () => {
  const ids: string[] = []
  for (let i = 0; i < 5; i++)
    ids.push(
      (await create({ name: `page-${i}`, tags: ['paged'], disk_format: 'raw', container_format: 'bare', flavour: i % 2 ? 'odd' : 'even' }))
        .id,
    )
  const hidden = await create({ name: 'page-hidden', tags: ['paged'], os_hidden: true })
  const newestFirst = [...ids].reverse()

  const seen: string[] = []
  let url: string | undefined = '/v2/images?tag=paged&limit=2'
  let pages = 0
  while (url) {
    const r = await call('GET', url)
    assert.equal(r.status, 200, r.raw.toString())
    const b = r.json()
    assert.equal(b.schema, '/v2/schemas/images')
    assert.equal(b.first, '/v2/images?tag=paged&limit=2')
    seen.push(...b.images.map((x: { id: string }) => x.id))
    if (b.next) {
      assert.equal(b.images.length, 2)
      assert.match(b.next, /^\/v2\/images\?tag=paged&limit=2&marker=[0-9a-f-]{36}$/)
    }
    url = b.next
    pages++
  }
  // 5 images in pages of 2: a full last page would have needed a fourth request.
  assert.equal(pages, 3)
  assert.deepEqual(seen, newestFirst, 'newest first, the hidden one left out')

  const byName = (await call('GET', '/v2/images?name=page-3')).json().images
  assert.deepEqual(
    byName.map((x: { id: string }) => x.id),
    [ids[3]],
  )
  const queued = (await call('GET', '/v2/images?tag=paged&status=queued')).json().images
  assert.equal(queued.length, 5)
  assert.equal((await call('GET', '/v2/images?tag=paged&status=active')).json().images.length, 0)
  const odd = (await call('GET', '/v2/images?tag=paged&flavour=odd')).json().images
  assert.deepEqual(
    odd.map((x: { id: string }) => x.id),
    [ids[3], ids[1]],
  )
  const hiddenOnly = (await call('GET', '/v2/images?tag=paged&os_hidden=True')).json().images
  assert.deepEqual(
    hiddenOnly.map((x: { id: string }) => x.id),
    [hidden.id],
  )
  assert.equal((await call('GET', `/v2/images/${hidden.id}`)).status, 200, 'hidden only from lists')

  const unknown = randomUUID()
  assertGlanceError(await call('GET', `/v2/images?marker=${unknown}`), 400, `No image found with ID ${unknown}`)
  assertGlanceError(await call('GET', '/v2/images?limit=abc'), 400, 'limit param must be an integer')
  assertGlanceError(await call('GET', '/v2/images?limit=-1'), 400, 'limit param must be positive')
  assertGlanceError(await call('GET', '/v2/images?visibility=bogus'), 400, 'Invalid visibility value: bogus')
  assertGlanceError(await call('GET', '/v2/images?os_hidden=maybe'), 400, /os_hidden/)
  const lastName = (await call('GET', '/v2/images?name=page-1&name=page-3')).json().images
  assert.deepEqual(
    lastName.map((x: { id: string }) => x.id),
    [ids[3]],
    'a repeated filter counts with its last value, as in Glance',
  )
})

test('visibility isolates projects', async () => {
  const priv = await create({ name: 'alice-private', visibility: 'private' })
  const shared = await create({ name: 'alice-shared' })
  const community = await create({ name: 'alice-community', visibility: 'community' })

  for (const img of [priv, shared]) {
    assertGlanceError(await call('GET', `/v2/images/${img.id}`, { as: 'bob' }), 404, `No image found with ID ${img.id}`)
    assert.equal(
      (await call('PATCH', `/v2/images/${img.id}`, { as: 'bob', body: [{ op: 'replace', path: '/name', value: 'x' }] })).status,
      404,
    )
    assert.equal((await call('DELETE', `/v2/images/${img.id}`, { as: 'bob' })).status, 404)
    assert.equal((await call('GET', `/v2/images/${img.id}/file`, { as: 'bob' })).status, 404)
    assert.equal((await call('GET', `/v2/images/${img.id}`, { as: 'admin' })).status, 200)
  }
  const bobList = (await call('GET', '/v2/images?limit=1000', { as: 'bob' })).json().images.map((x: { id: string }) => x.id)
  assert.ok(!bobList.includes(priv.id) && !bobList.includes(shared.id))
  // Glance's marker lookup answers 403 for an image the caller may not see.
  assertGlanceError(
    await call('GET', `/v2/images?marker=${priv.id}`, { as: 'bob' }),
    403,
    `Forbidding request, image ${priv.id} not visible`,
  )

  // Community: visible by id to everyone, listed only when asked for, changed only by its owner.
  assert.equal((await call('GET', `/v2/images/${community.id}`, { as: 'bob' })).status, 200)
  assert.ok(!bobList.includes(community.id))
  const comm = (await call('GET', '/v2/images?visibility=community', { as: 'bob' })).json().images
  assert.ok(comm.some((x: { id: string }) => x.id === community.id))
  assertGlanceError(
    await call('PATCH', `/v2/images/${community.id}`, { as: 'bob', body: [{ op: 'replace', path: '/name', value: 'mine' }] }),
    403,
    'You are not authorized to complete modify_image action.',
  )
  assertGlanceError(
    await call('DELETE', `/v2/images/${community.id}`, { as: 'bob' }),
    403,
    'You are not authorized to complete delete_image action.',
  )

  // Publicizing is admin-only, as in Glance's default policy.
  assertGlanceError(
    await call('POST', '/v2/images', { body: { name: 'pub', visibility: 'public' } }),
    403,
    'You are not authorized to complete publicize_image action.',
  )
  const pub = await create({ name: 'admin-public', visibility: 'public' }, 'admin')
  assert.equal((await call('GET', `/v2/images/${pub.id}`, { as: 'bob' })).status, 200)
  assert.ok((await call('GET', '/v2/images?name=admin-public', { as: 'bob' })).json().images.length === 1)
  assertGlanceError(
    await call('POST', '/v2/images', { body: { owner: projects.p2 } }),
    403,
    'You are not authorized to complete add_image action.',
  )
})

test("bad bodies: 400, 403, 409 and 415 in Glance's shape", async () => {
  const img = await create({ name: 'target' })
  const post = (body: unknown) => call('POST', '/v2/images', { body })
  assertGlanceError(await post([]), 400, /^Invalid input/)
  assertGlanceError(
    await call('POST', '/v2/images', { payload: '{"name": ', type: 'application/json' }),
    400,
    'Malformed JSON in request body.',
  )
  assertGlanceError(await post({ visibility: 'bogus' }), 400, /visibility/)
  assertGlanceError(await post({ min_ram: -1 }), 400, /min_ram/)
  assertGlanceError(await post({ protected: 'yes' }), 400, /protected/)
  assertGlanceError(await post({ hw_rescue_device: 5 }), 400, /hw_rescue_device/)
  assertGlanceError(await post({ id: 'not-a-uuid' }), 400, /'id'/)
  assertGlanceError(await post({ status: 'active' }), 403, "Attribute 'status' is read-only.")
  assertGlanceError(await post({ size: 5 }), 403, "Attribute 'size' is read-only.")
  assertGlanceError(await post({ checksum: 'x' }), 403, "Attribute 'checksum' is read-only.")
  assertGlanceError(await post({ os_glance_import_task: 'x' }), 403, "Attribute 'os_glance_import_task' is reserved.")
  const id = randomUUID()
  assert.equal((await create({ id })).id, id)
  assertGlanceError(await post({ id }), 409, `Image with identifier ${id} already exists!`)

  const patch = (body: unknown, type?: string) => call('PATCH', `/v2/images/${img.id}`, { body, ...(type ? { type } : {}) })
  const wrongType = await patch([{ op: 'replace', path: '/name', value: 'x' }], 'application/json')
  assertGlanceError(wrongType, 415, 'Unsupported Content-Type')
  assert.equal(wrongType.headers['accept-patch'], `application/openstack-images-v2.0-json-patch, ${PATCH}`)
  // The v2.0 patch type (JSON-schema draft 4 operations), as Tempest's image client sends it: no add over what is there.
  const V20 = 'application/openstack-images-v2.0-json-patch'
  const added = await patch([{ add: '/hw_rescue_bus', value: 'virtio' }], V20)
  assert.equal(added.status, 200, added.raw.toString())
  assert.equal(added.json().hw_rescue_bus, 'virtio')
  assertGlanceError(await patch([{ add: '/hw_rescue_bus', value: 'scsi' }], V20), 409, 'Property hw_rescue_bus already present.')
  assert.equal((await patch([{ replace: '/hw_rescue_bus', value: 'scsi' }], V20)).json().hw_rescue_bus, 'scsi')
  assert.equal((await patch([{ remove: '/hw_rescue_bus' }], V20)).json().hw_rescue_bus, undefined)
  assertGlanceError(
    await patch([{ add: '/a', replace: '/b', value: 1 }], V20),
    400,
    'Operation objects must contain only one member named "add", "remove", or "replace".',
  )
  assertGlanceError(
    await patch([{ value: 1 }], V20),
    400,
    'Operation objects must contain exactly one member named "add", "remove", or "replace".',
  )
  assertGlanceError(await patch([{ add: '/x' }], V20), 400, 'Operation "add" requires a member named "value".')
  assertGlanceError(await patch({ op: 'replace' }), 400, /^Invalid input/)
  assertGlanceError(await patch([{ op: 'move', path: '/name', from: '/x' }]), 400, /^Invalid input/)
  assertGlanceError(await patch([{ op: 'replace', path: '/name' }]), 400, "Unable to find 'value' in JSON Schema change")
  assertGlanceError(await patch([{ op: 'replace', path: 'name', value: 'x' }]), 400, /does not start with/)
  assertGlanceError(await patch([{ op: 'replace', path: '/a/b', value: 'x' }]), 400, /Invalid JSON pointer/)
  assertGlanceError(await patch([{ op: 'replace', path: '/status', value: 'active' }]), 403, "Attribute 'status' is read-only.")
  assertGlanceError(await patch([{ op: 'replace', path: '/id', value: randomUUID() }]), 403, "Attribute 'id' is read-only.")
  assertGlanceError(await patch([{ op: 'remove', path: '/name' }]), 403, 'Property name may not be removed.')
  assertGlanceError(await patch([{ op: 'replace', path: '/nope', value: 'x' }]), 409, 'Property nope does not exist.')
  assertGlanceError(await patch([{ op: 'remove', path: '/nope' }]), 409, 'Property nope does not exist.')
  assertGlanceError(await patch([{ op: 'replace', path: '/toString', value: 'x' }]), 409, 'Property toString does not exist.')
  assertGlanceError(await patch([{ op: 'add', path: '/__proto__', value: 'x' }]), 400, /__proto__/)
  assertGlanceError(await patch([{ op: 'replace', path: '/visibility', value: 'everyone' }]), 400, /visibility/)
  assertGlanceError(await patch([{ op: 'add', path: '/hw_x', value: { a: 1 } }]), 400, /hw_x/)

  // Formats are fixed once there is data.
  const active = await create({ name: 'fixed', disk_format: 'raw', container_format: 'bare' })
  assert.equal((await upload(active.id, Buffer.from('data'))).status, 204)
  assertGlanceError(
    await call('PATCH', `/v2/images/${active.id}`, { body: [{ op: 'replace', path: '/disk_format', value: 'qcow2' }] }),
    403,
    'Attribute disk_format can be only replaced for a queued image.',
  )

  assertGlanceError(await call('GET', '/v2/images/not-a-uuid'), 404, 'No image found with ID not-a-uuid')
  assertGlanceError(await call('GET', `/v2/images/${randomUUID()}/file`), 404, /^No image found/)
})

test('schema documents', async () => {
  const image = await call('GET', '/v2/schemas/image')
  assert.equal(image.status, 200)
  assert.equal(image.json().name, 'image')
  assert.deepEqual(image.json().additionalProperties, { type: 'string' })
  assert.equal(image.json().properties.status.readOnly, true)
  const list = await call('GET', '/v2/schemas/images')
  assert.equal(list.json().properties.images.items.name, 'image')
})

test('service: interrupted upload goes back to queued; usableImage; ensureImage is idempotent', async () => {
  const caller = { projectId: projects.p1, isAdmin: false, roles: ['member'] }
  const img = await images.create(caller, { name: 'cut', disk_format: 'raw', container_format: 'bare' })
  async function* cutShort() {
    yield Buffer.from('partial')
    throw new Error('socket hang up')
  }
  await assert.rejects(images.upload(caller, img.id, cutShort()), /Client disconnected/)
  assert.equal((await images.get(caller, img.id)).status, 'queued')
  assert.ok(!(await readdir(dir)).some((n) => n.includes(img.id)), 'neither temp nor final file remains')
  assert.equal(await images.usableImage(img.id, projects.p1, false), undefined, 'not active')

  const boot = await images.ensureImage({
    name: 'skiff-rescue',
    visibility: 'public',
    diskFormat: 'raw',
    containerFormat: 'bare',
    properties: { hw_rescue_device: 'cdrom' },
    content: Buffer.from('rescue'),
  })
  assert.equal(boot.status, 'active')
  assert.equal(boot.size, 6)
  assert.equal(JSON.parse(boot.properties).hw_rescue_device, 'cdrom')
  const again = await images.ensureImage({
    name: 'skiff-rescue',
    visibility: 'public',
    diskFormat: 'qcow2',
    containerFormat: 'bare',
    content: Buffer.from('other'),
  })
  assert.deepEqual(again, boot)
  assert.equal((await images.usableImage(boot.id, projects.p2, false))?.id, boot.id)

  const priv = await images.create(caller, { name: 'p', visibility: 'private', disk_format: 'raw', container_format: 'bare' })
  await images.upload(caller, priv.id, [Buffer.from('x')])
  assert.equal((await images.usableImage(priv.id, projects.p1, false))?.id, priv.id)
  assert.equal(await images.usableImage(priv.id, projects.p2, false), undefined)
  assert.equal((await images.usableImage(priv.id, projects.p2, true))?.id, priv.id)
})

test("Glance's v2.0 patch type: {add: path, value} operations (Tempest's images client sends them)", async () => {
  const img = await create({ name: 'v20', disk_format: 'raw', container_format: 'bare' })
  const r = await call('PATCH', `/v2/images/${img.id}`, {
    body: [
      { add: '/hw_rescue_bus', value: 'virtio' },
      { replace: '/name', value: 'v20b' },
    ],
    type: 'application/openstack-images-v2.0-json-patch',
  })
  assert.equal(r.status, 200, r.raw.toString())
  assert.equal(r.json().hw_rescue_bus, 'virtio')
  assert.equal(r.json().name, 'v20b')
  const removed = await call('PATCH', `/v2/images/${img.id}`, {
    body: [{ remove: '/hw_rescue_bus' }],
    type: 'application/openstack-images-v2.0-json-patch',
  })
  assert.equal(removed.json().hw_rescue_bus, undefined)
  const other = await call('PATCH', `/v2/images/${img.id}`, { body: [], type: 'application/json' })
  assert.equal(other.status, 415)
  assert.equal(other.headers['accept-patch'], 'application/openstack-images-v2.0-json-patch, application/openstack-images-v2.1-json-patch')
})
