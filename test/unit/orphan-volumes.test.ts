import assert from 'node:assert/strict'
import { test } from 'node:test'
import pino from 'pino'
import { RecordVolumes, type VolumeDriver } from '../../src/drivers/driver.ts'
import { reconcileOrphanVolumes } from '../../src/volumes/orphan-volumes.ts'

/** A host's volume data: what it holds, what it deleted, and one it cannot delete yet (still plugged in). */
class HeldVolumes implements VolumeDriver {
  readonly deleted: string[] = []
  constructor(
    readonly held: string[],
    readonly busy: string,
  ) {}
  createVolume = async () => {}
  extendVolume = async () => {}
  createVolumeSnapshot = async () => {}
  deleteVolumeSnapshot = async () => {}
  attachVolume = async () => {}
  detachVolume = async () => {}
  async listVolumes() {
    return this.held
  }
  async deleteVolume(id: string) {
    if (id === this.busy) throw new Error(`volume ${id} is attached to server s1`)
    this.deleted.push(id)
  }
}

test('the data of volumes the database no longer has is deleted; one still plugged in waits for the next sweep', async () => {
  const driver = new HeldVolumes(['kept', 'gone', 'busy'], 'busy')
  const repo = { byIds: async (ids: string[]) => ids.filter((id) => id === 'kept').map((id) => ({ id }) as never) }
  const deleted = await reconcileOrphanVolumes({ driver, repo, logger: pino({ level: 'silent' }) })
  assert.deepEqual(deleted, ['gone'])
  assert.deepEqual(driver.deleted, ['gone'])
})

test('a driver that lists no volumes (simulated, records only) is left alone', async () => {
  const repo = { byIds: async () => assert.fail('no lookup without volumes') }
  assert.deepEqual(await reconcileOrphanVolumes({ driver: new RecordVolumes(), repo, logger: pino({ level: 'silent' }) }), [])
})
