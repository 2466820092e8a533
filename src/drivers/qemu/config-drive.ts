// The OpenStack config drive: an ISO9660 volume labelled `config-2` holding
// openstack/latest/meta_data.json. It carries the root password (plaintext, as in OpenStack),
// so the ISO is created mode 0600 and the staging directory is removed at once.
import { execFile } from 'node:child_process'
import { chmod, mkdir, mkdtemp, open, rm, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { promisify } from 'node:util'

const run = promisify(execFile)

export interface ConfigDriveSpec {
  uuid: string
  name: string
  hostname: string
  adminPass?: string
  publicKeys?: string[]
  /** openstack/latest/user_data, as given (a `#!` script is run by the guest at first boot). */
  userData?: Buffer
  /**
   * skiff/host_key: the SSH host key the guest's first boot installs (dropbear's format), made by
   * the host so that the driver knows its fingerprint before the guest is up (rescue). A secret:
   * scrubbed with the password.
   */
  hostKey?: Buffer
}

/**
 * meta_data.json, one key per line: the guest's busybox reads it with sed/awk, not a JSON parser
 * (see guest-image.ts), and cloud-init reads it as JSON.
 */
export function metaData(spec: ConfigDriveSpec): string {
  const fields: [string, unknown][] = [
    ['uuid', spec.uuid],
    ['name', spec.name],
    ['hostname', spec.hostname],
    ['launch_index', 0],
    ['availability_zone', 'nova'],
  ]
  if (spec.adminPass !== undefined) fields.push(['admin_pass', spec.adminPass])
  const keys = spec.publicKeys ?? []
  const lines = fields.map(([k, v]) => `  ${JSON.stringify(k)}: ${JSON.stringify(v)}`)
  lines.push(
    `  "public_keys": {${keys.length ? '\n' + keys.map((k, i) => `    "key-${i}": ${JSON.stringify(k.trim())}`).join(',\n') + '\n  ' : ''}}`,
  )
  return `{\n${lines.join(',\n')}\n}\n`
}

export async function writeConfigDrive(iso: string, spec: ConfigDriveSpec): Promise<void> {
  const stage = await mkdtemp(path.join(path.dirname(iso), '.cfg-'))
  try {
    await chmod(stage, 0o700)
    await mkdir(path.join(stage, 'openstack', 'latest'), { recursive: true })
    await writeFile(path.join(stage, 'openstack', 'latest', 'meta_data.json'), metaData(spec), { mode: 0o600 })
    if (spec.userData) await writeFile(path.join(stage, 'openstack', 'latest', 'user_data'), spec.userData, { mode: 0o600 })
    if (spec.hostKey) {
      await mkdir(path.join(stage, 'skiff'), { mode: 0o700 })
      await writeFile(path.join(stage, 'skiff', 'host_key'), spec.hostKey, { mode: 0o600 })
    }
    // Created 0600 before genisoimage writes into it: the secret never sits in a readable file.
    await (await open(iso, 'w', 0o600)).close()
    await chmod(iso, 0o600)
    await run('genisoimage', ['-quiet', '-o', iso, '-V', 'config-2', '-r', '-J', stage])
  } finally {
    await rm(stage, { recursive: true, force: true })
  }
}
