// Remote consoles: POST /servers/{id}/remote-consoles from 2.6, and before it the actions
// os-getVNCConsole, os-getSPICEConsole, os-getRDPConsole, os-getSerialConsole (2.1–2.5), as
// nova/api/openstack/compute/remote_consoles.py. The serial protocol is served when `skiff serve`
// runs its serial proxy (src/console/serial-console.ts): a ws:// URL with a token valid for ten
// minutes (Nova's token_ttl). The other protocols (and serial with no proxy) are answered as a
// Nova whose compute host has that console disabled answers: 400 "Unavailable console type
// <type>." (ComputeManager's `if not CONF.vnc.enabled: raise ConsoleTypeUnavailable`).
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { authorize } from '../../../compute/policy.ts'
import { InstanceInvalidState } from '../../../compute/errors.ts'
import type { Server } from '../../../compute/server.ts'
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
  const consoleOf = serialConsole(deps)

  app.post<{ Params: { id: string }; Body: unknown }>('/v2.1/servers/:id/remote-consoles', async (req, reply) => {
    if (!has(req.microversion, 'remoteConsoles')) return reply.callNotFound()
    validateBody(createSchemaAt(req.microversion), req.body)
    // Here the server is looked up before the policy (its project is the policy's target).
    const server = await deps.servers.get(req.auth, req.params.id)
    authorize(req.auth, POLICY, 'member')
    const { protocol, type } = (req.body as { remote_console: { protocol: string; type: string } }).remote_console
    const url = await consoleOf(server, protocol, type)
    return { remote_console: { protocol, type, url } }
  })
}

/** The 2.1–2.5 console actions, for the server action dispatcher (actions.ts). */
export function consoleActions(deps: ComputeRouteDeps) {
  const consoleOf = serialConsole(deps)
  const handler = (action: string) => async (req: FastifyRequest<{ Params: { id: string } }>, _reply: FastifyReply, value: unknown) => {
    // Nova's versioned method: from 2.6 the action is not found at all.
    if (has(req.microversion, 'remoteConsoles')) throw new NotFound('The resource could not be found.')
    validateBody(ACTIONS[action]!, { [action]: value })
    // Here the policy comes first, then the server.
    authorize(req.auth, POLICY, 'member')
    const server = await deps.servers.get(req.auth, req.params.id)
    const type = (value as { type: string }).type
    const protocol = action === 'os-getSerialConsole' ? 'serial' : 'other'
    // The 2.1 answer: {"console": {"type", "url"}}.
    return { console: { type, url: await consoleOf(server, protocol, type) } }
  }
  return Object.fromEntries(Object.keys(ACTIONS).map((a) => [a, handler(a)]))
}

/**
 * compute.API's check_instance_host and reject_instance_state, then the compute host's answer:
 * a serial console URL, or (any other protocol, or no serial proxy) "Unavailable console type".
 */
function serialConsole(deps: ComputeRouteDeps) {
  return async (server: Pick<Server, 'id' | 'host' | 'task_state'>, protocol: string, type: string): Promise<string> => {
    if (!server.host) throw new Conflict(`Instance ${server.id} is not ready`)
    if (protocol !== 'serial' || !deps.serialConsole) throw new BadRequest(`Unavailable console type ${type}.`)
    if (server.task_state === 'deleting' || server.task_state === 'migrating')
      throw new InstanceInvalidState(server.id, 'get_serial_console', 'task_state', server.task_state)
    // ComputeManager.get_serial_console's ConsoleTypeInvalid (the 2.6 body may pair serial with another type).
    if (type !== 'serial') throw new BadRequest(`Invalid console type ${type}`)
    const token = await deps.serialConsole.tokens.issue({ serverId: server.id, host: server.host, consoleType: type })
    return `${deps.serialConsole.url}/?token=${token}`
  }
}
