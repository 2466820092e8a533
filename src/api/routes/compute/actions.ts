// POST /servers/{id}/action: one action key per body, dispatched by name, each validated
// against Nova's schema before the server is looked up.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { BadRequest, DomainError } from '../../../errors.ts'
import type { RebuildRequest } from '../../../compute/server-service.ts'
import type { ComputeRouteDeps } from './index.ts'
import { consoleActions } from './remote-consoles.ts'
import { moveActions } from './move-actions.ts'
import { shelveActions } from './shelve-actions.ts'
import { validateAction } from './schemas.ts'
import { has } from '../../microversion-changes.ts'
import { extrasWanted, serverDetail } from './views.ts'

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- each action's handler takes its own body, validated before
type Handler = (req: FastifyRequest<{ Params: { id: string } }>, reply: FastifyReply, value: any) => Promise<unknown>

export function actionRoutes(app: FastifyInstance, deps: ComputeRouteDeps) {
  const { servers } = deps
  const base = deps.computeUrl
  // Nova's 202 to an action has an empty body but still says `Content-Type: application/json`.
  const accepted = (reply: FastifyReply) => reply.code(202).type('application/json').send()

  const handlers: Record<string, Handler> = {
    // Nova answers 200, not 202, to rescue: every client (gophercloud, fog) depends on it.
    rescue: async (req, reply, v: { adminPass?: string; rescue_image_ref?: string } | null) => {
      const { adminPass } = await deps.rescues.rescue(
        req.auth,
        req.params.id,
        { adminPass: v?.adminPass, rescueImageRef: v?.rescue_image_ref, allowVolumeBacked: has(req.microversion, 'rescueVolumeBacked') },
        req.id,
      )
      return reply.code(200).send(adminPass === undefined ? {} : { adminPass })
    },
    unrescue: async (req, reply) => {
      await deps.rescues.unrescue(req.auth, req.params.id, req.id)
      return accepted(reply)
    },
    'os-stop': async (req, reply) => {
      await servers.stop(req.auth, req.params.id, req.id)
      return accepted(reply)
    },
    'os-start': async (req, reply) => {
      await servers.start(req.auth, req.params.id, req.id)
      return accepted(reply)
    },
    pause: async (req, reply) => {
      await servers.pause(req.auth, req.params.id, req.id)
      return accepted(reply)
    },
    unpause: async (req, reply) => {
      await servers.unpause(req.auth, req.params.id, req.id)
      return accepted(reply)
    },
    reboot: async (req, reply, v: { type: string }) => {
      await servers.reboot(req.auth, req.params.id, v.type.toUpperCase() === 'HARD' ? 'HARD' : 'SOFT', req.id)
      return accepted(reply)
    },
    forceDelete: async (req, reply) => {
      await servers.forceDelete(req.auth, req.params.id, req.id)
      return accepted(reply)
    },
    restore: async (req) => servers.restore(req.auth, req.params.id),
    // Admins: vm_state active or error, no task (and the stuck task's work ends).
    'os-resetState': async (req, reply, v: { state: 'active' | 'error' }) => {
      await servers.resetState(req.auth, req.params.id, v.state, req.id)
      return accepted(reply)
    },
    // 2.73: with a reason (the schema admits one only from there).
    lock: async (req, reply, v: { locked_reason?: string } | null | undefined) => {
      const reason = has(req.microversion, 'lockedReason') ? (v?.locked_reason ?? undefined) : undefined
      await servers.lock(req.auth, req.params.id, reason)
      return accepted(reply)
    },
    unlock: async (req, reply) => {
      await servers.unlock(req.auth, req.params.id)
      return accepted(reply)
    },
    rebuild: async (req, reply, v: RebuildRequest) => {
      const { server, adminPass, userData } = await servers.rebuild(req.auth, req.params.id, v, req.id)
      const mv = req.microversion
      const [ips, extras] = await Promise.all([servers.fixedIps([server.id]), servers.extras([server], extrasWanted(mv, req.auth))])
      const view = serverDetail(server, {
        base,
        ctx: req.auth,
        v: mv,
        ips: ips.get(server.id) ?? [],
        extras: extras.get(server.id),
        answering: 'rebuild',
      })
      if (adminPass !== undefined) view.adminPass = adminPass
      // 2.57: the user data, under its own key (the extended attribute's is left out).
      if (has(mv, 'personalityRemoved')) view.user_data = userData
      // Nova's rebuild answer carries a Location too (its _add_location).
      return reply.code(202).header('location', `${base}/v2.1/servers/${server.id}`).send({ server: view })
    },
    // Nova asks the compute host: the server's agent answers with its live console.
    'os-getConsoleOutput': async (req, reply, v: { length?: number | string | null }) => {
      const length = v.length === undefined || v.length === null ? -1 : Number(v.length)
      const output = await deps.consoles.output(req.auth, req.params.id, length, req.id)
      return reply.code(200).send({ output })
    },
    // os-getVNCConsole, os-getSPICEConsole, os-getRDPConsole, os-getSerialConsole (2.1–2.5).
    ...consoleActions(deps),
    // resize, confirmResize, revertResize, migrate, os-migrateLive, evacuate.
    ...moveActions(deps),
    // suspend, resume, createImage, createBackup, shelve, shelveOffload, unshelve
    ...shelveActions(deps),
  }

  // idempotent: Idempotency-Key replays (api/idempotency.ts); rateLimited: per-project bucket (api/rate-limit.ts).
  app.post<{ Params: { id: string }; Body: unknown }>(
    '/v2.1/servers/:id/action',
    { config: { idempotent: true, rateLimited: true } },
    async (req, reply) => {
      const body = req.body
      // Exactly one action per body, else Nova's "Malformed request body".
      if (body === null || typeof body !== 'object' || Array.isArray(body) || Object.keys(body).length !== 1) {
        throw new BadRequest('Malformed request body')
      }
      const [action, value] = Object.entries(body as Record<string, unknown>)[0]!
      // Own keys only: `{"hasOwnProperty": ...}` is no action (a lookup would find Object.prototype's).
      const handler = Object.hasOwn(handlers, action) ? handlers[action] : undefined
      if (!handler) throw new BadRequest(`There is no such action: ${action}`)
      // The legacy v2 path accepts the seed's {"rescue": "none"}: rescue from the base image.
      const normalized = req.legacyV2 && action === 'rescue' && (value === 'none' || value === '') ? null : value
      validateAction(action, { [action]: normalized }, req.microversion)
      return handler(req, reply, normalized)
    },
  )

  // Other methods on /action: 405 with the allowed one named.
  for (const method of ['GET', 'PUT', 'DELETE', 'PATCH'] as const) {
    app.route({
      method,
      url: '/v2.1/servers/:id/action',
      handler: async () => {
        throw new DomainError('badMethod', 'The method specified is not allowed for this resource.', { allow: 'POST' })
      },
    })
  }
}
