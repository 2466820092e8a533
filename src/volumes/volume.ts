// The types block storage hands the API (the routes import these, never the store), and the one
// volume type Skiff has: Cinder's `__DEFAULT__`.
import type {
  AttachmentStatus,
  SnapshotStatus,
  VolumeAttachmentRow,
  VolumeRow,
  VolumeSnapshotRow,
  VolumeStatus,
} from '../store/volumes-repo.ts'

export type Volume = VolumeRow
export type VolumeSnapshot = VolumeSnapshotRow
export type VolumeAttachment = VolumeAttachmentRow
export type { AttachmentStatus, SnapshotStatus, VolumeStatus }

export interface VolumeType {
  id: string
  name: string
  description: string
  is_public: boolean
  extra_specs: Record<string, string>
}

/** Cinder creates `__DEFAULT__` at its first start (its id is random there; fixed here, so every process agrees). */
export const DEFAULT_VOLUME_TYPE: VolumeType = {
  id: '5c1b7d2e-0d53-4c3b-9a8e-3f1f1f5e0001',
  name: '__DEFAULT__',
  description: 'Default Volume Type',
  is_public: true,
  extra_specs: {},
}

/** Cinder's storage_availability_zone default. */
export const VOLUME_ZONE = 'nova'

/** Cinder's default quotas (cinder/quota.py: quota_volumes, quota_snapshots, quota_gigabytes, ...). */
export const VOLUME_QUOTA_DEFAULTS = {
  volumes: 10,
  snapshots: 10,
  gigabytes: 1000,
  backups: 10,
  backup_gigabytes: 1000,
  per_volume_gigabytes: -1,
  groups: 10,
} as const
export type VolumeQuotaResource = keyof typeof VOLUME_QUOTA_DEFAULTS
export const VOLUME_QUOTA_RESOURCES = Object.keys(VOLUME_QUOTA_DEFAULTS) as VolumeQuotaResource[]
