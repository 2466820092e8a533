// GET /os-migrations (admin), and a server's live migrations: GET /servers/{id}/migrations[/{id}],
// POST .../{id}/action {"force_complete": null}, DELETE .../{id} (abort). Per microversion as
// nova/api/openstack/compute/{migrations,server_migrations}.py: migration_type and links of live
// migrations under way from 2.23, uuid, paging and changes-since from 2.59, changes-before from
// 2.66, user_id/project_id (and their filters) from 2.80.
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { isoMicrosNoZone } from '../../../clock.ts'
import type { Migration } from '../../../compute/migration-service.ts'
import type { LiveMigrationProgress } from '../../../drivers/driver.ts'
import { BadRequest, NotFound } from '../../../errors.ts'
import { has } from '../../microversion-changes.ts'
import type { Microversion } from '../../microversion.ts'
import type { ComputeRouteDeps } from './index.ts'
import { collectionLinks } from './collection-links.ts'
import { COMMON, NON_NEGATIVE_INTEGER, validateQuery, type Query } from './query-schemas.ts'

const LIVE_IN_PROGRESS = ['queued', 'preparing', 'running', 'post-migrating']
const single = (schema: object) => ({ type: 'array', items: schema, maxItems: 1 })
const DATE_TIME = single({ type: 'string', format: 'date-time' })
const utc = (s: string) => new Date(/[zZ]|[+-]\d\d:?\d\d$/.test(s) ? s : `${s}Z`).toISOString()
/**
 * Nova's dest_host: the destination's address (its live_migration_inbound_addr, which defaults to
 * my_ip), recorded when the destination took the move on: its --migration-address; where the
 * destination has none of its own (the simulated driver) or has not taken it on yet, its name.
 */
const destHost = (m: Migration) => m.dest_host ?? m.dest_compute
/** Nova's flavor ids in migrations are the flavors' integer ids. */
const flavorNumber = (id: string) => (/^\d+$/.test(id) ? Number(id) : id)

function querySchema(v: Microversion): object {
  const properties: Record<string, object> = {
    hidden: COMMON,
    host: COMMON,
    instance_uuid: COMMON,
    source_compute: COMMON,
    status: COMMON,
    migration_type: COMMON,
  }
  if (!has(v, 'migrationsPagination')) return { type: 'object', properties, additionalProperties: true }
  Object.assign(properties, { limit: single(NON_NEGATIVE_INTEGER), marker: single({ type: 'string' }), 'changes-since': DATE_TIME })
  if (has(v, 'changesBefore')) properties['changes-before'] = DATE_TIME
  if (has(v, 'migrationsUserProject'))
    Object.assign(properties, { user_id: single({ type: 'string' }), project_id: single({ type: 'string' }) })
  return { type: 'object', properties, additionalProperties: false }
}

function migrationView(m: Migration, v: Microversion, base: string): Record<string, unknown> {
  const view: Record<string, unknown> = {
    created_at: isoMicrosNoZone(m.created_at),
    dest_compute: m.dest_compute,
    dest_host: destHost(m),
    dest_node: m.dest_compute,
    id: m.id,
    instance_uuid: m.server_id,
    new_instance_type_id: flavorNumber(m.new_flavor_id),
    old_instance_type_id: flavorNumber(m.old_flavor_id),
    source_compute: m.source_compute,
    source_node: m.source_compute,
    status: m.status,
    updated_at: isoMicrosNoZone(m.updated_at),
  }
  if (has(v, 'serverMigrations')) {
    view.migration_type = m.migration_type
    if (m.migration_type === 'live-migration' && LIVE_IN_PROGRESS.includes(m.status)) {
      const href = `servers/${m.server_id}/migrations/${m.id}`
      view.links = [
        { rel: 'self', href: `${base}/v2.1/${href}` },
        { rel: 'bookmark', href: `${base}/${href}` },
      ]
    }
  }
  if (has(v, 'migrationsPagination')) view.uuid = m.uuid
  if (has(v, 'migrationsUserProject')) {
    view.user_id = m.user_id
    view.project_id = m.project_id
  }
  return view
}

function serverMigrationView(m: Migration, v: Microversion): Record<string, unknown> {
  const progress = m.progress ? (JSON.parse(m.progress) as Partial<LiveMigrationProgress>) : null
  const view: Record<string, unknown> = {
    created_at: isoMicrosNoZone(m.created_at),
    dest_compute: m.dest_compute,
    dest_host: destHost(m),
    dest_node: m.dest_compute,
    // The copy's progress as the source's agent last saved it (QEMU's query-migrate and the disk
    // mirror's job); null until it saved any, as Nova's before its monitor's first save.
    disk_processed_bytes: progress?.disk_processed ?? null,
    disk_remaining_bytes: progress?.disk_remaining ?? null,
    disk_total_bytes: progress?.disk_total ?? null,
    id: m.id,
    memory_processed_bytes: progress?.memory_processed ?? null,
    memory_remaining_bytes: progress?.memory_remaining ?? null,
    memory_total_bytes: progress?.memory_total ?? null,
    server_uuid: m.server_id,
    source_compute: m.source_compute,
    source_node: m.source_compute,
    status: m.status,
    updated_at: isoMicrosNoZone(m.updated_at),
  }
  if (has(v, 'migrationsPagination')) view.uuid = m.uuid
  if (has(v, 'migrationsUserProject')) {
    view.user_id = m.user_id
    view.project_id = m.project_id
  }
  return view
}

/** Nova's route requirement for a migration id: an integer, else 404 ("not found"). */
function migrationId(req: FastifyRequest<{ Params: { id: string; migrationId: string } }>): number {
  if (!/^\d+$/.test(req.params.migrationId))
    throw new NotFound(`Migration ${req.params.migrationId} not found for instance ${req.params.id}`)
  return Number(req.params.migrationId)
}

export function migrationRoutes(app: FastifyInstance, deps: ComputeRouteDeps) {
  const { moves } = deps
  const base = deps.computeUrl

  app.get<{ Querystring: Query }>('/v2.1/os-migrations', async (req) => {
    const v = req.microversion
    const q = validateQuery(querySchema(v), req.query)
    const last = (name: string) => q[name]?.at(-1)
    const paged = has(v, 'migrationsPagination')
    const since = paged ? last('changes-since') : undefined
    const before = has(v, 'changesBefore') ? last('changes-before') : undefined
    if (since !== undefined && before !== undefined && Date.parse(utc(before)) < Date.parse(utc(since))) {
      throw new BadRequest('The value of changes-since must be less than or equal to changes-before.')
    }
    let markerId: number | undefined
    const marker = paged ? last('marker') : undefined
    if (marker !== undefined) {
      markerId = await moves.markerId(marker)
      if (markerId === undefined) throw new BadRequest(`Marker ${marker} could not be found.`)
    }
    const limitRaw = paged ? last('limit') : undefined
    const type = last('migration_type')
    const rows = await moves.list(req.auth, {
      serverId: last('instance_uuid'),
      status: last('status'),
      sourceCompute: last('source_compute'),
      host: last('host'),
      migrationType:
        type === 'live-migration' || type === 'resize' || type === 'migration' || type === 'evacuation'
          ? type
          : type
            ? ('none' as never)
            : undefined,
      projectId: has(v, 'migrationsUserProject') ? last('project_id') : undefined,
      userId: has(v, 'migrationsUserProject') ? last('user_id') : undefined,
      changesSince: since === undefined ? undefined : utc(since),
      changesBefore: before === undefined ? undefined : utc(before),
      limit: paged ? Math.min(limitRaw === undefined ? deps.maxLimit : Number(limitRaw), deps.maxLimit) : undefined,
      markerId,
    })
    const body: Record<string, unknown> = { migrations: rows.map((m) => migrationView(m, v, base)) }
    if (paged) {
      const links = collectionLinks(req, base, 'os-migrations', rows.length, rows.at(-1)?.uuid, deps.maxLimit)
      if (links.length) body.migrations_links = links
    }
    return body
  })

  app.get<{ Params: { id: string } }>('/v2.1/servers/:id/migrations', async (req) => {
    const rows = await moves.ofServer(req.auth, req.params.id)
    return { migrations: rows.map((m) => serverMigrationView(m, req.microversion)) }
  })

  app.get<{ Params: { id: string; migrationId: string } }>('/v2.1/servers/:id/migrations/:migrationId', async (req) => {
    const m = await moves.showOfServer(req.auth, req.params.id, migrationId(req))
    return { migration: serverMigrationView(m, req.microversion) }
  })

  app.post<{ Params: { id: string; migrationId: string }; Body: unknown }>(
    '/v2.1/servers/:id/migrations/:migrationId/action',
    async (req, reply) => {
      const body = req.body
      if (
        body === null ||
        typeof body !== 'object' ||
        Array.isArray(body) ||
        !('force_complete' in body) ||
        Object.keys(body).length !== 1
      ) {
        throw new BadRequest("Invalid input for field/attribute force_complete. Value: None. 'force_complete' is a required property")
      }
      if ((body as { force_complete: unknown }).force_complete !== null) {
        throw new BadRequest(
          `Invalid input for field/attribute force_complete. Value: ${JSON.stringify((body as { force_complete: unknown }).force_complete)}. None is not of type 'null'`,
        )
      }
      await moves.forceComplete(req.auth, req.params.id, migrationId(req), req.id)
      return reply.code(202).type('application/json').send()
    },
  )

  app.delete<{ Params: { id: string; migrationId: string } }>('/v2.1/servers/:id/migrations/:migrationId', async (req, reply) => {
    await moves.abort(req.auth, req.params.id, migrationId(req), has(req.microversion, 'abortQueuedLiveMigration'), req.id)
    return reply.code(202).type('application/json').send()
  })
}
