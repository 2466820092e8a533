// The server actions that move a server (POST /servers/{id}/action): resize, confirmResize,
// revertResize, migrate, os-migrateLive, evacuate. Bodies are validated before (schemas.ts);
// answers as nova/api/openstack/compute/{servers,migrate_server,evacuate}.py give them.
import type { FastifyReply, FastifyRequest } from 'fastify'
import { has } from '../../microversion-changes.ts'
import type { ComputeRouteDeps } from './index.ts'
import { novaBool } from './schemas.ts'

type Req = FastifyRequest<{ Params: { id: string } }>
const accepted = (reply: FastifyReply) => reply.code(202).type('application/json').send()

export function moveActions(deps: ComputeRouteDeps) {
  const { moves } = deps
  return {
    resize: async (req: Req, reply: FastifyReply, v: { flavorRef: string | number }) => {
      await moves.resize(req.auth, req.params.id, String(v.flavorRef), req.id)
      return accepted(reply)
    },
    // Nova answers 204 to confirmResize (for backward compatibility), 202 to revertResize.
    confirmResize: async (req: Req, reply: FastifyReply) => {
      await moves.confirmResize(req.auth, req.params.id, req.id)
      return reply.code(204).send()
    },
    revertResize: async (req: Req, reply: FastifyReply) => {
      await moves.revertResize(req.auth, req.params.id, req.id)
      return accepted(reply)
    },
    migrate: async (req: Req, reply: FastifyReply, v: { host?: string | null } | null | undefined) => {
      const host = has(req.microversion, 'migrateToHost') && v && typeof v === 'object' ? (v.host ?? null) : null
      await moves.migrate(req.auth, req.params.id, host, req.id)
      return accepted(reply)
    },
    'os-migrateLive': async (req: Req, reply: FastifyReply, v: { host: string | null; force?: unknown }) => {
      const force = has(req.microversion, 'liveMigrateForce') && !has(req.microversion, 'forceRemoved') && novaBool(v.force)
      await moves.liveMigrate(req.auth, req.params.id, v.host ?? null, force, has(req.microversion, 'asyncLiveMigrationChecks'), req.id)
      return accepted(reply)
    },
    evacuate: async (
      req: Req,
      reply: FastifyReply,
      v: { host?: string; adminPass?: string; onSharedStorage?: unknown; force?: unknown },
    ) => {
      const mv = req.microversion
      const below214 = !has(mv, 'evacuateWithoutSharedStorage')
      const { adminPass } = await moves.evacuate(
        req.auth,
        req.params.id,
        {
          host: v.host,
          adminPass: v.adminPass,
          onSharedStorage: below214 ? novaBool(v.onSharedStorage) : false,
          force: has(mv, 'evacuateForce') && !has(mv, 'forceRemoved') ? novaBool(v.force) : false,
        },
        req.id,
      )
      // Below 2.14 the new password is in the answer (with enable_instance_password); from 2.14 nothing.
      if (below214 && adminPass !== undefined) return reply.code(200).send({ adminPass })
      return reply
        .code(200)
        .type('application/json')
        .send(below214 ? {} : undefined)
    },
  }
}
