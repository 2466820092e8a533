// Flavor views per microversion (nova/api/openstack/compute/views/flavors.py): `description`
// from 2.55, `extra_specs` from 2.61 for whoever may read them, `swap` 0 instead of "" from 2.75.
import type { Flavor } from '../../../compute/flavor-service.ts'
import { has } from '../../microversion-changes.ts'
import type { Microversion } from '../../microversion.ts'

export interface FlavorViewOptions {
  base: string
  v: Microversion
  /** From 2.61, when os_compute_api:os-flavor-extra-specs:index allows the caller. */
  extraSpecs?: boolean
}

const links = (base: string, id: string) => [
  { rel: 'self', href: `${base}/v2.1/flavors/${id}` },
  { rel: 'bookmark', href: `${base}/flavors/${id}` },
]

/** GET /flavors: id, name, links (+ description from 2.55). */
export function flavorBasicView(f: Flavor, o: FlavorViewOptions): Record<string, unknown> {
  const view: Record<string, unknown> = { id: f.id, name: f.name, links: links(o.base, f.id) }
  if (has(o.v, 'flavorDescription')) view.description = f.description
  return view
}

/** GET /flavors/detail, GET /flavors/{id}, and the answers of create and update. */
export function flavorView(f: Flavor, o: FlavorViewOptions): Record<string, unknown> {
  const view: Record<string, unknown> = {
    id: f.id,
    name: f.name,
    ram: f.ram,
    disk: f.disk,
    // `swap or ""` until 2.75, `swap or 0` from it.
    swap: f.swap ? f.swap : has(o.v, 'consistentServerViews') ? 0 : '',
    'OS-FLV-EXT-DATA:ephemeral': f.ephemeral,
    'OS-FLV-DISABLED:disabled': !!f.disabled,
    vcpus: f.vcpus,
    'os-flavor-access:is_public': !!f.is_public,
    rxtx_factor: f.rxtx_factor,
    links: links(o.base, f.id),
  }
  if (has(o.v, 'flavorDescription')) view.description = f.description
  if (o.extraSpecs && has(o.v, 'flavorExtraSpecsInView')) view.extra_specs = JSON.parse(f.extra_specs) as Record<string, string>
  return view
}
