// Glance v2 subset: version discovery, images (CRUD, JSON-patch, data upload/download) and the
// schema documents glanceclient reads. Semantics live in images/image-service.ts.
import { Type } from '@sinclair/typebox'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { isoSeconds } from '../../clock.ts'
import { DomainError } from '../../errors.ts'
import { parseListRequest, QueryParams } from '../../images/image-list.ts'
import {
  CONTAINER_FORMATS,
  DISK_FORMATS,
  STATUSES,
  VISIBILITIES,
  type Caller,
  type Image,
  type ImageData,
  type ImageService,
  type PatchOp,
} from '../../images/image-service.ts'
import { jsonBodyParser } from '../json-body.ts'

export interface ImageRouteDeps {
  images: ImageService
  /** Public root of this listener, e.g. http://127.0.0.1:9292. */
  imageUrl: string
}

const PATCH_TYPE = 'application/openstack-images-v2.1-json-patch'
/** Glance's older patch type (Tempest's images client sends it): each operation `{"add": "/path", "value": v}`. */
const PATCH_TYPE_V20 = 'application/openstack-images-v2.0-json-patch'
const ACCEPT_PATCH = `${PATCH_TYPE}, ${PATCH_TYPE_V20}`

/** A v2.0 patch in the v2.1 form (`{"op", "path", "value"}`); anything else is left for the schema to refuse. */
function fromV20Patch(body: unknown): unknown {
  if (!Array.isArray(body)) return body
  return body.map((item: unknown) => {
    if (!item || typeof item !== 'object' || Array.isArray(item)) return item
    const o = item as Record<string, unknown>
    const ops = (['add', 'replace', 'remove'] as const).filter((k) => k in o)
    if (ops.length !== 1 || 'op' in o || 'path' in o) return item
    const op = ops[0]!
    const { [op]: path, ...rest } = o
    return { op, path, ...rest }
  })
}
const UPLOAD_URL = '/v2/images/:id/file'

const CreateBody = Type.Object({}, { additionalProperties: true, maxProperties: 512 })
const PatchBody = Type.Array(
  Type.Object(
    {
      op: Type.Unsafe<PatchOp['op']>({ type: 'string', enum: ['add', 'remove', 'replace'] }),
      path: Type.String({ maxLength: 1024 }),
      value: Type.Optional(Type.Unknown()),
    },
    { additionalProperties: false },
  ),
  { maxItems: 512 },
)
const caller = (req: FastifyRequest): Caller => ({
  projectId: req.auth.projectId,
  isAdmin: req.auth.isAdmin,
  roles: req.auth.roles.map((r) => r.name),
})

/** The image as Glance shows it: core attributes, links, then each extra property at top level. */
export function imageView(row: Image): Record<string, unknown> {
  return {
    ...(JSON.parse(row.properties) as Record<string, string>),
    id: row.id,
    name: row.name,
    status: row.status,
    visibility: row.visibility,
    protected: row.protected === 1,
    os_hidden: row.os_hidden === 1,
    disk_format: row.disk_format,
    container_format: row.container_format,
    // bigint columns may come back as strings from PostgreSQL.
    size: row.size === null ? null : Number(row.size),
    virtual_size: row.virtual_size === null ? null : Number(row.virtual_size),
    checksum: row.checksum,
    os_hash_algo: row.os_hash_algo,
    os_hash_value: row.os_hash_value,
    min_disk: row.min_disk,
    min_ram: row.min_ram,
    owner: row.owner,
    tags: JSON.parse(row.tags) as string[],
    created_at: isoSeconds(row.created_at),
    updated_at: isoSeconds(row.updated_at),
    self: `/v2/images/${row.id}`,
    file: `/v2/images/${row.id}/file`,
    schema: '/v2/schemas/image',
  }
}

function versions(base: string) {
  // Real Glance lists every v2.x it speaks; clients pick the CURRENT one and send no microversion.
  const minors = [15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0]
  return {
    versions: minors.map((m) => ({
      id: `v2.${m}`,
      status: m === 15 ? 'CURRENT' : 'SUPPORTED',
      links: [{ rel: 'self', href: `${base}/v2/` }],
    })),
  }
}

const nullable = (s: Record<string, unknown>) => ({ ...s, type: ['null', s.type] })
const readOnly = (s: Record<string, unknown>) => ({ ...s, readOnly: true })

/** Glance's image schema, trimmed to the attributes Skiff keeps (glanceclient types patches from it). */
export const IMAGE_SCHEMA = {
  name: 'image',
  properties: {
    id: {
      type: 'string',
      description: 'An identifier for the image',
      pattern: '^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$',
    },
    name: nullable({ type: 'string', maxLength: 255, description: 'Descriptive name for the image' }),
    status: readOnly({ type: 'string', enum: [...STATUSES], description: 'Status of the image' }),
    visibility: { type: 'string', enum: [...VISIBILITIES], description: 'Scope of image accessibility' },
    protected: { type: 'boolean', description: 'If true, image will not be deletable.' },
    os_hidden: { type: 'boolean', description: 'If true, image will not appear in default image list response.' },
    checksum: readOnly(nullable({ type: 'string', maxLength: 32, description: 'md5 hash of image contents.' })),
    os_hash_algo: readOnly(nullable({ type: 'string', maxLength: 64, description: 'Algorithm to calculate the os_hash_value' })),
    os_hash_value: readOnly(
      nullable({
        type: 'string',
        maxLength: 128,
        description: 'Hexdigest of the image contents using the algorithm specified by the os_hash_algo',
      }),
    ),
    owner: nullable({ type: 'string', maxLength: 255, description: 'Owner of the image' }),
    size: readOnly(nullable({ type: 'integer', description: 'Size of image file in bytes' })),
    virtual_size: readOnly(nullable({ type: 'integer', description: 'Virtual size of image in bytes' })),
    container_format: { type: ['null', 'string'], enum: [null, ...CONTAINER_FORMATS], description: 'Format of the container' },
    disk_format: { type: ['null', 'string'], enum: [null, ...DISK_FORMATS], description: 'Format of the disk' },
    created_at: readOnly({ type: 'string', description: 'Date and time of image registration' }),
    updated_at: readOnly({ type: 'string', description: 'Date and time of the last image modification' }),
    tags: { type: 'array', items: { type: 'string', maxLength: 255 }, description: 'List of strings related to the image' },
    min_ram: { type: 'integer', description: 'Amount of ram (in MB) required to boot image.' },
    min_disk: { type: 'integer', description: 'Amount of disk space (in GB) required to boot image.' },
    self: readOnly({ type: 'string', description: 'An image self url' }),
    file: readOnly({ type: 'string', description: 'An image file url' }),
    schema: readOnly({ type: 'string', description: 'An image schema url' }),
  },
  additionalProperties: { type: 'string' },
  links: [
    { rel: 'self', href: '{self}' },
    { rel: 'enclosure', href: '{file}' },
    { rel: 'describedby', href: '{schema}' },
  ],
}

const IMAGES_SCHEMA = {
  name: 'images',
  properties: {
    images: { type: 'array', items: IMAGE_SCHEMA },
    schema: { type: 'string' },
    first: { type: 'string' },
    next: { type: 'string' },
  },
  links: [
    { rel: 'first', href: '{first}' },
    { rel: 'next', href: '{next}' },
    { rel: 'describedby', href: '{schema}' },
  ],
}

// Python's quote_plus: only letters, digits and `_.-~` stay as they are; a space is `+`.
const quotePlus = (s: string) =>
  encodeURIComponent(s)
    .replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
    .replace(/%20/g, '+')

/**
 * Glance's `first` and `next`: the caller's parameters without `marker`, then the next page's
 * marker last (ImagesResponseSerializer.index). Glance keeps one value per parameter there (a
 * dict), which drops all but the last `tag` of a next page; Skiff keeps every value.
 */
function pageLink(params: QueryParams, marker?: string): string {
  const pairs = params.items().filter(([k]) => k !== 'marker')
  if (marker !== undefined) pairs.push(['marker', marker])
  const qs = pairs.map(([k, v]) => `${quotePlus(k)}=${quotePlus(v)}`).join('&')
  return qs ? `/v2/images?${qs}` : '/v2/images'
}

function requireContentType(req: FastifyRequest, type: string | string[], headers: Record<string, string> = {}) {
  const ct = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase()
  if (!(Array.isArray(type) ? type : [type]).includes(ct)) throw new DomainError('badMediaType', 'Unsupported Content-Type', headers)
}

export function imageRoutes(app: FastifyInstance, deps: ImageRouteDeps) {
  const { images } = deps

  app.addContentTypeParser([PATCH_TYPE, PATCH_TYPE_V20], { parseAs: 'string' }, jsonBodyParser(app, 'image'))
  // Image data is never buffered: the request stream goes to the service as is (no body limit).
  app.addContentTypeParser('application/octet-stream', (req, payload, done) => {
    if (req.method === 'PUT' && req.routeOptions.url === UPLOAD_URL) done(null, payload)
    else done(new DomainError('badMediaType', 'Unsupported Content-Type'), undefined)
  })

  app.get('/', { config: { public: true } }, async (_req, reply) => reply.code(300).send(versions(deps.imageUrl)))
  app.get('/versions', { config: { public: true } }, async () => versions(deps.imageUrl))

  app.get('/v2/schemas/image', async () => IMAGE_SCHEMA)
  app.get('/v2/schemas/images', async () => IMAGES_SCHEMA)

  app.get('/v2/images', async (req) => {
    // The raw query string, in order: Glance reads repeated parameters by position (webob's MultiDict).
    const q = req.url.indexOf('?')
    const params = QueryParams.parse(q < 0 ? '' : req.url.slice(q + 1))
    const page = await images.list(caller(req), parseListRequest(params))
    return {
      images: page.images.map(imageView),
      first: pageLink(params),
      schema: '/v2/schemas/images',
      ...(page.nextMarker !== undefined ? { next: pageLink(params, page.nextMarker) } : {}),
    }
  })

  app.post<{ Body: Record<string, unknown> }>('/v2/images', { schema: { body: CreateBody } }, async (req, reply) => {
    const row = await images.create(caller(req), req.body)
    return reply.code(201).header('location', `/v2/images/${row.id}`).send(imageView(row))
  })

  app.get<{ Params: { id: string } }>('/v2/images/:id', async (req) => imageView(await images.get(caller(req), req.params.id)))

  app.patch<{ Params: { id: string }; Body: PatchOp[] }>(
    '/v2/images/:id',
    {
      schema: { body: PatchBody },
      // Glance answers 415 with the patch types it accepts, before reading the body.
      preParsing: async (req) => requireContentType(req, [PATCH_TYPE, PATCH_TYPE_V20], { 'accept-patch': ACCEPT_PATCH }),
      preValidation: async (req) => {
        if ((req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase() === PATCH_TYPE_V20)
          req.body = fromV20Patch(req.body) as PatchOp[]
      },
    },
    async (req) => imageView(await images.update(caller(req), req.params.id, req.body)),
  )

  app.delete<{ Params: { id: string } }>('/v2/images/:id', async (req, reply) => {
    await images.delete(caller(req), req.params.id)
    return reply.code(204).send()
  })

  app.put<{ Params: { id: string }; Body: ImageData | undefined }>(
    UPLOAD_URL,
    {
      preParsing: async (req) => requireContentType(req, 'application/octet-stream'),
    },
    async (req, reply) => {
      // A PUT without a body still uploads an empty image, as Glance does.
      await images.upload(caller(req), req.params.id, req.body ?? [])
      return reply.code(204).send()
    },
  )

  app.get<{ Params: { id: string } }>(UPLOAD_URL, async (req, reply) => {
    const data = await images.download(caller(req), req.params.id)
    if (!data) return reply.code(204).send()
    // Glance sends the hex md5 here, not RFC 1864's base64; clients compare it with `checksum`.
    if (data.checksum) reply.header('content-md5', data.checksum)
    return reply.code(200).type('application/octet-stream').header('content-length', data.size).send(data.stream)
  })
}
