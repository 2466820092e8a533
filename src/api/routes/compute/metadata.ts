// /servers/{id}/metadata[/{key}]: Nova's server metadata API at 2.1 (200 on every write but
// DELETE, which is 204), bodies validated with Nova's schemas before anything is looked up.
import { Type, type Static } from '@sinclair/typebox'
import type { FastifyInstance } from 'fastify'
import type { ServerMetadataService } from '../../../compute/server-metadata.ts'
import { METADATA } from './schemas.ts'

const MetadataBody = Type.Object({ metadata: METADATA }, { additionalProperties: false })
const MetaItemBody = Type.Object(
  {
    meta: Type.Object({}, { ...METADATA, minProperties: 1, maxProperties: 1 }),
  },
  { additionalProperties: false },
)

type Params = { id: string }
type ItemParams = { id: string; key: string }

export function metadataRoutes(app: FastifyInstance, metadata: ServerMetadataService) {
  app.get<{ Params: Params }>('/v2.1/servers/:id/metadata', async (req) => ({ metadata: await metadata.list(req.auth, req.params.id) }))

  // Merges the given items into the server's metadata.
  app.post<{ Params: Params; Body: Static<typeof MetadataBody> }>(
    '/v2.1/servers/:id/metadata',
    { schema: { body: MetadataBody } },
    async (req) => ({ metadata: await metadata.update(req.auth, req.params.id, req.body.metadata as Record<string, string>, 'create') }),
  )

  // Replaces the server's metadata with the given items.
  app.put<{ Params: Params; Body: Static<typeof MetadataBody> }>(
    '/v2.1/servers/:id/metadata',
    { schema: { body: MetadataBody } },
    async (req) => ({
      metadata: await metadata.update(req.auth, req.params.id, req.body.metadata as Record<string, string>, 'update_all'),
    }),
  )

  app.get<{ Params: ItemParams }>('/v2.1/servers/:id/metadata/:key', async (req) => ({
    meta: { [req.params.key]: await metadata.show(req.auth, req.params.id, req.params.key) },
  }))

  app.put<{ Params: ItemParams; Body: Static<typeof MetaItemBody> }>(
    '/v2.1/servers/:id/metadata/:key',
    { schema: { body: MetaItemBody } },
    async (req) => {
      const meta = req.body.meta as Record<string, string>
      await metadata.updateItem(req.auth, req.params.id, req.params.key, meta)
      return { meta }
    },
  )

  app.delete<{ Params: ItemParams }>('/v2.1/servers/:id/metadata/:key', async (req, reply) => {
    await metadata.delete(req.auth, req.params.id, req.params.key)
    return reply.code(204).send()
  })
}
