// Seventeenth migration: a version on each server row that every change its views show bumps,
// so that a view built once can be served again while the version is unchanged (the API's
// memo of server views, api/routes/compute/server-view-memo.ts). Triggers bump it, not the
// repositories: no write path can forget it, and a write by another process sharing the
// database bumps it as well. What the views show besides the row: its addresses, faults,
// tags, server group, user data, and the start of its latest instance action (whether the
// latest fault is about it). A flavor's record and a host's liveness are not covered: the
// memo keys on those itself.
//
// Also covering indexes, so that what a page of servers reads comes from an index alone: the
// servers' refs (ServersRepo's ServerRef, in list order) and their addresses.
import { PostgresAdapter, sql, type Kysely, type Migration } from 'kysely'

/** The tables whose rows belong to one server (column server_id) and change what its views show. */
export const SERVER_VIEW_TABLES = [
  'fixed_ips',
  'instance_faults',
  'server_tags',
  'server_group_members',
  'server_boot_data',
  'instance_actions',
] as const

/** Of instance_actions only the start times count (the latest one against the latest fault). */
const UPDATE_COLUMNS: Partial<Record<(typeof SERVER_VIEW_TABLES)[number], string>> = {
  instance_actions: 'server_id, start_time',
}

export const serverVersionMigration: Migration = {
  async up(db: Kysely<any>) {
    await db.schema
      .alterTable('servers')
      .addColumn('version', 'bigint', (c) => c.notNull().defaultTo(0))
      .execute()
    if (db.getExecutor().adapter instanceof PostgresAdapter) await postgresTriggers(db)
    else await sqliteTriggers(db)
    await db.schema
      .createIndex('servers_refs')
      .on('servers')
      .columns(['project_id', 'deleted', 'created_at', 'id', 'version', 'flavor_id', 'host'])
      .execute()
    await db.schema
      .createIndex('fixed_ips_server_covering')
      .on('fixed_ips')
      .columns(['server_id', 'allocated_at', 'address', 'mac'])
      .execute()
    await db.schema.dropIndex('fixed_ips_server').execute()
  },
}

async function sqliteTriggers(db: Kysely<any>) {
  // SQLite cannot change NEW in a BEFORE trigger: a second update, which the WHEN stops from
  // firing this trigger again (and which an update that bumps the version itself needs not).
  await sql
    .raw(
      `CREATE TRIGGER servers_version AFTER UPDATE ON servers FOR EACH ROW WHEN NEW.version = OLD.version
       BEGIN UPDATE servers SET version = OLD.version + 1 WHERE id = NEW.id; END`,
    )
    .execute(db)
  const bump = (row: 'NEW' | 'OLD') => `UPDATE servers SET version = version + 1 WHERE id = ${row}.server_id;`
  for (const t of SERVER_VIEW_TABLES) {
    const of = UPDATE_COLUMNS[t] ? ` OF ${UPDATE_COLUMNS[t]}` : ''
    await sql.raw(`CREATE TRIGGER ${t}_server_version_i AFTER INSERT ON ${t} FOR EACH ROW BEGIN ${bump('NEW')} END`).execute(db)
    await sql.raw(`CREATE TRIGGER ${t}_server_version_d AFTER DELETE ON ${t} FOR EACH ROW BEGIN ${bump('OLD')} END`).execute(db)
    await sql
      .raw(`CREATE TRIGGER ${t}_server_version_u AFTER UPDATE${of} ON ${t} FOR EACH ROW BEGIN ${bump('OLD')} ${bump('NEW')} END`)
      .execute(db)
  }
}

async function postgresTriggers(db: Kysely<any>) {
  await sql
    .raw(
      `CREATE OR REPLACE FUNCTION skiff_servers_version() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN NEW.version := OLD.version + 1; RETURN NEW; END $$`,
    )
    .execute(db)
  await sql.raw(`CREATE TRIGGER servers_version BEFORE UPDATE ON servers FOR EACH ROW EXECUTE FUNCTION skiff_servers_version()`).execute(db)
  await sql
    .raw(
      `CREATE OR REPLACE FUNCTION skiff_server_row_changed() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         IF TG_OP <> 'INSERT' THEN UPDATE servers SET version = version + 1 WHERE id = OLD.server_id; END IF;
         IF TG_OP <> 'DELETE' THEN UPDATE servers SET version = version + 1 WHERE id = NEW.server_id; END IF;
         RETURN NULL;
       END $$`,
    )
    .execute(db)
  for (const t of SERVER_VIEW_TABLES) {
    const of = UPDATE_COLUMNS[t] ? ` OF ${UPDATE_COLUMNS[t]}` : ''
    await sql
      .raw(
        `CREATE TRIGGER ${t}_server_version AFTER INSERT OR DELETE OR UPDATE${of} ON ${t} FOR EACH ROW EXECUTE FUNCTION skiff_server_row_changed()`,
      )
      .execute(db)
  }
}
