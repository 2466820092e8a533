// Tempest (Debian's tempest 33), the OpenStack test suite, against a real `skiff serve`:
// configured as a cloud without Neutron, volumes or SSH validation, with pre-provisioned
// accounts from the generated openrc files. Every test that runs must pass.
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { after, before, describe, test } from 'node:test'
import { describeRun } from './helpers/process.ts'
import { startSkiffProcess, type SkiffProcess } from './helpers/skiff-process.ts'
import { EXCLUDE, MAX_MICROVERSION, tempestAvailable, tempestWorkspace, type TempestWorkspace } from './helpers/tempest.ts'

/**
 * The tests real Nova passed configured as here at 2.1–2.93 (golden/, from the shared anchors):
 * with that range, each of them must pass on Skiff too.
 */
const novaList = (file: string) =>
  MAX_MICROVERSION === '2.93'
    ? readFileSync(new URL(`./golden/${file}`, import.meta.url), 'utf8')
        .split('\n')
        .filter((l) => l && !l.startsWith('#'))
    : []
const NOVA_PASSED_SERVERS = novaList('tempest-servers-nova-2.93-passed.txt')
const NOVA_PASSED_COMPUTE = novaList('tempest-compute-nova-2.93-passed.txt')
/** What real Nova failed there (one fake host, no uptime, the accounts): allowed to fail here, nothing else. */
const NOVA_FAILED_COMPUTE = novaList('tempest-compute-nova-2.93-failed.txt')

/**
 * Tempest's stable-device rescue tests without volumes: real Nova's fake driver cannot run them
 * (its run skipped them); Skiff's drivers must pass each.
 */
const STABLE_RESCUE = [
  'ServerStableDeviceRescueTest.test_stable_device_rescue_disk_virtio',
  'ServerStableDeviceRescueTest.test_stable_device_rescue_disk_scsi',
  'ServerStableDeviceRescueTest.test_stable_device_rescue_disk_usb',
  'ServerStableDeviceRescueTestIDE.test_stable_device_rescue_cdrom_ide',
].map((t) => `tempest.api.compute.servers.test_server_rescue.${t}`)

/** What each run must reach at least (real Nova configured the same way: 5, and 108 at 2.1 or 119 at 2.93). */
const SUITES = [
  {
    name: 'rescue tests',
    regex: '^tempest\\.api\\.compute\\..*([Rr]escue)',
    minPassed: 5 + STABLE_RESCUE.length,
    novaPassed: STABLE_RESCUE,
  },
  {
    name: 'tempest.api.compute.servers',
    regex: '^tempest\\.api\\.compute\\.servers',
    minPassed: Number(process.env.SKIFF_TEMPEST_MIN_SERVERS ?? (MAX_MICROVERSION === '2.93' ? 119 : 108)),
    novaPassed: NOVA_PASSED_SERVERS,
  },
  {
    name: 'tempest.api.compute beside servers (admin, flavors, images, keypairs, limits)',
    regex: '^tempest\\.api\\.compute\\.(admin|flavors|images|keypairs|limits)\\.',
    // Live migration with trunk ports needs Neutron.
    exclude: 'trunk',
    minPassed: NOVA_PASSED_COMPUTE.length,
    novaPassed: NOVA_PASSED_COMPUTE,
    novaFailed: NOVA_FAILED_COMPUTE,
  },
].filter((s) => !process.env.SKIFF_TEMPEST_ONLY || s.name.includes(process.env.SKIFF_TEMPEST_ONLY))

const skip = await tempestAvailable()

describe('Tempest 33 against skiff serve', { skip }, () => {
  let skiff: SkiffProcess
  let tempest: TempestWorkspace

  before(async () => {
    skiff = await startSkiffProcess({ simulatedDelayMs: 20, extraArgs: ['--simulated-hosts', '2'] })
    tempest = await tempestWorkspace(skiff, { volumes: false })
  })

  after(async () => {
    await skiff?.stop()
    tempest?.remove()
  })

  for (const suite of SUITES) {
    test(
      `${suite.name}: none fails (but where Nova fails), every test Nova passes passes, at least ${suite.minPassed}`,
      { timeout: 30 * 60_000 },
      async () => {
        const t = await tempest.run(suite.regex, 'exclude' in suite ? `${EXCLUDE}|${suite.exclude}` : EXCLUDE)
        assert.ok(!Number.isNaN(t.passed), `tempest printed no totals\n${describeRun(t.run)}`)
        console.log(`# tempest ${suite.name}: ${t.passed} passed, ${t.failed} failed, ${t.skipped} skipped`)
        // None fails, but where real Nova failed the same test configured the same way.
        const unexpected = t.failures.filter((name) => !suite.novaFailed?.includes(name))
        assert.deepEqual(unexpected, [], `failed: ${t.failures.join(', ')}\n${describeRun(t.run)}`)
        assert.equal(t.failed, t.failures.length, `failures not read from the output\n${describeRun(t.run)}`)
        const notPassed = suite.novaPassed.filter((name) => !t.passedNames.has(name))
        assert.deepEqual(notPassed, [], 'tests that must pass (real Nova passes them, or Skiff must: stable rescue) did not pass here')
        assert.ok(t.passed >= suite.minPassed, `only ${t.passed} passed (want >= ${suite.minPassed})`)
      },
    )
  }
})
