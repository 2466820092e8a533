// /os-keypairs: create (generated or imported), list, show, delete — per user.
import { Type, type Static } from '@sinclair/typebox'
import type { FastifyInstance } from 'fastify'
import { authorize } from '../../../compute/policy.ts'
import type { ComputeRouteDeps } from './index.ts'
import { keypairView } from './views.ts'

const CreateKeypairBody = Type.Object(
  {
    keypair: Type.Object(
      {
        name: Type.String({ minLength: 1, maxLength: 255, pattern: '^[a-zA-Z0-9 _-]+$' }),
        public_key: Type.Optional(Type.String()),
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
)

export function keypairRoutes(app: FastifyInstance, deps: ComputeRouteDeps) {
  const { keypairs } = deps
  app.get('/v2.1/os-keypairs', async (req) => {
    authorize(req.auth, 'os_compute_api:os-keypairs:index', 'reader')
    const rows = await keypairs.list(req.auth.userId)
    return { keypairs: rows.map((k) => ({ keypair: keypairView(k) })) }
  })
  app.get<{ Params: { name: string } }>('/v2.1/os-keypairs/:name', async (req) => {
    authorize(req.auth, 'os_compute_api:os-keypairs:show', 'reader')
    return { keypair: keypairView(await keypairs.get(req.auth.userId, req.params.name), { full: true }) }
  })
  app.post<{ Body: Static<typeof CreateKeypairBody> }>('/v2.1/os-keypairs', { schema: { body: CreateKeypairBody } }, async (req) => {
    authorize(req.auth, 'os_compute_api:os-keypairs:create', 'member')
    const { row, privateKey } = await keypairs.create(req.auth.userId, req.body.keypair.name, req.body.keypair.public_key)
    // 200 at 2.1 (201 only from 2.2 on).
    return { keypair: keypairView(row, { privateKey, created: true }) }
  })
  app.delete<{ Params: { name: string } }>('/v2.1/os-keypairs/:name', async (req, reply) => {
    authorize(req.auth, 'os_compute_api:os-keypairs:delete', 'member')
    await keypairs.delete(req.auth.userId, req.params.name)
    return reply.code(202).send()
  })
}
