// A new user's first hour with Skiff, through the real `openstack` and `nova` CLIs (Debian's
// python3-openstackclient 6 and python3-novaclient 18) against a real `skiff serve`:
// servers, images, flavors, key pairs, the identity lists, and what another project cannot see.
// The suites run side by side (each is sequential inside): the clients' `--wait` polls every 5 s.
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { clientGate, Clients } from './helpers/clients.ts'
import { describeRun, failed, ok } from './helpers/process.ts'
import { startSkiffProcess, type SkiffProcess } from './helpers/skiff-process.ts'
import { blobOfPublicKeyLine, md5Fingerprint, newEd25519PublicKey, sshBlobFromPem } from './helpers/ssh-keys.ts'

const gate = await clientGate(['openstack', 'nova'])
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/
const tag = `${process.pid}-${randomBytes(3).toString('hex')}`
/** A test's own deadline: long enough for a few `--wait`s, short enough to name the one that hangs. */
const T = { timeout: 120_000 }

let skiff: SkiffProcess
let cli: Clients
let work: string

const noServer = (ref: string) => new RegExp(`No server with a name or ID of '${ref}' exists`)

describe('the openstack and nova CLIs against skiff serve', { ...gate, concurrency: true }, () => {
  before(async () => {
    skiff = await startSkiffProcess({ simulatedDelayMs: 20 })
    cli = new Clients(skiff)
    work = mkdtempSync(path.join(tmpdir(), 'skiff-e2e-files-'))
  })
  after(async () => {
    await skiff?.stop()
    if (work) rmSync(work, { recursive: true, force: true })
  })

  describe('a server, from create to delete', { concurrency: false }, () => {
    const name = `e2e-cli-${tag}`
    let id = ''
    let baseImageId = ''

    test('server create --image skiff-base --flavor m1.tiny --wait: ACTIVE, with its adminPass', T, async () => {
      const s = await cli.createServer('demo', name)
      assert.match(s.id, UUID)
      id = s.id
      assert.equal(s.name, name)
      assert.equal(s.status, 'ACTIVE')
      assert.equal(typeof s.adminPass, 'string', `no adminPass in ${JSON.stringify(s)}`)
      assert.match(String(s.adminPass), /^\S{8,}$/)
      const image = /^skiff-base \(([0-9a-f-]{36})\)$/.exec(String(s.image))
      assert.ok(image, `image ${String(s.image)}`)
      baseImageId = image[1]!
      assert.equal(s.flavor, 'm1.tiny (1)')
    })

    test('server list shows it, ACTIVE, with its image and flavor names', T, async () => {
      const rows = await cli.openstackJson<Record<string, unknown>[]>('demo', ['server', 'list'])
      const row = rows.find((r) => r.ID === id)
      assert.ok(row, `server ${id} not in ${JSON.stringify(rows)}`)
      assert.equal(row.Name, name)
      assert.equal(row.Status, 'ACTIVE')
      assert.equal(row.Image, 'skiff-base')
      assert.equal(row.Flavor, 'm1.tiny')
      const byName = await cli.openstackJson<Record<string, unknown>[]>('demo', ['server', 'list', '--name', `^${name}$`])
      assert.deepEqual(
        byName.map((r) => r.ID),
        [id],
      )
    })

    test('server show: its fields, settled', T, async () => {
      const s = await cli.showServer('demo', name)
      assert.equal(s.id, id)
      assert.equal(s.status, 'ACTIVE')
      assert.equal(s['OS-EXT-STS:vm_state'], 'active')
      assert.equal(s['OS-EXT-STS:task_state'], null)
      assert.equal(s.flavor, 'm1.tiny (1)')
      assert.equal(s.image, `skiff-base (${baseImageId})`)
      assert.equal(s.key_name, null)
      assert.ok(s.addresses && Object.keys(s.addresses as object).length > 0, `no addresses: ${JSON.stringify(s.addresses)}`)
      assert.equal(s.adminPass, undefined, 'the password is shown once, at create')
    })

    test('nova list and nova show show it ACTIVE', T, async () => {
      const list = ok(await cli.nova('demo', ['list']))
      const line = list.stdout.split('\n').find((l) => l.includes(id))
      assert.ok(line, `server ${id} not in nova list:\n${list.stdout}`)
      assert.match(line, new RegExp(`\\|\\s*${name}\\s*\\|\\s*ACTIVE\\s*\\|`))
      const show = ok(await cli.nova('demo', ['show', id]))
      assert.match(show.stdout, /^\|\s*status\s*\|\s*ACTIVE\s*\|/m)
      assert.match(show.stdout, new RegExp(`^\\|\\s*name\\s*\\|\\s*${name}\\s*\\|`, 'm'))
      // novaclient negotiates its highest microversion (2.92): from 2.47 the flavor is embedded.
      assert.match(show.stdout, /^\|\s*flavor:original_name\s*\|\s*m1\.tiny\s*\|/m)
    })

    test('server lock: a stop by the demo user is refused (409, locked), nothing changes; server unlock', T, async () => {
      ok(await cli.openstack('demo', ['server', 'lock', id]))
      const refused = failed(await cli.openstack('demo', ['server', 'stop', id]))
      assert.match(refused.stderr, new RegExp(`Instance ${id} is locked \\(HTTP 409\\)`), describeRun(refused))
      const s = await cli.showServer('demo', id)
      assert.equal(s.status, 'ACTIVE')
      assert.equal(s['OS-EXT-STS:task_state'], null)
      ok(await cli.openstack('demo', ['server', 'unlock', id]))
    })

    test('server stop (unlocked now): SHUTOFF', T, async () => {
      ok(await cli.openstack('demo', ['server', 'stop', id]))
      const off = await cli.waitForStatus('demo', id, 'SHUTOFF')
      assert.equal(off['OS-EXT-STS:vm_state'], 'stopped')
    })

    test('server start: ACTIVE', T, async () => {
      ok(await cli.openstack('demo', ['server', 'start', id]))
      const s = await cli.waitForStatus('demo', id, 'ACTIVE')
      assert.equal(s['OS-EXT-STS:vm_state'], 'active')
    })

    test('server reboot --soft --wait: ACTIVE after', T, async () => {
      ok(await cli.openstack('demo', ['server', 'reboot', '--soft', '--wait', id]))
      const s = await cli.showServer('demo', id)
      assert.equal(s.status, 'ACTIVE')
      assert.equal(s['OS-EXT-STS:task_state'], null)
    })

    test('server reboot --hard --wait: ACTIVE after', T, async () => {
      ok(await cli.openstack('demo', ['server', 'reboot', '--hard', '--wait', id]))
      const s = await cli.showServer('demo', id)
      assert.equal(s.status, 'ACTIVE')
      assert.equal(s['OS-EXT-STS:task_state'], null)
    })

    test('server pause: PAUSED; server unpause: ACTIVE', T, async () => {
      ok(await cli.openstack('demo', ['server', 'pause', id]))
      const paused = await cli.waitForStatus('demo', id, 'PAUSED')
      assert.equal(paused['OS-EXT-STS:vm_state'], 'paused')
      ok(await cli.openstack('demo', ['server', 'unpause', id]))
      await cli.waitForStatus('demo', id, 'ACTIVE')
    })

    test('console log show: the boot messages and the login prompt; --lines limits them', T, async () => {
      const all = ok(await cli.openstack('demo', ['console', 'log', 'show', id])).stdout
      assert.match(all, new RegExp(`${name} login:`), all)
      assert.ok(all.trimEnd().split('\n').length > 3, all)
      const last = ok(await cli.openstack('demo', ['console', 'log', 'show', '--lines', '2', id])).stdout
      const lines = last.replace(/\n+$/, '').split('\n')
      assert.ok(lines.length <= 2, `--lines 2 printed ${lines.length} lines:\n${last}`)
      assert.match(last, new RegExp(`${name} login:`))
    })

    test('server set --property k=v: server show shows it; server unset --property removes it', T, async () => {
      ok(await cli.openstack('demo', ['server', 'set', '--property', 'e2e=yes', id]))
      assert.deepEqual((await cli.showServer('demo', id)).properties, { e2e: 'yes' })
      ok(await cli.openstack('demo', ['server', 'unset', '--property', 'e2e', id]))
      assert.deepEqual((await cli.showServer('demo', id)).properties, {})
    })

    test('another project (alt) cannot see the server', T, async () => {
      const rows = await cli.openstackJson<Record<string, unknown>[]>('alt', ['server', 'list'])
      assert.ok(!rows.some((r) => r.ID === id), `alt sees ${id}: ${JSON.stringify(rows)}`)
      const r = failed(await cli.openstack('alt', ['server', 'show', id]))
      assert.match(r.stderr, noServer(id), describeRun(r))
      const nova = failed(await cli.nova('alt', ['show', id]))
      assert.match(nova.stderr, noServer(id), describeRun(nova))
    })

    test('another project (alt) cannot act on the server: stop, reboot, delete all "No server"', T, async () => {
      for (const args of [
        ['stop', id],
        ['reboot', '--hard', id],
        ['delete', id],
      ]) {
        const r = failed(await cli.openstack('alt', ['server', ...args]))
        assert.match(r.stderr, noServer(id), describeRun(r))
      }
      const s = await cli.showServer('demo', id)
      assert.equal(s.status, 'ACTIVE', 'the refused calls changed nothing')
      assert.equal(s['OS-EXT-STS:task_state'], null)
    })

    test('server delete --wait: then server show fails with "No server"', T, async () => {
      ok(await cli.openstack('demo', ['server', 'delete', '--wait', id]))
      const r = failed(await cli.openstack('demo', ['server', 'show', id]))
      assert.match(r.stderr, noServer(id), describeRun(r))
      const rows = await cli.openstackJson<Record<string, unknown>[]>('demo', ['server', 'list'])
      assert.ok(!rows.some((row) => row.ID === id), JSON.stringify(rows))
    })
  })

  describe('images', { concurrency: false }, () => {
    const name = `e2e-image-${tag}`
    let file = ''
    let bytes: Buffer
    let id = ''

    test('image list: the two bootstrap images, active', T, async () => {
      const rows = await cli.openstackJson<{ ID: string; Name: string; Status: string }[]>('demo', ['image', 'list'])
      for (const n of ['skiff-base', 'skiff-rescue']) {
        const row = rows.find((r) => r.Name === n)
        assert.ok(row, `${n} not in ${JSON.stringify(rows)}`)
        assert.equal(row.Status, 'active')
        assert.match(row.ID, UUID)
      }
    })

    test('image show skiff-base: active, public, raw/bare, with a size and checksum', T, async () => {
      const img = await cli.openstackJson<Record<string, unknown>>('demo', ['image', 'show', 'skiff-base'])
      assert.equal(img.name, 'skiff-base')
      assert.equal(img.status, 'active')
      assert.equal(img.visibility, 'public')
      assert.equal(img.disk_format, 'raw')
      assert.equal(img.container_format, 'bare')
      assert.ok(Number(img.size) > 0, `size ${String(img.size)}`)
      assert.match(String(img.checksum), /^[0-9a-f]{32}$/)
    })

    test("image create --file: image show has the file's size and checksums", T, async () => {
      bytes = randomBytes(300_000 + Math.floor(Math.random() * 1000))
      file = path.join(work, 'disk.raw')
      writeFileSync(file, bytes)
      const created = await cli.openstackJson<Record<string, unknown>>('demo', [
        'image',
        'create',
        '--file',
        file,
        '--disk-format',
        'raw',
        '--container-format',
        'bare',
        name,
      ])
      assert.match(String(created.id), UUID)
      id = String(created.id)
      assert.equal(created.name, name)
      const img = await cli.openstackJson<Record<string, unknown>>('demo', ['image', 'show', id])
      assert.equal(img.status, 'active')
      assert.equal(img.size, bytes.length)
      assert.equal(img.checksum, createHash('md5').update(bytes).digest('hex'))
      const props = img.properties as Record<string, unknown>
      assert.equal(props.os_hash_algo, 'sha512')
      assert.equal(props.os_hash_value, createHash('sha512').update(bytes).digest('hex'))
      const rows = await cli.openstackJson<{ ID: string }[]>('demo', ['image', 'list'])
      assert.ok(
        rows.some((r) => r.ID === id),
        JSON.stringify(rows),
      )
    })

    test('image save: the same bytes back', T, async () => {
      const out = path.join(work, 'saved.raw')
      ok(await cli.openstack('demo', ['image', 'save', '--file', out, name]))
      const saved = readFileSync(out)
      assert.equal(saved.length, bytes.length)
      assert.ok(saved.equals(bytes), 'downloaded bytes differ from the uploaded file')
    })

    test('image set --property k=v: image show shows it', T, async () => {
      ok(await cli.openstack('demo', ['image', 'set', '--property', 'e2e_key=e2e value', '--property', 'os_distro=debian', name]))
      const img = await cli.openstackJson<{ properties: Record<string, unknown> }>('demo', ['image', 'show', id])
      assert.equal(img.properties.e2e_key, 'e2e value')
      assert.equal(img.properties.os_distro, 'debian')
    })

    // Each CLI run takes seconds when the suites run side by side: a longer deadline.
    test(
      'image list with --tag (repeated), --long, --hidden, --status, --sort, --limit, --marker and --property',
      { timeout: 300_000 },
      async () => {
        // Two more images of this run, with a little data: A tagged t1 and t2, b tagged t1 and then hidden.
        const t1 = `e2e-t1-${tag}`
        const t2 = `e2e-t2-${tag}`
        const mk = async (n: string, tags: string[]) => {
          const args = [
            'image',
            'create',
            '--file',
            file,
            '--disk-format',
            'raw',
            '--container-format',
            'bare',
            '--property',
            `e2e_list=${tag}`,
          ]
          for (const t of tags) args.push('--tag', t)
          return String((await cli.openstackJson<Record<string, unknown>>('demo', [...args, n])).id)
        }
        const a = await mk(`${name}-list-A`, [t1, t2])
        const b = await mk(`${name}-list-b`, [t1])
        ok(await cli.openstack('demo', ['image', 'set', '--hidden', b]))
        try {
          type Row = Record<string, unknown>
          const long = await cli.openstackJson<Row[]>('demo', ['image', 'list', '--tag', t1, '--long'])
          assert.deepEqual(
            long.map((r) => r.ID),
            [a],
            'the hidden one is left out',
          )
          const row = long[0]!
          assert.equal(row.Name, `${name}-list-A`)
          assert.equal(row.Status, 'active')
          assert.equal(row.Size, bytes.length)
          assert.equal(row.Visibility, 'shared')
          assert.equal(row['Disk Format'], 'raw')
          assert.deepEqual([...(row.Tags as string[])].sort(), [t1, t2].sort())

          const hidden = await cli.openstackJson<Row[]>('demo', ['image', 'list', '--tag', t1, '--hidden'])
          assert.deepEqual(
            hidden.map((r) => r.ID),
            [b],
          )
          const both = await cli.openstackJson<Row[]>('demo', ['image', 'list', '--tag', t1, '--tag', t2])
          assert.deepEqual(
            both.map((r) => r.ID),
            [a],
            'every tag must match',
          )
          assert.deepEqual(await cli.openstackJson<Row[]>('demo', ['image', 'list', '--tag', t1, '--status', 'queued']), [])

          const active = await cli.openstackJson<Row[]>('demo', ['image', 'list', '--status', 'active', '--sort', 'name:asc'])
          const names = active.map((r) => String(r.Name))
          assert.ok(names.includes('skiff-base') && names.includes(name), JSON.stringify(names))
          assert.ok(
            active.every((r) => r.Status === 'active'),
            JSON.stringify(active),
          )
          assert.deepEqual(names, [...names].sort(), 'sorted by name')

          // --limit is the server's page: Glance's default order, newest first; --marker the page after.
          const two = await cli.openstackJson<Row[]>('demo', ['image', 'list', '--sort', 'name:asc', '--limit', '2'])
          assert.equal(two.length, 2, JSON.stringify(two))
          assert.deepEqual(
            two.map((r) => String(r.Name)),
            two.map((r) => String(r.Name)).sort(),
          )
          // OSC sorts what it shows by name (its --sort default), but the pages are the server's,
          // newest first: A (b is hidden), then the image made by the test before this one.
          const page1 = await cli.openstackJson<Row[]>('demo', ['image', 'list', '--limit', '1'])
          const page2 = await cli.openstackJson<Row[]>('demo', ['image', 'list', '--limit', '1', '--marker', String(page1[0]!.ID)])
          assert.deepEqual(
            [...page1, ...page2].map((r) => r.ID),
            [a, id],
            'two pages of one: the two newest images',
          )
          // --property filters in the client, on what the server listed.
          const prop = await cli.openstackJson<Row[]>('demo', ['image', 'list', '--property', `e2e_list=${tag}`])
          assert.deepEqual(
            prop.map((r) => r.ID),
            [a],
          )
        } finally {
          ok(await cli.openstack('demo', ['image', 'delete', a, b]))
        }
      },
    )

    test('another project (alt) does not see the image', T, async () => {
      const rows = await cli.openstackJson<{ ID: string }[]>('alt', ['image', 'list'])
      assert.ok(!rows.some((r) => r.ID === id), JSON.stringify(rows))
      const r = failed(await cli.openstack('alt', ['image', 'show', id]))
      assert.match(r.stderr, new RegExp(`No Image found for ${id}`), describeRun(r))
    })

    test('image delete: then image show fails and image list no longer has it', T, async () => {
      ok(await cli.openstack('demo', ['image', 'delete', name]))
      const r = failed(await cli.openstack('demo', ['image', 'show', id]))
      assert.match(r.stderr, new RegExp(`No Image found for ${id}`), describeRun(r))
      const rows = await cli.openstackJson<{ ID: string }[]>('demo', ['image', 'list'])
      assert.ok(!rows.some((row) => row.ID === id), JSON.stringify(rows))
    })
  })

  describe('flavors and key pairs', { concurrency: false }, () => {
    const generated = `e2e-gen-${tag}`
    const imported = `e2e-imp-${tag}`
    let generatedFingerprint = ''
    const key = newEd25519PublicKey(`e2e@${tag}`)

    test('flavor list: the four m1 flavors with their sizes', T, async () => {
      const rows = await cli.openstackJson<{ ID: string; Name: string; RAM: number; Disk: number; VCPUs: number; 'Is Public': boolean }[]>(
        'demo',
        ['flavor', 'list'],
      )
      const tiny = rows.find((r) => r.Name === 'm1.tiny')
      assert.deepEqual(tiny && { id: tiny.ID, ram: tiny.RAM, disk: tiny.Disk, vcpus: tiny.VCPUs, public: tiny['Is Public'] }, {
        id: '1',
        ram: 512,
        disk: 1,
        vcpus: 1,
        public: true,
      })
      for (const n of ['m1.small', 'm1.medium', 'm1.large'])
        assert.ok(
          rows.some((r) => r.Name === n),
          `${n} missing: ${JSON.stringify(rows)}`,
        )
      const show = await cli.openstackJson<Record<string, unknown>>('demo', ['flavor', 'show', 'm1.small'])
      assert.equal(show.ram, 2048)
      assert.equal(show.vcpus, 1)
      assert.equal(show.disk, 20)
    })

    test('keypair create NAME: prints a private key that matches the stored public key', T, async () => {
      const r = ok(await cli.openstack('demo', ['keypair', 'create', generated]))
      const pem = /-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]+?-----END [A-Z ]*PRIVATE KEY-----/.exec(r.stdout)?.[0]
      assert.ok(pem, `no private key printed:\n${describeRun(r)}`)
      const blob = sshBlobFromPem(pem)
      generatedFingerprint = md5Fingerprint(blob)
      const stored = ok(await cli.openstack('demo', ['keypair', 'show', '--public-key', generated])).stdout
      assert.ok(blobOfPublicKeyLine(stored).equals(blob), `the printed private key does not match the stored public key ${stored}`)
    })

    test("keypair create --public-key FILE: its fingerprint is the key's", T, async () => {
      const file = path.join(work, 'id_ed25519.pub')
      writeFileSync(file, key.line + '\n')
      const kp = await cli.openstackJson<Record<string, unknown>>('demo', ['keypair', 'create', '--public-key', file, imported])
      assert.equal(kp.name, imported)
      assert.equal(kp.fingerprint, key.fingerprint)
      const stored = ok(await cli.openstack('demo', ['keypair', 'show', '--public-key', imported])).stdout
      assert.equal(stored.trim(), key.line)
    })

    test('keypair list: both, with their fingerprints; not visible to another user', T, async () => {
      const rows = await cli.openstackJson<{ Name: string; Fingerprint: string }[]>('demo', ['keypair', 'list'])
      assert.equal(rows.find((r) => r.Name === generated)?.Fingerprint, generatedFingerprint, JSON.stringify(rows))
      assert.equal(rows.find((r) => r.Name === imported)?.Fingerprint, key.fingerprint, JSON.stringify(rows))
      const alt = await cli.openstackJson<{ Name: string }[]>('alt', ['keypair', 'list'])
      assert.ok(!alt.some((r) => r.Name === generated || r.Name === imported), JSON.stringify(alt))
    })

    test('keypair delete: both gone from the list; show fails', T, async () => {
      ok(await cli.openstack('demo', ['keypair', 'delete', generated, imported]))
      const rows = await cli.openstackJson<{ Name: string }[]>('demo', ['keypair', 'list'])
      assert.ok(!rows.some((r) => r.Name === generated || r.Name === imported), JSON.stringify(rows))
      const r = failed(await cli.openstack('demo', ['keypair', 'show', generated]))
      assert.match(r.stderr, new RegExp(`${generated}|not found|404`, 'i'), describeRun(r))
    })
  })

  describe('identity, as admin', { concurrency: false }, () => {
    test('project list: admin, demo, alt_demo', T, async () => {
      const rows = await cli.openstackJson<{ ID: string; Name: string }[]>('admin', ['project', 'list'])
      assert.deepEqual(rows.map((r) => r.Name).sort(), ['admin', 'alt_demo', 'demo'])
      for (const r of rows) assert.match(r.ID, /^[0-9a-f]{32}$/)
    })

    test('user list: admin, demo, alt_demo, reader_demo', T, async () => {
      const rows = await cli.openstackJson<{ ID: string; Name: string }[]>('admin', ['user', 'list'])
      assert.deepEqual(rows.map((r) => r.Name).sort(), ['admin', 'alt_demo', 'demo', 'reader_demo'])
    })

    test('role assignment list --names: who has which role on which project', T, async () => {
      const rows = await cli.openstackJson<{ Role: string; User: string; Project: string }[]>('admin', [
        'role',
        'assignment',
        'list',
        '--names',
      ])
      const has = (role: string, user: string, project: string) =>
        rows.some((r) => r.Role === role && r.User === `${user}@Default` && r.Project === `${project}@Default`)
      assert.ok(has('admin', 'admin', 'admin'), JSON.stringify(rows))
      assert.ok(has('member', 'demo', 'demo'), JSON.stringify(rows))
      assert.ok(has('member', 'alt_demo', 'alt_demo'), JSON.stringify(rows))
      assert.ok(!rows.some((r) => r.Role === 'admin' && r.User === 'demo@Default'), 'demo is no admin')
      const demoOnly = await cli.openstackJson<{ Role: string; User: string }[]>('admin', [
        'role',
        'assignment',
        'list',
        '--names',
        '--user',
        'demo',
      ])
      assert.ok(demoOnly.length > 0 && demoOnly.every((r) => r.User === 'demo@Default'), JSON.stringify(demoOnly))
    })

    test('a member (demo): project list shows only demo; user list is refused (403)', T, async () => {
      // OSC falls back to the user's own projects when /v3/projects is refused, as with Keystone.
      const own = await cli.openstackJson<{ Name: string }[]>('demo', ['project', 'list'])
      assert.deepEqual(
        own.map((r) => r.Name),
        ['demo'],
      )
      const r = failed(await cli.openstack('demo', ['user', 'list']))
      assert.match(r.stderr, /You are not authorized to perform the requested action: identity:list_users\. \(HTTP 403\)/, describeRun(r))
    })
  })
})
