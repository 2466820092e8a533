// /servers: create, list, detail, show, update, delete — at every microversion, the request
// schema and the view chosen by the microversion table (microversion-changes.ts).
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { BadRequest } from '../../../errors.ts'
import type { ExtrasWanted, FixedIp, LatestFault, Server, ServerRef } from '../../../compute/server.ts'
import type { ListQuery } from '../../../compute/server-service.ts'
import type { AuthContext } from '../../../identity/identity-service.ts'
import { FORMATS } from '../../formats.ts'
import type { Microversion } from '../../microversion.ts'
import { atVersion, has } from '../../microversion-changes.ts'
import { REGEX_COLUMNS } from '../../../compute/server-list.ts'
import { COMMON, multi, PAGINATION, validateQuery } from './query-schemas.ts'
import type { ComputeRouteDeps } from './index.ts'
import { createServerSchema, updateServerSchema, validateBody, type CreateServerRequest, type UpdateServerRequest } from './schemas.ts'
import { ServerViewMemo } from './server-view-memo.ts'
import { extrasWanted, serverDetail, serverLinks, serverSummary } from './views.ts'

type Query = Record<string, string | string[] | undefined>
/** Reads the servers a view must be built for (not in the memo): the row, its addresses, its latest fault. */
type Loader = (missing: ServerRef[]) => Promise<{ server: Server; ips: FixedIp[]; fault?: LatestFault | undefined }[]>

const NO_EXTRAS: ExtrasWanted = { flavor: false, tags: false, groups: false, hostStatus: false, userData: false, volumes: false }
/** What fastify sends for an object. */
export const JSON_TYPE = 'application/json; charset=utf-8'
const OPEN_SERVERS = Buffer.from('{"servers":[')
const CLOSE_SERVERS = Buffer.from(']}')
const COMMA = Buffer.from(',')
const EMPTY = Buffer.alloc(0)
const OPEN_SERVER = Buffer.from('{"server":')
const CLOSE_SERVER = Buffer.from('}')

export const PRIVATE_NETWORK_ID = '4e8e5957-649f-477b-9e5b-f1f75b21c03c'

const one = (v: string | string[] | undefined) => (Array.isArray(v) ? v[v.length - 1] : v)
const many = (v: string | string[] | undefined) => (v === undefined ? undefined : Array.isArray(v) ? v : [v])
const truthy = (v: unknown) => v === true || (typeof v === 'string' && ['true', '1', 'yes', 'on', 't', 'y'].includes(v.toLowerCase()))
const csv = (v: string | string[] | undefined) => (v === undefined ? undefined : one(v)!.split(','))

/** Nova's limit: a non-negative integer, capped at max_limit. */
export function parseLimit(raw: string | undefined, maxLimit: number): number | undefined {
  if (raw === undefined) return undefined
  if (!/^-?\d+$/.test(raw)) throw new BadRequest('limit param must be an integer')
  const n = Number(raw)
  if (n < 0) throw new BadRequest('limit param must be positive')
  return Math.min(n, maxLimit)
}

// The list's query schemas (Nova's query_params_v21 … v275, schemas/servers.py): each parameter a
// list of values, most of them any text, the regular-expression filters a pattern that compiles;
// unknown parameters pass below 2.75 and are refused from 2.75 (consistentServerViews).
const REGEX = multi({ type: 'string', format: 'regex' })
const COMMON_PARAMS = [
  'user_id', 'project_id', 'tenant_id', 'launch_index', 'image_ref', 'image', 'vm_state', 'task_state', 'host', 'uuid',
  'sort_dir', 'all_tenants', 'soft_deleted', 'deleted', 'status',
] // prettier-ignore
const REGEX_PARAMS = [
  'kernel_id', 'ramdisk_id', 'hostname', 'key_name', 'power_state', 'node', 'flavor', 'reservation_id', 'launched_at',
  'terminated_at', 'availability_zone', 'name', 'display_name', 'description', 'display_description', 'locked_by',
  'root_device_name', 'config_drive', 'access_ip_v4', 'access_ip_v6', 'auto_disk_config', 'progress', 'ip', 'ip6',
  'created_at',
] // prettier-ignore
const JOINED_TABLES = new Set([
  'block_device_mapping',
  'services',
  'metadata',
  'system_metadata',
  'info_cache',
  'security_groups',
  'pci_devices',
])
// Sort keys Nova accepted before it validated them and now ignores (SERVER_LIST_IGNORE_SORT_KEY);
// `locked` sorts from 2.73; from 2.75 the ignored ones are refused.
const IGNORED_SORT_KEYS = [
  'architecture', 'cell_name', 'cleaned', 'default_ephemeral_device', 'default_swap_device', 'deleted', 'deleted_at',
  'disable_terminate', 'ephemeral_gb', 'ephemeral_key_uuid', 'id', 'key_data', 'launched_on', 'locked', 'memory_mb',
  'os_type', 'reservation_id', 'root_gb', 'shutdown_terminate', 'user_data', 'vcpus', 'vm_mode',
] // prettier-ignore
const IGNORED_SORT_KEYS_V273 = IGNORED_SORT_KEYS.filter((k) => k !== 'locked')
const SORT_KEYS = [
  'access_ip_v4', 'access_ip_v6', 'auto_disk_config', 'availability_zone', 'config_drive', 'created_at',
  'display_description', 'display_name', 'host', 'hostname', 'image_ref', 'instance_type_id', 'kernel_id', 'key_name',
  'launch_index', 'launched_at', 'locked_by', 'node', 'power_state', 'progress', 'project_id', 'ramdisk_id',
  'root_device_name', 'task_state', 'terminated_at', 'updated_at', 'user_id', 'uuid', 'vm_state', ...IGNORED_SORT_KEYS,
] // prettier-ignore
const SORT_KEYS_V275 = SORT_KEYS.filter((k) => !IGNORED_SORT_KEYS_V273.includes(k))
const DATE_TIMES = multi({ type: 'string', format: 'date-time' })

const listSchemas = new Map<string, object>()
/** GET /servers' query schema at `v`. */
function listQuerySchema(v: Microversion): object {
  const stage = atVersion(v, 'v21', [
    ['serverTags', 'v226'],
    ['changesBefore', 'v266'],
    ['lockedReason', 'v273'],
    ['consistentServerViews', 'v275'],
  ])
  let schema = listSchemas.get(stage)
  if (schema) return schema
  const properties: Record<string, object> = {
    ...Object.fromEntries(COMMON_PARAMS.map((k) => [k, COMMON])),
    ...Object.fromEntries(REGEX_PARAMS.map((k) => [k, REGEX])),
    ...Object.fromEntries([...JOINED_TABLES].map((k) => [k, COMMON])),
    ...PAGINATION,
    'changes-since': DATE_TIMES,
    sort_key: multi({ type: 'string', enum: has(v, 'consistentServerViews') ? SORT_KEYS_V275 : SORT_KEYS }),
  }
  if (has(v, 'serverTags')) for (const k of ['tags', 'tags-any', 'not-tags', 'not-tags-any']) properties[k] = REGEX
  if (has(v, 'changesBefore')) properties['changes-before'] = DATE_TIMES
  if (has(v, 'lockedReason')) properties.locked = COMMON
  schema = {
    type: 'object',
    properties,
    additionalProperties: !has(v, 'consistentServerViews'),
    patternProperties: { '^_': COMMON },
  }
  listSchemas.set(stage, schema)
  return schema
}

/** Nova's remove_invalid_sort_keys: an ignored key goes, with its direction if it has one. */
function sortWanted(q: Record<string, string[]>, v: Microversion): { keys: string[]; dirs: string[] } {
  const keys = (q.sort_key ?? []).map((k) => k.trim())
  const dirs = (q.sort_dir ?? []).map((d) => d.trim())
  if (keys.length === 0) keys.push('created_at')
  if (dirs.length === 0) dirs.push('desc')
  const ignored = has(v, 'lockedReason') ? IGNORED_SORT_KEYS_V273 : IGNORED_SORT_KEYS
  for (const key of [...keys]) {
    if (!ignored.includes(key)) continue
    const i = keys.indexOf(key)
    if (dirs.length > i) dirs.splice(i, 1)
    keys.splice(i, 1)
  }
  return { keys, dirs }
}

/** The regular-expression filters ListQuery names itself (the others go in its `regex`). */
const NAMED_REGEX_FILTERS = { hostname: 1, key_name: 1, availability_zone: 1, config_drive: 1, node: 1 }

/** What a non-admin may filter on at `v` (Nova's _get_server_search_options); admins: everything. */
function allowedFilters(v: Microversion): Set<string> {
  const opts = ['reservation_id', 'name', 'status', 'image', 'flavor', 'ip', 'changes-since', 'all_tenants']
  if (has(v, 'ip6FilterForAll')) opts.push('ip6')
  if (has(v, 'serverTags')) opts.push('tags', 'tags-any', 'not-tags', 'not-tags-any')
  if (has(v, 'changesBefore')) opts.push('changes-before')
  if (has(v, 'lockedReason')) opts.push('locked')
  if (has(v, 'moreFiltersForAll'))
    opts.push(
      'availability_zone',
      'config_drive',
      'key_name',
      'created_at',
      'launched_at',
      'terminated_at',
      'power_state',
      'task_state',
      'vm_state',
      'progress',
      'user_id',
    )
  if (has(v, 'serverHostname')) opts.push('hostname')
  return new Set([...opts, 'limit', 'marker', 'sort_key', 'sort_dir'])
}

const isoDateTime = (name: string, raw: string | undefined) => {
  if (raw === undefined) return undefined
  if (!FORMATS['date-time'].test(raw) || Number.isNaN(Date.parse(raw))) {
    throw new BadRequest(`Invalid input for query parameters ${name}. Value: ${raw}. '${raw}' is not a 'date-time'`)
  }
  return new Date(raw).toISOString()
}

const BOOL_STRINGS = ['0', '1', 'f', 'false', 'n', 'no', 'off', 'on', 't', 'true', 'y', 'yes']
/** oslo's bool_from_string(strict=True), as Nova's `locked` filter reads it. */
function strictBool(raw: string): boolean {
  const s = raw.trim().toLowerCase()
  if (!BOOL_STRINGS.includes(s)) {
    throw new BadRequest(
      `Invalid input received: Unrecognized value '${raw}', acceptable values are: ${BOOL_STRINGS.map((x) => `'${x}'`).join(', ')}`,
    )
  }
  return ['1', 't', 'true', 'on', 'y', 'yes'].includes(s)
}

function parseListQuery(raw: Query, detail: boolean, maxLimit: number, v: Microversion, ctx: AuthContext): ListQuery {
  const lists = validateQuery(listQuerySchema(v), raw)
  const sort = sortWanted(lists, v)
  // Nova strips what a non-admin may not filter on (silently); admins keep everything.
  const allowed = ctx.isAdmin ? undefined : allowedFilters(v)
  const q: Query = Object.fromEntries(Object.entries(raw).filter(([k]) => !allowed || allowed.has(k)))
  for (const k of Object.keys(q)) {
    if (JOINED_TABLES.has(k) || k.startsWith('_')) throw new BadRequest(`Invalid filter field: ${k}.`)
  }
  const changesSince = isoDateTime('changes-since', one(q['changes-since']))
  // An admin's changes-before below 2.66 is no schema's: Nova still reads it, with its older message.
  let changesBefore: string | undefined
  try {
    changesBefore = isoDateTime('changes-before', one(q['changes-before']))
  } catch (err) {
    if (has(v, 'changesBefore')) throw err
    throw new BadRequest('Invalid filter field: changes-before.')
  }
  if (changesSince !== undefined && changesBefore !== undefined && changesBefore < changesSince) {
    throw new BadRequest('The value of changes-since must be less than or equal to changes-before.')
  }
  // Nova's other regular-expression filters, by the instance column each names.
  const regex: Record<string, string> = {}
  for (const column of Object.keys(REGEX_COLUMNS)) {
    const value = one(q[column])
    if (value !== undefined && !(column in NAMED_REGEX_FILTERS)) regex[column] = value
  }
  const deleted = one(q.deleted)
  const tagFilters = has(v, 'serverTags')
  const locked = one(q.locked)
  return {
    detail,
    name: one(q.name),
    status: many(q.status),
    unknownStatusRefused: has(v, 'invalidStatusFilterRefused'),
    image: one(q.image) ?? one(q.image_ref),
    flavor: one(q.flavor),
    ip: one(q.ip),
    changesSince,
    changesBefore,
    reservationId: one(q.reservation_id),
    allTenants: q.all_tenants !== undefined && (one(q.all_tenants) === '' || truthy(one(q.all_tenants))),
    projectId: one(q.project_id) ?? one(q.tenant_id),
    limit: parseLimit(one(q.limit), maxLimit),
    marker: one(q.marker),
    // Nova reads `locked` whenever it is left (an admin's below 2.73 too).
    locked: locked !== undefined ? strictBool(locked) : undefined,
    tags: tagFilters ? csv(q.tags) : undefined,
    tagsAny: tagFilters ? csv(q['tags-any']) : undefined,
    notTags: tagFilters ? csv(q['not-tags']) : undefined,
    notTagsAny: tagFilters ? csv(q['not-tags-any']) : undefined,
    userId: one(q.user_id),
    vmState: many(q.vm_state),
    taskState: many(q.task_state),
    powerState: one(q.power_state),
    keyName: one(q.key_name),
    availabilityZone: one(q.availability_zone),
    configDrive: one(q.config_drive),
    hostname: one(q.hostname),
    host: one(q.host),
    node: one(q.node),
    regex,
    uuid: one(q.uuid),
    ip6: one(q.ip6),
    deleted: deleted === undefined ? undefined : truthy(deleted),
    sortKeys: sort.keys,
    sortDirs: sort.dirs,
  }
}

/** Who asks for a view, at which microversion: a request, or a shortcut's caller. */
export interface ViewCaller {
  microversion: Microversion
  auth: AuthContext
}

/** GET /servers/{id}'s body, for the shortcut that serves it too: read, or (showKept) already at hand. */
export interface ShowAnswers {
  show: (caller: ViewCaller, id: string) => Promise<Buffer>
  showKept: (caller: ViewCaller, id: string) => Buffer | undefined
}

/** The routes of /servers; returns GET /servers/{id}'s answers, for the shortcut that serves it too. */
export function serverRoutes(app: FastifyInstance, deps: ComputeRouteDeps): ShowAnswers {
  const base = deps.computeUrl
  const { servers } = deps

  /** Views of servers built afresh (PUT's answer): their addresses and what the version shows besides. */
  const details = async (req: FastifyRequest, rows: Server[], answering: 'update') => {
    const ids = rows.map((r) => r.id)
    // Nova's ViewBuilder.show gives the fault of a server in ERROR at every version, PUT's answer too.
    const [ips, extras, faults] = await Promise.all([
      servers.fixedIps(ids),
      servers.extras(rows, extrasWanted(req.microversion, req.auth)),
      servers.latestFaults(ids),
    ])
    return rows.map((r) =>
      serverDetail(r, {
        base,
        ctx: req.auth,
        v: req.microversion,
        ips: ips.get(r.id) ?? [],
        extras: extras.get(r.id),
        fault: faults.get(r.id),
        answering,
      }),
    )
  }

  const memo = new ServerViewMemo()
  /**
   * The JSON of each server's view, in the order of `refs`: kept from an earlier request while
   * the server's version and what the version does not cover are the same (server-view-memo.ts),
   * else built from what `load` reads. `load` reads after the versions were read, so a view is
   * never older than the version it is kept under.
   */
  const views = async (req: ViewCaller, refs: ServerRef[], answering: 'show' | 'detail', load: Loader): Promise<Buffer[]> => {
    const { microversion: v, auth: ctx } = req
    const wanted = extrasWanted(v, ctx)
    const variant = ServerViewMemo.variant(base, answering, v, ctx)
    const outside =
      wanted.flavor || wanted.hostStatus
        ? await servers.extras(refs, { ...NO_EXTRAS, flavor: wanted.flavor, hostStatus: wanted.hostStatus })
        : undefined
    const flavorJson = new Map<unknown, string>()
    const outsideKey = (id: string) => {
      const x = outside?.get(id)
      if (!x) return ''
      let f = flavorJson.get(x.flavor)
      if (f === undefined) flavorJson.set(x.flavor, (f = JSON.stringify(x.flavor ?? null)))
      return `${x.hostStatus ?? '-'} ${f}`
    }
    const out = refs.map((r) => memo.get(variant, r.id, r.version, outsideKey(r.id)))
    const missing = refs.filter((_, i) => out[i] === undefined)
    if (missing.length === 0) return out as Buffer[]
    const loaded = await load(missing)
    const own = await servers.extras(
      loaded.map((l) => l.server),
      { ...wanted, flavor: false, hostStatus: false },
    )
    const built = new Map<string, Buffer>()
    for (const { server, ips, fault } of loaded) {
      const o = outside?.get(server.id)
      const extras = { ...own.get(server.id)!, flavor: o?.flavor, hostStatus: o?.hostStatus }
      const json = Buffer.from(JSON.stringify(serverDetail(server, { base, ctx, v, ips, fault, extras, answering })))
      memo.set(variant, server.id, server.version, outsideKey(server.id), json)
      built.set(server.id, json)
    }
    return refs.flatMap((r, i) => out[i] ?? built.get(r.id) ?? [])
  }

  /** The servers of a list that were not in the memo, as their detail views show them. */
  const loadDetails: Loader = async (missing) => {
    const rows = await servers.byIds(missing.map((r) => r.id))
    const ids = rows.map((r) => r.id)
    const [ips, faults] = await Promise.all([servers.fixedIps(ids), servers.latestFaults(ids)])
    return rows.map((server) => ({ server, ips: ips.get(server.id) ?? [], fault: faults.get(server.id) }))
  }

  const nextLinks = (req: FastifyRequest, path: string, rows: { id: string }[], limit: number | undefined) => {
    const last = rows[rows.length - 1]
    const full = (limit !== undefined && rows.length === limit && limit > 0) || rows.length === deps.maxLimit
    if (!full || !last) return undefined
    const params = new URLSearchParams()
    for (const [k, v] of Object.entries(req.query as Query)) {
      if (k === 'marker' || v === undefined) continue
      for (const x of many(v)!) params.append(k, x)
    }
    params.set('marker', last.id)
    return [{ rel: 'next', href: `${base}/v2.1/${path}?${params.toString()}` }]
  }

  app.get<{ Querystring: Query }>('/v2.1/servers', async (req) => {
    const q = parseListQuery(req.query, false, deps.maxLimit, req.microversion, req.auth)
    const rows = await servers.list(req.auth, q)
    const links = nextLinks(req, 'servers', rows, q.limit)
    return { servers: rows.map((r) => serverSummary(r, base)), ...(links ? { servers_links: links } : {}) }
  })

  // The two GETs answer JSON assembled from the views' bytes: what JSON.stringify would give of
  // { servers: [...], servers_links } and { server }, without serializing the views again.
  app.get<{ Querystring: Query }>('/v2.1/servers/detail', async (req, reply) => {
    const q = parseListQuery(req.query, true, deps.maxLimit, req.microversion, req.auth)
    const refs = await servers.listRefs(req.auth, q)
    const links = nextLinks(req, 'servers/detail', refs, q.limit)
    const parts = await views(req, refs, 'detail', loadDetails)
    const body: Buffer[] = [OPEN_SERVERS]
    for (let i = 0; i < parts.length; i++) body.push(i ? COMMA : EMPTY, parts[i]!)
    body.push(links ? Buffer.from(`],"servers_links":${JSON.stringify(links)}}`) : CLOSE_SERVERS)
    return reply.type(JSON_TYPE).send(Buffer.concat(body))
  })

  /** GET /servers/{id}'s body for a view: `{"server":…}`, made once per view kept. */
  const bodies = new WeakMap<Buffer, Buffer>()
  const showBody = (part: Buffer): Buffer => {
    let body = bodies.get(part)
    if (!body) bodies.set(part, (body = Buffer.concat([OPEN_SERVER, part, CLOSE_SERVER])))
    return body
  }
  /** GET /servers/{id}'s body; also answered before fastify (show-shortcut.ts). */
  const show = async (caller: ViewCaller, id: string): Promise<Buffer> => {
    const ref = await servers.showRef(caller.auth, id)
    const [part] = await views(caller, [ref], 'show', async () => [await servers.showDetail(caller.auth, id)])
    return showBody(part!)
  }
  /**
   * The same body when it needs nothing read (the ref kept in memory, the view memoized, nothing
   * outside the version shown): no query, no promise. Undefined otherwise, and `show` answers.
   */
  const showKept = (caller: ViewCaller, id: string): Buffer | undefined => {
    const ref = servers.keptShowRef(caller.auth, id)
    if (!ref) return undefined
    const wanted = extrasWanted(caller.microversion, caller.auth)
    if (wanted.flavor || wanted.hostStatus) return undefined
    const part = memo.get(ServerViewMemo.variant(base, 'show', caller.microversion, caller.auth), ref.id, ref.version, '')
    return part && showBody(part)
  }
  app.get<{ Params: { id: string } }>('/v2.1/servers/:id', async (req, reply) => reply.type(JSON_TYPE).send(await show(req, req.params.id)))

  app.post<{ Body: CreateServerRequest }>('/v2.1/servers', { config: { idempotent: true } }, async (req, reply) => {
    const v = req.microversion
    validateBody(createServerSchema(v), req.body)
    const b = req.body.server
    const blockDevices = b.block_device_mapping_v2?.map((d) => ({
      sourceType: d.source_type ?? (d.volume_id ? 'volume' : d.snapshot_id ? 'snapshot' : d.image_id ? 'image' : undefined),
      destinationType: d.destination_type,
      uuid: d.uuid ?? d.volume_id ?? d.snapshot_id ?? d.image_id,
      volumeSize: d.volume_size,
      deviceName: d.device_name,
      deleteOnTermination: d.delete_on_termination === undefined ? undefined : truthy(d.delete_on_termination),
      bootIndex: d.boot_index === undefined || d.boot_index === null ? null : Number(d.boot_index),
      tag: d.tag,
    }))
    if ((b.imageRef === undefined || b.imageRef === '') && !blockDevices?.length) throw new BadRequest('Missing imageRef attribute')
    const minCount = Number(b.min_count ?? 1)
    const maxCount = Number(b.max_count ?? minCount)
    // 'auto' is the built-in network (Skiff's "auto-allocated" one), 'none' no address at all.
    if (Array.isArray(b.networks)) {
      for (const n of b.networks) {
        if (n.uuid !== undefined && n.uuid !== PRIVATE_NETWORK_ID) throw new BadRequest(`Network ${n.uuid} could not be found.`)
        if (n.port) throw new BadRequest(`Port ${n.port} could not be found.`)
      }
    }
    const userData = b.user_data?.replace(/\s/g, '')
    if (userData !== undefined && !/^[A-Za-z0-9+/]*={0,2}$/.test(userData)) {
      throw new BadRequest('Invalid input for field/attribute user_data. Value: (truncated). Not a valid base64 string')
    }
    const {
      servers: created,
      adminPass,
      reservationId,
    } = await servers.create(
      req.auth,
      {
        name: b.name,
        imageRef: b.imageRef ?? '',
        ...(blockDevices?.length ? { blockDevices } : {}),
        flavorRef: String(b.flavorRef),
        adminPass: b.adminPass,
        keyName: b.key_name,
        userData,
        metadata: b.metadata,
        accessIPv4: b.accessIPv4,
        accessIPv6: b.accessIPv6,
        availabilityZone: b.availability_zone,
        networks: b.networks === 'none' ? 'none' : 'default',
        minCount,
        maxCount,
        group: (req.body['os:scheduler_hints'] ?? req.body['OS-SCH-HNT:scheduler_hints'])?.group,
        securityGroups: b.security_groups?.map((g) => g.name),
        configDrive: b.config_drive === undefined ? undefined : truthy(b.config_drive),
        // Below 2.19 Nova gives a server its name as description; from 2.19 what was asked (or none).
        description: atVersion<string | null>(v, b.name, [['serverDescription', b.description ?? null]]),
        hostname: b.hostname,
        tags: b.tags,
        trustedCerts: b.trusted_image_certificates ?? undefined,
        host: b.host,
        hypervisorHostname: b.hypervisor_hostname,
      },
      req.id,
    )
    reply.code(202)
    if (truthy(b.return_reservation_id)) return { reservation_id: reservationId }
    const first = created[0]!
    reply.header('location', `${base}/v2.1/servers/${first.id}`)
    const server: Record<string, unknown> = {
      id: first.id,
      links: serverLinks(base, first.id),
      'OS-DCF:diskConfig': b['OS-DCF:diskConfig'] ?? 'MANUAL',
      security_groups: b.security_groups ?? [{ name: 'default' }],
    }
    if (adminPass !== undefined) server.adminPass = adminPass
    return { server }
  })

  app.put<{ Params: { id: string }; Body: UpdateServerRequest }>('/v2.1/servers/:id', async (req) => {
    validateBody(updateServerSchema(req.microversion), req.body)
    const b = req.body.server
    const s = await servers.update(req.auth, req.params.id, {
      name: b.name,
      accessIPv4: b.accessIPv4,
      accessIPv6: b.accessIPv6,
      description: b.description,
      hostname: b.hostname,
    })
    return { server: (await details(req, [s], 'update'))[0] }
  })

  app.delete<{ Params: { id: string } }>('/v2.1/servers/:id', async (req, reply) => {
    await servers.delete(req.auth, req.params.id, req.id)
    return reply.code(204).send()
  })

  return { show, showKept }
}
