// Tempest (Debian's tempest 33) against a real `skiff serve`, as the end-to-end tests run it: a
// workspace with pre-provisioned accounts from the generated openrc files, a tempest.conf for a
// cloud without Neutron or SSH validation, and the results of `tempest run` read from its output.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { formatVersion, MAX_VERSION } from '../../../src/api/microversion.ts'
import { ok, run, type RunResult } from './process.ts'
import { parseOpenrc, type SkiffProcess } from './skiff-process.ts'

/**
 * Need Neutron (security groups through Nova's proxy), which a Neutron-less cloud has not; and
 * nova-network's APIs (os-networks, os-security-groups for admins and their quotas, bulk floating IPs), excluded
 * from real Nova's run too (shared/anchors/harness/RESULTS-nova-2.93.md), and os-fixed-ips, which
 * that run skipped only because its fake network gave the test server no fixed IP: gone from
 * Nova since Rocky, they fail on Nova as soon as a server has one (410).
 */
export const EXCLUDE = [
  'test_rescued_vm_add_remove_security_group',
  'test_remove_server_all_security_groups',
  'admin\\.test_fixed_ips',
  'admin\\.test_networks\\.',
  'admin\\.test_security_groups\\.',
  'admin\\.test_floating_ips_bulk',
  'QuotasSecurityGroupAdminNegativeTest',
].join('|')

/** Tempest asks for every microversion Skiff advertises (its tests pick theirs within the range). */
export const MAX_MICROVERSION = formatVersion(MAX_VERSION)

/** False when Tempest can run here, else why not (in CI a missing Tempest is an error). */
export async function tempestAvailable(): Promise<string | false> {
  // Minutes long: CI runs it (CI=true); elsewhere ask for it with SKIFF_TEMPEST=1.
  if (!process.env.CI && !process.env.SKIFF_TEMPEST) return 'Tempest runs in CI, or with SKIFF_TEMPEST=1'
  const r = await run('tempest', ['--version'], { timeoutMs: 60_000 }).catch(() => undefined)
  if (r && r.code === 0) return false
  const reason = 'tempest is not installed (apt-get install tempest; see .ci/run)'
  if (process.env.CI) throw new Error(reason)
  return reason
}

function account(openrc: string, types?: string) {
  const v = parseOpenrc(readFileSync(openrc, 'utf8'))
  const q = (s: string | undefined) => `'${(s ?? '').replace(/'/g, "''")}'`
  return [
    `- username: ${q(v.OS_USERNAME)}`,
    `  project_name: ${q(v.OS_PROJECT_NAME)}`,
    `  password: ${q(v.OS_PASSWORD)}`,
    `  user_domain_name: ${q(v.OS_USER_DOMAIN_NAME)}`,
    `  project_domain_name: ${q(v.OS_PROJECT_DOMAIN_NAME)}`,
    ...(types ? [`  types: [${types}]`] : []),
  ].join('\n')
}

const VOLUME_CONF = `[volume]
catalog_type = volumev3
endpoint_type = publicURL
region = RegionOne
min_microversion = 3.0
max_microversion = 3.70
build_timeout = 60
build_interval = 1
volume_size = 1

[volume-feature-enabled]
api_v2 = False
api_v3 = True
backup = False
snapshot = True
clone = True
manage_volume = False
manage_snapshot = False
extend_attached_volume = False
extend_attached_encrypted_volume = False
multi_backend = False
api_extensions = all

`

/**
 * tempest.conf for Skiff: Nova and Glance, no SSH validation, rescue (stable too) and pause on;
 * with `volumes`, Cinder too (and no IDE bus: the volume-backed stable rescue tests pick virtio).
 */
function tempestConf(dir: string, skiff: SkiffProcess, refs: { image: string; imageAlt: string }, volumes: boolean) {
  return `[DEFAULT]
log_file = tempest.log
log_dir = ${dir}

[oslo_concurrency]
lock_path = ${dir}/lock

[auth]
use_dynamic_credentials = False
test_accounts_file = ${dir}/etc/accounts.yaml
create_isolated_networks = False
default_credentials_domain_name = Default

[identity]
uri_v3 = ${skiff.urls.identity}
auth_version = v3
region = RegionOne
v3_endpoint_type = public

[identity-feature-enabled]
api_v2 = False
api_v3 = True

[service_available]
nova = True
glance = True
cinder = ${volumes ? 'True' : 'False'}
neutron = False
swift = False
horizon = False
placement = False

[compute]
# Two simulated hosts (skiff serve --simulated-hosts 2): resize, cold and live migration move between them.
min_compute_nodes = 2
image_ref = ${refs.image}
image_ref_alt = ${refs.imageAlt}
flavor_ref = 1
flavor_ref_alt = 2
min_microversion = 2.1
max_microversion = ${MAX_MICROVERSION}
region = RegionOne
endpoint_type = publicURL
build_timeout = 120
build_interval = 1

[compute-feature-enabled]
rescue = True
# Stable-device rescue (the rescue image's hw_rescue_device / hw_rescue_bus): Skiff's drivers
# attach the rescue disk last and boot it (ServerStableDeviceRescueTest, and the IDE cdrom one).
stable_rescue = True
pause = True
suspend = True
shelve = True
shelve_migrate = False
resize = True
cold_migration = True
live_migration = True
block_migration_for_live_migration = True
snapshot = True
console_output = True
change_password = False
enable_instance_password = True
metadata_service = False
config_drive = False
interface_attach = False
personality = False
vnc_console = False
spice_console = False
serial_console = False
ide_bus = ${volumes ? 'False' : 'True'}
attach_encrypted_volume = False
volume_multiattach = False
swap_volume = False
disk_config = False
xenapi_apis = False

${volumes ? VOLUME_CONF : ''}[image]
region = RegionOne
endpoint_type = publicURL

[image-feature-enabled]
api_v1 = False
api_v2 = True

[network]
public_network_id =
project_networks_reachable = False

[network-feature-enabled]
floating_ips = False
ipv6 = False

[validation]
run_validation = False
connect_method = fixed
`
}

/** A Tempest workspace for `skiff`: made in a temp dir, removed by `remove` (kept with SKIFF_KEEP_TEMPEST). */
export interface TempestWorkspace {
  run(regex: string, exclude: string): Promise<TempestResult>
  remove(): void
}

export interface TempestResult {
  run: RunResult
  passed: number
  failed: number
  skipped: number
  /** The names of the tests that failed (setUpClass failures by their class). */
  failures: string[]
  /** The names of the tests that passed. */
  passedNames: Set<string>
}

export async function tempestWorkspace(skiff: SkiffProcess, opts: { volumes: boolean }): Promise<TempestWorkspace> {
  const dir = mkdtempSync(path.join(tmpdir(), 'skiff-tempest-'))
  const ws = path.join(dir, 'ws')
  ok(
    await run('tempest', ['init', '--workspace-path', path.join(dir, 'workspace.yaml'), '--name', `skiff-${process.pid}`, ws], {
      timeoutMs: 120_000,
    }),
  )
  const images = JSON.parse(ok(await run('openstack', ['image', 'list', '-f', 'json'], { env: skiff.cloudEnv('demo') })).stdout) as {
    ID: string
    Name: string
  }[]
  const id = (name: string) => images.find((i) => i.Name === name)!.ID
  writeFileSync(
    path.join(ws, 'etc', 'accounts.yaml'),
    [account(skiff.openrc.demo), account(skiff.openrc.alt), account(skiff.openrc.admin, 'admin')].join('\n') + '\n',
  )
  writeFileSync(
    path.join(ws, 'etc', 'tempest.conf'),
    tempestConf(ws, skiff, { image: id('skiff-base'), imageAlt: id('skiff-rescue') }, opts.volumes),
  )
  return {
    async run(regex, exclude) {
      const r = await run('tempest', ['run', '--regex', regex, '--exclude-regex', exclude, '--concurrency', '1'], {
        cwd: ws,
        timeoutMs: 30 * 60_000,
      })
      const n = (label: string) => Number(new RegExp(`^ - ${label}: (\\d+)`, 'm').exec(r.stdout)?.[1] ?? NaN)
      const failures = [...r.stdout.matchAll(/^\{\d+\} (setUpClass \([^)]+\)|\S+?)(?:\[[^\]\s]*\])?(?: \[[\d.]+s\])? \.\.\. FAILED/gm)].map(
        (m) => m[1]!,
      )
      const passedNames = new Set([...r.stdout.matchAll(/^\{\d+\} (\S+?)(?:\[[^\]\s]*\])?(?: \[[\d.]+s\])? \.\.\. ok/gm)].map((m) => m[1]!))
      return {
        run: r,
        passed: n('Passed'),
        failed: n('Failed') + (n('Unexpected Success') || 0),
        skipped: n('Skipped'),
        failures,
        passedNames,
      }
    },
    remove() {
      if (!process.env.SKIFF_KEEP_TEMPEST) rmSync(dir, { recursive: true, force: true })
    },
  }
}
