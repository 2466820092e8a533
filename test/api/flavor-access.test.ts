// Flavor create as Nova's schema takes it (an integer id, is_public spellings), flavor access
// (os-flavor-access, addTenantAccess/removeTenantAccess; private flavors hidden from projects
// without access), the compute image proxy (up to 2.35), x509 keypair generation and
// /os-simple-tenant-usage/ with an empty id.
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { createPrivateKey as createPrivateKeyFrom, createPublicKey, X509Certificate } from 'node:crypto'
import { after, before, test } from 'node:test'
import { startTestSkiff, type TestSkiff } from '../helpers/skiff.ts'

let skiff: TestSkiff
let admin: string
let demo: string
let alt: string
let demoProject: string

const projectOf = async (token: string) => {
  const res = await skiff.apps.identity.inject({
    method: 'GET',
    url: '/v3/auth/tokens',
    headers: { 'x-auth-token': token, 'x-subject-token': token },
  })
  return res.json().token.project.id as string
}
const createFlavor = (flavor: Record<string, unknown>, token = admin) =>
  skiff.compute('POST', '/v2.1/flavors', { token, body: { flavor: { ram: 64, vcpus: 1, disk: 1, ...flavor } } })
const action = (id: string, body: unknown, token = admin, v = '2.1') =>
  skiff.compute('POST', `/v2.1/flavors/${id}/action`, { token, body, headers: { 'openstack-api-version': `compute ${v}` } })
const ids = async (token: string) =>
  (await skiff.compute('GET', '/v2.1/flavors/detail', { token })).json().flavors.map((f: { id: string }) => f.id) as string[]

before(async () => {
  skiff = await startTestSkiff()
  admin = await skiff.token('admin')
  demo = await skiff.token('demo')
  alt = await skiff.token('alt_demo')
  demoProject = await projectOf(demo)
})
after(() => skiff.close())

test('an integer id becomes its string form; is_public takes Nova spellings of a boolean', async () => {
  const res = await createFlavor({ name: 'int-id', id: 424242, 'os-flavor-access:is_public': 'False' })
  assert.equal(res.statusCode, 200)
  assert.equal(res.json().flavor.id, '424242')
  assert.equal(res.json().flavor['os-flavor-access:is_public'], false)
  const pub = await createFlavor({ name: 'pub-str', id: null, 'os-flavor-access:is_public': 'yes' })
  assert.equal(pub.json().flavor['os-flavor-access:is_public'], true)
  const bad = await createFlavor({ name: 'bad-pub', 'os-flavor-access:is_public': 'maybe' })
  assert.equal(bad.statusCode, 400)
  assert.match(bad.json().badRequest.message, /^Invalid input for field\/attribute os-flavor-access:is_public/)
})

test('flavor access: a private flavor shows only to projects given access, and admins', async () => {
  const f = (await createFlavor({ name: 'private-1', id: 'private-1', 'os-flavor-access:is_public': false })).json().flavor
  assert.deepEqual((await skiff.compute('GET', `/v2.1/flavors/${f.id}/os-flavor-access`, { token: admin })).json(), { flavor_access: [] })
  assert.ok(!(await ids(demo)).includes(f.id))
  assert.equal((await skiff.compute('GET', `/v2.1/flavors/${f.id}`, { token: demo })).statusCode, 404)
  // Not yours to share.
  assert.equal((await action(f.id, { addTenantAccess: { tenant: demoProject } }, demo)).statusCode, 403)

  const add = await action(f.id, { addTenantAccess: { tenant: demoProject } })
  assert.equal(add.statusCode, 200)
  assert.deepEqual(add.json(), { flavor_access: [{ flavor_id: f.id, tenant_id: demoProject }] })
  assert.ok((await ids(demo)).includes(f.id))
  assert.equal((await skiff.compute('GET', `/v2.1/flavors/${f.id}`, { token: demo })).statusCode, 200)
  assert.ok(!(await ids(alt)).includes(f.id))

  const dup = await action(f.id, { addTenantAccess: { tenant: demoProject } })
  assert.deepEqual(dup.json(), {
    conflictingRequest: {
      code: 409,
      message: `Flavor access already exists for flavor ${f.id} and project ${demoProject} combination.`,
    },
  })
  assert.equal((await action(f.id, { removeTenantAccess: { tenant: demoProject } }, demo)).statusCode, 403)
  assert.deepEqual((await action(f.id, { removeTenantAccess: { tenant: demoProject } })).json(), { flavor_access: [] })
  assert.ok(!(await ids(demo)).includes(f.id))
  const gone = await action(f.id, { removeTenantAccess: { tenant: demoProject } })
  assert.deepEqual(gone.json(), {
    itemNotFound: { code: 404, message: `Flavor access not found for ${f.id} / ${demoProject} combination.` },
  })
  // Admins list private flavors with is_public=false (or None).
  const priv = await skiff.compute('GET', '/v2.1/flavors?is_public=false', { token: admin })
  assert.ok(priv.json().flavors.some((x: { id: string }) => x.id === f.id))
})

test('flavor access on a public flavor: no list (404), and from 2.7 no add (409)', async () => {
  const list = await skiff.compute('GET', '/v2.1/flavors/1/os-flavor-access', { token: admin })
  assert.deepEqual(list.json(), { itemNotFound: { code: 404, message: 'Access list not available for public flavors.' } })
  const add = await action('1', { addTenantAccess: { tenant: demoProject } }, admin, '2.7')
  assert.deepEqual(add.json(), { conflictingRequest: { code: 409, message: 'Can not add access to a public flavor.' } })
  assert.equal((await skiff.compute('GET', '/v2.1/flavors/1/os-flavor-access', { token: demo })).statusCode, 403)
  assert.equal((await action('1', { addTenantAccess: {} })).statusCode, 400)
  assert.equal((await action('nope', { removeTenantAccess: { tenant: demoProject } })).statusCode, 404)
})

test('a server cannot be created with a private flavor the project has no access to', async () => {
  await createFlavor({ name: 'private-2', id: 'private-2', 'os-flavor-access:is_public': false })
  const imageRef = await skiff.imageId('skiff-base')
  const res = await skiff.compute('POST', '/v2.1/servers', {
    token: demo,
    body: { server: { name: 's', imageRef, flavorRef: 'private-2' } },
  })
  assert.deepEqual(res.json(), { badRequest: { code: 400, message: 'Invalid flavorRef provided.' } })
})

test('extra spec delete answers 200', async () => {
  await createFlavor({ name: 'specs', id: 'specs' })
  await skiff.compute('POST', '/v2.1/flavors/specs/os-extra_specs', { token: admin, body: { extra_specs: { 'hw:cpu_policy': 'shared' } } })
  const del = await skiff.compute('DELETE', '/v2.1/flavors/specs/os-extra_specs/hw:cpu_policy', { token: admin })
  assert.equal(del.statusCode, 200)
})

test('the compute image proxy shows Glance images as Nova does, up to 2.35', async () => {
  const id = await skiff.imageId('skiff-base')
  const list = await skiff.compute('GET', '/v2.1/images', { token: demo })
  const basic = list.json().images.find((i: { id: string }) => i.id === id)
  assert.deepEqual(Object.keys(basic).sort(), ['id', 'links', 'name'])
  const show = (await skiff.compute('GET', `/v2.1/images/${id}`, { token: demo })).json().image
  assert.equal(show.status, 'ACTIVE')
  assert.equal(show.progress, 100)
  assert.equal(typeof show.minRam, 'number')
  assert.equal(typeof show['OS-EXT-IMG-SIZE:size'], 'number')
  const detail = (await skiff.compute('GET', '/v2.1/images/detail', { token: demo })).json().images
  assert.deepEqual(
    detail.find((i: { id: string }) => i.id === id),
    show,
  )
  const missing = await skiff.compute('GET', '/v2.1/images/00000000-0000-0000-0000-000000000000', { token: demo })
  assert.deepEqual(missing.json(), { itemNotFound: { code: 404, message: 'Image not found.' } })
  const removed = await skiff.compute('GET', '/v2.1/images', { token: demo, headers: { 'openstack-api-version': 'compute 2.36' } })
  assert.equal(removed.statusCode, 404)
})

test('an x509 keypair is generated: a self-signed certificate and its SHA-1 fingerprint', async () => {
  const res = await skiff.compute('POST', '/v2.1/os-keypairs', {
    token: demo,
    body: { keypair: { name: 'cert', type: 'x509' } },
    headers: { 'openstack-api-version': 'compute 2.2' },
  })
  assert.equal(res.statusCode, 201)
  const kp = res.json().keypair
  assert.equal(kp.type, 'x509')
  const cert = new X509Certificate(kp.public_key)
  assert.ok(cert.verify(cert.publicKey))
  assert.equal(kp.fingerprint, cert.fingerprint.toLowerCase())
  // Nova's private key: `openssl pkcs12 -export -password pass:` of the key and the certificate, base64.
  assert.match(kp.private_key, /^[A-Za-z0-9+/]+=*$/)
  const p12 = Buffer.from(kp.private_key, 'base64')
  assert.equal(p12[0], 0x30)
  let pem: string
  try {
    pem = execFileSync('openssl', ['pkcs12', '-passin', 'pass:', '-nodes'], { input: p12, stdio: ['pipe', 'pipe', 'pipe'] }).toString()
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return // no openssl here: the bundle's shape is all we can check
    throw e
  }
  // The bundle opens with the empty password (its MAC checks) and holds the certificate and its key.
  const bundled = new X509Certificate(pem.slice(pem.indexOf('-----BEGIN CERTIFICATE-----')))
  assert.equal(bundled.fingerprint, cert.fingerprint)
  const key = pem.slice(pem.indexOf('-----BEGIN PRIVATE KEY-----'))
  assert.ok(cert.checkPrivateKey(createPrivateKeyFrom(key)))
  assert.deepEqual(createPublicKey(key).export({ format: 'der', type: 'spki' }), cert.publicKey.export({ format: 'der', type: 'spki' }))
})

test('/os-simple-tenant-usage/ with an empty tenant id is 404', async () => {
  const res = await skiff.compute('GET', '/v2.1/os-simple-tenant-usage/', { token: admin })
  assert.equal(res.statusCode, 404)
})

test("the image proxy's metadata writes: set all, update, set one item, delete one item, as Nova's image_metadata", async () => {
  const created = await skiff.apps.image.inject({
    method: 'POST',
    url: '/v2/images',
    headers: { 'x-auth-token': demo, 'content-type': 'application/json' },
    payload: { name: 'meta-proxy', disk_format: 'raw', container_format: 'bare', os_distro: 'old' },
  })
  assert.equal(created.statusCode, 201, created.body)
  const id = created.json().id as string
  const meta = (method: string, suffix = '', body?: unknown, token = demo) =>
    skiff.compute(method, `/v2.1/images/${id}/metadata${suffix}`, { token, body })

  const all = await meta('PUT', '', { metadata: { os_version: 'v1', os_distro: 'v2' } })
  assert.equal(all.statusCode, 200, all.body)
  assert.deepEqual(all.json(), { metadata: { os_version: 'v1', os_distro: 'v2' } })
  const merged = await meta('POST', '', { metadata: { os_version: 'v3', extra: 'x' } })
  assert.deepEqual(merged.json().metadata, { os_version: 'v3', os_distro: 'v2', extra: 'x' })
  // PUT replaces: what the body leaves out is gone.
  await meta('PUT', '', { metadata: { os_distro: 'v2' } })
  assert.deepEqual((await meta('GET')).json(), { metadata: { os_distro: 'v2' } })

  const item = await meta('PUT', '/os_version', { meta: { os_version: 'v9' } })
  assert.deepEqual(item.json(), { meta: { os_version: 'v9' } })
  assert.deepEqual((await meta('GET', '/os_version')).json(), { meta: { os_version: 'v9' } })
  const mismatch = await meta('PUT', '/os_version', { meta: { other: 'x' } })
  assert.deepEqual(mismatch.json(), { badRequest: { code: 400, message: 'Request body and URI mismatch' } })
  assert.equal((await meta('PUT', '/os_version', { meta: { os_version: 'a', b: 'c' } })).statusCode, 400)
  assert.equal((await meta('PUT', '', { metadata: { k: 1 } })).statusCode, 400)

  assert.equal((await meta('DELETE', '/os_version')).statusCode, 204)
  const gone = await meta('DELETE', '/os_version')
  assert.deepEqual(gone.json(), { itemNotFound: { code: 404, message: 'Invalid metadata key' } })
  // Another project's member may not write it (Glance's modify_image), the image not even seen.
  assert.equal((await meta('POST', '', { metadata: { a: 'b' } }, alt)).statusCode, 404)
  assert.equal((await meta('PUT', '', { metadata: {} }, demo)).statusCode, 200)
})
