// The compute listener's routes and the microversion handshake.
import type { FastifyInstance } from 'fastify'
import type { Clock } from '../../../clock.ts'
import type { FaultRules } from '../../../drivers/simulated/fault-rules.ts'
import type { FlavorService } from '../../../compute/flavor-service.ts'
import type { InstanceActionService } from '../../../compute/instance-actions.ts'
import type { ServerTagService } from '../../../compute/server-tags.ts'
import type { KeypairService } from '../../../compute/keypair-service.ts'
import type { RescueService } from '../../../compute/rescue-service.ts'
import type { ShelveService } from '../../../compute/shelve-service.ts'
import type { ServerConsole } from '../../../compute/server-console.ts'
import type { MigrationService } from '../../../compute/migration-service.ts'
import { migrationRoutes } from './migrations.ts'
import type { ServerService } from '../../../compute/server-service.ts'
import type { QuotaService } from '../../../compute/quota-service.ts'
import type { AggregateService } from '../../../compute/aggregate-service.ts'
import type { HypervisorService } from '../../../compute/hypervisor-service.ts'
import type { UsageService } from '../../../compute/usage-service.ts'
import { formatVersion, MAX_VERSION, MIN_VERSION, parseMicroversion, requestedVersion, type Microversion } from '../../microversion.ts'
import { notFoundHandler } from '../../errors.ts'
import type { ServerGroupService } from '../../../compute/server-group-service.ts'
import type { ServerMetadataService } from '../../../compute/server-metadata.ts'
import type { ServerPasswordService } from '../../../compute/server-password-metadata.ts'
import type { HostRegistry } from '../../../tasks/hosts.ts'
import { actionRoutes } from './actions.ts'
import { addressRoutes } from './addresses.ts'
import { metadataRoutes } from './metadata.ts'
import { passwordRoutes } from './password.ts'
import { serverGroupRoutes } from './server-groups.ts'
import { flavorRoutes } from './flavors.ts'
import { keypairRoutes } from './keypairs.ts'
import { instanceActionRoutes } from './instance-actions.ts'
import { limitRoutes } from './limits.ts'
import { quotaRoutes } from './quota-sets.ts'
import { aggregateRoutes } from './aggregates.ts'
import { availabilityZoneRoutes } from './availability-zones.ts'
import { hypervisorRoutes } from './hypervisors.ts'
import { osHostRoutes } from './os-hosts.ts'
import { externalEventRoutes } from './external-events.ts'
import { serverDiagnosticsRoutes } from './server-diagnostics.ts'
import { usageAuditLogRoutes } from './usage-audit-log.ts'
import { tenantUsageRoutes } from './tenant-usage.ts'
import { serviceRoutes } from './os-services.ts'
import { rescueRoutes } from './rescue.ts'
import { remoteConsoleRoutes } from './remote-consoles.ts'
import { proxyApiRoutes } from './proxy-apis.ts'
import { goneApiRoutes } from './gone-apis.ts'
import { computeImageRoutes } from './images.ts'
import type { ImageService } from '../../../images/image-service.ts'
import { accessRoutes } from './access.ts'
import { serverRoutes } from './servers.ts'
import { showShortcut } from './show-shortcut.ts'
import { computeHeaders } from './headers.ts'
import type { Shortcut } from '../../shortcut.ts'
import { serverTagRoutes } from './server-tags.ts'
import { serverTopologyRoutes } from './server-topology.ts'
import { simulatorRoutes } from './simulator.ts'
import { eventRoutes, type ServerEventsDeps } from './events.ts'
import { volumeAttachmentRoutes } from './volume-attachments.ts'
import type { VolumeAttachmentService } from '../../../compute/volume-attachments.ts'

declare module 'fastify' {
  interface FastifyRequest {
    microversion: Microversion
    /** The version string echoed in the answer's headers (the requested one, even on 406). */
    versionEcho: string | undefined
    /** Reached through the legacy /v2/{project_id} prefix: v2.0 semantics. */
    legacyV2: boolean
  }
  interface FastifyContextConfig {
    /** Version documents: no microversion handshake. */
    unversioned?: boolean
  }
}

/** What the remote-consoles routes need of the serial console (src/console/, src/store/console-tokens-repo.ts). */
export interface SerialConsoleDeps {
  tokens: { issue(t: { serverId: string; host: string; consoleType: string }): Promise<string> }
  /** The serial proxy's ws:// root. */
  url: string
}

export interface ComputeRouteDeps {
  servers: ServerService
  rescues: RescueService
  /** suspend, resume, createImage, createBackup, shelve, shelveOffload, unshelve */
  shelve: ShelveService
  /** The image service's root, for createImage's and createBackup's Location (below 2.45). */
  imageUrl: string
  /** GET /images, /images/detail, /images/{id} and its metadata: Glance's images as Nova shows them (up to 2.35). */
  images: ImageService
  instanceActions: InstanceActionService
  serverTags: ServerTagService
  metadata: ServerMetadataService
  passwords: ServerPasswordService
  groups: ServerGroupService
  flavors: FlavorService
  keypairs: KeypairService
  /** Console output, from the agent of the server's host. */
  consoles: ServerConsole
  /** The serial console: its tokens and the proxy's ws:// root (none: serial is "Unavailable console type"). */
  serialConsole?: SerialConsoleDeps
  /** Resize, migrations, evacuation (move-actions.ts, migrations.ts). */
  moves: MigrationService
  /** The simulated hypervisor's fault rules (simulator.ts); absent with other drivers. */
  faults?: FaultRules
  quotas: QuotaService
  /** Host aggregates and the availability zones they make. */
  aggregates: AggregateService
  hypervisors: HypervisorService
  /** os-simple-tenant-usage. */
  usage: UsageService
  hosts: HostRegistry
  /** Scheme, host and port, without a path: links are built from it. */
  computeUrl: string
  maxLimit: number
  /** The time (os-instance_usage_audit_log's default period); the system clock when absent. */
  clock?: Clock
  /** GET /servers/events and /servers/{id}/events (events.ts). */
  serverEvents: ServerEventsDeps
  /** /servers/{id}/os-volume_attachments. */
  volumeAttachments: VolumeAttachmentService
}

const LEGACY = /^\/v2\/[0-9a-fA-F-]{32,36}(?=\/|$)/
const PROJECT_PREFIX = /^\/v2\.1\/[0-9a-fA-F]{32}(?=\/|$)/

/** `/v2.1/{project_id}/...` and the legacy `/v2/{project_id}/...` reach the same routes. */
export function rewriteComputeUrl(req: { url?: string }): string {
  const url = req.url ?? '/'
  if (LEGACY.test(url)) {
    ;(req as { skiffLegacyV2?: boolean }).skiffLegacyV2 = true
    return url.replace(LEGACY, '/v2.1')
  }
  return url.replace(PROJECT_PREFIX, '/v2.1')
}

function versionDoc(base: string) {
  return {
    id: 'v2.1',
    status: 'CURRENT',
    version: formatVersion(MAX_VERSION),
    min_version: formatVersion(MIN_VERSION),
    updated: '2013-07-23T11:33:21Z',
    links: [{ rel: 'self', href: `${base}/v2.1/` }],
  }
}
const V2_0 = (base: string) => ({
  id: 'v2.0',
  status: 'SUPPORTED',
  version: '',
  min_version: '',
  updated: '2011-01-21T11:33:21Z',
  links: [{ rel: 'self', href: `${base}/v2/` }],
})
const describedBy = { rel: 'describedby', type: 'text/html', href: 'http://docs.openstack.org/' }

/** The compute routes; returns the shortcut that answers GET /servers/{id} before fastify (show-shortcut.ts). */
export function computeRoutes(app: FastifyInstance, deps: ComputeRouteDeps): Shortcut {
  const base = deps.computeUrl
  app.decorateRequest('microversion', null as unknown as Microversion)
  app.decorateRequest('versionEcho', undefined)
  app.decorateRequest('legacyV2', false)

  // Callback-form hooks, as the listener's (listener.ts says why); a throw is caught by fastify's hook runner.
  app.addHook('onRequest', (req, _reply, done) => {
    req.legacyV2 = (req.raw as { skiffLegacyV2?: boolean }).skiffLegacyV2 === true
    if (req.routeOptions.config?.unversioned || req.legacyV2) {
      req.microversion = MIN_VERSION
      return done()
    }
    const raw = requestedVersion(req.headers)
    // Echo what was asked for, also on a 406; a malformed version gets no version headers.
    if (raw !== undefined && /^([1-9]\d*)\.([1-9]\d*|0)$|^latest$/.test(raw))
      req.versionEcho = raw === 'latest' ? formatVersion(MAX_VERSION) : raw
    req.microversion = parseMicroversion(raw)
    req.versionEcho = formatVersion(req.microversion)
    done()
  })

  app.addHook('onSend', (req, reply, payload, done) => {
    reply.headers(computeHeaders(req.id, req.versionEcho))
    done(null, payload)
  })

  app.setNotFoundHandler(notFoundHandler('compute'))

  app.get('/', { config: { public: true, unversioned: true } }, async () => ({ versions: [V2_0(base), versionDoc(base)] }))
  app.get('/v2.1', { config: { public: true } }, async () => {
    const doc = versionDoc(base)
    return {
      version: {
        ...doc,
        links: [...doc.links, describedBy],
        'media-types': [{ base: 'application/json', type: 'application/vnd.openstack.compute+json;version=2.1' }],
      },
    }
  })
  app.get('/v2', { config: { public: true, unversioned: true } }, async () => {
    const doc = V2_0(base)
    return {
      version: {
        ...doc,
        links: [...doc.links, describedBy],
        'media-types': [{ base: 'application/json', type: 'application/vnd.openstack.compute+json;version=2' }],
      },
    }
  })

  const shows = serverRoutes(app, deps)
  serverTagRoutes(app, deps.serverTags, base)
  serverTopologyRoutes(app, deps)
  addressRoutes(app, deps)
  metadataRoutes(app, deps.metadata)
  passwordRoutes(app, deps.passwords)
  serverGroupRoutes(app, deps.groups, deps.maxLimit)
  eventRoutes(app, deps)
  actionRoutes(app, deps)
  flavorRoutes(app, deps)
  keypairRoutes(app, deps)
  limitRoutes(app, deps)
  quotaRoutes(app, deps)
  aggregateRoutes(app, deps)
  availabilityZoneRoutes(app, deps)
  osHostRoutes(app, deps)
  externalEventRoutes(app, deps)
  serverDiagnosticsRoutes(app, deps)
  usageAuditLogRoutes(app, deps)
  hypervisorRoutes(app, deps)
  tenantUsageRoutes(app, deps)
  serviceRoutes(app, deps)
  instanceActionRoutes(app, deps)
  migrationRoutes(app, deps)
  rescueRoutes(app, deps)
  remoteConsoleRoutes(app, deps)
  proxyApiRoutes(app)
  goneApiRoutes(app)
  computeImageRoutes(app, { images: deps.images, computeUrl: base, imageUrl: deps.imageUrl })
  accessRoutes(app, deps)
  simulatorRoutes(app, deps)
  volumeAttachmentRoutes(app, deps.volumeAttachments)
  return showShortcut(shows)
}
