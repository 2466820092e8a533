// /servers/{id}/os-server-password: show (200 {"password": ...}) and clear (204).
import type { FastifyInstance } from 'fastify'
import type { ServerPasswordService } from '../../../compute/server-password-metadata.ts'

export function passwordRoutes(app: FastifyInstance, passwords: ServerPasswordService) {
  app.get<{ Params: { id: string } }>('/v2.1/servers/:id/os-server-password', async (req) => ({
    password: await passwords.show(req.auth, req.params.id),
  }))

  app.delete<{ Params: { id: string } }>('/v2.1/servers/:id/os-server-password', async (req, reply) => {
    await passwords.clear(req.auth, req.params.id)
    return reply.code(204).send()
  })
}
