// Cinder's response shapes (cinder/api/v2/views/volumes.py, v3/views/volumes.py, views/snapshots.py,
// views/types.py) at each microversion, exactly the keys Cinder sends: Tempest validates them with
// additionalProperties false. The extended attributes (tenant, host, migration status, image
// metadata) come only with GET of one volume and of the detailed list, as Cinder's extensions add them.
import { isoMicrosNoZone } from '../../../clock.ts'
import type { AuthContext } from '../../../identity/identity-service.ts'
import { DEFAULT_VOLUME_TYPE, type Volume, type VolumeAttachment, type VolumeSnapshot, type VolumeType } from '../../../volumes/volume.ts'

export interface VolumeVersion {
  major: 3
  minor: number
}
export const atLeast = (v: VolumeVersion, minor: number) => v.minor >= minor

const time = (t: string | null) => (t === null ? null : isoMicrosNoZone(t))

/** Links of a resource: self under /v3/{project}, bookmark without the version. */
export function links(base: string, projectId: string, kind: string, id: string) {
  return [
    { href: `${base}/v3/${projectId}/${kind}/${id}`, rel: 'self' },
    { href: `${base}/${projectId}/${kind}/${id}`, rel: 'bookmark' },
  ]
}

export interface VolumeViewOptions {
  base: string
  ctx: AuthContext
  v: VolumeVersion
  attachment: VolumeAttachment | undefined
  /** The server's host (admins see it as the attachment's host_name). */
  attachedHost?: string | null
  /** GET of one or of the detailed list: with the extended attributes. */
  extended: boolean
}

/** A stable uuid for a volume host's service (3.48 service_uuid). */
function serviceUuid(host: string): string {
  let h = 0
  for (const c of host) h = (h * 31 + c.charCodeAt(0)) >>> 0
  const hex = h.toString(16).padStart(8, '0')
  return `${hex}-5c1b-4d2e-8a0f-${hex}${hex.slice(0, 4)}`
}

export function volumeDetail(vol: Volume, o: VolumeViewOptions): Record<string, unknown> {
  const { v, ctx } = o
  const a = o.attachment
  const out: Record<string, unknown> = {
    id: vol.id,
    status: vol.status,
    size: vol.size,
    availability_zone: vol.availability_zone,
    created_at: time(vol.created_at),
    updated_at: time(vol.updated_at),
    name: vol.name,
    description: vol.description,
    volume_type: vol.volume_type_id === DEFAULT_VOLUME_TYPE.id ? DEFAULT_VOLUME_TYPE.name : vol.volume_type_id,
    snapshot_id: vol.snapshot_id,
    source_volid: vol.source_volid,
    metadata: JSON.parse(vol.metadata) as Record<string, string>,
    links: links(o.base, vol.project_id, 'volumes', vol.id),
    user_id: vol.user_id,
    bootable: vol.bootable ? 'true' : 'false',
    encrypted: false,
    replication_status: null,
    consistencygroup_id: null,
    multiattach: false,
    // Only attachments that are attached (attach_status ATTACHED), as Cinder's view.
    attachments:
      a && a.status !== 'attaching'
        ? [
            {
              id: a.volume_id,
              attachment_id: a.id,
              volume_id: a.volume_id,
              server_id: a.server_id,
              host_name: ctx.isAdmin ? (o.attachedHost ?? null) : null,
              device: a.device,
              attached_at: time(a.attached_at),
            },
          ]
        : [],
  }
  if (ctx.isAdmin) out.migration_status = null
  if (atLeast(v, 13)) out.group_id = null
  if (ctx.isAdmin && atLeast(v, 21)) out.provider_id = null
  if (atLeast(v, 48)) {
    out.shared_targets = false
    out.service_uuid = vol.host ? serviceUuid(vol.host) : null
  }
  if (ctx.isAdmin && atLeast(v, 61)) out.cluster_name = null
  if (atLeast(v, 63)) out.volume_type_id = vol.volume_type_id
  if (atLeast(v, 65)) out.consumes_quota = true
  if (o.extended) {
    out['os-vol-tenant-attr:tenant_id'] = vol.project_id
    if (ctx.isAdmin) {
      // Cinder's host@backend#pool.
      out['os-vol-host-attr:host'] = vol.host ? `${vol.host}@skiff#skiff` : null
      out['os-vol-mig-status-attr:migstat'] = null
      out['os-vol-mig-status-attr:name_id'] = null
    }
    if (vol.image_metadata) out.volume_image_metadata = JSON.parse(vol.image_metadata) as Record<string, string>
  }
  return out
}

export function volumeSummary(vol: Volume, base: string) {
  return { id: vol.id, name: vol.name, links: links(base, vol.project_id, 'volumes', vol.id) }
}

/**
 * A snapshot: the summary (list), or the detail (everything else) with 3.14 group_snapshot_id, 3.41
 * user_id, 3.65 consumes_quota; `extended`: the extension's progress and project (GET of one, detail list).
 */
export function snapshotView(s: VolumeSnapshot, o: { v: VolumeVersion; detail?: boolean; extended: boolean }): Record<string, unknown> {
  const out: Record<string, unknown> = {
    id: s.id,
    created_at: time(s.created_at),
    updated_at: time(s.updated_at),
    name: s.name,
    description: s.description,
    volume_id: s.volume_id,
    status: s.status,
    size: s.size,
    metadata: JSON.parse(s.metadata) as Record<string, string>,
  }
  if (o.detail !== false) {
    if (atLeast(o.v, 14)) out.group_snapshot_id = null
    if (atLeast(o.v, 41)) out.user_id = s.user_id
    if (atLeast(o.v, 65)) out.consumes_quota = true
  }
  if (o.extended) {
    out['os-extended-snapshot-attributes:progress'] = s.status === 'available' ? '100%' : '0%'
    out['os-extended-snapshot-attributes:project_id'] = s.project_id
  }
  return out
}

export function typeView(t: VolumeType, ctx: AuthContext): Record<string, unknown> {
  const out: Record<string, unknown> = {
    id: t.id,
    name: t.name,
    is_public: t.is_public,
    description: t.description,
    extra_specs: t.extra_specs,
    'os-volume-type-access:is_public': t.is_public,
  }
  if (ctx.isAdmin) out.qos_specs_id = null
  return out
}
