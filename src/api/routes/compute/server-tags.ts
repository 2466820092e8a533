// /servers/{id}/tags (microversion 2.26), as Nova's server_tags.py: GET, PUT and DELETE of all
// tags and of one. Below 2.26 the paths do not exist (Nova's 404 for a method outside its versions).
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { ServerTagService } from '../../../compute/server-tags.ts'
import { ajv } from '../../ajv.ts'
import { novaValidationMessage, type AjvError } from '../../validation.ts'
import { requireVersion } from './versioned.ts'
import { MAX_TAG_COUNT, TAG, validateBody } from './schemas.ts'

const UPDATE_ALL = {
  type: 'object',
  properties: { tags: { type: 'array', items: TAG, maxItems: MAX_TAG_COUNT } },
  required: ['tags'],
  additionalProperties: false,
}
// PUT of one tag takes no body (Nova's schema: type null).
const UPDATE_ONE = { type: 'null' }
let checkTag: ReturnType<typeof ajv.compile> | undefined

/** The tag's schema error as jsonschema words it (the message Nova puts in its 400), if any. */
function tagError(tag: string): string | undefined {
  checkTag ??= ajv.compile(TAG)
  if (checkTag(tag)) return undefined
  // novaValidationMessage words errors under a path; a bare value has none: keep the message.
  const full = novaValidationMessage(checkTag.errors as AjvError[])
  return full.replace(/^Invalid input for field\/attribute [^.]*\. Value: .*?\. /, '')
}

export function serverTagRoutes(app: FastifyInstance, tags: ServerTagService, base: string) {
  const since = (req: FastifyRequest) => requireVersion(req.microversion, 'serverTags')
  type Req = FastifyRequest<{ Params: { id: string; tag: string } }>

  app.get<{ Params: { id: string } }>('/v2.1/servers/:id/tags', async (req) => {
    since(req)
    return { tags: await tags.list(req.auth, req.params.id) }
  })
  app.put<{ Params: { id: string }; Body: unknown }>('/v2.1/servers/:id/tags', async (req) => {
    since(req)
    validateBody(UPDATE_ALL, req.body)
    return { tags: await tags.replace(req.auth, req.params.id, (req.body as { tags: string[] }).tags) }
  })
  app.delete<{ Params: { id: string } }>('/v2.1/servers/:id/tags', async (req, reply) => {
    since(req)
    await tags.deleteAll(req.auth, req.params.id)
    return reply.code(204).send()
  })
  app.get('/v2.1/servers/:id/tags/:tag', async (req: Req, reply: FastifyReply) => {
    since(req)
    await tags.check(req.auth, req.params.id, req.params.tag)
    return reply.code(204).send()
  })
  app.put('/v2.1/servers/:id/tags/:tag', async (req: Req, reply: FastifyReply) => {
    since(req)
    validateBody(UPDATE_ONE, req.body ?? null)
    const { id, tag } = req.params
    const added = await tags.add(req.auth, id, tag, tagError(tag))
    if (!added) return reply.code(204).send()
    return reply
      .code(201)
      .header('location', `${base}/v2.1/servers/${id}/tags/${encodeURIComponent(tag)}`)
      .send()
  })
  app.delete('/v2.1/servers/:id/tags/:tag', async (req: Req, reply: FastifyReply) => {
    since(req)
    await tags.delete(req.auth, req.params.id, req.params.tag)
    return reply.code(204).send()
  })
}
