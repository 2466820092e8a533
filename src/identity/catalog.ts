// The service catalog: identity, compute, image and block storage, each with public, internal and
// admin endpoints. Every endpoint carries both `region` (tempest reads it) and `region_id`
// (keystoneauth). Block storage's URL holds the project, as Cinder's endpoints do
// (`.../v3/$(project_id)s`): Keystone fills it in for a project-scoped token and leaves such
// endpoints out of other tokens' catalogs.
import { createHash } from 'node:crypto'

export const REGION = 'RegionOne'

export interface EndpointUrls {
  identity: string
  compute: string
  image: string
  /** Block storage's root (scheme, host, port); the catalog adds /v3/{project_id}. */
  volume: string
}

type ServiceType = 'identity' | 'compute' | 'image' | 'volumev3' | 'block-storage'

const SERVICES: { type: ServiceType; name: string }[] = [
  { type: 'identity', name: 'keystone' },
  { type: 'compute', name: 'nova' },
  { type: 'image', name: 'glance' },
  // Cinder registers its v3 API under both types: cinderclient looks for volumev3, openstacksdk for block-storage.
  { type: 'volumev3', name: 'cinderv3' },
  { type: 'block-storage', name: 'cinder' },
]

const stableId = (s: string) => createHash('md5').update(s).digest('hex')

/** The catalog of a token scoped to `projectId` (null: a domain-scoped token, without the project's endpoints). */
export type Catalog = (projectId: string | null) => unknown[]

export function buildCatalog(urls: EndpointUrls): Catalog {
  const url = (type: ServiceType, projectId: string | null) =>
    type === 'volumev3' || type === 'block-storage' ? (projectId ? `${urls.volume}/v3/${projectId}` : null) : urls[type]
  const byProject = new Map<string, unknown[]>()
  return (projectId) => {
    const key = projectId ?? ''
    const kept = byProject.get(key)
    if (kept) return kept
    const catalog = SERVICES.flatMap((svc) => {
      const href = url(svc.type, projectId)
      if (href === null) return []
      return [
        {
          type: svc.type,
          name: svc.name,
          id: stableId(`service:${svc.type}`),
          endpoints: (['public', 'internal', 'admin'] as const).map((iface) => ({
            id: stableId(`endpoint:${svc.type}:${iface}`),
            interface: iface,
            region: REGION,
            region_id: REGION,
            url: href,
          })),
        },
      ]
    })
    if (byProject.size > 10_000) byProject.clear()
    byProject.set(key, catalog)
    return catalog
  }
}
