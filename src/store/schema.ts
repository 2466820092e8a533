// Row types of every table, as stored. Timestamps are ISO-8601 strings (UTC, ms), booleans are
// 0/1 integers and structured values JSON text: the same on SQLite and PostgreSQL.
import type { Generated, Kysely, Transaction } from 'kysely'

// Nova's vm_state and task_state, as stored (compute/states.ts derives the API status from them).
// They live here, below compute, so that rows are typed without an arrow up into compute/.
export type VmState =
  | 'active'
  | 'building'
  | 'paused'
  | 'suspended'
  | 'stopped'
  | 'rescued'
  | 'resized'
  | 'soft-delete'
  | 'deleted'
  | 'error'
  | 'shelved'
  | 'shelved_offloaded'

export type TaskState =
  | 'scheduling'
  | 'networking'
  | 'spawning'
  | 'rebooting'
  | 'reboot_pending'
  | 'reboot_started'
  | 'rebooting_hard'
  | 'reboot_pending_hard'
  | 'reboot_started_hard'
  | 'pausing'
  | 'unpausing'
  | 'powering-off'
  | 'powering-on'
  | 'rescuing'
  | 'unrescuing'
  | 'rebuilding'
  | 'rebuild_spawning'
  | 'deleting'
  | 'updating_password'
  | 'rebuild_block_device_mapping'
  | 'migrating'
  | 'resize_prep'
  | 'resize_migrating'
  | 'resize_migrated'
  | 'resize_finish'
  | 'resize_reverting'
  // suspend, resume, snapshot and backup, shelve (nova/compute/task_states.py)
  | 'suspending'
  | 'resuming'
  | 'image_snapshot'
  | 'image_snapshot_pending'
  | 'image_pending_upload'
  | 'image_uploading'
  | 'image_backup'
  | 'shelving'
  | 'shelving_image_pending_upload'
  | 'shelving_image_uploading'
  | 'shelving_offloading'
  | 'unshelving'
  | null

/**
 * Which hosts a query is about: one host, or every host whose lease an agent process holds (a
 * simulator runs thousands of hosts in one process: one statement for all of them).
 */
export type HostScope = { host: string } | { agentId: string }

export interface ProjectRow {
  id: string
  name: string
  domain_id: string
  description: string
  enabled: number
}

export interface UserRow {
  id: string
  name: string
  domain_id: string
  password_hash: string
  default_project_id: string | null
  enabled: number
}

export interface RoleRow {
  id: string
  name: string
}

export interface RoleAssignmentRow {
  user_id: string
  project_id: string
  role_id: string
}

export interface TokenRow {
  /** sha256 of the token: the token itself is never stored. */
  token_hash: string
  user_id: string
  project_id: string | null
  domain_id: string | null
  methods: string
  audit_id: string
  issued_at: string
  expires_at: string
  revoked: number
}

export interface ImageRow {
  id: string
  name: string | null
  status: string
  visibility: string
  owner: string | null
  protected: number
  os_hidden: number
  disk_format: string | null
  container_format: string | null
  size: number | null
  virtual_size: number | null
  checksum: string | null
  os_hash_algo: string | null
  os_hash_value: string | null
  min_disk: number
  min_ram: number
  tags: string
  properties: string
  created_at: string
  updated_at: string
}

export interface FlavorRow {
  id: string
  name: string
  ram: number
  vcpus: number
  disk: number
  ephemeral: number
  swap: number
  rxtx_factor: number
  is_public: number
  disabled: number
  description: string | null
  extra_specs: string
  created_at: string
  deleted: number
}

export interface KeypairRow {
  user_id: string
  name: string
  type: string
  public_key: string
  fingerprint: string
  created_at: string
}

export interface ServerRow {
  id: string
  name: string
  project_id: string
  user_id: string
  image_id: string | null
  flavor_id: string
  key_name: string | null
  vm_state: VmState
  task_state: TaskState
  power_state: number
  host: string | null
  metadata: string
  access_ipv4: string
  access_ipv6: string
  availability_zone: string
  config_drive: string
  locked: number
  locked_by: string | null
  locked_reason: string | null
  /** Microversion 2.19; null when unset (a server created below 2.19 has its name). */
  description: string | null
  /** The guest's hostname (OS-EXT-SRV-ATTR:hostname; settable from 2.90). */
  hostname: string
  /** JSON list of trusted image certificate ids (2.63), or null. */
  trusted_certs: string | null
  /** Its index among the servers of one create request. */
  launch_index: number
  launched_at: string | null
  terminated_at: string | null
  /** Groups the servers of one create request (`reservation_id` filter). */
  reservation_id: string
  created_at: string
  updated_at: string
  deleted_at: string | null
  /** 0 while the server exists; set on delete (soft delete, so changes-since can show deletions). */
  deleted: number
  /**
   * Bumped by the database (triggers, migration 0017) at every change of the row and of the rows
   * its views show (addresses, faults, tags, group, user data, instance actions): the key of the
   * API's memo of server views.
   */
  version: number
}

/** The servers table: the version starts at 0 and only the triggers change it. */
export interface ServersTable extends Omit<ServerRow, 'version'> {
  version: Generated<number>
}

export interface FixedIpRow {
  address: string
  server_id: string
  mac: string
  allocated_at: string
}

export interface InstanceActionRow {
  id: string
  server_id: string
  action: string
  request_id: string
  user_id: string
  project_id: string
  start_time: string
  updated_at: string
  message: string | null
}

export interface InstanceActionEventRow {
  id: string
  action_id: string
  event: string
  start_time: string
  finish_time: string | null
  result: string | null
  traceback: string | null
  host: string | null
  details: string | null
}

export interface InstanceFaultRow {
  id: string
  server_id: string
  code: number
  message: string
  details: string
  created_at: string
}

export interface ServerGroupRow {
  id: string
  name: string
  /** One policy (Nova < 2.64 shows it as a one-item `policies` list). */
  policy: string
  /** JSON text of the rules (2.64): {} or {"max_server_per_host": n}. */
  rules: string
  project_id: string
  user_id: string
  created_at: string
}

export interface ServerGroupMemberRow {
  group_id: string
  server_id: string
}

export interface TaskRow {
  id: string
  kind: string
  /** Tasks with the same subject run one at a time, in order (for compute: the server id). */
  subject_id: string
  host: string
  payload: string
  state: string
  attempts: number
  lease_until: string | null
  request_id: string
  created_at: string
  updated_at: string
}

export interface RescueRow {
  id: string
  server_id: string
  image_id: string
  request_id: string
  user_id: string
  /** Public keys authorized in the rescue system (JSON array of OpenSSH lines). */
  public_keys: string
  auto_unrescue_seconds: number | null
  requested_at: string
  rescued_at: string | null
  expires_at: string | null
  host_key_fingerprint: string | null
  ended_at: string | null
  /** Stable-device rescue (migration 0024): the rescue disk's device type and bus; null: the legacy layout. */
  rescue_device: string | null
  rescue_bus: string | null
  /** The checkpoint of the server's disk: null (none asked), pending, held, keeping, discarding, kept, discarded. */
  checkpoint: RescueCheckpointState | null
  /** When the checkpoint was taken (the rescue system was up on top of it). */
  checkpoint_at: string | null
}

export type RescueCheckpointState = 'pending' | 'held' | 'keeping' | 'discarding' | 'kept' | 'discarded'

/** Where the server's SSH is reached now, as the agent running it last saw (qemu driver). */
export interface ServerAccessRow {
  server_id: string
  ssh_host: string
  ssh_port: number
  /** The booted system's key: the rescue system's while rescued. */
  host_key_fingerprint: string | null
  updated_at: string
  /** Where the agent reaches the VM's serial port (qemu: `unix:<path>`); null: none (migration 0023). */
  serial_endpoint: string | null
}

/** A serial console URL's token, by its sha256 (Nova's console_auth_tokens; migration 0023). */
export interface ConsoleAuthTokenRow {
  token_hash: string
  server_id: string
  host: string
  console_type: string
  expires_at: string
}

/** A server's first-boot data besides its password (its config drive). */
export interface ServerBootDataRow {
  server_id: string
  /** The key pair's public key (OpenSSH line) as at create. */
  key_data: string | null
  /** As given at create: base64. */
  user_data: string | null
}

export interface IdempotencyKeyRow {
  key_hash: string
  project_id: string
  body_hash: string
  status: number
  response: string
  created_at: string
  expires_at: string
}

export interface HostRow {
  name: string
  started_at: string
  heartbeat_at: string
  driver: string
  /** What the host offers to servers (the scheduler's room); 0 for a host registered before capacities. */
  vcpus: number
  ram_mb: number
  disk_gb: number
  /** The agent holding the host (`<machine>:<pid>:<random>`), until `lease_until`; null when released. */
  agent_id: string | null
  lease_until: string | null
  /** os-services: an admin disabled the nova-compute service (no new servers are placed there). */
  service_disabled: number
  disabled_reason: string | null
  /** os-services force-down (2.11): shown down, and no new servers placed there. */
  forced_down: number
  /** Where other hosts reach it (its agent's --migration-address: Nova's host_ip); null: none of its own (simulated). */
  address: string | null
}

/** The hosts table: its administrative columns have defaults (an agent's upsert leaves them alone). */
export interface HostsTable extends Omit<HostRow, 'service_disabled' | 'forced_down'> {
  service_disabled: Generated<number>
  forced_down: Generated<number>
}

export type MigrationType = 'resize' | 'migration' | 'live-migration' | 'evacuation'

/** Nova's migration record (nova.objects.Migration): one move of a server. */
export interface MigrationRow {
  id: number
  uuid: string
  server_id: string
  project_id: string
  user_id: string
  migration_type: MigrationType
  /** Nova's words: pre-migrating, migrating, post-migrating, finished, confirming, confirmed, reverting, reverted, error, queued, preparing, running, completed, accepted, done, failed, cancelled. */
  status: string
  source_compute: string | null
  dest_compute: string | null
  old_flavor_id: string
  new_flavor_id: string
  /** Where a revert (or a failure) puts the server back: active or stopped. */
  old_vm_state: string
  /** Room this move holds on a host the server is not on (see migrations-migrations.ts). */
  alloc_host: string | null
  alloc_flavor_id: string | null
  request_id: string
  created_at: string
  updated_at: string
  /** A live migration under way: what an admin asked of it (the copying agent polls it); null: nothing. */
  requested: LiveMigrationRequest | null
  /** Nova's dest_host: the destination's address (its --migration-address), once it took the move on; null before, or without one. */
  dest_host: string | null
  /** A live migration's copy as it last reported it: JSON of LiveMigrationProgress; null: nothing reported. */
  progress: string | null
}

/** What an admin may ask of a live migration under way (DELETE .../migrations/{id}, force_complete). */
export type LiveMigrationRequest = 'abort' | 'force-complete'

export interface DeploymentRow {
  id: number
  /** A value sealed with the deployment's key at first start: a process whose key cannot open it is refused. */
  sealing_canary: string
  created_at: string
}

export interface SimulatorFaultRow {
  id: string
  seq: number
  operation: string
  server_id: string | null
  error: string | null
  delay_ms: number | null
  hang: number
  /** Uses left; null: forever. */
  remaining: number | null
  created_at: string
}

/** An agent's answer to a task the API waits for; answered_at null until then. */
export interface TaskReplyRow {
  task_id: string
  answered_at: string | null
  value: string | null
  error: string | null
  created_at: string
}

/** ~1 MiB of an image's data (the `database` image store), `seq` from 0. */
export interface ImageChunkRow {
  image_id: string
  seq: number
  data: Uint8Array
}

/** Nova's shelve keys of system_metadata: the shelved server's image, when and where it was shelved. */
export interface ServerShelfRow {
  server_id: string
  image_id: string
  shelved_at: string
  shelved_host: string
}

/** A project an image is shared with (Glance's image_members), and whether it took it. */
export interface ImageMemberRow {
  image_id: string
  member: string
  status: 'pending' | 'accepted' | 'rejected'
  created_at: string
  updated_at: string
}

export interface Database {
  projects: ProjectRow
  users: UserRow
  roles: RoleRow
  role_assignments: RoleAssignmentRow
  tokens: TokenRow
  images: ImageRow
  image_chunks: ImageChunkRow
  image_members: ImageMemberRow
  flavors: FlavorRow
  flavor_projects: { flavor_id: string; project_id: string }
  keypairs: KeypairRow
  servers: ServersTable
  fixed_ips: FixedIpRow
  instance_actions: InstanceActionRow
  instance_action_events: InstanceActionEventRow
  instance_faults: InstanceFaultRow
  tasks: TaskRow
  server_groups: ServerGroupRow
  server_group_members: ServerGroupMemberRow
  rescues: RescueRow
  server_shelves: ServerShelfRow
  idempotency_keys: IdempotencyKeyRow
  hosts: HostsTable
  /** What each host's servers and moves take: counters kept by migration 0019's triggers. */
  host_usage: { host: string; vcpus: number; ram_mb: number; disk_gb: number; allocations: number }
  /** Each project's (per user) servers and their cores and RAM: counters kept by migration 0019's triggers. */
  project_usage: { project_id: string; user_id: string; instances: number; cores: number; ram: number }
  server_access: ServerAccessRow
  console_auth_tokens: ConsoleAuthTokenRow
  server_boot_data: ServerBootDataRow
  server_tags: { server_id: string; tag: string }
  simulator_faults: SimulatorFaultRow
  simulator_faults_version: { id: number; version: number }
  task_replies: TaskReplyRow
  deployment: DeploymentRow
  action_rate_buckets: { scope: string; tokens: number; at_ms: number }
  migrations: MigrationRow
  quotas: { project_id: string; user_id: string; resource: string; hard_limit: number }
  quota_classes: { class_name: string; resource: string; hard_limit: number }
  aggregates: AggregateRow
  aggregate_hosts: { aggregate_id: number; host: string }
  aggregate_metadata: { aggregate_id: number; key: string; value: string }
  volumes: VolumeRow
  volume_snapshots: VolumeSnapshotRow
  volume_attachments: VolumeAttachmentRow
  volume_quotas: { project_id: string; resource: string; hard_limit: number }
}

// Cinder's volume and snapshot statuses, as stored (cinder/objects/fields.py VolumeStatus, SnapshotStatus).
export type VolumeStatus =
  | 'creating'
  | 'available'
  | 'reserved'
  | 'attaching'
  | 'detaching'
  | 'in-use'
  | 'deleting'
  | 'error'
  | 'error_deleting'
  | 'extending'
  | 'error_extending'
export type SnapshotStatus = 'creating' | 'available' | 'deleting' | 'error' | 'error_deleting'
/** An attachment's own state: Nova's block device mapping and Cinder's attachment in one row. */
export type AttachmentStatus = 'attaching' | 'attached' | 'detaching'

/** A Cinder volume. Deleted volumes are removed (the row goes once the agent deleted its data). */
export interface VolumeRow {
  id: string
  project_id: string
  user_id: string
  name: string | null
  description: string | null
  /** GiB. */
  size: number
  status: VolumeStatus
  availability_zone: string
  volume_type_id: string
  snapshot_id: string | null
  source_volid: string | null
  /** The image it was created from (imageRef); its properties are in image_metadata. */
  image_id: string | null
  /** JSON object: Cinder's volume_image_metadata, or null. */
  image_metadata: string | null
  bootable: number
  /** JSON object of strings. */
  metadata: string
  /** The agent host that serves the volume's data; null until one was chosen. */
  host: string | null
  created_at: string
  updated_at: string | null
}

export interface VolumeSnapshotRow {
  id: string
  project_id: string
  user_id: string
  volume_id: string
  name: string | null
  description: string | null
  size: number
  status: SnapshotStatus
  metadata: string
  created_at: string
  updated_at: string | null
  /** The host whose agent holds its data (its volume's when taken: it stays there when the volume moves); null before 0026. */
  host: string | null
}

/** A volume attached to a server (Nova's BDM: the attachment id and the BDM's uuid; Cinder's attachment). */
export interface VolumeAttachmentRow {
  id: string
  bdm_uuid: string
  volume_id: string
  server_id: string
  device: string
  tag: string | null
  delete_on_termination: number
  /** 0 for the root disk of a server booted from a volume; null for an attached data volume. */
  boot_index: number | null
  status: AttachmentStatus
  attached_at: string | null
  created_at: string
}

export interface AggregateRow {
  id: number
  uuid: string
  name: string
  created_at: string
  updated_at: string | null
  deleted_at: string | null
  deleted: number
}

/** A transaction, passed down so that several repositories write in one. */
export type Tx = Transaction<Database>
/** The database, or a transaction on it. */
export type Db = Kysely<Database> | Tx
/** The database itself (not a transaction): what opens transactions. */
export type DatabaseHandle = Kysely<Database>
