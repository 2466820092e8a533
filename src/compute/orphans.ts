// Orphans: VMs a driver still holds for servers that are deleted or unknown in the database. A
// delete whose host was down is finished by the API alone (the server is deleted at once, its
// VM left behind); a destroy that failed half-way, a database restored from a backup, a QEMU
// whose directory was removed by hand leave VMs too. The agent reconciles them at start and
// every few minutes: each such VM is destroyed, with one log line saying why.
//
// Conservative on purpose: a VM is an orphan only if no row of the servers table names it alive.
// A server that exists and is not deleted keeps its VM, whatever its state or host (being
// built, rescued — its own disk and its rescue VM both live under its id —, soft-deleted and
// restorable, or on its way to another host); its delete task, if any, does the rest.
import type { Logger } from 'pino'
import { VmNotFound, type VirtDriver } from '../drivers/driver.ts'
import type { ServersRepo } from '../store/servers-repo.ts'

export interface OrphanDeps {
  driver: VirtDriver
  repo: Pick<ServersRepo, 'liveIds' | 'getAny'>
  logger: Logger
}

/** Destroy the driver's VMs whose server is deleted or unknown. Returns the ids destroyed. */
export async function reconcileOrphans({ driver, repo, logger }: OrphanDeps): Promise<string[]> {
  const vms = await driver.listVms()
  if (vms.length === 0) return []
  const live = await repo.liveIds(vms)
  const destroyed: string[] = []
  for (const id of vms) {
    if (live.has(id)) continue
    // Checked again right before: a server created since the list has a row by now (rows come
    // before their VMs), and a live one is never touched.
    if ((await repo.liveIds([id])).has(id)) continue
    const row = await repo.getAny(id)
    const why = row ? `its server was deleted at ${row.deleted_at ?? 'an unknown time'}` : 'no server of this id is known'
    try {
      await driver.destroy(id)
      logger.warn({ server: id, reason: why }, `orphan VM destroyed: ${why}`)
      destroyed.push(id)
    } catch (err) {
      if (err instanceof VmNotFound) continue
      logger.error({ server: id, reason: why, err: (err as Error).message }, 'could not destroy an orphan VM; next sweep tries again')
    }
  }
  return destroyed
}
