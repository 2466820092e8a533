// Tempest 33 against a real `skiff serve` with block storage on (cinder = True, stable_rescue =
// True): every rescue test (with the volume ones: attach and detach refused while rescued,
// rescue with a volume attached, stable-device rescue of servers booted from volumes), and the
// tempest.api.volume tests of what Skiff's Cinder serves, and tempest.api.compute's tests of
// servers with volumes (attach, detach, shelve and unshelve with one, volume-backed servers). Same harness as tempest.test.ts (helpers/tempest.ts; that file
// keeps its Neutron- and volume-less configuration, so that its golden lists stay Nova's).
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { describeRun } from './helpers/process.ts'
import { startSkiffProcess, type SkiffProcess } from './helpers/skiff-process.ts'
import { EXCLUDE, tempestAvailable, tempestWorkspace, type TempestWorkspace } from './helpers/tempest.ts'

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
  {
    // Volumes attached to servers: attach, detach, list, shelve and unshelve with a volume, volume-backed servers.
    name: 'compute with volumes',
    regex:
      '^tempest\\.api\\.compute\\.(volumes|servers\\.test_server_actions\\..*(volume|[Ss]helve)|servers\\.test_create_server\\..*[Vv]olume)',
    minPassed: 20,
    mayFail: [
      // Nova's deprecated proxy of Cinder's volumes and snapshots (os-volumes, os-snapshots, to 2.35) is not served.
      'tempest.api.compute.volumes.test_volume_snapshots.VolumesSnapshotsTestJSON.test_volume_snapshot_create_get_list_delete',
      'tempest.api.compute.volumes.test_volumes_get.VolumesGetTestJSON.test_volume_create_get_delete',
      'setUpClass (tempest.api.compute.volumes.test_volumes_list.VolumesTestJSON)',
      'tempest.api.compute.volumes.test_volumes_negative.VolumesNegativeTest.test_create_volume_with_invalid_size',
      'tempest.api.compute.volumes.test_volumes_negative.VolumesNegativeTest.test_create_volume_with_size_zero',
      'tempest.api.compute.volumes.test_volumes_negative.VolumesNegativeTest.test_create_volume_without_passing_size',
    ],
  },
].filter((s) => !process.env.SKIFF_TEMPEST_ONLY || s.name.includes(process.env.SKIFF_TEMPEST_ONLY))

const skip = await tempestAvailable()

describe('Tempest 33 against skiff serve with block storage', { skip }, () => {
  let skiff: SkiffProcess
  let tempest: TempestWorkspace

  before(async () => {
    skiff = await startSkiffProcess({ simulatedDelayMs: 20, extraArgs: ['--simulated-hosts', '2'] })
    tempest = await tempestWorkspace(skiff, { volumes: true })
  })

  after(async () => {
    await skiff?.stop()
    tempest?.remove()
  })

  for (const suite of SUITES) {
    test(`${suite.name}: none fails (but those listed), at least ${suite.minPassed} pass`, { timeout: 30 * 60_000 }, async () => {
      const t = await tempest.run(suite.regex, EXCLUDE)
      assert.ok(!Number.isNaN(t.passed), `tempest printed no totals\n${describeRun(t.run)}`)
      console.log(`# tempest ${suite.name}: ${t.passed} passed, ${t.failed} failed, ${t.skipped} skipped`)
      // None fails, but those listed.
      const unexpected = t.failures.filter((name) => !suite.mayFail.includes(name))
      assert.deepEqual(unexpected, [], `failed: ${t.failures.join(', ')}\n${describeRun(t.run)}`)
      assert.equal(t.failed, t.failures.length, `failures not read from the output\n${describeRun(t.run)}`)
      assert.ok(t.passed >= suite.minPassed, `only ${t.passed} passed (want >= ${suite.minPassed})`)
    })
  }
})
