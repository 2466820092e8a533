// What changed when in the compute API: the one table request schemas and views consult (Nova's
// `api_version_request.is_supported(req, '2.x')` checks, gathered in one place and named). Each
// entry is the first microversion with the change; versions are 2.x throughout, so the number
// kept is the minor one. Taken from nova/api/openstack/api_version_request.py and the REST API
// version history; the changes that only touch APIs Skiff does not serve are listed too, so the
// table reads as the history does.
import type { Microversion } from './microversion.ts'

export const CHANGES = {
  keypairType: 2, // keypair `type`; create answers 201, delete 204
  extendedServerAttributes: 3, // OS-EXT-SRV-ATTR reservation_id, launch_index, hostname, kernel_id, ramdisk_id, root_device_name, user_data; volumes' delete_on_termination
  fixedIpReserved: 4,
  ip6FilterForAll: 5,
  remoteConsoles: 6, // POST /servers/{id}/remote-consoles
  flavorAccessChecksPublic: 7,
  mksConsole: 8,
  serverLocked: 9, // `locked` in the server view
  keypairsOfAnyUser: 10, // ?user_id= for admins; user_id in the keypair view
  serviceForcedDown: 11,
  vifNetId: 12,
  serverGroupOwner: 13, // project_id, user_id in server groups
  evacuateWithoutSharedStorage: 14,
  softAffinity: 15,
  hostStatus: 16, // host_status in server detail and show
  triggerCrashDump: 17,
  projectIdOptional: 18,
  serverDescription: 19,
  volumeOpsWhenShelved: 20,
  instanceActionsOfDeletedServers: 21,
  forceCompleteLiveMigration: 22,
  serverMigrations: 23,
  abortLiveMigration: 24,
  blockMigrationAuto: 25,
  serverTags: 26, // tags in the server view, /servers/{id}/tags, tags filters
  newStyleVersionHeader: 27, // `OpenStack-API-Version: compute X.Y`
  cpuInfoObject: 28,
  evacuateForce: 29,
  liveMigrateForce: 30,
  consoleAuthTokensAllTypes: 31,
  deviceTagsAtBoot: 32,
  hypervisorsPagination: 33,
  asyncLiveMigrationChecks: 34,
  keypairsPagination: 35, // limit and marker on GET /os-keypairs
  proxyApisRemoved: 36, // images, networks, volumes, snapshots, security groups, fping… proxies answer 404; no network quotas
  networksRequired: 37, // `networks` required at create: a list or 'auto' / 'none'; uuid format enforced
  invalidStatusFilterRefused: 38, // an unknown ?status= answers 400
  imageMetadataProxyRemoved: 39, // maxImageMeta leaves the limits
  usagePagination: 40,
  aggregateUuid: 41,
  deviceTagsRestored: 42,
  osHostsDeprecated: 43,
  networkActionsDeprecated: 44,
  createImageReturnsId: 45,
  requestIdHeader: 46, // X-OpenStack-Request-ID
  flavorInServer: 47, // the server's flavor embedded, not a link
  standardDiagnostics: 48,
  taggedAttach: 49,
  quotaClassServerGroups: 50,
  actionEventDetailsForAll: 51, // non-admins see instance action events (no traceback)
  tagsAtCreate: 52,
  serviceUuids: 53, // os-services and hypervisors: uuid ids
  rebuildKeyName: 54,
  flavorDescription: 55,
  migrateToHost: 56,
  personalityRemoved: 57, // no personality at create/rebuild; rebuild takes user_data; no maxPersonality limits
  instanceActionsPagination: 58, // limit, marker, changes-since; updated_at in actions
  migrationsPagination: 59,
  multiattach: 60,
  flavorExtraSpecsInView: 61,
  actionEventHost: 62, // host, hostId in instance action events
  trustedImageCertificates: 63,
  serverGroupPolicy: 64, // policy and rules replace policies and metadata
  abortQueuedLiveMigration: 65,
  changesBefore: 66,
  bdmVolumeType: 67,
  forceRemoved: 68,
  minimalDownCellViews: 69,
  deviceTagsInViews: 70,
  serverGroupsInServer: 71,
  resourceRequestPorts: 72,
  lockedReason: 73, // lock with a reason; locked_reason in the view; ?locked= filter
  createOnHost: 74, // host / hypervisor_hostname at create
  consistentServerViews: 75, // unknown query params 400; PUT and rebuild answer the full server; flavor swap 0
  powerUpdateEvent: 76,
  unshelveAvailabilityZone: 77,
  serverTopology: 78,
  deleteOnTermination: 79,
  migrationsUserProject: 80,
  imageCache: 81,
  acceleratorRequestBound: 82,
  moreFiltersForAll: 83, // non-admins may filter servers by more keys
  actionEventDetails: 84, // `details` in instance action events
  updateVolumeAttachment: 85,
  extraSpecsValidation: 86,
  rescueVolumeBacked: 87,
  hypervisorStatisticsRemoved: 88,
  volumeAttachmentIds: 89,
  serverHostname: 90, // hostname at create/update/rebuild; OS-EXT-SRV-ATTR:hostname for all
  unshelveToHost: 91,
  keypairImportOnly: 92, // no generated keypairs; names may hold @ and .
  rebuildVolumeBacked: 93,
} as const satisfies Record<string, number>

export type Change = keyof typeof CHANGES

/** True if the request's microversion has `change`. */
export const has = (v: Microversion, change: Change) => v.major > 2 || (v.major === 2 && v.minor >= CHANGES[change])

/**
 * The value that holds at `v`: `base` until the first change in `steps` that `v` has, then that
 * step's value. Steps go oldest first. For schemas and views that differ by version range.
 */
export function atVersion<T>(v: Microversion, base: T, steps: readonly (readonly [Change, T])[]): T {
  let value = base
  for (const [change, next] of steps) if (has(v, change)) value = next
  return value
}
