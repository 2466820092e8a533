// Remote consoles: POST /servers/{id}/remote-consoles from 2.6, and before it the actions
// os-getVNCConsole, os-getSPICEConsole, os-getRDPConsole, os-getSerialConsole (2.1–2.5), as
// nova/api/openstack/compute/remote_consoles.py. Skiff configures no console proxy, so every
// request that gets through Nova's checks is answered as a Nova whose compute host has that
// console disabled answers: 400 "Unavailable console type <type>." (ComputeManager's
// `if not CONF.vnc.enabled: raise ConsoleTypeUnavailable`, and likewise for each protocol).
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { authorize } from '../../../compute/policy.ts'
import { BadRequest, Conflict, NotFound } from '../../../errors.ts'
import { has } from '../../microversion-changes.ts'
import type { Microversion } from '../../microversion.ts'
import type { ComputeRouteDeps } from './index.ts'
import { validateBody } from './schemas.ts'

const POLICY = 'os_compute_api:os-remote-consoles'

const actionSchema = (action: string, types: string[]) => ({
  type: 'object',
  properties: {
    [action]: {
      type: 'object',
      properties: { type: { type: 'string', enum: types } },
      required: ['type'],
      additionalProperties: false,
    },
  },
  required: [action],
  additionalProperties: false,
})
const ACTIONS: Record<string, object> = {
  'os-getVNCConsole': actionSchema('os-getVNCConsole', ['novnc', 'xvpvnc']),
  'os-getSPICEConsole': actionSchema('os-getSPICEConsole', ['spice-html5']),
  'os-getRDPConsole': actionSchema('os-getRDPConsole', ['rdp-html5']),
  'os-getSerialConsole': actionSchema('os-getSerialConsole', ['serial']),
}

const createSchema = (protocols: string[], types: string[]) => ({
  type: 'object',
  properties: {
    remote_console: {
      type: 'object',
      properties: { protocol: { type: 'string', enum: protocols }, type: { type: 'string', enum: types } },
      required: ['protocol', 'type'],
      additionalProperties: false,
    },
  },
  required: ['remote_console'],
  additionalProperties: false,
})
const CREATE_26 = createSchema(['vnc', 'spice', 'rdp', 'serial'], ['novnc', 'xvpvnc', 'rdp-html5', 'spice-html5', 'serial'])
// 2.8 (mksConsole) adds the mks protocol and its webmks type.
const CREATE_28 = createSchema(
  ['vnc', 'spice', 'rdp', 'serial', 'mks'],
  ['novnc', 'xvpvnc', 'rdp-html5', 'spice-html5', 'serial', 'webmks'],
)
const createSchemaAt = (v: Microversion) => (has(v, 'mksConsole') ? CREATE_28 : CREATE_26)

export function remoteConsoleRoutes(app: FastifyInstance, deps: ComputeRouteDeps) {
  /** compute.API's check_instance_host, then the compute host's answer with the console disabled. */
  const unavailable = async (server: { id: string; host: string | null }, type: string): Promise<never> => {
    if (!server.host) throw new Conflict(`Instance ${server.id} is not ready`)
    throw new BadRequest(`Unavailable console type ${type}.`)
  }

  app.post<{ Params: { id: string }; Body: unknown }>('/v2.1/servers/:id/remote-consoles', async (req, reply) => {
    if (!has(req.microversion, 'remoteConsoles')) return reply.callNotFound()
    validateBody(createSchemaAt(req.microversion), req.body)
    // Here the server is looked up before the policy (its project is the policy's target).
    const server = await deps.servers.get(req.auth, req.params.id)
    authorize(req.auth, POLICY, 'member')
    return unavailable(server, (req.body as { remote_console: { type: string } }).remote_console.type)
  })
}

/** The 2.1–2.5 console actions, for the server action dispatcher (actions.ts). */
export function consoleActions(deps: ComputeRouteDeps) {
  const handler =
    (action: string) =>
    async (req: FastifyRequest<{ Params: { id: string } }>, _reply: FastifyReply, value: unknown): Promise<never> => {
      // Nova's versioned method: from 2.6 the action is not found at all.
      if (has(req.microversion, 'remoteConsoles')) throw new NotFound('The resource could not be found.')
      validateBody(ACTIONS[action]!, { [action]: value })
      // Here the policy comes first, then the server.
      authorize(req.auth, POLICY, 'member')
      const server = await deps.servers.get(req.auth, req.params.id)
      if (!server.host) throw new Conflict(`Instance ${server.id} is not ready`)
      throw new BadRequest(`Unavailable console type ${(value as { type: string }).type}.`)
    }
  return Object.fromEntries(Object.keys(ACTIONS).map((a) => [a, handler(a)]))
}
