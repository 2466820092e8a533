// The block storage listener (Cinder v3): version documents, the microversion handshake
// (`OpenStack-API-Version: volume 3.x`, Zed's 3.0 to 3.70), volumes and their actions and
// metadata, snapshots, volume types and os-quota-sets. Cinder's URLs carry the project:
// /v3/{project_id}/volumes; the project is taken off the URL (rewriteVolumeUrl) and must be the
// token's (Cinder: 400 "Malformed request url"), so /v3/volumes (3.67) reaches the same routes.
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { BadRequest, NotAcceptable, NotFound } from '../../../errors.ts'
import type { VolumeService, Page, RawQuery } from '../../../volumes/volume-service.ts'
import type { Volume, VolumeSnapshot } from '../../../volumes/volume.ts'
import { validateBody } from '../compute/schemas.ts'
import { notFoundHandler } from '../../errors.ts'
import { atLeast, snapshotView, typeView, volumeDetail, volumeSummary, type VolumeVersion } from './views.ts'

declare module 'fastify' {
  interface FastifyRequest {
    volumeVersion: VolumeVersion
  }
}

/** Cinder Zed (cinder/api/openstack/api_version_request.py). */
export const VOLUME_MIN: VolumeVersion = { major: 3, minor: 0 }
export const VOLUME_MAX: VolumeVersion = { major: 3, minor: 70 }
const fmt = (v: VolumeVersion) => `${v.major}.${v.minor}`

export interface VolumeRouteDeps {
  volumes: VolumeService
  /** Scheme, host and port of this listener, as clients reach it. */
  volumeUrl: string
  /** A server's host, for the attachments admins see (host_name). */
  serverHost(serverId: string): Promise<string | null>
}

const PROJECT = /^\/v3\/([0-9a-fA-F]{32}|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})(?=\/|$|\?)/

/** `/v3/{project_id}/...` reaches the routes of `/v3/...`; the project is kept to be checked against the token. */
export function rewriteVolumeUrl(req: { url?: string }): string {
  const url = req.url ?? '/'
  const m = PROJECT.exec(url)
  if (!m) return url
  ;(req as { skiffProjectId?: string }).skiffProjectId = m[1]
  const rest = url.slice(m[0].length)
  return `/v3${rest === '' ? '/' : rest}`
}

/** cinder/api/openstack/wsgi.py set_api_version_request. */
function parseVersion(header: string | string[] | undefined): VolumeVersion {
  if (header === undefined) return VOLUME_MIN
  const all = Array.isArray(header) ? header.join(',') : header
  let raw: string | undefined
  for (const part of all.split(',')) {
    const m = /^\s*volume\s+(\S+)\s*$/i.exec(part)
    if (m) {
      raw = m[1]
      break
    }
  }
  if (raw === undefined) return VOLUME_MIN
  if (raw === 'latest') return VOLUME_MAX
  const m = /^([1-9]\d*)\.([1-9]\d*|0)$/.exec(raw)
  if (!m) throw new BadRequest(`API Version String ${raw} is of invalid format. Must be of format MajorNum.MinorNum.`)
  const major = Number(m[1])
  const minor = Number(m[2])
  if (major !== 3 || minor > VOLUME_MAX.minor)
    throw new NotAcceptable(
      `Version ${major}.${minor} is not supported by the API. Minimum is ${fmt(VOLUME_MIN)} and maximum is ${fmt(VOLUME_MAX)}.`,
    )
  return { major: 3, minor }
}

function versionDoc(base: string) {
  return {
    id: 'v3.0',
    status: 'CURRENT',
    version: fmt(VOLUME_MAX),
    min_version: fmt(VOLUME_MIN),
    updated: '2022-08-31T00:00:00Z',
    links: [
      { rel: 'describedby', type: 'text/html', href: 'https://docs.openstack.org/' },
      { rel: 'self', href: `${base}/v3/` },
    ],
    'media-types': [{ base: 'application/json', type: 'application/vnd.openstack.volume+json;version=3' }],
  }
}

// ---- request schemas (cinder/api/schemas/volumes.py, snapshots.py, quotas.py) ----

const nullableString = { type: ['string', 'null'], maxLength: 255 }
const optionalUuid = { oneOf: [{ type: 'null' }, { type: 'string', format: 'uuid' }] }
const metadata = {
  type: 'object',
  patternProperties: { '^[a-zA-Z0-9-_:. /]{1,255}$': { type: 'string', maxLength: 255 } },
  additionalProperties: false,
}
const metadataOrNull = { ...metadata, type: ['object', 'null'] }
// anyOf rather than a type list: the one Ajv runs in strict mode (a list of types beside null is refused there).
const boolean = {
  anyOf: [
    { type: 'boolean' },
    { type: 'string', enum: ['True', 'true', 'False', 'false', '1', '0', 't', 'f', 'on', 'off', 'y', 'n', 'yes', 'no'] },
  ],
}
const positiveSize = {
  anyOf: [
    { type: 'integer', minimum: 1 },
    { type: 'string', pattern: '^[0-9]+$' },
  ],
}

function createVolumeSchema(v: VolumeVersion) {
  const properties: Record<string, object> = {
    name: nullableString,
    description: nullableString,
    display_name: nullableString,
    display_description: nullableString,
    volume_type: { type: ['string', 'null'], minLength: 0, maxLength: 255 },
    metadata: metadataOrNull,
    snapshot_id: optionalUuid,
    source_volid: optionalUuid,
    consistencygroup_id: optionalUuid,
    size: { anyOf: [...positiveSize.anyOf, { type: 'null' }] },
    availability_zone: { type: ['string', 'null'], minLength: 1, maxLength: 255 },
    multiattach: { oneOf: [{ type: 'null' }, boolean] },
    image_id: { type: ['string', 'null'], minLength: 0, maxLength: 255 },
    imageRef: { type: ['string', 'null'], minLength: 0, maxLength: 255 },
  }
  if (atLeast(v, 13)) properties.group_id = { type: ['string', 'null'], minLength: 0, maxLength: 255 }
  if (atLeast(v, 47)) properties.backup_id = optionalUuid
  return {
    type: 'object',
    properties: {
      volume: { type: 'object', properties, additionalProperties: !atLeast(v, 53) },
      'OS-SCH-HNT:scheduler_hints': { type: ['object', 'null'] },
    },
    required: ['volume'],
    additionalProperties: false,
  }
}
/** The create schema of each step (3.13, 3.47, 3.53 change it), compiled once. */
const CREATE_SCHEMAS = new Map<number, object>()
const createSchemaAt = (v: VolumeVersion) => {
  const key = atLeast(v, 53) ? 53 : atLeast(v, 47) ? 47 : atLeast(v, 13) ? 13 : 0
  let s = CREATE_SCHEMAS.get(key)
  if (!s) CREATE_SCHEMAS.set(key, (s = createVolumeSchema(v)))
  return s
}
const updateProps = { name: nullableString, description: nullableString, display_name: nullableString, display_description: nullableString }
const UPDATE_VOLUME = {
  type: 'object',
  properties: { volume: { type: 'object', properties: { ...updateProps, metadata }, additionalProperties: false } },
  required: ['volume'],
  additionalProperties: false,
}
const UPDATE_VOLUME_353 = {
  ...UPDATE_VOLUME,
  properties: {
    volume: {
      ...UPDATE_VOLUME.properties.volume,
      anyOf: ['name', 'description', 'display_name', 'display_description', 'metadata'].map((k) => ({ required: [k] })),
    },
  },
}
const META_ITEM = { type: 'object', properties: { meta: metadata }, required: ['meta'], additionalProperties: false }
const METADATA_BODY = { type: 'object', properties: { metadata }, required: ['metadata'], additionalProperties: false }
const CREATE_SNAPSHOT = {
  type: 'object',
  properties: {
    snapshot: {
      type: 'object',
      properties: {
        name: nullableString,
        display_name: nullableString,
        description: nullableString,
        display_description: nullableString,
        // Cinder lets a null volume_id through to its lookup: "Volume None could not be found." (404).
        volume_id: { oneOf: [{ type: 'string', format: 'uuid' }, { type: 'null' }] },
        force: { oneOf: [{ type: 'null' }, boolean] },
        metadata: metadataOrNull,
      },
      required: ['volume_id'],
      additionalProperties: false,
    },
  },
  required: ['snapshot'],
  additionalProperties: false,
}
const UPDATE_SNAPSHOT = {
  type: 'object',
  properties: {
    snapshot: {
      type: 'object',
      properties: { ...updateProps, metadata },
      additionalProperties: false,
      anyOf: ['name', 'description', 'display_name', 'display_description'].map((k) => ({ required: [k] })),
    },
  },
  required: ['snapshot'],
  additionalProperties: false,
}
const EXTEND = {
  type: 'object',
  properties: {
    'os-extend': {
      type: 'object',
      properties: { new_size: positiveSize },
      required: ['new_size'],
      additionalProperties: false,
    },
  },
  required: ['os-extend'],
  additionalProperties: false,
}
const SET_BOOTABLE = {
  type: 'object',
  properties: {
    'os-set_bootable': { type: 'object', properties: { bootable: boolean }, required: ['bootable'], additionalProperties: false },
  },
  required: ['os-set_bootable'],
  additionalProperties: false,
}
const QUOTA_UPDATE = {
  type: 'object',
  properties: {
    quota_set: {
      type: 'object',
      patternProperties: { '^[a-zA-Z0-9-_:. ]{1,300}$': { anyOf: [{ type: 'integer' }, { type: 'string', pattern: '^-?[0-9]+$' }] } },
    },
  },
  required: ['quota_set'],
  additionalProperties: false,
}

const truthy = (v: unknown) => v === true || (typeof v === 'string' && ['1', 't', 'true', 'on', 'y', 'yes'].includes(v.toLowerCase()))

export function volumeRoutes(app: FastifyInstance, deps: VolumeRouteDeps) {
  const base = deps.volumeUrl
  const { volumes } = deps
  app.decorateRequest('volumeVersion', null as unknown as VolumeVersion)

  app.addHook('onRequest', (req, _reply, done) => {
    req.volumeVersion = VOLUME_MIN
    if (req.routeOptions.config?.public) return done()
    req.volumeVersion = parseVersion(req.headers['openstack-api-version'])
    done()
  })
  // The project in the URL must be the token's (admins too: Cinder compares it with the context's).
  app.addHook('preHandler', (req, _reply, done) => {
    const project = (req.raw as { skiffProjectId?: string }).skiffProjectId
    if (project !== undefined && req.auth && project !== req.auth.projectId) throw new BadRequest('Malformed request url')
    done()
  })
  app.addHook('onSend', (req, reply, payload, done) => {
    if (!req.routeOptions.config?.public && req.volumeVersion) {
      reply.header('openstack-api-version', `volume ${fmt(req.volumeVersion)}`)
      reply.header('vary', 'OpenStack-API-Version')
    }
    done(null, payload)
  })
  app.setNotFoundHandler(notFoundHandler('volume'))

  app.get('/', { config: { public: true } }, async (_req, reply) => reply.code(300).send({ versions: [versionDoc(base)] }))
  app.get('/v3', { config: { public: true } }, async () => ({ versions: [versionDoc(base)] }))

  const project = (req: FastifyRequest) => req.auth.projectId ?? ''
  const collectionLinks = (req: FastifyRequest, path: string, page: Page<{ id: string }>) => {
    if (!page.next) return undefined
    const params = new URLSearchParams()
    for (const [k, v] of Object.entries(req.query as RawQuery)) {
      if (k === 'marker' || v === undefined) continue
      for (const x of Array.isArray(v) ? v : [v]) params.append(k, x)
    }
    params.set('marker', page.next)
    return [{ href: `${base}/v3/${project(req)}/${path}?${params.toString()}`, rel: 'next' }]
  }
  const detailViews = async (req: FastifyRequest, rows: Volume[], extended: boolean) => {
    const attachments = await volumes.attachments(rows.map((r) => r.id))
    const hosts = new Map<string, string | null>()
    if (req.auth.isAdmin)
      for (const a of attachments.values()) if (!hosts.has(a.server_id)) hosts.set(a.server_id, await deps.serverHost(a.server_id))
    return rows.map((r) => {
      const a = attachments.get(r.id)
      return volumeDetail(r, {
        base,
        ctx: req.auth,
        v: req.volumeVersion,
        attachment: a,
        attachedHost: a ? hosts.get(a.server_id) : null,
        extended,
      })
    })
  }
  const one = async (req: FastifyRequest, row: Volume, extended: boolean) => (await detailViews(req, [row], extended))[0]!
  const countOf = (req: FastifyRequest, items: unknown[]) =>
    atLeast(req.volumeVersion, 45) && truthy((req.query as RawQuery).with_count) ? { count: items.length } : {}

  // ---- volumes ----

  type Q = { Querystring: RawQuery }
  type Id = { Params: { id: string } }
  app.get<Q>('/v3/volumes', async (req) => {
    const page = await volumes.list(req.auth, req.query)
    const links = collectionLinks(req, 'volumes', page)
    return {
      volumes: page.items.map((r) => volumeSummary(r, base)),
      ...(links ? { volumes_links: links } : {}),
      ...countOf(req, page.items),
    }
  })
  app.get<Q>('/v3/volumes/detail', async (req) => {
    const page = await volumes.list(req.auth, req.query)
    const links = collectionLinks(req, 'volumes/detail', page)
    return { volumes: await detailViews(req, page.items, true), ...(links ? { volumes_links: links } : {}), ...countOf(req, page.items) }
  })
  app.post<{ Body: unknown }>('/v3/volumes', async (req, reply) => {
    validateBody(createSchemaAt(req.volumeVersion), req.body)
    const b = (req.body as { volume: Record<string, unknown> }).volume
    const str = (k: string) => (typeof b[k] === 'string' ? (b[k] as string) : null)
    const row = await volumes.create(
      req.auth,
      {
        size: b.size as number | string | null | undefined,
        name: str('name') ?? str('display_name'),
        description: str('description') ?? str('display_description'),
        volumeType: str('volume_type'),
        metadata: (b.metadata as Record<string, string> | null | undefined) ?? null,
        snapshotId: str('snapshot_id'),
        sourceVolid: str('source_volid'),
        imageRef: str('imageRef') ?? str('image_id'),
        availabilityZone: str('availability_zone'),
        multiattach: b.multiattach as boolean | string | null | undefined,
      },
      req.id,
    )
    return reply.code(202).send({ volume: await one(req, row, false) })
  })
  app.get<Q>('/v3/volumes/summary', async (req) => {
    if (!atLeast(req.volumeVersion, 12)) throw new NotFound(`Volume summary could not be found.`)
    const s = await volumes.summary(req.auth, req.query)
    return {
      'volume-summary': { total_count: s.count, total_size: s.size, ...(atLeast(req.volumeVersion, 36) ? { metadata: s.metadata } : {}) },
    }
  })
  app.get<Id>('/v3/volumes/:id', async (req) => ({ volume: await one(req, await volumes.get(req.auth, req.params.id), true) }))
  app.put<Id & { Body: unknown }>('/v3/volumes/:id', async (req) => {
    validateBody(atLeast(req.volumeVersion, 53) ? UPDATE_VOLUME_353 : UPDATE_VOLUME, req.body)
    const b = (req.body as { volume: Record<string, unknown> }).volume
    const change: { name?: string | null; description?: string | null; metadata?: Record<string, string> } = {}
    if ('name' in b || 'display_name' in b) change.name = (b.name ?? b.display_name) as string | null
    if ('description' in b || 'display_description' in b) change.description = (b.description ?? b.display_description) as string | null
    if (b.metadata !== undefined) change.metadata = b.metadata as Record<string, string>
    return { volume: await one(req, await volumes.update(req.auth, req.params.id, change), false) }
  })
  app.delete<Id & Q>('/v3/volumes/:id', async (req, reply) => {
    await volumes.delete(req.auth, req.params.id, req.id)
    return reply.code(202).send()
  })
  app.post<Id & { Body: unknown }>('/v3/volumes/:id/action', async (req, reply) => {
    const body = req.body
    const action = body && typeof body === 'object' && !Array.isArray(body) ? Object.keys(body)[0] : undefined
    switch (action) {
      case 'os-extend': {
        validateBody(EXTEND, body)
        await volumes.extend(
          req.auth,
          req.params.id,
          (body as { 'os-extend': { new_size: number | string } })['os-extend'].new_size,
          req.id,
          // 3.42: an in-use volume is extended too (Cinder's VOLUME_EXTEND_INUSE).
          { inUse: atLeast(req.volumeVersion, 42) },
        )
        return reply.code(202).send()
      }
      case 'os-set_bootable': {
        validateBody(SET_BOOTABLE, body)
        await volumes.setBootable(
          req.auth,
          req.params.id,
          truthy((body as { 'os-set_bootable': { bootable: unknown } })['os-set_bootable'].bootable),
        )
        return reply.code(200).send()
      }
      case 'os-reserve':
        await volumes.reserve(req.auth, req.params.id)
        return reply.code(202).send()
      case 'os-unreserve':
        await volumes.unreserve(req.auth, req.params.id)
        return reply.code(202).send()
      case 'os-reset_status': {
        const rs = (body as { 'os-reset_status': { status?: unknown } })['os-reset_status']
        if (!rs || typeof rs !== 'object' || typeof rs.status !== 'string') throw new BadRequest('Must specify a valid status')
        await volumes.resetStatus(req.auth, req.params.id, rs.status)
        return reply.code(202).send()
      }
      default:
        throw new BadRequest(action === undefined ? 'Malformed request body' : `There is no such action: ${action}`)
    }
  })
  app.get<Id>('/v3/volumes/:id/metadata', async (req) => ({
    metadata: JSON.parse((await volumes.get(req.auth, req.params.id)).metadata) as Record<string, string>,
  }))
  app.post<Id & { Body: unknown }>('/v3/volumes/:id/metadata', async (req) => {
    validateBody(METADATA_BODY, req.body)
    return {
      metadata: await volumes.setMetadata(req.auth, req.params.id, (req.body as { metadata: Record<string, string> }).metadata, false),
    }
  })
  app.put<Id & { Body: unknown }>('/v3/volumes/:id/metadata', async (req) => {
    validateBody(METADATA_BODY, req.body)
    return {
      metadata: await volumes.setMetadata(req.auth, req.params.id, (req.body as { metadata: Record<string, string> }).metadata, true),
    }
  })
  app.get<{ Params: { id: string; key: string } }>('/v3/volumes/:id/metadata/:key', async (req) => {
    return { meta: { [req.params.key]: await volumes.metadataItem(req.auth, req.params.id, req.params.key) } }
  })
  app.put<{ Params: { id: string; key: string }; Body: unknown }>('/v3/volumes/:id/metadata/:key', async (req) => {
    validateBody(META_ITEM, req.body)
    return {
      meta: await volumes.setMetadataItem(req.auth, req.params.id, req.params.key, (req.body as { meta: Record<string, string> }).meta),
    }
  })
  app.delete<{ Params: { id: string; key: string } }>('/v3/volumes/:id/metadata/:key', async (req, reply) => {
    await volumes.deleteMetadataKey(req.auth, req.params.id, req.params.key)
    return reply.code(200).send()
  })

  // ---- snapshots ----

  const snapshots = (req: FastifyRequest, rows: VolumeSnapshot[], detail: boolean) =>
    rows.map((s) => snapshotView(s, { v: req.volumeVersion, detail, extended: detail }))
  app.get<Q>('/v3/snapshots', async (req) => {
    const page = await volumes.listSnapshots(req.auth, req.query)
    const links = collectionLinks(req, 'snapshots', page)
    return { snapshots: snapshots(req, page.items, false), ...(links ? { snapshots_links: links } : {}), ...countOf(req, page.items) }
  })
  app.get<Q>('/v3/snapshots/detail', async (req) => {
    const page = await volumes.listSnapshots(req.auth, req.query)
    const links = collectionLinks(req, 'snapshots/detail', page)
    return { snapshots: snapshots(req, page.items, true), ...(links ? { snapshots_links: links } : {}), ...countOf(req, page.items) }
  })
  app.post<{ Body: unknown }>('/v3/snapshots', async (req, reply) => {
    validateBody(CREATE_SNAPSHOT, req.body)
    const b = (req.body as { snapshot: Record<string, unknown> }).snapshot
    const str = (k: string) => (typeof b[k] === 'string' ? (b[k] as string) : null)
    const row = await volumes.createSnapshot(
      req.auth,
      {
        volumeId: (b.volume_id as string | null) ?? 'None',
        force: b.force as boolean | string | null | undefined,
        name: str('name') ?? str('display_name'),
        description: str('description') ?? str('display_description'),
        metadata: (b.metadata as Record<string, string> | null | undefined) ?? null,
      },
      req.id,
      // 3.66: an in-use volume may be snapshotted without force.
      atLeast(req.volumeVersion, 66),
    )
    return reply.code(202).send({ snapshot: snapshotView(row, { v: req.volumeVersion, extended: false }) })
  })
  app.get<Id>('/v3/snapshots/:id', async (req) => ({
    snapshot: snapshotView(await volumes.getSnapshot(req.auth, req.params.id), { v: req.volumeVersion, extended: true }),
  }))
  app.put<Id & { Body: unknown }>('/v3/snapshots/:id', async (req) => {
    validateBody(UPDATE_SNAPSHOT, req.body)
    const b = (req.body as { snapshot: Record<string, unknown> }).snapshot
    const change: { name?: string | null; description?: string | null; metadata?: Record<string, string> } = {}
    if ('name' in b || 'display_name' in b) change.name = (b.name ?? b.display_name) as string | null
    if ('description' in b || 'display_description' in b) change.description = (b.description ?? b.display_description) as string | null
    if (b.metadata !== undefined) change.metadata = b.metadata as Record<string, string>
    return {
      snapshot: snapshotView(await volumes.updateSnapshot(req.auth, req.params.id, change), { v: req.volumeVersion, extended: false }),
    }
  })
  app.delete<Id>('/v3/snapshots/:id', async (req, reply) => {
    await volumes.deleteSnapshot(req.auth, req.params.id, req.id)
    return reply.code(202).send()
  })

  type Key = { Params: { id: string; key: string }; Body: unknown }
  const snapshotMetadata = async (req: FastifyRequest<{ Params: { id: string } }>) =>
    JSON.parse((await volumes.getSnapshot(req.auth, req.params.id)).metadata) as Record<string, string>
  app.get<Id>('/v3/snapshots/:id/metadata', async (req) => ({ metadata: await snapshotMetadata(req) }))
  app.post<Id & { Body: unknown }>('/v3/snapshots/:id/metadata', async (req) => {
    validateBody(METADATA_BODY, req.body)
    const m = (req.body as { metadata: Record<string, string> }).metadata
    return { metadata: await volumes.setSnapshotMetadata(req.auth, req.params.id, m, false) }
  })
  app.put<Id & { Body: unknown }>('/v3/snapshots/:id/metadata', async (req) => {
    validateBody(METADATA_BODY, req.body)
    const m = (req.body as { metadata: Record<string, string> }).metadata
    return { metadata: await volumes.setSnapshotMetadata(req.auth, req.params.id, m, true) }
  })
  app.get<Key>('/v3/snapshots/:id/metadata/:key', async (req) => {
    return { meta: { [req.params.key]: await volumes.snapshotMetadataItem(req.auth, req.params.id, req.params.key) } }
  })
  app.put<Key>('/v3/snapshots/:id/metadata/:key', async (req) => {
    validateBody(META_ITEM, req.body)
    const meta = (req.body as { meta: Record<string, string> }).meta
    if (Object.keys(meta).length > 1) throw new BadRequest('Request body contains too many items')
    if (!(req.params.key in meta)) throw new BadRequest('Request body and URI mismatch')
    await volumes.setSnapshotMetadata(req.auth, req.params.id, { [req.params.key]: meta[req.params.key]! }, false)
    return { meta: { [req.params.key]: meta[req.params.key] } }
  })
  app.delete<Key>('/v3/snapshots/:id/metadata/:key', async (req, reply) => {
    await volumes.deleteSnapshotMetadataKey(req.auth, req.params.id, req.params.key)
    return reply.code(200).send()
  })

  // ---- volume types ----

  app.get('/v3/types', async (req) => ({ volume_types: volumes.types(req.auth).map((t) => typeView(t, req.auth)) }))
  app.get<Id>('/v3/types/:id', async (req) => ({ volume_type: typeView(volumes.type(req.auth, req.params.id), req.auth) }))

  // ---- quotas ----

  type QP = { Params: { project: string }; Querystring: RawQuery }
  app.get<QP>('/v3/os-quota-sets/:project', async (req) => {
    const usage = (req.query as RawQuery).usage
    const withUsage = usage !== undefined && truthy(Array.isArray(usage) ? usage[usage.length - 1] : usage)
    return { quota_set: { id: req.params.project, ...(await volumes.quotas(req.auth, req.params.project, withUsage)) } }
  })
  app.get<QP>('/v3/os-quota-sets/:project/defaults', async (req) => ({
    quota_set: { id: req.params.project, ...volumes.quotaDefaults(req.auth) },
  }))
  app.put<QP & { Body: unknown }>('/v3/os-quota-sets/:project', async (req) => {
    validateBody(QUOTA_UPDATE, req.body)
    return {
      quota_set: await volumes.updateQuotas(
        req.auth,
        req.params.project,
        (req.body as { quota_set: Record<string, number | string> }).quota_set,
      ),
    }
  })
  app.delete<QP>('/v3/os-quota-sets/:project', async (req, reply) => {
    await volumes.resetQuotas(req.auth, req.params.project)
    return reply.code(200).send()
  })
}
