// Composition root: open the store, build the services, bootstrap, listen, start the agent.
import { createServer } from 'node:net'
import path from 'node:path'
import type { Logger } from 'pino'
import { buildApps, endpointUrls } from './api/app.ts'
import { bootstrap, RESCUE_IMAGE } from './bootstrap.ts'
import { systemClock, type Clock } from './clock.ts'
import { FlavorService } from './compute/flavor-service.ts'
import { KeypairService } from './compute/keypair-service.ts'
import { ServerService } from './compute/server-service.ts'
import { ServerWorker } from './compute/server-worker.ts'
import { publicHost, type Config } from './config.ts'
import { SimulatedDriver } from './drivers/simulated/simulated-driver.ts'
import { IdentityService } from './identity/identity-service.ts'
import { ImageService } from './images/image-service.ts'
import { openStore, type Store } from './store/db.ts'
import { ServersRepo } from './store/servers-repo.ts'
import { Agent } from './tasks/agent.ts'
import { TaskQueue } from './tasks/queue.ts'

export interface Skiff {
  urls: { identity: string; compute: string; image: string }
  authUrl: string
  files: string[]
  passwords: Record<string, string>
  store: Store
  driver: SimulatedDriver
  /** Stop listening, let running tasks finish, close the database. */
  close(): Promise<void>
}

export async function startSkiff(config: Config, logger: Logger, clock: Clock = systemClock): Promise<Skiff> {
  const store = await openStore(config.databaseUrl)
  const db = store.db
  const identity = new IdentityService(db, clock, config.tokenTtlSeconds)
  const images = new ImageService(db, clock, path.join(config.dataDir, 'images'))
  await images.recoverInterruptedUploads()
  const flavors = new FlavorService(db, clock)
  const keypairs = new KeypairService(db, clock)
  const repo = new ServersRepo(db, clock)
  const queue = new TaskQueue(db, clock)
  const driver = new SimulatedDriver({ delayMs: config.simulatedDelayMs })
  const imageLookup = {
    usableImage: (id: string, projectId: string, isAdmin: boolean) => images.usableImage(id, projectId, isAdmin),
    findByName: async (name: string) => db.selectFrom('images').selectAll().where('name', '=', name).where('status', '=', 'active').orderBy('created_at').executeTakeFirst(),
  }
  const quotas = { instances: config.quotaInstances, cores: config.quotaCores, ram: config.quotaRamMb }
  const servers = new ServerService({
    repo, queue, flavors, keypairs, images: imageLookup, pickHost: () => config.agentHost, quotas,
    enableInstancePassword: config.enableInstancePassword, defaultRescueImageName: RESCUE_IMAGE,
  })

  // Port 0 (tests) means "any free port": resolved first, so every URL is known up front.
  const host = publicHost(config)
  const hostInUrl = host.includes(':') ? `[${host}]` : host
  const ports = {
    identity: await resolvePort(config.host, config.identityPort),
    compute: await resolvePort(config.host, config.computePort),
    image: await resolvePort(config.host, config.imagePort),
  }
  const roots = {
    identity: `http://${hostInUrl}:${ports.identity}`,
    compute: `http://${hostInUrl}:${ports.compute}`,
    image: `http://${hostInUrl}:${ports.image}`,
  }
  const apps = buildApps({ config, logger, identity, images, servers, flavors, keypairs, driver, quotas, roots })
  try {
    await apps.identity.listen({ host: config.host, port: ports.identity })
    await apps.compute.listen({ host: config.host, port: ports.compute })
    await apps.image.listen({ host: config.host, port: ports.image })
  } catch (err) {
    await Promise.allSettled([apps.identity.close(), apps.compute.close(), apps.image.close()])
    await store.close()
    throw err
  }
  const authUrl = endpointUrls(roots).identity

  const boot = await bootstrap({ db, flavors, images, dataDir: config.dataDir, adminPassword: config.adminPassword, authUrl })

  let agent: Agent | undefined
  if (config.agent) {
    const worker = new ServerWorker({
      repo, driver, flavors, host: config.agentHost, logger: logger.child({ component: 'agent' }),
      imageName: async (id) => (id ? (await db.selectFrom('images').select('name').where('id', '=', id).executeTakeFirst())?.name ?? null : null),
    })
    await worker.adoptServers()
    agent = new Agent({ queue, host: config.agentHost, handlers: worker.handlers(), logger: logger.child({ component: 'agent' }) })
    await agent.start()
  }
  const purge = setInterval(() => { void identity.purgeExpiredTokens().catch(() => {}) }, 3_600_000)
  purge.unref()

  return {
    urls: roots, authUrl, files: boot.files, passwords: boot.passwords, store, driver,
    async close() {
      clearInterval(purge)
      await Promise.allSettled([apps.identity.close(), apps.compute.close(), apps.image.close()])
      if (agent) {
        // Give running tasks a moment; a hung simulated operation is cut short.
        const stopped = agent.stop()
        const timer = setTimeout(() => driver.close(), 10_000)
        await stopped
        clearTimeout(timer)
      }
      driver.close()
      await store.close()
    },
  }
}

/** A free port for `port` 0; any other port as it is. */
async function resolvePort(host: string, port: number): Promise<number> {
  if (port !== 0) return port
  const server = createServer()
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, host, resolve))
  const address = server.address()
  await new Promise((resolve) => server.close(resolve))
  if (typeof address !== 'object' || !address) throw new Error('could not find a free port')
  return address.port
}
