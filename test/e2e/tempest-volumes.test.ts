// Tempest 33 against a real `skiff serve` with block storage on (cinder = True, stable_rescue =
// True): every rescue test (with the volume ones: attach and detach refused while rescued,
// rescue with a volume attached, stable-device rescue of servers booted from volumes), and the
// tempest.api.volume tests of what Skiff's Cinder serves. Same harness as tempest.test.ts (which
// keeps its Neutron- and volume-less configuration, so that its golden lists stay Nova's).
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { formatVersion, MAX_VERSION } from '../../src/api/microversion.ts'
import { describeRun, ok, run } from './helpers/process.ts'
import { parseOpenrc, startSkiffProcess, type SkiffProcess } from './helpers/skiff-process.ts'

/**
 * Need Neutron (security groups through Nova's proxy), which a Neutron-less cloud has not; and
 * nova-network's APIs (os-networks, os-security-groups for admins and their quotas, bulk floating IPs), excluded
 * from real Nova's run too (shared/anchors/harness/RESULTS-nova-2.93.md), and os-fixed-ips, which
 * that run skipped only because its fake network gave the test server no fixed IP: gone from
 * Nova since Rocky, they fail on Nova as soon as a server has one (410).
 */
const EXCLUDE = [
  'test_rescued_vm_add_remove_security_group',
  'test_remove_server_all_security_groups',
  'admin\\.test_fixed_ips',
  'admin\\.test_networks\\.',
  'admin\\.test_security_groups\\.',
  'admin\\.test_floating_ips_bulk',
  'QuotasSecurityGroupAdminNegativeTest',
].join('|')

/** Tempest asks for every microversion Skiff advertises (its tests pick theirs within the range). */
const MAX_MICROVERSION = formatVersion(MAX_VERSION)

/**
 * Each run: at least `minPassed` pass, and none fails but those listed in `mayFail` (each with
 * why: what Skiff does not serve yet).
 */
const SUITES = [
  { name: 'rescue tests with volumes', regex: '^tempest\\.api\\.compute\\..*([Rr]escue)', minPassed: 13, mayFail: [] as string[] },
  {
    name: 'volume API',
    regex:
      '^tempest\\.api\\.volume\\.(test_versions|test_volumes_get|test_volumes_list|test_volumes_snapshots|test_volumes_snapshots_list|test_volumes_extend|test_volume_metadata|test_snapshot_metadata|test_volumes_negative|test_volumes_snapshots_negative|test_volumes_clone|admin\\.test_volume_quotas)',
    minPassed: 94,
    mayFail: [
      // Volume transfers are not served.
      'tempest.api.volume.admin.test_volume_quotas.VolumeQuotasAdminTestJSON.test_quota_usage_after_volume_transfer',
      // The legacy os-attach and os-detach volume actions are not served (Nova's os-volume_attachments is).
      'tempest.api.volume.test_volumes_negative.VolumesNegativeTest.test_attach_volumes_with_nonexistent_volume_id',
      'tempest.api.volume.test_volumes_negative.VolumesNegativeTest.test_detach_volumes_with_invalid_volume_id',
      // Glance's image deactivation is not served.
      'tempest.api.volume.test_volumes_negative.VolumesNegativeTest.test_create_volume_from_deactivated_image',
      // GET /volumes/ (an empty id): Skiff's listeners ignore a trailing slash, so it is the list.
      'tempest.api.volume.test_volumes_negative.VolumesNegativeTest.test_get_volume_without_passing_volume_id',
    ],
  },
].filter((s) => !process.env.SKIFF_TEMPEST_ONLY || s.name.includes(process.env.SKIFF_TEMPEST_ONLY))

async function tempestAvailable(): Promise<string | false> {
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

/** tempest.conf for Skiff with block storage: Nova, Glance and Cinder, no SSH validation, rescue (stable too) on. */
function tempestConf(dir: string, skiff: SkiffProcess, refs: { image: string; imageAlt: string }) {
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
cinder = True
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
stable_rescue = True
pause = True
suspend = True
shelve = True
shelve_migrate = False
resize = True
cold_migration = True
live_migration = True
block_migration_for_live_migration = True
snapshot = False
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
ide_bus = False
attach_encrypted_volume = False
volume_multiattach = False
swap_volume = False
disk_config = False
xenapi_apis = False

[volume]
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

[image]
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

interface Totals {
  passed: number
  failed: number
  skipped: number
}

function totals(out: string): Totals | undefined {
  const n = (label: string) => Number(new RegExp(`^ - ${label}: (\\d+)`, 'm').exec(out)?.[1] ?? NaN)
  const t = { passed: n('Passed'), failed: n('Failed') + (n('Unexpected Success') || 0), skipped: n('Skipped') }
  return Number.isNaN(t.passed) ? undefined : t
}

const skip = await tempestAvailable()

describe('Tempest 33 against skiff serve with block storage', { skip }, () => {
  let skiff: SkiffProcess
  let dir: string

  before(async () => {
    skiff = await startSkiffProcess({ simulatedDelayMs: 20, extraArgs: ['--simulated-hosts', '2'] })
    dir = mkdtempSync(path.join(tmpdir(), 'skiff-tempest-'))
    ok(
      await run(
        'tempest',
        ['init', '--workspace-path', path.join(dir, 'workspace.yaml'), '--name', `skiff-${process.pid}`, path.join(dir, 'ws')],
        { timeoutMs: 120_000 },
      ),
    )
    const ws = path.join(dir, 'ws')
    const images = JSON.parse(ok(await run('openstack', ['image', 'list', '-f', 'json'], { env: skiff.cloudEnv('demo') })).stdout) as {
      ID: string
      Name: string
    }[]
    const id = (name: string) => images.find((i) => i.Name === name)!.ID
    writeFileSync(
      path.join(ws, 'etc', 'accounts.yaml'),
      [account(skiff.openrc.demo), account(skiff.openrc.alt), account(skiff.openrc.admin, 'admin')].join('\n') + '\n',
    )
    writeFileSync(path.join(ws, 'etc', 'tempest.conf'), tempestConf(ws, skiff, { image: id('skiff-base'), imageAlt: id('skiff-rescue') }))
  })

  after(async () => {
    await skiff?.stop()
    if (dir && !process.env.SKIFF_KEEP_TEMPEST) rmSync(dir, { recursive: true, force: true })
  })

  for (const suite of SUITES) {
    test(`${suite.name}: none fails (but those listed), at least ${suite.minPassed} pass`, { timeout: 30 * 60_000 }, async () => {
      const exclude = EXCLUDE
      const r = await run('tempest', ['run', '--regex', suite.regex, '--exclude-regex', exclude, '--concurrency', '1'], {
        cwd: path.join(dir, 'ws'),
        timeoutMs: 30 * 60_000,
      })
      const t = totals(r.stdout)
      assert.ok(t, `tempest printed no totals\n${describeRun(r)}`)
      const failures = [...r.stdout.matchAll(/^\{\d+\} (setUpClass \([^)]+\)|\S+?)(?:\[[^\]\s]*\])?(?: \[[\d.]+s\])? \.\.\. FAILED/gm)].map(
        (m) => m[1]!,
      )
      console.log(`# tempest ${suite.name}: ${t.passed} passed, ${t.failed} failed, ${t.skipped} skipped`)
      // None fails, but those listed.
      const unexpected = failures.filter((name) => !suite.mayFail.includes(name))
      assert.deepEqual(unexpected, [], `failed: ${failures.join(', ')}\n${describeRun(r)}`)
      assert.equal(t.failed, failures.length, `failures not read from the output\n${describeRun(r)}`)
      assert.ok(t.passed >= suite.minPassed, `only ${t.passed} passed (want >= ${suite.minPassed})`)
    })
  }
})
