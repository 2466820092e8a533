// The rescue extension resource (Skiff's own; Nova has no such path):
//   GET    /v2.1/servers/{id}/rescue   the rescue as it is: image, times, how to reach it
//   POST   /v2.1/servers/{id}/rescue   rescue with keys and an auto-unrescue time
//   PATCH  /v2.1/servers/{id}/rescue   change when it ends by itself
//   DELETE /v2.1/servers/{id}/rescue   unrescue
// The Nova-compatible action (POST /servers/{id}/action {"rescue": ...}) keeps its exact schema.
import { Type, type Static } from '@sinclair/typebox'
import type { FastifyInstance } from 'fastify'
import { isoSeconds } from '../../../clock.ts'
import { BadRequest } from '../../../errors.ts'
import { fingerprint, parsePublicKey } from '../../../compute/keypair-service.ts'
import { statusOf } from '../../../compute/states.ts'
import type { Server } from '../../../compute/server.ts'
import type { ComputeRouteDeps } from './index.ts'

const MAX_SECONDS = 7 * 24 * 3600
const AutoUnrescueAfter = Type.Union([Type.Integer({ minimum: 1, maximum: MAX_SECONDS }), Type.Null()])

const RescueBody = Type.Object(
  {
    rescue: Type.Object(
      {
        image_ref: Type.Optional(Type.String({ format: 'uuid' })),
        admin_pass: Type.Optional(Type.String({ maxLength: 255 })),
        key_name: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
        public_key: Type.Optional(Type.String({ minLength: 1, maxLength: 16384 })),
        auto_unrescue_after: Type.Optional(AutoUnrescueAfter),
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
)

const PatchBody = Type.Object(
  {
    rescue: Type.Object({ auto_unrescue_after: AutoUnrescueAfter }, { additionalProperties: false }),
  },
  { additionalProperties: false },
)

export function rescueRoutes(app: FastifyInstance, deps: ComputeRouteDeps) {
  const { servers } = deps
  const base = deps.computeUrl

  /** The rescue system's SSH: its host key from the rescue, the forwarded address where the driver has one. */
  function sshView(hostKey: string | null, access: { ssh_host: string; ssh_port: number } | undefined) {
    return { ...(access ? { host: access.ssh_host, port: access.ssh_port } : {}), host_key_fingerprint: hostKey }
  }

  async function view(s: Server) {
    const { rescue: r, imageName, access } = await deps.rescues.current(s)
    const keys = (JSON.parse(r.public_keys) as string[]).map((k) => {
      const { type, blob } = parsePublicKey(k)
      return { type, fingerprint: fingerprint(blob) }
    })
    return {
      server_id: s.id,
      status: s.task_state === 'rescuing' ? 'rescuing' : s.task_state === 'unrescuing' ? 'unrescuing' : 'rescued',
      server_status: statusOf(s.vm_state, s.task_state),
      image: { id: r.image_id, name: imageName, links: [{ rel: 'bookmark', href: `${base}/images/${r.image_id}` }] },
      requested_at: isoSeconds(r.requested_at),
      rescued_at: r.rescued_at ? isoSeconds(r.rescued_at) : null,
      expires_at: r.expires_at ? isoSeconds(r.expires_at) : null,
      auto_unrescue_after: r.auto_unrescue_seconds,
      authorized_keys: keys,
      // The server's own disk is the rescue system's second disk, untouched until unrescue.
      disks: [
        { role: 'rescue', image_id: r.image_id },
        { role: 'server', note: "the server's own disk, attached second" },
      ],
      access: {
        console: { action: 'os-getConsoleOutput', href: `${base}/v2.1/servers/${s.id}/action` },
        ssh: sshView(r.host_key_fingerprint, access),
      },
      links: [{ rel: 'self', href: `${base}/v2.1/servers/${s.id}/rescue` }],
    }
  }

  app.get<{ Params: { id: string } }>('/v2.1/servers/:id/rescue', async (req) => {
    const s = await servers.show(req.auth, req.params.id)
    return { rescue: await view(s) }
  })

  app.post<{ Params: { id: string }; Body: Static<typeof RescueBody> }>(
    '/v2.1/servers/:id/rescue',
    { schema: { body: RescueBody } },
    async (req, reply) => {
      const b = req.body.rescue
      if (b.key_name !== undefined && b.public_key !== undefined) throw new BadRequest('Give key_name or public_key, not both.')
      const { adminPass } = await deps.rescues.rescue(
        req.auth,
        req.params.id,
        {
          adminPass: b.admin_pass,
          rescueImageRef: b.image_ref,
          keyName: b.key_name,
          publicKey: b.public_key,
          autoUnrescueAfter: b.auto_unrescue_after,
        },
        req.id,
      )
      const s = await servers.show(req.auth, req.params.id)
      reply.code(202)
      return { rescue: await view(s), ...(adminPass === undefined ? {} : { adminPass }) }
    },
  )

  app.patch<{ Params: { id: string }; Body: Static<typeof PatchBody> }>(
    '/v2.1/servers/:id/rescue',
    { schema: { body: PatchBody } },
    async (req) => {
      await deps.rescues.setRescueExpiry(req.auth, req.params.id, req.body.rescue.auto_unrescue_after)
      return { rescue: await view(await servers.show(req.auth, req.params.id)) }
    },
  )

  app.delete<{ Params: { id: string } }>('/v2.1/servers/:id/rescue', async (req, reply) => {
    await deps.rescues.unrescue(req.auth, req.params.id, req.id)
    return reply.code(202).send()
  })
}
