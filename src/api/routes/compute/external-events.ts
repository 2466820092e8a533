// POST /os-server-external-events (admins: Neutron, Cinder), as Zed's
// nova/api/openstack/compute/server_external_events.py: each event answered with its status and
// code (200 accepted for a server on a host, 404 no such server, 422 no host yet, 400 a tag
// missing where required); 207 as soon as one failed (Zed dropped the 404 when none was found).
// Skiff's built-in network and disks send no such events to anything, so accepted ones change nothing.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { authorize } from '../../../compute/policy.ts'
import type { Microversion } from '../../microversion.ts'
import type { ComputeRouteDeps } from './index.ts'
import { validateBody } from './schemas.ts'

const NAMES: [number, string][] = [
  [0, 'network-changed'],
  [0, 'network-vif-plugged'],
  [0, 'network-vif-unplugged'],
  [0, 'network-vif-deleted'],
  [51, 'volume-extended'],
  [76, 'power-update'],
  [82, 'accelerator-request-bound'],
  [93, 'volume-reimaged'],
]
const TAG_REQUIRED = ['volume-extended', 'power-update', 'accelerator-request-bound']

const schema = (v: Microversion) => ({
  type: 'object',
  properties: {
    events: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        properties: {
          name: { type: 'string', enum: NAMES.filter(([min]) => v.minor >= min).map(([, n]) => n) },
          server_uuid: { type: 'string', format: 'uuid' },
          status: { type: 'string', enum: ['failed', 'completed', 'in-progress'] },
          tag: { type: 'string', maxLength: 255 },
        },
        required: ['name', 'server_uuid'],
        additionalProperties: false,
      },
    },
  },
  required: ['events'],
  additionalProperties: false,
})

type Event = { name: string; server_uuid: string; status?: string; tag?: string; code?: number }

export function externalEventRoutes(app: FastifyInstance, deps: ComputeRouteDeps) {
  app.post('/v2.1/os-server-external-events', async (req: FastifyRequest, reply: FastifyReply) => {
    validateBody(schema(req.microversion), req.body)
    authorize(req.auth, 'os_compute_api:os-server-external-events:create', 'admin')
    const events = (req.body as { events: Event[] }).events
    const servers = await deps.servers.byIds([...new Set(events.map((e) => e.server_uuid.toLowerCase()))])
    const found = new Map(servers.filter((s) => s.deleted === 0).map((s) => [s.id, s]))
    let code = 200
    const answer = events.map((e) => {
      const s = found.get(e.server_uuid.toLowerCase())
      const out: Event = { ...e }
      if (!s) Object.assign(out, { status: 'failed', code: 404 })
      else if (TAG_REQUIRED.includes(e.name) && e.tag === undefined) Object.assign(out, { status: 'failed', code: 400 })
      else if (s.host) Object.assign(out, { status: 'completed', code: 200 })
      else Object.assign(out, { status: 'failed', code: 422 })
      if (out.code !== 200) code = 207
      return out
    })
    return reply.code(code).send({ events: answer })
  })
}
