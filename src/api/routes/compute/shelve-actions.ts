// POST /servers/{id}/action: suspend, resume, createImage, createBackup, shelve, shelveOffload and
// unshelve, as Nova's suspend_server.py, servers.py, create_backup.py and shelve.py answer them.
import type { FastifyReply, FastifyRequest } from 'fastify'
import { has } from '../../microversion-changes.ts'
import type { ComputeRouteDeps } from './index.ts'

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- each action's handler takes its own body, validated before
type Handler = (req: FastifyRequest<{ Params: { id: string } }>, reply: FastifyReply, value: any) => Promise<unknown>

export function shelveActions(deps: ComputeRouteDeps): Record<string, Handler> {
  const s = deps.shelve
  // Nova's 202 to an action has an empty body but still says `Content-Type: application/json`.
  const accepted = (reply: FastifyReply) => reply.code(202).type('application/json').send()
  /** 2.45: the image id in the body; below, its URL in Location (backup: only when one is kept). */
  const imageAnswer = (req: FastifyRequest, reply: FastifyReply, imageId: string, location: boolean) => {
    if (has(req.microversion, 'createImageReturnsId')) return reply.code(202).send({ image_id: imageId })
    if (location) reply.header('location', `${deps.imageUrl}/images/${imageId}`)
    return accepted(reply)
  }
  // From 2.39 Nova no longer checks the image metadata against the metadata_items quota.
  const quota = (req: FastifyRequest) => ({ checkMetadataQuota: !has(req.microversion, 'imageMetadataProxyRemoved') })
  return {
    suspend: async (req, reply) => {
      await s.suspend(req.auth, req.params.id, req.id)
      return accepted(reply)
    },
    resume: async (req, reply) => {
      await s.resume(req.auth, req.params.id, req.id)
      return accepted(reply)
    },
    createImage: async (req, reply, v: { name: string; metadata?: Record<string, string> }) => {
      const imageId = await s.createImage(req.auth, req.params.id, v, req.id, quota(req))
      return imageAnswer(req, reply, imageId, true)
    },
    createBackup: async (
      req,
      reply,
      v: { name: string; backup_type: string; rotation: number | string; metadata?: Record<string, string> },
    ) => {
      const imageId = await s.createBackup(req.auth, req.params.id, v, req.id, quota(req))
      return imageAnswer(req, reply, imageId, Number(v.rotation) > 0)
    },
    shelve: async (req, reply) => {
      await s.shelve(req.auth, req.params.id, req.id)
      return accepted(reply)
    },
    shelveOffload: async (req, reply) => {
      await s.shelveOffload(req.auth, req.params.id, req.id)
      return accepted(reply)
    },
    unshelve: async (req, reply, v: { availability_zone?: string | null; host?: string } | null | undefined) => {
      const mv = req.microversion
      const body = v !== null && typeof v === 'object' ? v : undefined
      await s.unshelve(
        req.auth,
        req.params.id,
        {
          ...(body && has(mv, 'unshelveAvailabilityZone') && 'availability_zone' in body
            ? { availabilityZone: body.availability_zone }
            : {}),
          ...(body && has(mv, 'unshelveToHost') && body.host !== undefined ? { host: body.host } : {}),
        },
        req.id,
      )
      return accepted(reply)
    },
  }
}
