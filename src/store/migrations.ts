// Migrations, listed in code (kysely's Migrator). One schema for SQLite and PostgreSQL:
// only portable column types (text, integer, bigint, double precision).
import { quotasAggregatesMigration } from './migrations-quotas-aggregates.ts'
import type { Kysely, Migration, MigrationProvider } from 'kysely'
import { agentsOwnDriversMigration } from './migrations-agents.ts'
import { dropUnusedTablesMigration } from './migrations-drop-unused.ts'
import { createComputeExtraTables } from './migrations-compute.ts'
import { hostCapacityMigration } from './migrations-hosts.ts'
import { imageChunksMigration } from './migrations-image-chunks.ts'
import { hostLeasesMigration } from './migrations-host-leases.ts'
import { deploymentMigration } from './migrations-deployment.ts'
import { actionRateMigration } from './migrations-action-rate.ts'
import { rescueMigration } from './migrations-rescue.ts'
import { serverAccessMigration } from './migrations-access.ts'
import { consoleMigration } from './migrations-console.ts'
import { serverBootDataMigration } from './migrations-boot-data.ts'
import { computeMicroversionsMigration } from './migrations-compute-microversions.ts'
import { serverMicroversionFieldsMigration } from './migrations-server-fields.ts'
import { migrationsMigration } from './migrations-migrations.ts'
import { serverVersionMigration } from './migrations-server-version.ts'
import { shelveMigration } from './migrations-shelve.ts'
import { usageCountersMigration } from './migrations-usage-counters.ts'
import { flavorAccessMigration } from './migrations-flavor-access.ts'
import { volumeAttachmentsMigration, volumeSnapshotHostMigration, volumesMigration } from './migrations-volumes.ts'
import { rescueCheckpointsMigration } from './migrations-rescue-checkpoints.ts'
import { imageMembersMigration } from './migrations-image-members.ts'
import { migrationRequestsMigration } from './migrations-migration-requests.ts'
import { hostAddressMigration } from './migrations-host-address.ts'
import { migrationProgressMigration } from './migrations-migration-progress.ts'

const initial: Migration = {
  async up(db: Kysely<any>) {
    // Never used; dropped by 0007.
    await db.schema
      .createTable('settings')
      .addColumn('key', 'text', (c) => c.primaryKey())
      .addColumn('value', 'text', (c) => c.notNull())
      .execute()

    await db.schema
      .createTable('projects')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('domain_id', 'text', (c) => c.notNull())
      .addColumn('description', 'text', (c) => c.notNull().defaultTo(''))
      .addColumn('enabled', 'integer', (c) => c.notNull().defaultTo(1))
      .addUniqueConstraint('projects_domain_name', ['domain_id', 'name'])
      .execute()

    await db.schema
      .createTable('users')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('domain_id', 'text', (c) => c.notNull())
      .addColumn('password_hash', 'text', (c) => c.notNull())
      .addColumn('default_project_id', 'text')
      .addColumn('enabled', 'integer', (c) => c.notNull().defaultTo(1))
      .addUniqueConstraint('users_domain_name', ['domain_id', 'name'])
      .execute()

    await db.schema
      .createTable('roles')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('name', 'text', (c) => c.notNull().unique())
      .execute()

    await db.schema
      .createTable('role_assignments')
      .addColumn('user_id', 'text', (c) => c.notNull())
      .addColumn('project_id', 'text', (c) => c.notNull())
      .addColumn('role_id', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint('role_assignments_pk', ['user_id', 'project_id', 'role_id'])
      .execute()

    await db.schema
      .createTable('tokens')
      .addColumn('token_hash', 'text', (c) => c.primaryKey())
      .addColumn('user_id', 'text', (c) => c.notNull())
      .addColumn('project_id', 'text')
      .addColumn('domain_id', 'text')
      .addColumn('methods', 'text', (c) => c.notNull())
      .addColumn('audit_id', 'text', (c) => c.notNull())
      .addColumn('issued_at', 'text', (c) => c.notNull())
      .addColumn('expires_at', 'text', (c) => c.notNull())
      .addColumn('revoked', 'integer', (c) => c.notNull().defaultTo(0))
      .execute()
    await db.schema.createIndex('tokens_expires').on('tokens').column('expires_at').execute()

    await db.schema
      .createTable('images')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('name', 'text')
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('visibility', 'text', (c) => c.notNull())
      .addColumn('owner', 'text')
      .addColumn('protected', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('os_hidden', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('disk_format', 'text')
      .addColumn('container_format', 'text')
      .addColumn('size', 'bigint')
      .addColumn('virtual_size', 'bigint')
      .addColumn('checksum', 'text')
      .addColumn('os_hash_algo', 'text')
      .addColumn('os_hash_value', 'text')
      .addColumn('min_disk', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('min_ram', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('tags', 'text', (c) => c.notNull().defaultTo('[]'))
      .addColumn('properties', 'text', (c) => c.notNull().defaultTo('{}'))
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .execute()

    await db.schema
      .createTable('flavors')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('ram', 'integer', (c) => c.notNull())
      .addColumn('vcpus', 'integer', (c) => c.notNull())
      .addColumn('disk', 'integer', (c) => c.notNull())
      .addColumn('ephemeral', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('swap', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('rxtx_factor', 'double precision', (c) => c.notNull().defaultTo(1))
      .addColumn('is_public', 'integer', (c) => c.notNull().defaultTo(1))
      .addColumn('disabled', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('description', 'text')
      .addColumn('extra_specs', 'text', (c) => c.notNull().defaultTo('{}'))
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('deleted', 'integer', (c) => c.notNull().defaultTo(0))
      .execute()

    await db.schema
      .createTable('keypairs')
      .addColumn('user_id', 'text', (c) => c.notNull())
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('type', 'text', (c) => c.notNull())
      .addColumn('public_key', 'text', (c) => c.notNull())
      .addColumn('fingerprint', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint('keypairs_pk', ['user_id', 'name'])
      .execute()

    await db.schema
      .createTable('servers')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('project_id', 'text', (c) => c.notNull())
      .addColumn('user_id', 'text', (c) => c.notNull())
      .addColumn('image_id', 'text')
      .addColumn('flavor_id', 'text', (c) => c.notNull())
      .addColumn('key_name', 'text')
      .addColumn('vm_state', 'text', (c) => c.notNull())
      .addColumn('task_state', 'text')
      .addColumn('power_state', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('host', 'text')
      .addColumn('metadata', 'text', (c) => c.notNull().defaultTo('{}'))
      .addColumn('access_ipv4', 'text', (c) => c.notNull().defaultTo(''))
      .addColumn('access_ipv6', 'text', (c) => c.notNull().defaultTo(''))
      .addColumn('availability_zone', 'text', (c) => c.notNull().defaultTo('nova'))
      .addColumn('config_drive', 'text', (c) => c.notNull().defaultTo(''))
      .addColumn('locked', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('locked_by', 'text')
      .addColumn('locked_reason', 'text')
      .addColumn('launched_at', 'text')
      .addColumn('terminated_at', 'text')
      .addColumn('reservation_id', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .addColumn('deleted_at', 'text')
      .addColumn('deleted', 'integer', (c) => c.notNull().defaultTo(0))
      .execute()
    // The list order is created_at desc, id desc within a project (Nova's default sort).
    await db.schema.createIndex('servers_project_created').on('servers').columns(['project_id', 'created_at', 'id']).execute()
    await db.schema.createIndex('servers_updated').on('servers').column('updated_at').execute()

    await db.schema
      .createTable('fixed_ips')
      .addColumn('address', 'text', (c) => c.primaryKey())
      .addColumn('server_id', 'text', (c) => c.notNull())
      .addColumn('mac', 'text', (c) => c.notNull())
      .addColumn('allocated_at', 'text', (c) => c.notNull())
      .execute()
    await db.schema.createIndex('fixed_ips_server').on('fixed_ips').column('server_id').execute()

    await db.schema
      .createTable('instance_actions')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('server_id', 'text', (c) => c.notNull())
      .addColumn('action', 'text', (c) => c.notNull())
      .addColumn('request_id', 'text', (c) => c.notNull())
      .addColumn('user_id', 'text', (c) => c.notNull())
      .addColumn('project_id', 'text', (c) => c.notNull())
      .addColumn('start_time', 'text', (c) => c.notNull())
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .addColumn('message', 'text')
      .execute()
    await db.schema.createIndex('instance_actions_server').on('instance_actions').columns(['server_id', 'start_time']).execute()

    await db.schema
      .createTable('instance_action_events')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('action_id', 'text', (c) => c.notNull())
      .addColumn('event', 'text', (c) => c.notNull())
      .addColumn('start_time', 'text', (c) => c.notNull())
      .addColumn('finish_time', 'text')
      .addColumn('result', 'text')
      .addColumn('traceback', 'text')
      .addColumn('host', 'text')
      .addColumn('details', 'text')
      .execute()
    await db.schema.createIndex('instance_action_events_action').on('instance_action_events').column('action_id').execute()

    await db.schema
      .createTable('instance_faults')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('server_id', 'text', (c) => c.notNull())
      .addColumn('code', 'integer', (c) => c.notNull())
      .addColumn('message', 'text', (c) => c.notNull())
      .addColumn('details', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .execute()
    await db.schema.createIndex('instance_faults_server').on('instance_faults').columns(['server_id', 'created_at']).execute()

    await db.schema
      .createTable('tasks')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('kind', 'text', (c) => c.notNull())
      .addColumn('subject_id', 'text', (c) => c.notNull())
      .addColumn('host', 'text', (c) => c.notNull())
      .addColumn('payload', 'text', (c) => c.notNull())
      .addColumn('state', 'text', (c) => c.notNull())
      .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('lease_until', 'text')
      .addColumn('request_id', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .execute()
    await db.schema.createIndex('tasks_claim').on('tasks').columns(['host', 'state', 'created_at']).execute()

    await createComputeExtraTables(db)
  },
}

export const migrationProvider: MigrationProvider = {
  async getMigrations() {
    return {
      '0001_initial': initial,
      '0002_rescue': rescueMigration,
      '0003_host_capacity': hostCapacityMigration,
      '0004_server_access': serverAccessMigration,
      '0005_server_boot_data': serverBootDataMigration,
      '0006_agents_own_drivers': agentsOwnDriversMigration,
      '0007_drop_unused_tables': dropUnusedTablesMigration,
      '0008_image_chunks': imageChunksMigration,
      '0009_host_leases': hostLeasesMigration,
      '0010_deployment': deploymentMigration,
      '0011_action_rate': actionRateMigration,
      '0012_compute_microversions_beside_servers': computeMicroversionsMigration,
      '0013_server_microversion_fields': serverMicroversionFieldsMigration,
      '0014_quotas_aggregates': quotasAggregatesMigration,
      '0015_server_shelves': shelveMigration,
      '0016_migrations': migrationsMigration,
      '0017_server_version': serverVersionMigration,
      '0018_flavor_access': flavorAccessMigration,
      '0019_usage_counters': usageCountersMigration,
      '0020_volumes': volumesMigration,
      '0021_volume_attachments': volumeAttachmentsMigration,
      '0023_console': consoleMigration,
      '0024_rescue_checkpoints': rescueCheckpointsMigration,
      '0025_image_members': imageMembersMigration,
      '0026_volume_snapshot_host': volumeSnapshotHostMigration,
      '0030_migration_requests': migrationRequestsMigration,
      '0031_host_address': hostAddressMigration,
      '0032_migration_progress': migrationProgressMigration,
    }
  },
}
