// Builds the four listeners (identity, compute, image, volume) over one set of services. No listen here.
import type { SerialConsoleDeps } from './routes/compute/index.ts'
import type { Clock } from '../clock.ts'
import type { FastifyInstance } from 'fastify'
import type { Logger } from 'pino'
import type { Config } from '../config.ts'
import type { FlavorService } from '../compute/flavor-service.ts'
import type { ServerTagService } from '../compute/server-tags.ts'
import type { InstanceActionService } from '../compute/instance-actions.ts'
import type { KeypairService } from '../compute/keypair-service.ts'
import type { RescueService } from '../compute/rescue-service.ts'
import type { ServerGroupService } from '../compute/server-group-service.ts'
import type { ServerMetadataService } from '../compute/server-metadata.ts'
import type { ServerPasswordService } from '../compute/server-password-metadata.ts'
import type { ServerService } from '../compute/server-service.ts'
import type { QuotaService } from '../compute/quota-service.ts'
import type { AggregateService } from '../compute/aggregate-service.ts'
import type { HypervisorService } from '../compute/hypervisor-service.ts'
import type { UsageService } from '../compute/usage-service.ts'
import type { ServerConsole } from '../compute/server-console.ts'
import type { MigrationService } from '../compute/migration-service.ts'
import type { FaultRules } from '../drivers/simulated/fault-rules.ts'
import { buildCatalog, type EndpointUrls } from '../identity/catalog.ts'
import type { IdentityService } from '../identity/identity-service.ts'
import type { ImageService } from '../images/image-service.ts'
import { installIdempotency, type IdempotencyStore } from './idempotency.ts'
import { jsonBodyParser } from './json-body.ts'
import { createListener } from './listener.ts'
import { installActionRateLimit, type ActionBuckets } from './rate-limit.ts'
import { computeRoutes, rewriteComputeUrl } from './routes/compute/index.ts'
import { installShortcut } from './shortcut.ts'
import type { ServerEventsDeps } from './routes/compute/events.ts'
import { identityRoutes } from './routes/identity.ts'
import type { ShelveService } from '../compute/shelve-service.ts'
import type { HostRegistry } from '../tasks/hosts.ts'
import { imageRoutes } from './routes/image.ts'
import { rewriteVolumeUrl, volumeRoutes } from './routes/volume/index.ts'
import type { VolumeService } from '../volumes/volume-service.ts'
import type { VolumeAttachmentService } from '../compute/volume-attachments.ts'

export interface AppDeps {
  config: Config
  logger: Logger
  identity: IdentityService
  images: ImageService
  servers: ServerService
  rescues: RescueService
  /** suspend, resume, createImage, createBackup, shelve, shelveOffload, unshelve */
  shelve: ShelveService
  instanceActions: InstanceActionService
  serverTags: ServerTagService
  metadata: ServerMetadataService
  passwords: ServerPasswordService
  groups: ServerGroupService
  flavors: FlavorService
  keypairs: KeypairService
  /** Console output, asked of the agent of the server's host (the API holds no driver). */
  consoles: ServerConsole
  /** The serial console's tokens and the proxy's ws:// root, when `skiff serve` runs the proxy. */
  serialConsole?: SerialConsoleDeps
  moves: MigrationService
  /** The simulated hypervisor's fault rules, in the database; absent with other drivers. */
  faults?: FaultRules
  quotas: QuotaService
  aggregates: AggregateService
  hypervisors: HypervisorService
  usage: UsageService
  /** Agent hosts and their heartbeats (os-services). */
  hosts: HostRegistry
  /** The action rate limit's buckets shared by every API process (PostgreSQL); absent: in memory. */
  actionBuckets?: ActionBuckets | undefined
  /** Stored answers of requests sent with an Idempotency-Key. */
  idempotency: IdempotencyStore
  /** The change feed and keep-alive interval of the server event streams. */
  serverEvents: ServerEventsDeps
  /** The time (os-instance_usage_audit_log's period, diagnostics' uptime). */
  clock?: Clock
  /** Block storage (Cinder v3) and Nova's os-volume_attachments. */
  volumes: VolumeService
  volumeAttachments: VolumeAttachmentService
  /** Roots of the four listeners (scheme, host, port), as clients reach them; the serial console proxy's when served. */
  roots: { identity: string; compute: string; image: string; volume: string; serialProxy?: string }
}

export interface Apps {
  identity: FastifyInstance
  compute: FastifyInstance
  image: FastifyInstance
  volume: FastifyInstance
}

/** The catalog's URLs: identity at /v3, compute at /v2.1, image at the Glance root. */
export const endpointUrls = (roots: AppDeps['roots']): EndpointUrls => ({
  identity: `${roots.identity}/v3`,
  compute: `${roots.compute}/v2.1`,
  image: roots.image,
  volume: roots.volume,
})

export function buildApps(deps: AppDeps): Apps {
  const common = { config: deps.config, logger: deps.logger, identity: deps.identity, identityUri: `${deps.roots.identity}/v3` }

  const identity = createListener('identity', common)
  installIdempotency(identity, deps.idempotency)
  identityRoutes(identity, { identity: deps.identity, identityUrl: deps.roots.identity, catalog: buildCatalog(endpointUrls(deps.roots)) })

  const compute = createListener('compute', common, { rewriteUrl: rewriteComputeUrl })
  // Nova reads any body as JSON, whatever its Content-Type says (text/plain, or none at all).
  compute.removeContentTypeParser(['text/plain'])
  compute.addContentTypeParser('*', { parseAs: 'string' }, jsonBodyParser(compute, 'compute'))
  installIdempotency(compute, deps.idempotency)
  installActionRateLimit(compute, { perMinute: deps.config.actionRateLimit, buckets: deps.actionBuckets })
  const showServer = computeRoutes(compute, {
    servers: deps.servers,
    rescues: deps.rescues,
    shelve: deps.shelve,
    imageUrl: deps.roots.image,
    images: deps.images,
    instanceActions: deps.instanceActions,
    serverTags: deps.serverTags,
    metadata: deps.metadata,
    passwords: deps.passwords,
    groups: deps.groups,
    flavors: deps.flavors,
    keypairs: deps.keypairs,
    consoles: deps.consoles,
    ...(deps.serialConsole ? { serialConsole: deps.serialConsole } : {}),
    moves: deps.moves,
    faults: deps.faults,
    quotas: deps.quotas,
    aggregates: deps.aggregates,
    hypervisors: deps.hypervisors,
    usage: deps.usage,
    hosts: deps.hosts,
    computeUrl: deps.roots.compute,
    maxLimit: 1000,
    serverEvents: deps.serverEvents,
    volumeAttachments: deps.volumeAttachments,
    ...(deps.clock ? { clock: deps.clock } : {}),
  })
  installShortcut(compute, deps.identity, showServer)

  const image = createListener('image', common)
  installIdempotency(image, deps.idempotency)
  imageRoutes(image, { images: deps.images, imageUrl: deps.roots.image })

  const volume = createListener('volume', common, { rewriteUrl: rewriteVolumeUrl })
  volumeRoutes(volume, {
    volumes: deps.volumes,
    volumeUrl: deps.roots.volume,
    serverHost: async (id) => (await deps.servers.getIncludingDeleted(id))?.host ?? null,
  })

  return { identity, compute, image, volume }
}
