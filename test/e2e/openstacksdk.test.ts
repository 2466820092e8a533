// openstacksdk (Debian's python3-openstacksdk 0.101) against a real `skiff serve`, connected through
// the clouds.yaml Skiff writes: servers (create, wait, get, list with filters, stop, start, reboot,
// delete), images (create with data, download, update, delete), flavors and key pairs.
// openstacksdk_checks.py runs the calls once and reports what each answered; each test here
// asserts one of them.
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { clientGate } from './helpers/clients.ts'
import { runSdkChecks, type SdkResults } from './helpers/sdk.ts'
import { startSkiffProcess, type SkiffProcess } from './helpers/skiff-process.ts'
import { md5Fingerprint, newEd25519PublicKey, sshBlobFromPem } from './helpers/ssh-keys.ts'

const gate = await clientGate(['openstacksdk'])
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/
const name = `e2e-sdk-${process.pid}-${randomBytes(3).toString('hex')}`
const imageBytes = randomBytes(200_000 + Math.floor(Math.random() * 1000))
const key = newEd25519PublicKey(`e2e@${name}`)

interface Server {
  id: string
  name: string
  status: string
  vm_state: string | null
  task_state: string | null
  image_id: string
  flavor_id: string
  networks: string[]
  admin_pass: string | null
}

let skiff: SkiffProcess
let work: string
let sdk: SdkResults

describe('openstacksdk against skiff serve', gate, () => {
  before(async () => {
    skiff = await startSkiffProcess({ simulatedDelayMs: 20 })
    work = mkdtempSync(path.join(tmpdir(), 'skiff-e2e-sdk-'))
    const file = path.join(work, 'disk.raw')
    writeFileSync(file, imageBytes)
    sdk = await runSdkChecks(skiff, 'lifecycle', ['--name', name, '--image-file', file, '--public-key', key.line])
  })
  after(async () => {
    await skiff?.stop()
    if (work) rmSync(work, { recursive: true, force: true })
  })

  // Read from the results where needed, so each test stands on its own.
  const serverId = () => sdk.value<Server>('create_server').id
  const baseImage = () => sdk.value<{ id: string }>('find_image skiff-base').id

  test('connect with the clouds.yaml and authorize: a project-scoped token', () => {
    const a = sdk.value<{ token: boolean; project_id: string }>('authorize')
    assert.equal(a.token, true)
    assert.match(a.project_id, /^[0-9a-f]{32}$/)
  })

  test('flavors: the m1 flavors; find_flavor by name', () => {
    const flavors = sdk.value<{ id: string; name: string; ram: number; vcpus: number; disk: number }[]>('flavors')
    assert.deepEqual(
      flavors.find((f) => f.name === 'm1.tiny'),
      { id: '1', name: 'm1.tiny', ram: 512, vcpus: 1, disk: 1 },
    )
    assert.deepEqual(flavors.map((f) => f.name).sort(), ['m1.large', 'm1.medium', 'm1.small', 'm1.tiny'])
    assert.deepEqual(sdk.value('find_flavor m1.tiny'), { id: '1', name: 'm1.tiny', ram: 512 })
  })

  test('find_image skiff-base: active', () => {
    const img = sdk.value<{ id: string; status: string }>('find_image skiff-base')
    assert.match(img.id, UUID)
    assert.equal(img.status, 'active')
  })

  test('create_server: an id and the adminPass', () => {
    const s = sdk.value<Server>('create_server')
    assert.match(s.id, UUID)
    assert.equal(s.name, name)
    assert.match(String(s.admin_pass), /^\S{8,}$/)
  })

  test('wait_for_server: ACTIVE, settled', () => {
    const s = sdk.value<Server>('wait_for_server ACTIVE')
    assert.equal(s.status, 'ACTIVE')
    assert.equal(s.vm_state, 'active')
    assert.equal(s.task_state, null)
  })

  test('get_server: its name, image, flavor and network', () => {
    const s = sdk.value<Server>('get_server')
    // The SDK negotiates 2.93: the flavor is embedded (2.47), and the SDK's flavor_id is its original_name.
    assert.deepEqual(
      { id: s.id, name: s.name, status: s.status, image: s.image_id, flavor: s.flavor_id },
      { id: serverId(), name, status: 'ACTIVE', image: baseImage(), flavor: 'm1.tiny' },
    )
    assert.ok(s.networks.length > 0, 'no addresses')
    assert.equal(s.admin_pass, null, 'the password is shown once, at create')
  })

  test('servers() with filters: name, status, image and flavor; find_server by name', () => {
    assert.deepEqual(sdk.value('servers(name=)'), [serverId()])
    assert.deepEqual(sdk.value('servers(status=ACTIVE)'), [serverId()])
    assert.deepEqual(sdk.value('servers(status=SHUTOFF)'), [])
    assert.deepEqual(sdk.value('servers(image=, flavor=)'), [serverId()])
    assert.deepEqual(sdk.value('servers(details=False)'), [{ id: serverId(), name }])
    assert.equal(sdk.value('find_server by name'), serverId())
  })

  test('another project (alt): get_server is NotFound, servers() is empty', () => {
    const e = sdk.error('alt: get_server')
    assert.equal(e.status, 404)
    assert.ok(e.classes.includes('NotFoundException'), e.classes.join(','))
    assert.deepEqual(sdk.value('alt: servers()'), [])
  })

  test('stop_server: SHUTOFF', () => {
    sdk.value('stop_server')
    const s = sdk.value<Server>('wait_for_server SHUTOFF')
    assert.equal(s.status, 'SHUTOFF')
    assert.equal(s.vm_state, 'stopped')
    assert.equal(s.task_state, null)
  })

  test('start_server: ACTIVE', () => {
    sdk.value('start_server')
    const s = sdk.value<Server>('wait_for_server ACTIVE after start')
    assert.equal(s.status, 'ACTIVE')
    assert.equal(s.task_state, null)
  })

  test('reboot_server SOFT, then HARD: ACTIVE after each', () => {
    sdk.value('reboot_server SOFT')
    assert.equal(sdk.value<Server>('wait_for_server ACTIVE after soft reboot').status, 'ACTIVE')
    sdk.value('reboot_server HARD')
    const s = sdk.value<Server>('wait_for_server ACTIVE after hard reboot')
    assert.equal(s.status, 'ACTIVE')
    assert.equal(s.task_state, null)
  })

  test('create_keypair: a generated one comes with its private key, matching its public key and fingerprint', () => {
    const kp = sdk.value<{ name: string; fingerprint: string; public_key: string; private_key: string }>('create_keypair (generated)')
    assert.equal(kp.name, `sdk-gen-${name}`)
    assert.match(kp.private_key, /-----BEGIN [A-Z ]*PRIVATE KEY-----/)
    const blob = sshBlobFromPem(kp.private_key)
    assert.equal(kp.public_key.split(/\s+/)[1], blob.toString('base64'))
    assert.equal(kp.fingerprint, md5Fingerprint(blob))
  })

  test('create_keypair(public_key=...): imported, its fingerprint, no private key', () => {
    const kp = sdk.value<{ name: string; fingerprint: string; private_key: string | null }>('create_keypair (public_key)')
    assert.equal(kp.name, `sdk-imp-${name}`)
    assert.equal(kp.fingerprint, key.fingerprint)
    assert.equal(kp.private_key, null)
    assert.equal(sdk.value<{ public_key: string }>('get_keypair').public_key, key.line)
  })

  test('keypairs(): both; delete_keypair: then get_keypair is NotFound', () => {
    const names = sdk
      .value<{ name: string }[]>('keypairs')
      .map((k) => k.name)
      .sort()
    assert.deepEqual(names, [`sdk-gen-${name}`, `sdk-imp-${name}`])
    sdk.value('delete_keypair')
    const e = sdk.error('get_keypair after delete')
    assert.equal(e.status, 404)
    assert.ok(e.classes.includes('NotFoundException'), e.classes.join(','))
  })

  test("image.create_image(data=...): the image is active with the data's size and checksum", () => {
    const created = sdk.value<{ id: string; name: string }>('create_image (data)')
    assert.match(created.id, UUID)
    assert.equal(created.name, `sdk-image-${name}`)
    const img = sdk.value<{ id: string; status: string; size: number; checksum: string; visibility: string }>('get_image')
    assert.equal(img.status, 'active')
    assert.equal(img.size, imageBytes.length)
    assert.equal(img.checksum, createHash('md5').update(imageBytes).digest('hex'))
    assert.ok(sdk.value<string[]>('images() lists it').includes(created.id))
  })

  test("image.images(): Glance's sort, sort_key/sort_dir, in: and size filters, pages of one followed to the end", () => {
    const fold = (s: string) => s.replace(/[A-Z]/g, (c) => c.toLowerCase())
    const byName = (x: string, y: string) => (fold(x) < fold(y) ? -1 : fold(x) > fold(y) ? 1 : 0)
    const asc = sdk.value<string[]>('images(sort=name:asc, limit=1)')
    for (const n of ['skiff-base', 'skiff-rescue', `sdk-image-${name}`]) assert.ok(asc.includes(n), `${n} in ${JSON.stringify(asc)}`)
    assert.deepEqual(asc, [...asc].sort(byName))
    assert.deepEqual(sdk.value<string[]>('images(sort_key=name, sort_dir=desc)'), [...asc].reverse())
    assert.deepEqual(sdk.value<string[]>('images(name=in:...)'), [`sdk-image-${name}`, 'skiff-base'])
    const created = sdk.value<{ id: string }>('create_image (data)')
    assert.deepEqual(sdk.value<string[]>('images(size_min=, size_max=)'), [created.id])
    const e = sdk.error('images(sort=bogus)')
    assert.equal(e.status, 400)
    assert.match(e.message, /Invalid sort key: bogus/)
  })

  test('image.download_image: the same bytes', () => {
    const d = sdk.value<{ size: number; md5: string; sha256: string }>('download_image')
    assert.equal(d.size, imageBytes.length)
    assert.equal(d.sha256, createHash('sha256').update(imageBytes).digest('hex'))
  })

  test('image.update_image(k=v): the property is kept', () => {
    sdk.value('update_image (property)')
    const after = sdk.value<{ properties: Record<string, unknown> }>('get_image after update')
    assert.equal(after.properties.e2e_key, 'sdk value')
  })

  test('image.delete_image: then get_image is NotFound and find_image finds nothing', () => {
    sdk.value('delete_image')
    const e = sdk.error('get_image after delete')
    assert.equal(e.status, 404)
    assert.ok(e.classes.includes('NotFoundException'), e.classes.join(','))
    assert.equal(sdk.value('find_image after delete'), null)
  })

  test('delete_server and wait_for_delete: then get_server is NotFound', () => {
    sdk.value('delete_server')
    assert.equal(sdk.value('wait_for_delete'), serverId())
    const e = sdk.error('get_server after delete')
    assert.equal(e.status, 404)
    assert.ok(e.classes.includes('NotFoundException'), e.classes.join(','))
  })
})
