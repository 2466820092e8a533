// /servers/{id}/os-volume_attachments, as Nova's volume_attachments.py: list, show, attach (the
// answer: the attachment, with `tag` from 2.70 and `delete_on_termination` from 2.79; the request
// takes `tag` from 2.49 and `delete_on_termination` from 2.79), detach (202). From 2.89 the views
// show `attachment_id` and `bdm_uuid` instead of `id`.
import type { FastifyInstance } from 'fastify'
import type { VolumeAttachmentService } from '../../../compute/volume-attachments.ts'
import type { VolumeAttachment } from '../../../volumes/volume.ts'
import type { Microversion } from '../../microversion.ts'
import { has } from '../../microversion-changes.ts'
import { validateBody } from './schemas.ts'

const DEVICE = { type: ['string', 'null'], pattern: '(^/dev/x{0,1}[a-z]{0,1}d{0,1})([a-z]+)[0-9]*$' }
const VOLUME_ID = { type: 'string', format: 'uuid' }
/** Nova's parameter_types.tag. */
const TAG = { type: 'string', pattern: '^[^,/]*$', maxLength: 60 }

function createSchema(v: Microversion): object {
  const properties: Record<string, object> = { volumeId: VOLUME_ID, device: DEVICE }
  if (has(v, 'taggedAttach')) properties.tag = TAG
  if (has(v, 'deleteOnTermination')) properties.delete_on_termination = { type: 'boolean' }
  return {
    type: 'object',
    properties: { volumeAttachment: { type: 'object', properties, required: ['volumeId'], additionalProperties: false } },
    required: ['volumeAttachment'],
    additionalProperties: false,
  }
}
const SCHEMAS = new Map<string, object>()
const schemaAt = (v: Microversion) => {
  const key = `${has(v, 'taggedAttach')}${has(v, 'deleteOnTermination')}`
  let s = SCHEMAS.get(key)
  if (!s) SCHEMAS.set(key, (s = createSchema(v)))
  return s
}

/** nova/api/openstack/compute/volume_attachments.py _translate_attachment_detail_view. */
function attachmentView(a: VolumeAttachment, v: Microversion): Record<string, unknown> {
  const ids = has(v, 'volumeAttachmentIds')
  const out: Record<string, unknown> = {}
  if (!ids) out.id = a.volume_id
  out.volumeId = a.volume_id
  out.serverId = a.server_id
  out.device = a.device
  if (has(v, 'deviceTagsInViews')) out.tag = a.tag
  if (has(v, 'deleteOnTermination')) out.delete_on_termination = a.delete_on_termination === 1
  if (ids) {
    out.attachment_id = a.id
    out.bdm_uuid = a.bdm_uuid
  }
  return out
}

export function volumeAttachmentRoutes(app: FastifyInstance, attachments: VolumeAttachmentService) {
  type P = { Params: { id: string; volume_id: string }; Querystring: { limit?: string; offset?: string } }
  app.get<P>('/v2.1/servers/:id/os-volume_attachments', async (req) => {
    const all = await attachments.list(req.auth, req.params.id)
    // Nova's common.limited: offset, then at most limit (and at most 1000).
    const offset = Math.max(0, Number(req.query.offset ?? 0) || 0)
    const limit = Math.min(1000, req.query.limit !== undefined ? Number(req.query.limit) || 0 : 1000)
    return { volumeAttachments: all.slice(offset, offset + limit).map((a) => attachmentView(a, req.microversion)) }
  })
  app.get<P>('/v2.1/servers/:id/os-volume_attachments/:volume_id', async (req) => ({
    volumeAttachment: attachmentView(await attachments.show(req.auth, req.params.id, req.params.volume_id), req.microversion),
  }))
  app.post<P & { Body: unknown }>('/v2.1/servers/:id/os-volume_attachments', async (req) => {
    const v = req.microversion
    validateBody(schemaAt(v), req.body)
    const body = (
      req.body as { volumeAttachment: { volumeId: string; device?: string | null; tag?: string; delete_on_termination?: boolean } }
    ).volumeAttachment
    const a = await attachments.attach(
      req.auth,
      req.params.id,
      {
        volumeId: body.volumeId,
        device: body.device ?? null,
        ...(body.tag !== undefined ? { tag: body.tag } : {}),
        deleteOnTermination: body.delete_on_termination ?? false,
      },
      { shelvedAllowed: has(v, 'volumeOpsWhenShelved') },
      req.id,
    )
    // The answer below 2.89 too: id, serverId, volumeId, device (+ tag, delete_on_termination).
    const out: Record<string, unknown> = { id: a.volume_id, serverId: a.server_id, volumeId: a.volume_id, device: a.device }
    if (has(v, 'deviceTagsInViews')) out.tag = a.tag
    if (has(v, 'deleteOnTermination')) out.delete_on_termination = a.delete_on_termination === 1
    return { volumeAttachment: out }
  })
  app.delete<P>('/v2.1/servers/:id/os-volume_attachments/:volume_id', async (req, reply) => {
    await attachments.detach(
      req.auth,
      req.params.id,
      req.params.volume_id,
      { shelvedAllowed: has(req.microversion, 'volumeOpsWhenShelved') },
      req.id,
    )
    return reply.code(202).send()
  })
}
