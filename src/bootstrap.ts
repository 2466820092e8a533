// First start (and every later one, idempotently): the default domain's projects, users and
// roles, the flavors, the two images the simulated driver boots, and the client files
// (clouds.yaml, *-openrc) in the data dir, mode 0600.
//
// Only password hashes are in the database. A data dir knows the passwords it generated (or was
// given) in `.credentials.json`; a Skiff whose data dir does not know them (another host, a fresh
// directory on the same database) never changes them, or every client file written before would
// stop working: it writes no client file for those accounts and says how to get one.
import { chmodSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import type { FlavorService, NewFlavor } from './compute/flavor-service.ts'
import { DEFAULT_DOMAIN, newId } from './identity/identity-service.ts'
import { REGION } from './identity/catalog.ts'
import { hashPassword, randomSecret, verifyPassword } from './identity/password-hashing.ts'
import type { ImageService } from './images/image-service.ts'
import type { IdentityRepo } from './store/identity-repo.ts'

export const ROLES = ['admin', 'member', 'reader'] as const

const ACCOUNTS = [
  { cloud: 'skiff-admin', rc: 'admin-openrc', user: 'admin', project: 'admin', roles: ['admin', 'member', 'reader'] },
  { cloud: 'skiff-demo', rc: 'demo-openrc', user: 'demo', project: 'demo', roles: ['member', 'reader'] },
  { cloud: 'skiff-alt', rc: 'alt-openrc', user: 'alt_demo', project: 'alt_demo', roles: ['member', 'reader'] },
  // Only the reader role: users and tests see what a read-only member of a project may do.
  { cloud: 'skiff-reader', rc: 'reader-openrc', user: 'reader_demo', project: 'demo', roles: ['reader'] },
] as const

export const FLAVORS: NewFlavor[] = [
  { id: '1', name: 'm1.tiny', ram: 512, vcpus: 1, disk: 1 },
  { id: '2', name: 'm1.small', ram: 2048, vcpus: 1, disk: 20 },
  { id: '3', name: 'm1.medium', ram: 4096, vcpus: 2, disk: 40 },
  { id: '4', name: 'm1.large', ram: 8192, vcpus: 4, disk: 80 },
]

export const BASE_IMAGE = 'skiff-base'
export const RESCUE_IMAGE = 'skiff-rescue'
export const GUEST_KERNEL_IMAGE = 'skiff-guest-kernel'
export const GUEST_RAMDISK_IMAGE = 'skiff-guest-ramdisk'

/** A disk the simulated driver "boots": a header naming what it is. */
const simulatedDisk = (name: string) => Buffer.from(`SKIFF-SIMULATED-DISK 1\nname: ${name}\n`.padEnd(4096, '\0'))

/** The user names of the bootstrap accounts, whose client files Skiff writes. */
export const BOOTSTRAP_USERS: readonly string[] = ACCOUNTS.map((a) => a.user)

export interface Credentials {
  /** The passwords this data dir knows (and the database accepts), by user name. */
  passwords: Record<string, string>
  /** The client files written: clouds.yaml first (when any account is known), then the openrc files. */
  files: string[]
  /** Bootstrap accounts whose password this data dir does not know: no client file for them here. */
  unknown: string[]
}

export async function bootstrap(opts: {
  /** Users, projects, roles and role assignments. */
  accounts: IdentityRepo
  flavors: FlavorService
  images: ImageService
  dataDir: string
  adminPassword: string | undefined
  authUrl: string
  /** The qemu driver's built guest (kernel, initrd, qcow2 disk); the simulated disks when absent. */
  guest?: { kernel: string; initrd: string; disk: string }
}): Promise<Credentials> {
  const { accounts } = opts
  const roleIds: Record<string, string> = {}
  for (const name of ROLES) {
    const r = await accounts.roleByName(name)
    roleIds[name] = r?.id ?? newId()
    if (!r) await accounts.insertRole({ id: roleIds[name]!, name })
  }

  const kept = readKept(opts.dataDir, CREDENTIALS_FILE)
  // Passwords of the accounts made now: new, so nothing to check them against.
  const created: Record<string, string> = {}
  // scrypt runs on libuv's thread pool: hash every new account's password at once, not one
  // after another (a fresh data dir's start waited for four hashes in a row).
  const existing = new Set(await accounts.userNamesIn(BOOTSTRAP_USERS))
  const hashes: Record<string, Promise<string>> = {}
  const newAccount = (user: string) => {
    created[user] = (user === 'admin' ? opts.adminPassword : undefined) ?? kept[user] ?? randomSecret()
    hashes[user] = hashPassword(created[user])
    hashes[user].catch(() => {}) // awaited below; a failure further up must not leave it unhandled
    return hashes[user]
  }
  for (const acc of ACCOUNTS) if (!existing.has(acc.user)) void newAccount(acc.user)

  for (const acc of ACCOUNTS) {
    let project: { id: string } | undefined = await accounts.projectByName(acc.project, DEFAULT_DOMAIN.id)
    if (!project) {
      project = { id: newId() }
      await accounts.insertProject({
        id: project.id,
        name: acc.project,
        domain_id: DEFAULT_DOMAIN.id,
        description: `Bootstrap project ${acc.project}`,
        enabled: 1,
      })
    }
    let userId = (await accounts.userByName(acc.user, DEFAULT_DOMAIN.id))?.id
    if (userId === undefined) {
      userId = newId()
      await accounts.insertUser({
        id: userId,
        name: acc.user,
        domain_id: DEFAULT_DOMAIN.id,
        password_hash: await (hashes[acc.user] ?? newAccount(acc.user)),
        default_project_id: project.id,
        enabled: 1,
      })
    } else {
      delete created[acc.user] // made meanwhile, by another Skiff on the database
    }
    for (const role of acc.roles) await accounts.assignRole(userId, project.id, roleIds[role]!)
  }

  for (const f of FLAVORS) {
    // A deleted flavor counts: the operator deleted it, it does not come back.
    if (!(await opts.flavors.getIncludingDeleted(f.id!))) await opts.flavors.create(f)
  }

  if (opts.guest) await registerGuest(opts.images, opts.guest)
  else {
    await opts.images.ensureImage({
      name: BASE_IMAGE,
      visibility: 'public',
      diskFormat: 'raw',
      containerFormat: 'bare',
      content: simulatedDisk(BASE_IMAGE),
    })
    await opts.images.ensureImage({
      name: RESCUE_IMAGE,
      visibility: 'public',
      diskFormat: 'raw',
      containerFormat: 'bare',
      properties: { skiff_purpose: 'rescue' },
      content: simulatedDisk(RESCUE_IMAGE),
    })
  }

  // An existing account's password changes only when the operator says so (--admin-password).
  const set: Record<string, string> = opts.adminPassword !== undefined && created.admin === undefined ? { admin: opts.adminPassword } : {}
  return syncCredentials({ accounts, dataDir: opts.dataDir, authUrl: opts.authUrl, created, set })
}

/**
 * The client files of the bootstrap accounts, from what the data dir knows: `set` gives accounts
 * a new password (the operator asked: --admin-password, `skiff credentials --reset`), which
 * revokes their tokens as Keystone does; `created` are accounts just made. Every other kept
 * password is checked against the database; one that no longer matches (reset from another
 * host) is forgotten and its file removed, so no file here holds a wrong password.
 */
export async function syncCredentials(opts: {
  accounts: IdentityRepo
  dataDir: string
  authUrl: string
  created?: Record<string, string>
  set?: Record<string, string>
}): Promise<Credentials> {
  const { accounts } = opts
  const kept = readKept(opts.dataDir, CREDENTIALS_FILE)
  // The hashes each kept password was found to match before: the same hash in the database is
  // the same password, known without a scrypt (a restart checked four, a third of its time).
  const matched = readKept(opts.dataDir, MATCHED_FILE)
  const nowMatched: Record<string, string> = {}
  // The accounts are checked at once: each check is a scrypt hash, on libuv's thread pool.
  const known = await Promise.all(
    ACCOUNTS.map(async (acc): Promise<string | undefined> => {
      const created = opts.created?.[acc.user]
      const user = await accounts.userByName(acc.user, DEFAULT_DOMAIN.id)
      if (created !== undefined) {
        if (user) nowMatched[acc.user] = user.password_hash
        return created
      }
      if (!user) return undefined
      const wanted = opts.set?.[acc.user]
      if (wanted !== undefined) {
        if (!(await verifyPassword(wanted, user.password_hash))) {
          await accounts.setPassword(user.id, await hashPassword(wanted))
        }
        return wanted
      }
      const password = kept[acc.user]
      if (password === undefined) return undefined
      if (matched[acc.user] !== user.password_hash && !(await verifyPassword(password, user.password_hash))) return undefined
      nowMatched[acc.user] = user.password_hash
      return password
    }),
  )
  const passwords: Record<string, string> = {}
  const unknown: string[] = []
  ACCOUNTS.forEach((acc, i) => {
    if (known[i] !== undefined) passwords[acc.user] = known[i]
    else unknown.push(acc.user)
  })
  writeSecret(path.join(opts.dataDir, CREDENTIALS_FILE), JSON.stringify(passwords, null, 2) + '\n')
  writeSecret(path.join(opts.dataDir, MATCHED_FILE), JSON.stringify(nowMatched) + '\n')
  return { passwords, files: writeClientFiles(opts.dataDir, opts.authUrl, passwords), unknown }
}

// Generated passwords are kept beside the openrc files that hold them anyway (mode 0600).
const CREDENTIALS_FILE = '.credentials.json'
/** The password hashes of the database that the kept passwords matched (scrypt strings, not secrets). */
const MATCHED_FILE = '.credentials-matched.json'

/** A JSON object of strings in the data dir; {} if absent or unreadable. */
function readKept(dataDir: string, name: string): Record<string, string> {
  const file = path.join(dataDir, name)
  if (!existsSync(file)) return {}
  try {
    const value = JSON.parse(readFileSync(file, 'utf8')) as unknown
    if (typeof value !== 'object' || value === null) return {}
    return Object.fromEntries(Object.entries(value).filter((e): e is [string, string] => typeof e[1] === 'string'))
  } catch {
    return {} // unreadable: the passwords are unknown here, which the caller says
  }
}

/**
 * The built guest for the qemu driver: its kernel and initrd as `aki`/`ari` images, named by the
 * disk images' `kernel_id`/`ramdisk_id` (Glance's convention for direct kernel boot). The rescue
 * image is the same system: each rescue boots a fresh overlay of it.
 */
export async function registerGuest(
  images: ImageService,
  guest: { kernel: string; initrd: string; disk: string },
): Promise<{ kept: boolean }> {
  const base = await images.findByName(BASE_IMAGE)
  if (base && base.disk_format !== 'qcow2') {
    throw new Error(`this data dir holds the simulated driver's ${BASE_IMAGE} image; run --driver qemu with another --data-dir`)
  }
  const kernel = await images.ensureImage({
    name: GUEST_KERNEL_IMAGE,
    visibility: 'public',
    diskFormat: 'aki',
    containerFormat: 'aki',
    content: await readFile(guest.kernel),
  })
  const ramdisk = await images.ensureImage({
    name: GUEST_RAMDISK_IMAGE,
    visibility: 'public',
    diskFormat: 'ari',
    containerFormat: 'ari',
    content: await readFile(guest.initrd),
  })
  const properties = { kernel_id: kernel.id, ramdisk_id: ramdisk.id, os_distro: 'debian', hw_disk_bus: 'virtio' }
  const disk = await readFile(guest.disk)
  await images.ensureImage({
    name: BASE_IMAGE,
    visibility: 'public',
    diskFormat: 'qcow2',
    containerFormat: 'bare',
    properties,
    content: disk,
  })
  await images.ensureImage({
    name: RESCUE_IMAGE,
    visibility: 'public',
    diskFormat: 'qcow2',
    containerFormat: 'bare',
    properties: { ...properties, skiff_purpose: 'rescue' },
    content: disk,
  })
  // Registered images are immutable (as in Glance): a new build is registered once they are deleted.
  return { kept: base !== undefined }
}

function writeSecret(file: string, text: string) {
  writeFileSync(file, text, { mode: 0o600 })
  chmodSync(file, 0o600) // the mode above applies only to a new file
}

/**
 * clouds.yaml (clouds skiff-admin, skiff-demo, skiff-alt, skiff-reader) and one openrc per
 * account, for the accounts in `passwords`; the files of the others are removed.
 */
function writeClientFiles(dataDir: string, authUrl: string, passwords: Record<string, string>): string[] {
  // Absolute paths: they are printed for the user to copy from any directory.
  dataDir = path.resolve(dataDir)
  const q = (s: string) => `'${s.replace(/'/g, "''")}'`
  const yaml = ['clouds:']
  const files: string[] = []
  for (const acc of ACCOUNTS) {
    if (passwords[acc.user] === undefined) {
      rmSync(path.join(dataDir, acc.rc), { force: true })
      continue
    }
    yaml.push(
      `  ${acc.cloud}:`,
      '    auth:',
      `      auth_url: ${q(authUrl)}`,
      `      username: ${q(acc.user)}`,
      `      password: ${q(passwords[acc.user]!)}`,
      `      project_name: ${q(acc.project)}`,
      `      user_domain_name: ${q(DEFAULT_DOMAIN.name)}`,
      `      project_domain_name: ${q(DEFAULT_DOMAIN.name)}`,
      `    region_name: ${REGION}`,
      '    interface: public',
      '    identity_api_version: 3',
    )
    const sh = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`
    const rc = path.join(dataDir, acc.rc)
    writeSecret(
      rc,
      [
        `# Skiff credentials for ${acc.user} (project ${acc.project}): source this file.`,
        `export OS_AUTH_URL=${sh(authUrl)}`,
        `export OS_USERNAME=${sh(acc.user)}`,
        `export OS_PASSWORD=${sh(passwords[acc.user]!)}`,
        `export OS_PROJECT_NAME=${sh(acc.project)}`,
        `export OS_USER_DOMAIN_NAME=${DEFAULT_DOMAIN.name}`,
        `export OS_PROJECT_DOMAIN_NAME=${DEFAULT_DOMAIN.name}`,
        `export OS_REGION_NAME=${REGION}`,
        'export OS_INTERFACE=public',
        'export OS_IDENTITY_API_VERSION=3',
        '',
      ].join('\n'),
    )
    files.push(rc)
  }
  const clouds = path.join(dataDir, 'clouds.yaml')
  if (files.length === 0) {
    rmSync(clouds, { force: true })
    return []
  }
  writeSecret(clouds, yaml.join('\n') + '\n')
  return [clouds, ...files]
}
