// Composition root: open the store, build the services, bootstrap, start the agent, listen.
import { createSerialProxy } from './console/serial-console.ts'
import { startSerialRelay } from './console/serial-relay.ts'
import { ConsoleTokens } from './store/console-tokens-repo.ts'
import { AggregateService } from './compute/aggregate-service.ts'
import { HypervisorService } from './compute/hypervisor-service.ts'
import { UsageService } from './compute/usage-service.ts'
import { AggregatesRepo } from './store/aggregates-repo.ts'
import { QuotaService } from './compute/quota-service.ts'
import { QuotasRepo } from './store/quotas-repo.ts'
import { createServer } from 'node:net'
import type { Server as HttpServer } from 'node:http'
import path from 'node:path'
import type { Logger } from 'pino'
import type { FastifyInstance } from 'fastify'
import { buildApps, endpointUrls, type Apps } from './api/app.ts'
import { buildDashboard } from './dashboard/app.ts'
import { bootstrap, RESCUE_IMAGE } from './bootstrap.ts'
import { systemClock, type Clock } from './clock.ts'
import { FlavorService } from './compute/flavor-service.ts'
import { InstanceActionService } from './compute/instance-actions.ts'
import { KeypairService } from './compute/keypair-service.ts'
import { ServerChangeFeed } from './compute/server-change-feed.ts'
import { RescueService } from './compute/rescue-service.ts'
import { ServerActions } from './compute/server-actions.ts'
import { ServerGroupService } from './compute/server-group-service.ts'
import { ServerMetadataService } from './compute/server-metadata.ts'
import { ServerPasswordService } from './compute/server-password-metadata.ts'
import { consoleHandlers, ServerConsole } from './compute/server-console.ts'
import { ServerService } from './compute/server-service.ts'
import { ServerGroupsRepo } from './store/server-groups-repo.ts'
import { recordVmGone, ServerWorker } from './compute/server-worker.ts'
import type { ServerTaskPayloads } from './compute/server-tasks.ts'
import { Scheduler } from './compute/scheduler.ts'
import { reconcileOrphans } from './compute/orphans.ts'
import { reconcileOrphanVolumes } from './volumes/orphan-volumes.ts'
import { PeriodicSweep } from './compute/periodic-sweep.ts'
import { rescueExpiry } from './compute/rescue-expiry.ts'
import { MigrationService } from './compute/migration-service.ts'
import { MoveWorker } from './compute/worker-migrate.ts'
import { resizeAutoConfirm } from './compute/resize-confirmer.ts'
import { MigrationsRepo } from './store/migrations-repo.ts'
import { shelveOffload } from './compute/shelve-offload.ts'
import { ShelveService } from './compute/shelve-service.ts'
import { ShelvesRepo } from './store/shelves-repo.ts'
import { publicHost, sshPortRange, type Config } from './config.ts'
import { SimulatedDriver } from './drivers/simulated/simulated-driver.ts'
import { DriverError, type VirtDriver } from './drivers/driver.ts'
import { buildGuestImage, guestBuilt, guestFiles } from './drivers/qemu/guest-image.ts'
import { QemuDriver, type QemuImage } from './drivers/qemu/qemu-driver.ts'
import type { Accel } from './drivers/qemu/qemu-args.ts'
import { IdentityService } from './identity/identity-service.ts'
import { ImageCache } from './images/image-cache.ts'
import { followRevocations } from './identity/token-revocations.ts'
import { ImageService } from './images/image-service.ts'
import { chooseImageStore } from './images/image-store.ts'
import { openStore, type Store } from './store/db.ts'
import { SharedTokenBuckets } from './store/action-rate-repo.ts'
import { DeploymentRepo } from './store/deployment-repo.ts'
import { FaultRulesRepo } from './store/fault-rules-repo.ts'
import { FlavorsRepo } from './store/flavors-repo.ts'
import { IdentityRepo } from './store/identity-repo.ts'
import { IdempotencyRepo } from './store/idempotency-repo.ts'
import { ImagesRepo } from './store/images-repo.ts'
import { InstanceActionsRepo } from './store/instance-actions-repo.ts'
import { KeypairsRepo } from './store/keypairs-repo.ts'
import { PlacementRepo } from './store/placement-repo.ts'
import { RescuesRepo } from './store/rescues-repo.ts'
import { ServersRepo } from './store/servers-repo.ts'
import type { HostScope, VmState } from './store/schema.ts'
import { ServerDetailsRepo } from './store/server-details-repo.ts'
import { ServerTagService } from './compute/server-tags.ts'
import { Sealer } from './secrets.ts'
import { imageDir, prepareDataDir, privateDir } from './data-dir.ts'
import { HostRegistry, newAgentId } from './tasks/hosts.ts'
import { Agent } from './tasks/agent.ts'
import { TaskQueue } from './tasks/queue.ts'
import { VolumesRepo } from './store/volumes-repo.ts'
import { VolumeService } from './volumes/volume-service.ts'
import { VolumeWorker } from './volumes/volume-worker.ts'
import type { VolumeTaskQueue } from './volumes/volume-tasks.ts'
import { BootVolumes, VolumeAttachmentService } from './compute/volume-attachments.ts'
import { isVolumeDriver, RecordVolumes } from './drivers/driver.ts'

/** `serialProxy`: the serial console proxy's ws:// root, when this process serves it. */
export type Roots = { identity: string; compute: string; image: string; volume: string; serialProxy?: string }

/** How long os-getConsoleOutput waits for the agent's answer before it answers 503. */
const CONSOLE_TIMEOUT_MS = 30_000
/** The states of a server that has (or may have) a VM on its host. */
const LIVE_VM_STATES: VmState[] = [
  'active',
  'building',
  'paused',
  'suspended',
  'stopped',
  'rescued',
  'resized',
  'soft-delete',
  'error',
  'shelved',
]
/** How often an agent looks for VMs of deleted servers (and once at its start). */
const ORPHAN_SWEEP_MS = 5 * 60_000

/** A hypervisor driver that can be closed at shutdown (hung operations, watchers). */
export type Driver = VirtDriver & { close(): void }

/** Everything of one Skiff, built and bootstrapped, its agent running, not yet listening. */
export interface SkiffCore {
  apps: Apps
  /** The web dashboard, one more client of the apps (none with `--no-dashboard`). */
  dashboard: FastifyInstance | undefined
  /** The serial console proxy (nova-serialproxy), not yet listening; none when `roots.serialProxy` is unset. */
  serialProxy: HttpServer | undefined
  roots: Roots
  authUrl: string
  files: string[]
  passwords: Record<string, string>
  /** Bootstrap accounts whose passwords the data dir does not know (made by another Skiff on the database). */
  unknown: string[]
  store: Store
  /** The in-process agent's driver; none with `--no-agent` (only agents hold drivers). */
  driver: Driver | undefined
  queue: TaskQueue<ServerTaskPayloads>
  /** The one change feed of the server event streams. */
  serverFeed: ServerChangeFeed
  /** The in-process agent, when it runs (tests stop it to play a dead host). */
  agent: Agent<ServerTaskPayloads> | undefined
  /** Destroy the in-process agent's VMs of deleted or unknown servers now (it also does so by itself). */
  reconcileOrphans: (() => Promise<string[]>) | undefined
  close(): Promise<void>
}

export interface Skiff extends SkiffCore {
  urls: Roots & { dashboard?: string }
}

/** The services every role builds on one store: the API serves them, the agent acts through them. */
function buildDomain(config: Config, store: Store, clock: Clock, sealer: Sealer) {
  const db = store.db
  const images = new ImageService(new ImagesRepo(db, clock), clock, chooseImageStore(config.imageStore, db, imageDir(config.dataDir)))
  const flavors = new FlavorService(new FlavorsRepo(db), clock)
  const keypairsRepo = new KeypairsRepo(db)
  const repo = new ServersRepo(db, clock, store.writes)
  const groupsRepo = new ServerGroupsRepo(db)
  const projects = new IdentityRepo(db, store.dialect)
  const quotas = new QuotaService({
    repo: new QuotasRepo(db, store.dialect),
    defaults: { instances: config.quotaInstances, cores: config.quotaCores, ram: config.quotaRamMb },
    usage: {
      servers: (projectId, db, userId) => repo.usage(projectId, db, userId),
      keyPairs: (userId) => keypairsRepo.count(userId),
      serverGroups: (projectId, db, userId) => groupsRepo.count(projectId, db, userId),
    },
    projectExists: async (id) => (await projects.project(id)) !== undefined,
  })
  const keypairs = new KeypairService(keypairsRepo, clock, quotas)
  const actionsRepo = new InstanceActionsRepo(db, clock)
  const rescuesRepo = new RescuesRepo(db, clock)
  const queue = new TaskQueue<ServerTaskPayloads>(store, clock)
  // Volume tasks travel in the same queue (one table, one agent loop, one wake-up); their kinds are volume.<verb>.
  const volumeQueue = queue as unknown as VolumeTaskQueue
  const volumesRepo = new VolumesRepo(db, clock, store.dialect)
  /** A server's attached volumes besides its root, in attach order (rescue and unshelve boot with them). */
  const attachedVolumes = async (id: string) =>
    ((await volumesRepo.attachmentsOfServers([id])).get(id) ?? []).filter((a) => a.boot_index !== 0).map((a) => a.volume_id)
  const hosts = new HostRegistry(db, clock, config.hostDownAfterSeconds * 1000)
  // The simulated hypervisor's fault rules: written by any API process, read by every agent.
  const faults = new FaultRulesRepo(db, clock)
  const imageLookup = {
    usableImage: (id: string, projectId: string, isAdmin: boolean) => images.usableImage(id, projectId, isAdmin),
    findByName: (name: string) => images.findActiveByName(name),
    get: (id: string) => images.find(id),
  }
  const actions = new ServerActions({ repo, actions: actionsRepo, queue, hosts })
  const rescues = new RescueService({
    actions,
    repo,
    rescues: rescuesRepo,
    images: imageLookup,
    keypairs,
    sealer,
    enableInstancePassword: config.enableInstancePassword,
    defaultRescueImageName: RESCUE_IMAGE,
    rescueTimeoutSeconds: config.rescueTimeoutSeconds,
    attachedVolumes,
  })
  const scheduler = new Scheduler(new PlacementRepo(db, store.dialect), hosts)
  const migrationsRepo = new MigrationsRepo(db, clock, store.dialect)
  const moves = new MigrationService({
    actions,
    actionsRepo,
    repo,
    migrations: migrationsRepo,
    flavors,
    scheduler,
    hosts,
    sealer,
    quotas,
    enableInstancePassword: config.enableInstancePassword,
    allowResizeToSameHost: config.allowResizeToSameHost,
  })
  // suspend, resume, createImage, createBackup, shelve, shelveOffload, unshelve (their images in the image service)
  const shelvesRepo = new ShelvesRepo(db)
  const shelve = new ShelveService({
    actions,
    repo,
    actionsRepo,
    queue,
    scheduler,
    hosts,
    flavors,
    images,
    shelves: shelvesRepo,
    volumeHosts: (id) => volumesRepo.dataHostsOfServer(id),
  })
  const volumes = new VolumeService({
    repo: volumesRepo,
    queue: volumeQueue,
    hosts,
    images: { usableImage: (id, projectId, isAdmin) => images.usableImage(id, projectId, isAdmin) },
  })
  const volumeAttachments = new VolumeAttachmentService({ actions, volumes, repo: volumesRepo, actionsRepo, queue: volumeQueue })
  const bootVolumes = new BootVolumes({
    volumes,
    repo: volumesRepo,
    images: { usableImage: (id, projectId, isAdmin) => images.usableImage(id, projectId, isAdmin) },
  })
  return {
    attachedVolumes,
    bootVolumes,
    volumesRepo,
    volumes,
    volumeAttachments,
    db,
    images,
    flavors,
    keypairs,
    repo,
    actionsRepo,
    rescuesRepo,
    queue,
    sealer,
    hosts,
    faults,
    imageLookup,
    actions,
    rescues,
    scheduler,
    migrationsRepo,
    moves,
    quotas,
    groupsRepo,
    shelvesRepo,
    shelve,
  }
}

type Domain = ReturnType<typeof buildDomain>

/**
 * The deployment's sealing key, checked against the canary the first process sealed into the
 * database: a process with another key would open none of the sealed passwords, so it does not start.
 */
async function deploymentSealer(config: Config, store: Store, clock: Clock): Promise<Sealer> {
  const { sealer, source } = Sealer.load(config.dataDir, config.secretKeyFile)
  sealer.assertOpens(await new DeploymentRepo(store.db, clock).sealingCanary(() => sealer.canary()), source)
  return sealer
}

/** What runs on hypervisor hosts: per host an agent loop with compute's handlers; heartbeats and rescue expiry for all. */
export interface HostAgent {
  hosts: string[]
  /** The agent of the first host (the in-process agent of `skiff serve`). */
  agent: Agent<ServerTaskPayloads>
  driver: Driver
  /** Destroy the driver's VMs of deleted or unknown servers (at start, then every few minutes). */
  reconcileOrphans(): Promise<string[]>
  stop(): Promise<void>
}

/**
 * One host, or many simulated ones in one process (`skiff agent --simulated-hosts N`): each host
 * has its own lease and its own worker; one agent loop claims the tasks of all of them (by the
 * agent id that holds their leases), heartbeats go out in one statement and one sweep expires
 * rescues of all.
 */
async function startHostAgents(
  config: Config,
  logger: Logger,
  clock: Clock,
  d: Domain,
  driver: Driver,
  hosts: string[],
): Promise<HostAgent> {
  const log = logger.child({ component: 'agent' })
  const capacity = { vcpus: config.hostVcpus, ramMb: config.hostRamMb, diskGb: config.hostDiskGb }
  const imageName = async (id: string | null) => (id ? ((await d.images.find(id))?.name ?? null) : null)
  const heartbeatMs = Math.max(200, (config.hostDownAfterSeconds * 1000) / 6)
  // This process's claim on its hosts: a second agent with one of these names is refused (hosts.ts).
  const agentId = newAgentId()
  const registered: string[] = []
  /** Hosts another agent took over after this one's heartbeats stopped reaching the database. */
  const lost = new Set<string>()
  let agent: Agent<ServerTaskPayloads> | undefined
  const stopAll = async () => {
    await agent?.stop()
    await d.hosts.release(registered, agentId).catch((err: unknown) => log.warn({ err }, 'could not release the hosts'))
  }
  const workers = new Map<string, WorkerHandlers>()
  // Volume tasks: the driver's volumes (or records only, for a driver that has none of its own yet).
  const volumeWorker = new VolumeWorker({
    repo: d.volumesRepo,
    queue: d.queue as unknown as VolumeTaskQueue,
    actions: d.actionsRepo,
    driver: isVolumeDriver(driver) ? driver : new RecordVolumes(),
    logger: log.child({ component: 'volumes' }),
  })
  try {
    // Hosts are set up side by side (a simulator's thousands would take a minute one by one).
    await eachAtMost(16, hosts, async (host) => {
      const hostLog = hosts.length === 1 ? log.child({ host }) : log
      // The lease first: nothing of the host is touched while another agent holds it.
      // Its address where it has one of its own (the qemu driver's: other hosts' QEMUs reach it there).
      await d.hosts.register(host, driver.name, capacity, agentId, driver.name === 'qemu' ? config.migrationAddress : null)
      registered.push(host)
      const worker = new ServerWorker({
        repo: d.repo,
        actions: d.actionsRepo,
        rescues: d.rescuesRepo,
        driver,
        flavors: d.flavors,
        sealer: d.sealer,
        host,
        logger: hostLog,
        imageName,
        bootVolumes: {
          prepare: (id) => volumeWorker.prepareBoot(id),
          attach: (id) => volumeWorker.attachBoot(id),
          release: (id) => volumeWorker.releaseBoot(id),
          root: (id) => volumeWorker.bootVolume(id),
        },
        shelve: {
          images: {
            upload: async (id, copy) => {
              await d.images.uploadSnapshot(id, { diskFormat: copy.diskFormat, containerFormat: 'bare' }, copy.data)
            },
            delete: (id) => d.images.deleteForServer(id),
            backups: (serverId, type) => d.images.backupsOf(serverId, type),
          },
          shelves: d.shelvesRepo,
          shelvedOffloadTime: config.shelvedOffloadTimeSeconds,
          attachedVolumes: d.attachedVolumes,
        },
      })
      const moveWorker = new MoveWorker({
        repo: d.repo,
        actions: d.actionsRepo,
        migrations: d.migrationsRepo,
        queue: d.queue,
        driver,
        flavors: d.flavors,
        sealer: d.sealer,
        host,
        // Where other hosts' QEMUs reach this one (the simulated driver's hosts have no address of their own).
        address: driver.name === 'qemu' ? config.migrationAddress : null,
        logger: hostLog,
        imageName,
        moveVolumes: (id, to, trx) => d.volumesRepo.moveServerVolumes(id, to, trx),
      })
      await worker.adoptServers()
      workers.set(host, { ...worker.handlers(), ...moveWorker.handlers() })
    })
    // One loop for all the hosts of the process: one claim, one poll, one lease sweep, whatever
    // their number; each task goes to the worker of its host.
    agent = new Agent({
      queue: d.queue,
      hosts,
      agentId,
      handlers: { ...byHost(workers), ...consoleHandlers(driver), ...(volumeWorker.handlers() as unknown as Record<never, never>) },
      logger: hosts.length === 1 ? log.child({ host: hosts[0] }) : log,
      leaseMs: config.taskLeaseSeconds * 1000,
      concurrency: Math.min(64, 8 * hosts.length),
    })
    await agent.start()
  } catch (err) {
    await stopAll()
    throw err
  }
  const running = agent
  // Only hosts whose agent still claims work say they are alive (a stopped agent's hosts go down).
  const beatNow = () =>
    (running.running ? d.hosts.heartbeat(agentId) : Promise.resolve(undefined))
      .then((held) => {
        if (!held) return
        // Taken over after our heartbeats stopped reaching the database: its tasks are no longer
        // claimed here (the claim reads the leases); an agent of one host stops altogether.
        for (const host of hosts) {
          if (held.has(host) || lost.has(host)) continue
          log.error({ host }, "another agent took this host over after this one's heartbeat stopped: no longer claiming its tasks")
          lost.add(host)
        }
        if (lost.size === hosts.length) void running.stop()
      })
      .catch((err: unknown) => log.warn({ err }, 'heartbeat failed'))
  const beat = setInterval(() => void beatNow(), heartbeatMs)
  beat.unref()
  // A test's clock moved ahead would find these hosts silent since: they beat at once (before the sweep).
  const unlistenBeat = clock.onAdvance?.(beatNow)
  const scope: HostScope = hosts.length === 1 ? { host: hosts[0]! } : { agentId }
  const sweeps = [
    rescueExpiry(d.rescues, d.rescuesRepo, scope),
    resizeAutoConfirm(d.moves, scope, config.resizeConfirmWindowSeconds),
    shelveOffload(d.shelve, d.shelvesRepo, scope, config.shelvedOffloadTimeSeconds),
  ].map((duty) => new PeriodicSweep(duty, clock, log))
  for (const s of sweeps) s.start()
  // The promise that deletes leave to the agent: VMs of servers deleted while their host was down
  // (or left by anything else) are destroyed, one sweep at a time, after adopt() above.
  let sweeping: Promise<string[]> | undefined
  const reconcile = () => {
    sweeping ??= reconcileOrphans({ driver, repo: d.repo, logger: log })
      .then(async (vms) => {
        // Then the data of volumes deleted with their server (delete_on_termination).
        if (isVolumeDriver(driver)) await reconcileOrphanVolumes({ driver, repo: d.volumesRepo, logger: log })
        return vms
      })
      .catch((err: unknown) => {
        log.error({ err }, 'orphan sweep failed')
        return []
      })
      .finally(() => {
        sweeping = undefined
      })
    return sweeping
  }
  void reconcile()
  const orphanSweep = setInterval(() => void reconcile(), ORPHAN_SWEEP_MS)
  orphanSweep.unref()
  return {
    hosts,
    agent: running,
    driver,
    reconcileOrphans: reconcile,
    async stop() {
      clearInterval(beat)
      clearInterval(orphanSweep)
      await sweeping
      unlistenBeat?.()
      for (const s of sweeps) s.stop()
      // Running tasks finish; a hung simulated operation is cut short after a grace period.
      const timer = setTimeout(() => driver.close(), 10_000)
      await stopAll()
      clearTimeout(timer)
    },
  }
}

export async function buildSkiff(
  config: Config,
  logger: Logger,
  given: Omit<Roots, 'volume'> & { volume?: string },
  clock: Clock = systemClock,
): Promise<SkiffCore> {
  // Callers that predate block storage give three roots: the volume listener beside compute's host, on its port.
  const roots: Roots = { ...given, volume: given.volume ?? given.compute.replace(/:\d+$/, `:${config.volumePort}`) }
  prepareDataDir(config.dataDir)
  const store = await openStore(config.databaseUrl)
  let sealer: Sealer
  try {
    sealer = await deploymentSealer(config, store, clock)
  } catch (err) {
    await store.close()
    throw err
  }
  const d = buildDomain(config, store, clock, sealer)
  const { db, images, flavors, keypairs, repo, actionsRepo, queue, hosts, imageLookup, actions, rescues, quotas } = d
  const accounts = new IdentityRepo(db, store.dialect)
  const identity = new IdentityService(accounts, clock, config.tokenTtlSeconds)
  // Revocations through other API processes (PostgreSQL NOTIFY) reach this one's token cache.
  const stopRevocations = await followRevocations(store, identity, logger.child({ component: 'identity' }))
  await images.recoverInterruptedUploads()
  // Only agents hold drivers: with --no-agent this process has none, and reaches the hosts' VMs
  // through the database (console output by a task round-trip, fault rules in a table).
  if (config.driver === 'qemu') await ensureGuestImage(config, logger.child({ component: 'qemu' }))
  // The accounts, flavors and images every Skiff starts with: begun now and awaited once the
  // listeners are built, as a first start hashes four new passwords (scrypt, in libuv's threads)
  // and building the routes needs only the main thread.
  const authUrl = endpointUrls(roots).identity
  const booting = bootstrap({
    accounts,
    flavors,
    images,
    dataDir: config.dataDir,
    adminPassword: config.adminPassword,
    authUrl,
    guest: config.driver === 'qemu' ? guestFiles(path.join(config.qemuDir, 'guest')) : undefined,
  })
  // Awaited below; a failure of a step between is the start's error, not an unhandled rejection.
  booting.catch(() => {})
  const driver = config.agent ? await makeDriver(config, logger, d) : undefined
  const groups = new ServerGroupService(d.groupsRepo, () => repo.now(), quotas)
  const placement = new PlacementRepo(db, store.dialect)
  const aggregates = new AggregateService({
    repo: new AggregatesRepo(db, store.dialect),
    hosts,
    serversOnHosts: (names) => repo.countOnHosts(names),
    now: () => repo.now(),
  })
  const hypervisors = new HypervisorService({
    hosts,
    usage: () => placement.allHosts(),
    serversOn: (host) => repo.allOnHost(host),
    projectsOnHost: (host) => placement.projectsOnHost(host),
  })
  const usage = new UsageService(repo, () => clock.now())
  const scheduler = d.scheduler
  const serverDetails = new ServerDetailsRepo(db)
  const servers = new ServerService({
    repo,
    actionsRepo,
    queue,
    flavors,
    keypairs,
    images: imageLookup,
    quotas,
    scheduler,
    enableInstancePassword: config.enableInstancePassword,
    sealer,
    hosts,
    actions,
    groups,
    details: serverDetails,
    zones: aggregates,
    shelved: d.shelve,
    bootVolumes: d.bootVolumes,
  })
  const metadata = new ServerMetadataService(servers, repo, quotas)
  const instanceActions = new InstanceActionService(actionsRepo)
  const serverTags = new ServerTagService(repo, serverDetails)
  const passwords = new ServerPasswordService(servers)
  const consoles = new ServerConsole({ servers, actions, queue, timeoutMs: CONSOLE_TIMEOUT_MS })
  const consoleTokens = new ConsoleTokens(db, clock)
  const serialConsole = roots.serialProxy ? { tokens: consoleTokens, url: roots.serialProxy } : undefined
  const serialProxy = serialConsole
    ? createSerialProxy({
        tokens: consoleTokens,
        repo,
        consoleLog: (s) => consoles.log(s),
        sealer,
        logger: logger.child({ component: 'serial-proxy' }),
      })
    : undefined
  const idempotency = new IdempotencyRepo(db, clock)
  const serverFeed = new ServerChangeFeed({
    servers: repo,
    clock,
    logger: logger.child({ component: 'server-feed' }),
    intervalMs: Math.max(1, config.serverEventsIntervalMs),
  })
  const serverEvents = { feed: serverFeed, keepAliveMs: Math.max(1, config.serverEventsKeepAliveMs) }
  // Counted in the database when several API processes share it; SQLite's one process counts in memory.
  const actionBuckets =
    store.dialect === 'postgres' && config.actionRateLimit > 0 ? new SharedTokenBuckets(db, config.actionRateLimit) : undefined
  const apps = buildApps({
    config,
    logger,
    identity,
    actionBuckets,
    images,
    servers,
    rescues,
    shelve: d.shelve,
    instanceActions,
    serverTags,
    metadata,
    passwords,
    groups,
    flavors,
    keypairs,
    consoles,
    ...(serialConsole ? { serialConsole } : {}),
    moves: d.moves,
    quotas,
    aggregates,
    hypervisors,
    usage,
    hosts,
    idempotency,
    serverEvents,
    clock,
    roots,
    faults: config.driver === 'simulated' ? d.faults : undefined,
    volumes: d.volumes,
    volumeAttachments: d.volumeAttachments,
  })
  const dashboard = config.dashboard
    ? buildDashboard({
        apps,
        sealer,
        computeRoot: roots.compute,
        ...(roots.serialProxy ? { serialProxy: roots.serialProxy } : {}),
        logger,
        keepAliveTimeoutMs: config.keepAliveTimeoutMs,
        keepAliveMs: Math.max(1, config.serverEventsKeepAliveMs),
      })
    : undefined
  const boot = await booting

  // --simulated-hosts N: the in-process agent runs hosts NAME-1 ... NAME-N (moves between hosts in one process).
  const agentHosts =
    config.simulatedHosts > 0 ? Array.from({ length: config.simulatedHosts }, (_, i) => `${config.agentHost}-${i + 1}`) : [config.agentHost]
  const hostAgent = driver ? await startHostAgents(config, logger, clock, d, driver, agentHosts) : undefined
  const purge = setInterval(() => {
    void identity.purgeExpiredTokens().catch(() => {})
  }, 3_600_000)
  purge.unref()

  return {
    apps,
    dashboard,
    serialProxy,
    roots,
    authUrl,
    files: boot.files,
    passwords: boot.passwords,
    unknown: boot.unknown,
    store,
    driver,
    queue,
    agent: hostAgent?.agent,
    serverFeed,
    reconcileOrphans: hostAgent?.reconcileOrphans,
    async close() {
      clearInterval(purge)
      await stopRevocations()
      // The dashboard first: its event streams read the compute listener's.
      await dashboard?.close()
      if (serialProxy?.listening) await new Promise((resolve) => serialProxy.close(resolve))
      await Promise.allSettled([apps.identity.close(), apps.compute.close(), apps.image.close(), apps.volume.close()])
      // The listeners ended their event streams on close; nothing reads the feed any more.
      serverFeed.close()
      await hostAgent?.stop()
      driver?.close()
      await queue.close()
      await store.close()
    },
  }
}

/**
 * `skiff agent`: the agent of one hypervisor host, alone in its process, beside API processes
 * (`skiff serve --no-agent`) on the same PostgreSQL. It needs the deployment's sealing key
 * (`<data-dir>/secret.key`) to open the passwords the API hands it.
 */
export async function startAgent(
  config: Config,
  logger: Logger,
  clock: Clock = systemClock,
  simulatedHosts = 0,
): Promise<HostAgent & { store: Store }> {
  prepareDataDir(config.dataDir)
  const store = await openStore(config.databaseUrl)
  try {
    const d = buildDomain(config, store, clock, await deploymentSealer(config, store, clock))
    // A host of its own: the serial proxies (of `skiff serve` processes, maybe on other machines)
    // reach its VMs' consoles through its serial relay, on the address other hosts reach it at.
    // One that cannot listen (the address is not this machine's, the port taken) leaves the
    // consoles reachable from this machine only: said, not fatal.
    let vms: QemuDriver | undefined
    const relay =
      config.driver === 'qemu'
        ? await startSerialRelay({
            address: config.migrationAddress,
            port: config.serialRelayPort,
            sealer: d.sealer,
            serialSocket: (id) => vms?.serialSocket(id) ?? null,
            logger: logger.child({ component: 'serial-relay' }),
          }).catch((err: Error) => {
            logger.error(
              { address: config.migrationAddress, port: config.serialRelayPort, err: err.message },
              "serial relay not started: this host's consoles are reachable from this machine only",
            )
            return undefined
          })
        : undefined
    const driver = await makeDriver(config, logger, d, relay?.endpoint).catch(async (err: unknown) => {
      await relay?.close()
      throw err
    })
    if (driver instanceof QemuDriver) vms = driver
    // --simulated-hosts N: hosts NAME-1 ... NAME-N, all in this process, on the simulated driver.
    const hosts = simulatedHosts > 0 ? Array.from({ length: simulatedHosts }, (_, i) => `${config.agentHost}-${i + 1}`) : [config.agentHost]
    const hostAgent = await startHostAgents(config, logger, clock, d, driver, hosts)
    return {
      ...hostAgent,
      store,
      async stop() {
        await hostAgent.stop()
        await relay?.close()
        driver.close()
        await d.queue.close()
        await store.close()
      },
    }
  } catch (err) {
    await store.close()
    throw err
  }
}

/** The configured hypervisor driver: the simulated one, or QEMU (real VMs). */
async function makeDriver(config: Config, logger: Logger, d: Domain, serialRelayEndpoint?: string): Promise<Driver> {
  return config.driver === 'qemu'
    ? qemuDriver(config, logger, d.images, { servers: d.repo, actions: d.actionsRepo, rescues: d.rescuesRepo }, serialRelayEndpoint)
    : new SimulatedDriver({ delayMs: config.simulatedDelayMs, faults: d.faults })
}

/**
 * The qemu driver, with the guest image built at first start (named packages missing: an
 * error that says which and how to install them; nothing is installed here), images resolved
 * through the image service, and VMs found dead reconciled into the database.
 */
async function qemuDriver(
  config: Config,
  logger: Logger,
  images: ImageService,
  repos: { servers: ServersRepo; actions: InstanceActionsRepo; rescues: RescuesRepo },
  serialRelayEndpoint?: string,
): Promise<QemuDriver> {
  const log = logger.child({ component: 'qemu' })
  const guestDir = await ensureGuestImage(config, log)
  // This host's copies of the images it boots, from the image store (with PostgreSQL, the database),
  // pruned to --image-cache-size: never an image (or its kernel, ramdisk) of a server of this host.
  const inUse = async () => {
    const servers = await repos.servers.onHost(config.agentHost, LIVE_VM_STATES)
    const ids = new Set(servers.flatMap((s) => (s.image_id ? [s.image_id] : [])))
    for (const s of servers.filter((x) => x.vm_state === 'rescued' || x.task_state === 'rescuing')) {
      const rescue = await repos.rescues.open(s.id)
      if (rescue) ids.add(rescue.image_id)
    }
    const keys: string[] = []
    for (const id of ids) {
      const row = await images.find(id)
      if (!row) continue
      const props = JSON.parse(row.properties || '{}') as Record<string, string>
      for (const r of [row, ...(await Promise.all([props.kernel_id, props.ramdisk_id].filter((x) => x).map((x) => images.find(x!))))]) {
        const key = r?.os_hash_value ?? r?.checksum
        if (key) keys.push(key)
      }
    }
    return keys
  }
  const cache = new ImageCache(path.join(config.dataDir, 'image-cache'), images.store, {
    maxBytes: config.imageCacheSizeMb * 1024 * 1024,
    inUse,
    onPruneError: (err) => log.warn({ err }, 'could not prune the image cache'),
  })
  const fileOf = async (id: string, what: string) => {
    const row = await images.find(id)
    if (!row || row.status !== 'active') throw new DriverError(`${what} ${id} is not an active image`)
    const file = await cache.fileOf(row).catch((err: Error) => {
      throw new DriverError(`${what} ${id}: ${err.message}`)
    })
    return { row, file }
  }
  const resolveImage = async (imageId: string): Promise<QemuImage> => {
    const { row, file } = await fileOf(imageId, 'image')
    if (row.disk_format !== 'qcow2' && row.disk_format !== 'raw')
      throw new DriverError(`image ${imageId} has disk_format ${row.disk_format}; the qemu driver boots qcow2 or raw`)
    const props = JSON.parse(row.properties || '{}') as Record<string, string>
    const fallback = guestFiles(guestDir)
    return {
      disk: file,
      format: row.disk_format,
      kernel: props.kernel_id ? (await fileOf(props.kernel_id, 'kernel image')).file : fallback.kernel,
      initrd: props.ramdisk_id ? (await fileOf(props.ramdisk_id, 'ramdisk image')).file : fallback.initrd,
      checksum: row.os_hash_value ?? row.checksum ?? undefined,
    }
  }
  const { min, max } = sshPortRange(config)
  return new QemuDriver({
    dir: path.resolve(config.qemuDir),
    resolveImage,
    accel: config.qemuAccel as 'auto' | Accel,
    sshPortMin: min,
    sshPortMax: max,
    bootTimeoutMs: config.qemuBootTimeoutSeconds * 1000,
    migrationAddress: config.migrationAddress,
    liveMigrationTimeoutPerGiBSeconds: config.liveMigrationCompletionTimeoutSeconds,
    liveMigrationBandwidthBytes: config.liveMigrationBandwidthMiB * 2 ** 20,
    stopTimeoutMs: 30_000,
    rescueStopTimeoutMs: config.qemuRescueStopTimeoutSeconds * 1000,
    warmRescue: config.qemuWarmRescue,
    ...(serialRelayEndpoint ? { serialRelayEndpoint } : {}),
    logger: log,
    // A QEMU that died under an idle server: the server shows it (SHUTOFF, or RESCUE powered off,
    // from which unrescue boots its own disk) with the fault, as Nova's power-state sync does.
    onVmGone: (serverId, detail) =>
      void recordVmGone(repos, serverId, detail).catch((err: Error) =>
        log.error({ server: serverId, err: err.message }, 'could not record a VM that died'),
      ),
  })
}

/**
 * The guest image of the qemu driver, built at the first start (named packages missing: an error
 * that says which and how to install them; nothing is installed here). Also without an agent:
 * bootstrap registers it as the base and rescue images.
 */
async function ensureGuestImage(config: Config, log: Logger): Promise<string> {
  // Disks and config drives: owner-only (QEMU opens them before it drops to `nobody`).
  privateDir(config.qemuDir, 'qemu dir')
  const guestDir = path.join(config.qemuDir, 'guest')
  if (!guestBuilt(guestDir)) {
    log.info({ dir: guestDir }, 'building the guest image (first start with --driver qemu)')
    const built = await buildGuestImage({ outDir: guestDir, progress: (line) => log.info(`guest image: ${line}`) })
    log.info({ seconds: +built.seconds.toFixed(1), kernel: built.kver }, 'guest image built')
  }
  return guestDir
}

/** `skiff serve`: build, then listen on the four ports (0 = any free port). */
export async function startSkiff(config: Config, logger: Logger, clock: Clock = systemClock): Promise<Skiff> {
  const host = publicHost(config)
  const hostInUrl = host.includes(':') ? `[${host}]` : host
  const ports = {
    identity: await resolvePort(config.host, config.identityPort),
    compute: await resolvePort(config.host, config.computePort),
    image: await resolvePort(config.host, config.imagePort),
    dashboard: config.dashboard ? await resolvePort(config.host, config.dashboardPort) : undefined,
    volume: await resolvePort(config.host, config.volumePort),
    serialProxy: config.serialProxy ? await resolvePort(config.host, config.serialProxyPort) : undefined,
  }
  const roots: Roots = {
    identity: `http://${hostInUrl}:${ports.identity}`,
    compute: `http://${hostInUrl}:${ports.compute}`,
    image: `http://${hostInUrl}:${ports.image}`,
    volume: `http://${hostInUrl}:${ports.volume}`,
    ...(ports.serialProxy !== undefined ? { serialProxy: `ws://${hostInUrl}:${ports.serialProxy}` } : {}),
  }
  const core = await buildSkiff(config, logger, roots, clock)
  try {
    await core.apps.identity.listen({ host: config.host, port: ports.identity })
    await core.apps.compute.listen({ host: config.host, port: ports.compute })
    await core.apps.image.listen({ host: config.host, port: ports.image })
    if (core.dashboard && ports.dashboard !== undefined) await core.dashboard.listen({ host: config.host, port: ports.dashboard })
    await core.apps.volume.listen({ host: config.host, port: ports.volume })
    const proxy = core.serialProxy
    if (proxy && ports.serialProxy !== undefined)
      await new Promise<void>((resolve, reject) => proxy.once('error', reject).listen(ports.serialProxy, config.host, resolve))
  } catch (err) {
    await core.close()
    throw err
  }
  return { ...core, urls: { ...roots, ...(ports.dashboard !== undefined ? { dashboard: `http://${hostInUrl}:${ports.dashboard}` } : {}) } }
}

/** Port 0 means "any free port": resolved first, so every URL (the catalog's too) is known up front. */
async function resolvePort(host: string, port: number): Promise<number> {
  if (port !== 0) return port
  const server = createServer()
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, host, resolve))
  const address = server.address()
  await new Promise((resolve) => server.close(resolve))
  if (typeof address !== 'object' || !address) throw new Error('could not find a free port')
  return address.port
}

/** What one host's workers run: every kind of server task but the console call. */
type WorkerHandlers = ReturnType<ServerWorker['handlers']> & ReturnType<MoveWorker['handlers']>

/** The handlers of several hosts' workers as one set: each task goes to its host's worker. */
function byHost(workers: Map<string, WorkerHandlers>): WorkerHandlers {
  const [first] = workers.values()
  if (!first) throw new Error('no host')
  if (workers.size === 1) return first
  const kinds = Object.keys(first) as (keyof typeof first)[]
  return Object.fromEntries(
    kinds.map((kind) => [
      kind,
      (task: { host: string }) => {
        const w = workers.get(task.host)
        if (!w) throw new Error(`no worker for host ${task.host}`)
        return (w[kind] as (t: typeof task) => Promise<unknown>)(task)
      },
    ]),
  ) as unknown as typeof first
}

/** `fn` for every item, at most `n` at a time; after a failure no more start, and it rejects once the running ones end. */
async function eachAtMost<T>(n: number, items: readonly T[], fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0
  let stop = false
  const lanes = Array.from({ length: Math.min(n, items.length) }, async () => {
    while (!stop && next < items.length) {
      try {
        await fn(items[next++]!)
      } catch (err) {
        stop = true
        throw err
      }
    }
  })
  const results = await Promise.allSettled(lanes)
  const failed = results.find((r) => r.status === 'rejected')
  if (failed) throw failed.reason
}
