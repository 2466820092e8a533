// The rescue extension resource (Skiff's own; Nova has no such path):
//   GET    /v2.1/servers/{id}/rescue   the rescue as it is: image, times, how to reach it
//   POST   /v2.1/servers/{id}/rescue   rescue with keys and an auto-unrescue time
//   PATCH  /v2.1/servers/{id}/rescue   change when it ends by itself
//   DELETE /v2.1/servers/{id}/rescue   unrescue (`?discard_changes=true` or {"unrescue": {"discard_changes": true}}:
//                                      back to the checkpoint taken when the rescue began)
// The Nova-compatible action (POST /servers/{id}/action {"rescue": ...}) keeps its exact schema.
import { Type, type Static } from '@sinclair/typebox'
import type { FastifyInstance } from 'fastify'
import { isoSeconds } from '../../../clock.ts'
import { BadRequest } from '../../../errors.ts'
import { fingerprint, parsePublicKey } from '../../../compute/keypair-service.ts'
import { statusOf } from '../../../compute/states.ts'
import type { Server } from '../../../compute/server.ts'
import type { ComputeRouteDeps } from './index.ts'
import { BOOLEAN_STRING } from './parameter-types.ts'

const TRUE_STRINGS = new Set(['True', 'TRUE', 'true', '1', 'ON', 'On', 'on', 'YES', 'Yes', 'yes'])

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
        checkpoint: Type.Optional(Type.Boolean()),
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
)

const UnrescueQuery = Type.Object({ discard_changes: Type.Optional(Type.Unsafe<string>(BOOLEAN_STRING)) }, { additionalProperties: false })

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
    const { rescue: r, imageName, access, stable, disks } = await deps.rescues.current(s)
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
      // Legacy: the rescue disk first, the server's own disk second. Stable device (the rescue
      // image's hw_rescue_device / hw_rescue_bus): the server's disks in their places, the rescue
      // disk last, booted (boot_index 1).
      stable_device_rescue: stable !== null,
      disks: disks.map((d) => (d.role === 'rescue' ? { ...d, image_id: r.image_id } : d)),
      // The server's disk as it was when the rescue began, for an unrescue that discards the changes.
      checkpoint: r.checkpoint === null ? null : { status: r.checkpoint, taken_at: r.checkpoint_at ? isoSeconds(r.checkpoint_at) : null },
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
          checkpoint: b.checkpoint,
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

  // The body is optional (most clients send none with a DELETE): checked here, not by a route schema.
  app.delete<{ Params: { id: string }; Querystring: Static<typeof UnrescueQuery> }>(
    '/v2.1/servers/:id/rescue',
    { schema: { querystring: UnrescueQuery } },
    async (req, reply) => {
      const q = req.query.discard_changes === undefined ? undefined : TRUE_STRINGS.has(req.query.discard_changes)
      const b = unrescueBodyDiscard(req.body)
      if (q !== undefined && b !== undefined && q !== b) throw new BadRequest('discard_changes differs between the query and the body.')
      await deps.rescues.unrescue(req.auth, req.params.id, req.id, { discardChanges: q ?? b ?? false })
      return reply.code(202).send()
    },
  )
}

/** `discard_changes` of an unrescue body: none, null, `{"unrescue": null}` or `{"unrescue": {"discard_changes": bool}}`. */
function unrescueBodyDiscard(body: unknown): boolean | undefined {
  if (body === undefined || body === null) return undefined
  const bad = () => new BadRequest('The unrescue body is {"unrescue": {"discard_changes": true|false}} or none.')
  if (typeof body !== 'object' || Array.isArray(body)) throw bad()
  const keys = Object.keys(body)
  if (keys.length !== 1 || keys[0] !== 'unrescue') throw bad()
  const u = (body as { unrescue: unknown }).unrescue
  if (u === null) return undefined
  if (typeof u !== 'object' || Array.isArray(u)) throw bad()
  const inner = Object.keys(u)
  if (inner.some((k) => k !== 'discard_changes')) throw bad()
  const d = (u as { discard_changes?: unknown }).discard_changes
  if (d !== undefined && typeof d !== 'boolean') throw bad()
  return d as boolean | undefined
}
