// The data dir: owner-only modes whatever the umask (it holds the database with password and
// token hashes, the sealing key, client files, private images), and the bootstrap accounts'
// passwords, which a second Skiff on the same database must not change behind the first one's
// client files. SQLite (a file both share) or PostgreSQL (a fresh schema), as the harness runs.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { chmodSync, copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, test } from 'node:test'
import pino from 'pino'
import { loadConfig, type Config } from '../../src/config.ts'
import { buildSkiff, type SkiffCore } from '../../src/main.ts'
import { syncCredentials } from '../../src/bootstrap.ts'
import { IdentityRepo } from '../../src/store/identity-repo.ts'
import { freshDatabase, harnessDialect, type TestDatabase } from '../helpers/database.ts'
import { parseOpenrc } from '../e2e/helpers/skiff-process.ts'

const roots = { identity: 'http://127.0.0.1:5000', compute: 'http://127.0.0.1:8774', image: 'http://127.0.0.1:9292' }
const AUTH_URL = `${roots.identity}/v3`
const scratch = mkdtempSync(path.join(tmpdir(), 'skiff-data-dir-'))
after(() => rmSync(scratch, { recursive: true, force: true }))

/** A Skiff on `dataDir` and `databaseUrl`, without an agent (two Skiffs share one database). */
function start(dataDir: string, databaseUrl: string, extra: Partial<Config> = {}): Promise<SkiffCore> {
  const config: Config = { ...loadConfig({}, {}), dataDir, databaseUrl, simulatedDelayMs: 0, logLevel: 'silent', agent: false, ...extra }
  return buildSkiff(config, pino({ level: 'silent' }), roots)
}

async function login(core: SkiffCore, user: string, password: string | undefined): Promise<number> {
  const res = await core.apps.identity.inject({
    method: 'POST',
    url: '/v3/auth/tokens',
    payload: {
      auth: {
        identity: { methods: ['password'], password: { user: { name: user, domain: { name: 'Default' }, password } } },
        scope: { project: { name: user === 'reader_demo' ? 'demo' : user, domain: { name: 'Default' } } },
      },
    },
  })
  return res.statusCode
}

/** The accounts and passwords the client files of `dataDir` hold, each file read as a client would. */
function clientFiles(dataDir: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const rc of ['admin-openrc', 'demo-openrc', 'alt-openrc', 'reader-openrc']) {
    const file = path.join(dataDir, rc)
    if (!existsSync(file)) continue
    const v = parseOpenrc(readFileSync(file, 'utf8'))
    out[v.OS_USERNAME!] = v.OS_PASSWORD!
  }
  return out
}

/** `username` → `password` of each cloud in clouds.yaml, as Skiff writes it (one cloud, one auth block). */
function clouds(dataDir: string): Record<string, string> {
  const file = path.join(dataDir, 'clouds.yaml')
  if (!existsSync(file)) return {}
  const text = readFileSync(file, 'utf8')
  const out: Record<string, string> = {}
  for (const m of text.matchAll(/username: '([^']*)'\n\s+password: '((?:[^']|'')*)'/g)) out[m[1]!] = m[2]!.replace(/''/g, "'")
  return out
}

const mode = (p: string) => statSync(p).mode & 0o7777
const octal = (m: number) => `0${m.toString(8)}`

/** Every directory of the tree 0700, every file 0600: [path, mode] of those that are not. */
function notPrivate(dir: string): string[] {
  const wrong: string[] = []
  if (mode(dir) !== 0o700) wrong.push(`${dir} ${octal(mode(dir))}`)
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name)
    if (e.isDirectory()) wrong.push(...notPrivate(p))
    else if (mode(p) !== 0o600) wrong.push(`${p} ${octal(mode(p))}`)
  }
  return wrong
}

test('under umask 022: data dir and image dir 0700; database, -wal, -shm, image files and client files 0600', async () => {
  const oldUmask = process.umask(0o022)
  try {
    const dataDir = path.join(scratch, 'modes', 'data') // not there yet: Skiff creates it (and its parent)
    const databaseUrl = `sqlite:${path.join(dataDir, 'skiff.sqlite')}`
    let core = await start(dataDir, databaseUrl)
    try {
      // A private image with data, uploaded by a member of demo.
      const password = core.passwords.demo!
      const auth = await core.apps.identity.inject({
        method: 'POST',
        url: '/v3/auth/tokens',
        payload: {
          auth: {
            identity: { methods: ['password'], password: { user: { name: 'demo', domain: { name: 'Default' }, password } } },
            scope: { project: { name: 'demo', domain: { name: 'Default' } } },
          },
        },
      })
      const token = String(auth.headers['x-subject-token'])
      const created = await core.apps.image.inject({
        method: 'POST',
        url: '/v2/images',
        headers: { 'x-auth-token': token },
        payload: { name: 'mine', visibility: 'private', disk_format: 'raw', container_format: 'bare' },
      })
      assert.equal(created.statusCode, 201, created.body)
      const id = created.json().id as string
      const put = await core.apps.image.inject({
        method: 'PUT',
        url: `/v2/images/${id}/file`,
        headers: { 'x-auth-token': token, 'content-type': 'application/octet-stream' },
        payload: Buffer.from('private disk'),
      })
      assert.equal(put.statusCode, 204, put.body)

      for (const f of [
        'skiff.sqlite',
        'skiff.sqlite-wal',
        'skiff.sqlite-shm',
        'secret.key',
        '.credentials.json',
        'clouds.yaml',
        'demo-openrc',
        `images/${id}`,
      ]) {
        assert.ok(existsSync(path.join(dataDir, f)), `${f} exists`)
      }
      assert.deepEqual(notPrivate(dataDir), [])
    } finally {
      await core.close()
    }

    // A data dir left with wider modes (by an older Skiff, or by hand) is narrowed at start.
    chmodSync(dataDir, 0o755)
    chmodSync(path.join(dataDir, 'images'), 0o755)
    chmodSync(path.join(dataDir, 'skiff.sqlite'), 0o644)
    core = await start(dataDir, databaseUrl)
    try {
      assert.equal(octal(mode(dataDir)), '0700')
      assert.equal(octal(mode(path.join(dataDir, 'images'))), '0700')
      assert.equal(octal(mode(path.join(dataDir, 'skiff.sqlite'))), '0600')
      assert.equal(octal(mode(path.join(dataDir, 'skiff.sqlite-wal'))), '0600')
    } finally {
      await core.close()
    }
  } finally {
    process.umask(oldUmask)
  }
})

test("a second Skiff with its own data dir on the same database changes no password; the first one's files keep working", async () => {
  let database: TestDatabase
  if (harnessDialect() === 'sqlite') {
    const file = path.join(scratch, 'shared', 'skiff.sqlite')
    database = { url: `sqlite:${file}`, drop: async () => {} }
  } else {
    database = await freshDatabase('postgres')
  }
  const dirA = path.join(scratch, 'host-a')
  const dirB = path.join(scratch, 'host-b')
  const open: SkiffCore[] = []
  try {
    const a = await start(dirA, database.url)
    open.push(a)
    assert.deepEqual(a.unknown, [])
    const filesA = clientFiles(dirA)
    assert.deepEqual(Object.keys(filesA).sort(), ['admin', 'alt_demo', 'demo', 'reader_demo'])
    assert.deepEqual(clouds(dirA), filesA)

    // A host with a key of its own (a fresh data dir makes one) is refused: it could open none of
    // the passwords sealed with the deployment's. So is a key file that is missing or not a key.
    const refused = async (extra: Partial<Config>, message: RegExp) => {
      await assert.rejects(async () => open.push(await start(path.join(scratch, 'host-c'), database.url, extra)), message)
    }
    await refused(
      {},
      /^Error: the sealing key in .*host-c\/secret\.key does not match this deployment's \(copy secret\.key from the first host, or pass --secret-key-file\)$/,
    )
    writeFileSync(path.join(scratch, 'other.key'), randomBytes(32).toString('base64') + '\n', { mode: 0o600 })
    await refused({ secretKeyFile: path.join(scratch, 'other.key') }, /the sealing key in .*other\.key does not match this deployment's/)
    await refused(
      { secretKeyFile: path.join(scratch, 'no-such.key') },
      /cannot read the sealing key --secret-key-file .*no-such\.key: ENOENT/,
    )
    writeFileSync(path.join(scratch, 'bad.key'), 'not a key\n', { mode: 0o600 })
    await refused({ secretKeyFile: path.join(scratch, 'bad.key') }, /bad\.key does not hold a sealing key/)

    // Host B: a fresh data dir, the same database, the deployment's key given by --secret-key-file.
    // It knows no password and writes no client file.
    const b = await start(dirB, database.url, { secretKeyFile: path.join(dirA, 'secret.key') })
    open.push(b)
    assert.deepEqual(b.unknown.sort(), ['admin', 'alt_demo', 'demo', 'reader_demo'])
    assert.deepEqual(b.files, [])
    assert.deepEqual(clientFiles(dirB), {})
    assert.ok(!existsSync(path.join(dirB, 'clouds.yaml')))
    // Every file of host A still logs in, through either host.
    for (const [user, password] of Object.entries(filesA)) {
      assert.equal(await login(a, user, password), 201, `${user} through A`)
      assert.equal(await login(b, user, password), 201, `${user} through B`)
    }

    // Host A restarts: it still knows every password and writes the same files.
    await a.close()
    open.splice(open.indexOf(a), 1)
    const a2 = await start(dirA, database.url)
    open.push(a2)
    assert.deepEqual(a2.unknown, [])
    assert.deepEqual(clientFiles(dirA), filesA)

    // The operator asks for it: --admin-password on host B sets admin's password (and only admin's).
    await b.close()
    open.splice(open.indexOf(b), 1)
    // This time with the key copied into its data dir, the other way to give a host the key.
    copyFileSync(path.join(dirA, 'secret.key'), path.join(dirB, 'secret.key'))
    const b2 = await start(dirB, database.url, { adminPassword: 'chosen-by-the-operator' })
    open.push(b2)
    assert.deepEqual(b2.unknown.sort(), ['alt_demo', 'demo', 'reader_demo'])
    assert.deepEqual(clientFiles(dirB), { admin: 'chosen-by-the-operator' })
    assert.deepEqual(clouds(dirB), { admin: 'chosen-by-the-operator' })
    assert.equal(await login(b2, 'admin', 'chosen-by-the-operator'), 201)
    assert.equal(await login(b2, 'demo', filesA.demo), 201)

    // `skiff credentials --reset demo` on host B: new password there; host A's demo file is stale,
    // and at its next start host A says so and removes it rather than keep a wrong password.
    const reset = await syncCredentials({
      accounts: new IdentityRepo(b2.store.db),
      dataDir: dirB,
      authUrl: AUTH_URL,
      set: { demo: 'new-demo-password' },
    })
    assert.deepEqual(reset.unknown.sort(), ['alt_demo', 'reader_demo'])
    assert.equal(clientFiles(dirB).demo, 'new-demo-password')
    assert.equal(await login(b2, 'demo', filesA.demo), 401)
    await a2.close()
    open.splice(open.indexOf(a2), 1)
    const a3 = await start(dirA, database.url)
    open.push(a3)
    assert.deepEqual(a3.unknown.sort(), ['admin', 'demo'])
    assert.deepEqual(Object.keys(clientFiles(dirA)).sort(), ['alt_demo', 'reader_demo'])
    assert.deepEqual(Object.keys(clouds(dirA)).sort(), ['alt_demo', 'reader_demo'])
    assert.equal(await login(a3, 'alt_demo', filesA.alt_demo), 201)
  } finally {
    for (const core of open) await core.close()
    await database.drop()
  }
})
