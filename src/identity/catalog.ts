// The service catalog: identity, compute and image, each with public, internal and admin
// endpoints. Every endpoint carries both `region` (tempest reads it) and `region_id` (keystoneauth).
import { createHash } from 'node:crypto'

export const REGION = 'RegionOne'

export interface EndpointUrls {
  identity: string
  compute: string
  image: string
}

const SERVICES = [
  { type: 'identity', name: 'keystone' },
  { type: 'compute', name: 'nova' },
  { type: 'image', name: 'glance' },
] as const

const stableId = (s: string) => createHash('md5').update(s).digest('hex')

export function buildCatalog(urls: EndpointUrls) {
  return SERVICES.map((svc) => ({
    type: svc.type,
    name: svc.name,
    id: stableId(`service:${svc.type}`),
    endpoints: (['public', 'internal', 'admin'] as const).map((iface) => ({
      id: stableId(`endpoint:${svc.type}:${iface}`),
      interface: iface,
      region: REGION,
      region_id: REGION,
      url: urls[svc.type],
    })),
  }))
}
