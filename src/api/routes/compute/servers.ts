// /servers: create, list, detail, show, update, delete.
import type { Static } from '@sinclair/typebox'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { BadRequest } from '../../../errors.ts'
import type { Server } from '../../../compute/server.ts'
import type { ListQuery } from '../../../compute/server-service.ts'
import { FORMATS } from '../../formats.ts'
import { JsonMemo, keyOf, rowKey } from '../../json-memo.ts'
import { formatVersion } from '../../microversion.ts'
import type { ComputeRouteDeps } from './index.ts'
import { CreateServerBody, UpdateServerBody } from './schemas.ts'
import { serverDetail, serverLinks, serverSummary, type Fault } from './views.ts'

type Query = Record<string, string | string[] | undefined>

export const PRIVATE_NETWORK_ID = '4e8e5957-649f-477b-9e5b-f1f75b21c03c'

const one = (v: string | string[] | undefined) => (Array.isArray(v) ? v[v.length - 1] : v)
const many = (v: string | string[] | undefined) => (v === undefined ? undefined : Array.isArray(v) ? v : [v])
const truthy = (v: unknown) => v === true || (typeof v === 'string' && ['true', '1', 'yes', 'on', 't', 'y'].includes(v.toLowerCase()))

/** Nova's limit: a non-negative integer, capped at max_limit. */
export function parseLimit(raw: string | undefined, maxLimit: number): number | undefined {
  if (raw === undefined) return undefined
  if (!/^-?\d+$/.test(raw)) throw new BadRequest('limit param must be an integer')
  const n = Number(raw)
  if (n < 0) throw new BadRequest('limit param must be positive')
  return Math.min(n, maxLimit)
}

function parseListQuery(q: Query, detail: boolean, maxLimit: number): ListQuery {
  const changesSince = one(q['changes-since'])
  if (changesSince !== undefined && (!FORMATS['date-time'].test(changesSince) || Number.isNaN(Date.parse(changesSince)))) {
    throw new BadRequest(`Invalid input for query parameters changes-since. Value: ${changesSince}. '${changesSince}' is not a 'date-time'`)
  }
  return {
    detail,
    name: one(q.name),
    status: many(q.status),
    image: one(q.image),
    flavor: one(q.flavor),
    ip: one(q.ip),
    changesSince: changesSince === undefined ? undefined : new Date(changesSince).toISOString(),
    reservationId: one(q.reservation_id),
    allTenants: q.all_tenants !== undefined && (one(q.all_tenants) === '' || truthy(one(q.all_tenants))),
    projectId: one(q.project_id) ?? one(q.tenant_id),
    limit: parseLimit(one(q.limit), maxLimit),
    marker: one(q.marker),
  }
}

/** JSON text answered as is: fastify would otherwise call it text/plain. */
const JSON_TYPE = 'application/json; charset=utf-8'

export function serverRoutes(app: FastifyInstance, deps: ComputeRouteDeps) {
  const base = deps.computeUrl
  const { servers } = deps

  // A server's detail view as JSON, made again only when one of its inputs changed (json-memo.ts):
  // the row, its addresses and fault, and what of the request the view depends on.
  const memo = new JsonMemo()
  /** What of the request a detail view depends on: policy (admin keys), microversion, legacy v2. */
  const requestKey = (req: FastifyRequest) => keyOf([req.auth.isAdmin, formatVersion(req.microversion), req.legacyV2])
  const detailJson = (
    req: FastifyRequest,
    server: Server,
    ips: { address: string; mac: string }[],
    fault: Fault | undefined,
    reqKey = requestKey(req),
  ) => {
    let key = rowKey(server) + reqKey
    for (const ip of ips) key += keyOf([ip.address, ip.mac])
    if (fault) key += keyOf([fault.code, fault.message, fault.details, fault.created_at, fault.ofLastAction])
    return memo.json(server.id, key, () => serverDetail(server, { base, ctx: req.auth, ips, fault }))
  }

  /** Detail views of many servers, as JSON texts, with two queries for their addresses and faults. */
  const details = async (req: FastifyRequest, rows: Server[]) => {
    const ids = rows.map((r) => r.id)
    const [ips, faults] = await Promise.all([servers.fixedIps(ids), servers.latestFaults(ids)])
    const reqKey = requestKey(req)
    return rows.map((r) => detailJson(req, r, ips.get(r.id) ?? [], faults.get(r.id), reqKey))
  }

  const nextLinks = (req: FastifyRequest, path: string, rows: Server[], limit: number | undefined) => {
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
    const q = parseListQuery(req.query, false, deps.maxLimit)
    const rows = await servers.list(req.auth, q)
    const links = nextLinks(req, 'servers', rows, q.limit)
    return { servers: rows.map((r) => serverSummary(r, base)), ...(links ? { servers_links: links } : {}) }
  })

  app.get<{ Querystring: Query }>('/v2.1/servers/detail', async (req, reply) => {
    const q = parseListQuery(req.query, true, deps.maxLimit)
    const rows = await servers.list(req.auth, q)
    const links = nextLinks(req, 'servers/detail', rows, q.limit)
    const list = (await details(req, rows)).join(',')
    reply.type(JSON_TYPE)
    return `{"servers":[${list}]${links ? `,"servers_links":${JSON.stringify(links)}` : ''}}`
  })

  app.get<{ Params: { id: string } }>('/v2.1/servers/:id', async (req, reply) => {
    const { server, ips, fault } = await servers.showDetail(req.auth, req.params.id)
    reply.type(JSON_TYPE)
    return `{"server":${detailJson(req, server, ips, fault)}}`
  })

  app.post<{ Body: Static<typeof CreateServerBody> }>(
    '/v2.1/servers',
    { schema: { body: CreateServerBody }, config: { idempotent: true } },
    async (req, reply) => {
      const b = req.body.server
      if (b.imageRef === undefined || b.imageRef === '') throw new BadRequest('Missing imageRef attribute')
      const minCount = Number(b.min_count ?? 1)
      const maxCount = Number(b.max_count ?? minCount)
      if (b.networks) {
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
          imageRef: b.imageRef,
          flavorRef: String(b.flavorRef),
          adminPass: b.adminPass,
          keyName: b.key_name,
          userData,
          metadata: b.metadata as Record<string, string> | undefined,
          accessIPv4: b.accessIPv4,
          accessIPv6: b.accessIPv6,
          availabilityZone: b.availability_zone,
          networks: 'default',
          minCount,
          maxCount,
          group: (req.body['os:scheduler_hints'] ?? req.body['OS-SCH-HNT:scheduler_hints'])?.group,
          securityGroups: b.security_groups?.map((g) => g.name),
          configDrive: b.config_drive === undefined ? undefined : truthy(b.config_drive),
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
        security_groups: [{ name: 'default' }],
      }
      if (adminPass !== undefined) server.adminPass = adminPass
      return { server }
    },
  )

  app.put<{ Params: { id: string }; Body: Static<typeof UpdateServerBody> }>(
    '/v2.1/servers/:id',
    { schema: { body: UpdateServerBody } },
    async (req) => {
      const b = req.body.server
      const s = await servers.update(req.auth, req.params.id, { name: b.name, accessIPv4: b.accessIPv4, accessIPv6: b.accessIPv6 })
      const ips = await servers.fixedIps([s.id])
      return { server: serverDetail(s, { base, ctx: req.auth, ips: ips.get(s.id) ?? [], core: true }) }
    },
  )

  app.delete<{ Params: { id: string } }>('/v2.1/servers/:id', async (req, reply) => {
    await servers.delete(req.auth, req.params.id, req.id)
    return reply.code(204).send()
  })
}
