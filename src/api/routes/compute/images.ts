// The compute API's image proxy (nova/api/openstack/compute/images.py, image_metadata.py,
// views/images.py): Glance's images as Nova shows them, up to 2.35 (proxyApisRemoved: 404 from 2.36).
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { BadRequest, Forbidden, NotFound } from '../../../errors.ts'
import type { ImageService } from '../../../images/image-service.ts'
import { parseListRequest, QueryParams } from '../../../images/image-list.ts'
import type { Caller } from '../../../images/policy.ts'
import type { Image as ImageRow } from '../../../images/image-service.ts'
import { has } from '../../microversion-changes.ts'
import { METADATA, validateBody } from './schemas.ts'

export interface ComputeImageDeps {
  images: ImageService
  computeUrl: string
  imageUrl: string
}

// views/images.py: Glance's status as Nova names it, and a progress for it.
const STATUS: Record<string, string> = {
  queued: 'SAVING',
  saving: 'SAVING',
  importing: 'SAVING',
  uploading: 'SAVING',
  active: 'ACTIVE',
  killed: 'ERROR',
  deleted: 'DELETED',
  pending_delete: 'DELETED',
}
const PROGRESS: Record<string, number> = { queued: 25, saving: 50, active: 100 }

/** images.py's SUPPORTED_FILTERS: Nova's name of a list filter → the name its glance client uses. */
const FILTERS: Record<string, string> = {
  name: 'name',
  status: 'status',
  'changes-since': 'changes-since',
  server: 'property-instance_uuid',
  type: 'property-image_type',
  minRam: 'min_ram',
  minDisk: 'min_disk',
}

/**
 * A list's filters as Glance v2 gets them from Nova (images.py _get_filters, then
 * glance.py _extract_query_params_v2): `server` as the server's id (a URL's last part), the
 * status in lower case, `property-X` as the property X, `changes-since` as `updated_at=gte:`.
 */
function glanceFilters(query: Record<string, unknown>): [string, string][] {
  const out: [string, string][] = []
  for (const [param, raw] of Object.entries(query)) {
    const value: unknown = Array.isArray(raw) ? (raw as unknown[])[raw.length - 1] : raw
    if (typeof value !== 'string' || !(Object.hasOwn(FILTERS, param) || param.startsWith('property-'))) continue
    const name = FILTERS[param] ?? param
    let v = value
    if (name === 'property-instance_uuid' && v.includes('/')) v = v.slice(v.lastIndexOf('/') + 1)
    if (name === 'status') v = v.toLowerCase()
    if (name.startsWith('property-')) out.push([name.slice('property-'.length), v])
    else if (name === 'changes-since') out.push(['updated_at', `gte:${v}`])
    else out.push([name, v])
  }
  return out
}

const caller = (req: FastifyRequest): Caller => ({
  projectId: req.auth.projectId,
  isAdmin: req.auth.isAdmin,
  roles: req.auth.roles.map((r) => r.name),
})

function links(d: ComputeImageDeps, req: FastifyRequest, id: string) {
  const project = req.auth.projectId ?? ''
  return [
    { rel: 'self', href: `${d.computeUrl}/v2.1/${project}/images/${id}` },
    { rel: 'bookmark', href: `${d.computeUrl}/${project}/images/${id}` },
    { rel: 'alternate', type: 'application/vnd.openstack.image', href: `${d.imageUrl}/images/${id}` },
  ]
}

/** Glance's properties: the image's extra properties, as strings. */
function metadata(row: ImageRow): Record<string, string> {
  const props = JSON.parse(row.properties) as Record<string, unknown>
  return Object.fromEntries(Object.entries(props).map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)]))
}

const isoSeconds = (t: string) => t.replace(/\.\d+Z$/, 'Z')

function basicView(d: ComputeImageDeps, req: FastifyRequest, row: ImageRow) {
  return { id: row.id, name: row.name, links: links(d, req, row.id) }
}

function detailView(d: ComputeImageDeps, req: FastifyRequest, row: ImageRow) {
  const meta = metadata(row)
  const view: Record<string, unknown> = {
    id: row.id,
    name: row.name,
    minRam: row.min_ram,
    minDisk: row.min_disk,
    metadata: meta,
    created: isoSeconds(row.created_at),
    updated: isoSeconds(row.updated_at),
    status: STATUS[row.status] ?? 'UNKNOWN',
    progress: PROGRESS[row.status] ?? 0,
    links: links(d, req, row.id),
    'OS-EXT-IMG-SIZE:size': row.size ?? 0,
  }
  // A snapshot points at its server.
  const server = meta.instance_uuid
  if (server) {
    view.server = {
      id: server,
      links: [
        { rel: 'self', href: `${d.computeUrl}/v2.1/${req.auth.projectId ?? ''}/servers/${server}` },
        { rel: 'bookmark', href: `${d.computeUrl}/${req.auth.projectId ?? ''}/servers/${server}` },
      ],
    }
  }
  return view
}

export function computeImageRoutes(app: FastifyInstance, d: ComputeImageDeps) {
  const removed = (req: FastifyRequest, reply: FastifyReply) => has(req.microversion, 'proxyApisRemoved') && (reply.callNotFound(), true)

  /** Every image the caller sees, Glance's pages followed (Nova's glance client does). */
  const all = async (req: FastifyRequest) => {
    const out: ImageRow[] = []
    let marker: string | undefined
    for (let i = 0; i < 1000; i++) {
      const q = new URLSearchParams(glanceFilters(req.query as Record<string, unknown>))
      if (marker) q.set('marker', marker)
      const page = await d.images.list(caller(req), parseListRequest(new QueryParams(q)))
      out.push(...page.images)
      if (!page.nextMarker) break
      marker = page.nextMarker
    }
    return out
  }
  const page = (req: FastifyRequest, rows: ImageRow[]) => {
    const q = req.query as Record<string, string | undefined>
    let start = 0
    if (q.marker !== undefined) {
      const i = rows.findIndex((r) => r.id === q.marker)
      if (i < 0) throw new NotFound(`Image ${q.marker} could not be found.`)
      start = i + 1
    }
    const limit = q.limit !== undefined && /^\d+$/.test(q.limit) ? Number(q.limit) : undefined
    return rows.slice(start, limit === undefined ? undefined : start + limit)
  }
  const one = async (req: FastifyRequest, id: string) => {
    try {
      return await d.images.get(caller(req), id)
    } catch (e) {
      if (e instanceof NotFound) throw new NotFound('Image not found.')
      throw e
    }
  }

  app.get('/v2.1/images', async (req, reply) => {
    if (removed(req, reply)) return reply
    return { images: page(req, await all(req)).map((r) => basicView(d, req, r)) }
  })
  app.get('/v2.1/images/detail', async (req, reply) => {
    if (removed(req, reply)) return reply
    return { images: page(req, await all(req)).map((r) => detailView(d, req, r)) }
  })
  app.get<{ Params: { id: string } }>('/v2.1/images/:id', async (req, reply) => {
    if (removed(req, reply)) return reply
    return { image: detailView(d, req, await one(req, req.params.id)) }
  })
  app.delete<{ Params: { id: string } }>('/v2.1/images/:id', async (req, reply) => {
    if (removed(req, reply)) return reply
    try {
      await d.images.delete(caller(req), req.params.id)
    } catch (e) {
      if (e instanceof NotFound) throw new NotFound('Image not found.')
      // Glance's 403 (not the owner's, protected), as Nova's image API words it.
      if (e instanceof Forbidden) throw new Forbidden('You are not allowed to delete the image.')
      throw e
    }
    return reply.code(204).send()
  })
  app.get<{ Params: { id: string } }>('/v2.1/images/:id/metadata', async (req, reply) => {
    if (removed(req, reply)) return reply
    return { metadata: metadata(await one(req, req.params.id)) }
  })
  app.get<{ Params: { id: string; key: string } }>('/v2.1/images/:id/metadata/:key', async (req, reply) => {
    if (removed(req, reply)) return reply
    const meta = metadata(await one(req, req.params.id))
    if (!Object.hasOwn(meta, req.params.key)) throw new NotFound('Image not found.')
    return { meta: { [req.params.key]: meta[req.params.key] } }
  })

  // Writes go to the image service as Glance PATCHes of the image's properties, with the caller's
  // rights there (Nova's image_metadata.py through its glance client: the owner's members).
  const METADATA_BODY = { type: 'object', properties: { metadata: METADATA }, required: ['metadata'], additionalProperties: false }
  const META_BODY = {
    type: 'object',
    properties: { meta: { ...METADATA, minProperties: 1, maxProperties: 1 } },
    required: ['meta'],
    additionalProperties: false,
  }
  /** Sets `set` and removes `remove` among the image's properties; the properties after. */
  const write = async (req: FastifyRequest, id: string, set: Record<string, string>, remove: string[]) => {
    const row = await one(req, id)
    const current = metadata(row)
    const ops = [
      ...remove.filter((k) => Object.hasOwn(current, k)).map((k) => ({ op: 'remove' as const, path: `/${k}` })),
      ...Object.entries(set).map(([k, v]) => ({
        op: Object.hasOwn(current, k) ? ('replace' as const) : ('add' as const),
        path: `/${k}`,
        value: v,
      })),
    ]
    return metadata(ops.length ? await d.images.update(caller(req), row.id, ops) : row)
  }
  app.post<{ Params: { id: string } }>('/v2.1/images/:id/metadata', async (req, reply) => {
    if (removed(req, reply)) return reply
    validateBody(METADATA_BODY, req.body)
    const { metadata: meta } = req.body as { metadata: Record<string, string> }
    return { metadata: await write(req, req.params.id, meta, []) }
  })
  app.put<{ Params: { id: string } }>('/v2.1/images/:id/metadata', async (req, reply) => {
    if (removed(req, reply)) return reply
    validateBody(METADATA_BODY, req.body)
    const { metadata: meta } = req.body as { metadata: Record<string, string> }
    const current = metadata(await one(req, req.params.id))
    await write(
      req,
      req.params.id,
      meta,
      Object.keys(current).filter((k) => !Object.hasOwn(meta, k)),
    )
    return { metadata: meta }
  })
  app.put<{ Params: { id: string; key: string } }>('/v2.1/images/:id/metadata/:key', async (req, reply) => {
    if (removed(req, reply)) return reply
    validateBody(META_BODY, req.body)
    const { meta } = req.body as { meta: Record<string, string> }
    if (!Object.hasOwn(meta, req.params.key)) throw new BadRequest('Request body and URI mismatch')
    await write(req, req.params.id, meta, [])
    return { meta }
  })
  app.delete<{ Params: { id: string; key: string } }>('/v2.1/images/:id/metadata/:key', async (req, reply) => {
    if (removed(req, reply)) return reply
    const current = metadata(await one(req, req.params.id))
    if (!Object.hasOwn(current, req.params.key)) throw new NotFound('Invalid metadata key')
    await write(req, req.params.id, {}, [req.params.key])
    return reply.code(204).send()
  })
}
