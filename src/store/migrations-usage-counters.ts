// Nineteenth migration: what servers take, kept as counters, so that a read costs one row, not
// a sum over every server (with a million servers each such sum took seconds to minutes):
//  - `host_usage`, one row per host: what the scheduler places against (as Nova's placement
//    keeps allocations). What counts is what it counted before: a server that is not deleted,
//    where it is (host), with its flavor; and a move's allocation (migrations.alloc_host /
//    alloc_flavor_id: the new flavor on the destination, the old one on the source until
//    confirmed) while its server is not deleted. `allocations` is the number of both.
//  - `project_usage`, one row per project and user: its servers that are not deleted, their
//    flavors' cores and RAM (the quotas' instances, cores, ram; a project's is the sum of its
//    users' rows).
// Kept by triggers, not by the repositories: every write path (create, delete, resize and its
// moves, shelve offload, evacuate, reset, another process on a shared PostgreSQL) changes them
// in its own transaction, and none can forget to.
import { PostgresAdapter, sql, type Kysely, type Migration } from 'kysely'

export const usageCountersMigration: Migration = {
  async up(db: Kysely<any>) {
    await db.schema
      .createTable('host_usage')
      .addColumn('host', 'text', (c) => c.primaryKey())
      .addColumn('vcpus', 'bigint', (c) => c.notNull().defaultTo(0))
      .addColumn('ram_mb', 'bigint', (c) => c.notNull().defaultTo(0))
      .addColumn('disk_gb', 'bigint', (c) => c.notNull().defaultTo(0))
      .addColumn('allocations', 'bigint', (c) => c.notNull().defaultTo(0))
      .execute()

    await db.schema
      .createTable('project_usage')
      .addColumn('project_id', 'text', (c) => c.notNull())
      .addColumn('user_id', 'text', (c) => c.notNull())
      .addColumn('instances', 'bigint', (c) => c.notNull().defaultTo(0))
      .addColumn('cores', 'bigint', (c) => c.notNull().defaultTo(0))
      .addColumn('ram', 'bigint', (c) => c.notNull().defaultTo(0))
      .addPrimaryKeyConstraint('project_usage_pk', ['project_id', 'user_id'])
      .execute()
    for (const statement of REBUILD_USAGE_COUNTERS) await sql.raw(statement).execute(db)
    if (db.getExecutor().adapter instanceof PostgresAdapter) await postgresTriggers(db)
    else await sqliteTriggers(db)
  },
}

/**
 * The usage counted from the rows themselves: (host, vcpus, ram_mb, disk_gb, allocations) per
 * host. The counters start from it, and the tests hold them to it.
 */
export const COUNTED_HOST_USAGE = `
    select a.host as host, sum(f.vcpus) as vcpus, sum(f.ram) as ram_mb, sum(f.disk) as disk_gb, count(*) as allocations
    from (
      select s.host as host, s.flavor_id as flavor_id from servers s
      where s.deleted = 0 and s.host is not null
      union all
      select m.alloc_host, m.alloc_flavor_id from migrations m join servers ms on ms.id = m.server_id
      where ms.deleted = 0 and m.alloc_host is not null and m.alloc_flavor_id is not null
    ) a join flavors f on f.id = a.flavor_id
    group by a.host`

/** The same for projects: (project_id, user_id, instances, cores, ram). */
export const COUNTED_PROJECT_USAGE = `
    select s.project_id as project_id, s.user_id as user_id, count(*) as instances, sum(f.vcpus) as cores, sum(f.ram) as ram
    from servers s join flavors f on f.id = s.flavor_id
    where s.deleted = 0
    group by s.project_id, s.user_id`

/**
 * The counters made again from the rows: at the migration, and after a bulk load that wrote
 * rows with the triggers off (bench/scale-out.ts: a million servers in one statement would
 * update one project's row a million times in one transaction).
 */
export const REBUILD_USAGE_COUNTERS = [
  'delete from host_usage',
  `insert into host_usage (host, vcpus, ram_mb, disk_gb, allocations) ${COUNTED_HOST_USAGE}`,
  'delete from project_usage',
  `insert into project_usage (project_id, user_id, instances, cores, ram) ${COUNTED_PROJECT_USAGE}`,
]

/** Add (1) or take out (-1) a server row's (OLD or NEW) share of its project's use, when it counts. */
function projectShare(sign: 1 | -1, row: string): string {
  const s = sign === 1 ? '' : '-'
  return `insert into project_usage (project_id, user_id, instances, cores, ram)
    select ${row}.project_id, ${row}.user_id, ${s}1, ${s}f.vcpus, ${s}f.ram from flavors f where f.id = ${row}.flavor_id and ${row}.deleted = 0
    on conflict (project_id, user_id) do update set instances = project_usage.instances + excluded.instances,
      cores = project_usage.cores + excluded.cores, ram = project_usage.ram + excluded.ram;`
}

// Add (sign 1) or take out (-1) the flavors selected by `from` ("from flavors f ... where ...",
// one host column named `host` per row). Grouped, as PostgreSQL's upsert may touch a row once.
function change(sign: 1 | -1, host: string, from: string): string {
  const s = sign === 1 ? '' : '-'
  return `insert into host_usage (host, vcpus, ram_mb, disk_gb, allocations)
    select ${host}, ${s}sum(f.vcpus), ${s}sum(f.ram), ${s}sum(f.disk), ${s}count(*) ${from} group by ${host}
    on conflict (host) do update set vcpus = host_usage.vcpus + excluded.vcpus,
      ram_mb = host_usage.ram_mb + excluded.ram_mb, disk_gb = host_usage.disk_gb + excluded.disk_gb,
      allocations = host_usage.allocations + excluded.allocations;`
}

/** A server row's own allocation (row: OLD or NEW), when it counts. */
const serverAlloc = (sign: 1 | -1, row: string) =>
  change(sign, `${row}.host`, `from flavors f where f.id = ${row}.flavor_id and ${row}.deleted = 0 and ${row}.host is not null`)

/** The allocations of a server's moves (server id `id`), when `when` holds, whatever its row says. */
const movesOf = (sign: 1 | -1, id: string, when = 'true') =>
  change(
    sign,
    'm.alloc_host',
    `from migrations m join flavors f on f.id = m.alloc_flavor_id where ${when} and m.server_id = ${id} and m.alloc_host is not null`,
  )

/** A migration row's allocation (row: OLD or NEW), when it counts (its server is not deleted). */
const moveAlloc = (sign: 1 | -1, row: string) =>
  change(
    sign,
    `${row}.alloc_host`,
    `from flavors f where f.id = ${row}.alloc_flavor_id and ${row}.alloc_host is not null
       and exists (select 1 from servers s where s.id = ${row}.server_id and s.deleted = 0)`,
  )

const SERVER_CHANGED = `OLD.host IS DISTINCT FROM NEW.host OR OLD.flavor_id IS DISTINCT FROM NEW.flavor_id OR OLD.deleted IS DISTINCT FROM NEW.deleted
  OR OLD.project_id IS DISTINCT FROM NEW.project_id OR OLD.user_id IS DISTINCT FROM NEW.user_id`
const MOVE_CHANGED = `OLD.alloc_host IS DISTINCT FROM NEW.alloc_host OR OLD.alloc_flavor_id IS DISTINCT FROM NEW.alloc_flavor_id OR OLD.server_id IS DISTINCT FROM NEW.server_id`

async function sqliteTriggers(db: Kysely<any>) {
  // SQLite spells IS DISTINCT FROM as IS NOT; a WHEN per trigger, a condition per statement.
  const sqlite = (s: string) => s.replaceAll('IS DISTINCT FROM', 'IS NOT')
  const triggers = [
    `CREATE TRIGGER servers_usage_i AFTER INSERT ON servers FOR EACH ROW BEGIN ${serverAlloc(1, 'NEW')} ${projectShare(1, 'NEW')} END`,
    `CREATE TRIGGER servers_usage_u AFTER UPDATE OF host, flavor_id, deleted, project_id, user_id ON servers FOR EACH ROW
       WHEN ${sqlite(SERVER_CHANGED)}
       BEGIN ${serverAlloc(-1, 'OLD')} ${serverAlloc(1, 'NEW')} ${projectShare(-1, 'OLD')} ${projectShare(1, 'NEW')}
         ${movesOf(-1, 'OLD.id', 'OLD.deleted = 0 and NEW.deleted <> 0')}
         ${movesOf(1, 'NEW.id', 'OLD.deleted <> 0 and NEW.deleted = 0')} END`,
    `CREATE TRIGGER servers_usage_d AFTER DELETE ON servers FOR EACH ROW WHEN OLD.deleted = 0
       BEGIN ${serverAlloc(-1, 'OLD')} ${projectShare(-1, 'OLD')} ${movesOf(-1, 'OLD.id')} END`,
    `CREATE TRIGGER migrations_usage_i AFTER INSERT ON migrations FOR EACH ROW BEGIN ${moveAlloc(1, 'NEW')} END`,
    `CREATE TRIGGER migrations_usage_u AFTER UPDATE OF alloc_host, alloc_flavor_id, server_id ON migrations FOR EACH ROW
       WHEN ${sqlite(MOVE_CHANGED)} BEGIN ${moveAlloc(-1, 'OLD')} ${moveAlloc(1, 'NEW')} END`,
    `CREATE TRIGGER migrations_usage_d AFTER DELETE ON migrations FOR EACH ROW BEGIN ${moveAlloc(-1, 'OLD')} END`,
  ]
  for (const t of triggers) await sql.raw(t).execute(db)
}

async function postgresTriggers(db: Kysely<any>) {
  await sql
    .raw(
      `CREATE OR REPLACE FUNCTION skiff_servers_usage() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         IF TG_OP <> 'INSERT' THEN
           ${serverAlloc(-1, 'OLD')}
           ${projectShare(-1, 'OLD')}
           IF OLD.deleted = 0 AND (TG_OP = 'DELETE' OR NEW.deleted <> 0) THEN ${movesOf(-1, 'OLD.id')} END IF;
         END IF;
         IF TG_OP <> 'DELETE' THEN
           ${serverAlloc(1, 'NEW')}
           ${projectShare(1, 'NEW')}
           IF TG_OP = 'UPDATE' AND OLD.deleted <> 0 AND NEW.deleted = 0 THEN ${movesOf(1, 'NEW.id')} END IF;
         END IF;
         RETURN NULL;
       END $$`,
    )
    .execute(db)
  await sql
    .raw(
      `CREATE OR REPLACE FUNCTION skiff_migrations_usage() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         IF TG_OP <> 'INSERT' THEN ${moveAlloc(-1, 'OLD')} END IF;
         IF TG_OP <> 'DELETE' THEN ${moveAlloc(1, 'NEW')} END IF;
         RETURN NULL;
       END $$`,
    )
    .execute(db)
  const triggers = [
    `CREATE TRIGGER servers_usage_i AFTER INSERT ON servers FOR EACH ROW EXECUTE FUNCTION skiff_servers_usage()`,
    `CREATE TRIGGER servers_usage_u AFTER UPDATE OF host, flavor_id, deleted, project_id, user_id ON servers FOR EACH ROW
       WHEN (${SERVER_CHANGED}) EXECUTE FUNCTION skiff_servers_usage()`,
    `CREATE TRIGGER servers_usage_d AFTER DELETE ON servers FOR EACH ROW EXECUTE FUNCTION skiff_servers_usage()`,
    `CREATE TRIGGER migrations_usage_i AFTER INSERT ON migrations FOR EACH ROW EXECUTE FUNCTION skiff_migrations_usage()`,
    `CREATE TRIGGER migrations_usage_u AFTER UPDATE OF alloc_host, alloc_flavor_id, server_id ON migrations FOR EACH ROW
       WHEN (${MOVE_CHANGED}) EXECUTE FUNCTION skiff_migrations_usage()`,
    `CREATE TRIGGER migrations_usage_d AFTER DELETE ON migrations FOR EACH ROW EXECUTE FUNCTION skiff_migrations_usage()`,
  ]
  for (const t of triggers) await sql.raw(t).execute(db)
}
