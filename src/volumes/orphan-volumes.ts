// Orphan volume data: files an agent's driver holds for volumes the database no longer has. A
// server deleted with volumes marked delete_on_termination drops their rows in its delete's
// transaction (store/volumes-repo.ts releaseServerVolumes), with no task to the volume's host:
// the agent's orphan sweep (main.ts, beside the orphan VMs) deletes their data. Rows come before
// their data, so a volume being created is never taken for an orphan.
import type { Logger } from 'pino'
import type { VolumeDriver } from '../drivers/driver.ts'
import type { VolumesRepo } from '../store/volumes-repo.ts'

export interface OrphanVolumeDeps {
  driver: VolumeDriver
  repo: Pick<VolumesRepo, 'byIds'>
  logger: Logger
}

/** Delete the data of the driver's volumes that have no row. Returns the ids deleted. */
export async function reconcileOrphanVolumes({ driver, repo, logger }: OrphanVolumeDeps): Promise<string[]> {
  const held = (await driver.listVolumes?.()) ?? []
  if (held.length === 0) return []
  const known = new Set((await repo.byIds(held)).map((v) => v.id))
  const deleted: string[] = []
  for (const id of held) {
    if (known.has(id)) continue
    try {
      await driver.deleteVolume(id)
      logger.warn({ volume: id }, 'orphan volume data deleted: the volume is gone from the database')
      deleted.push(id)
    } catch (err) {
      // Still plugged into a VM that is going (its server's destroy has not run yet): the next sweep.
      logger.info({ volume: id, err: (err as Error).message }, 'orphan volume data kept for now')
    }
  }
  return deleted
}
