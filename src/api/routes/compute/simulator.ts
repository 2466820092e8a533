// Fault injection for the simulated hypervisor, admin only: fail, delay or hang a phase of an
// operation (rescue: rescue.power_off, rescue.boot; unrescue: unrescue.stop_rescue,
// unrescue.boot; ...) for one server or all, the next N times. Absent with other drivers.
// The rules are rows (FaultRules, wired by main.ts): a rule created through any API process
// applies to the next matching phase on whichever agent runs it.
import { Type, type Static } from '@sinclair/typebox'
import type { FastifyInstance } from 'fastify'
import { BadRequest, NotFound } from '../../../errors.ts'
import { authorize } from '../../../compute/policy.ts'
import { SIMULATED_PHASES, type ActiveFault } from '../../../drivers/simulated/fault-rules.ts'
import type { ComputeRouteDeps } from './index.ts'

const FaultBody = Type.Object(
  {
    fault: Type.Object(
      {
        operation: Type.Unsafe<ActiveFault['operation']>({ type: 'string', enum: [...SIMULATED_PHASES, 'rescue', 'unrescue', 'migrate'] }),
        server_id: Type.Optional(Type.String({ format: 'uuid' })),
        error: Type.Optional(Type.String({ minLength: 1, maxLength: 1024 })),
        delay_ms: Type.Optional(Type.Integer({ minimum: 0, maximum: 3_600_000 })),
        hang: Type.Optional(Type.Boolean()),
        count: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000 })),
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
)

const view = (f: ActiveFault) => ({
  id: f.id,
  operation: f.operation,
  server_id: f.serverId ?? null,
  error: f.error ?? null,
  delay_ms: f.delayMs ?? 0,
  hang: f.hang ?? false,
  remaining: f.count ?? null,
})

const RULE = 'skiff:simulator:faults'

export function simulatorRoutes(app: FastifyInstance, deps: ComputeRouteDeps) {
  const faults = deps.faults
  if (!faults) return

  app.get('/v2.1/os-simulator/faults', async (req) => {
    authorize(req.auth, RULE, 'admin')
    return { faults: (await faults.list()).map(view) }
  })
  app.post<{ Body: Static<typeof FaultBody> }>('/v2.1/os-simulator/faults', { schema: { body: FaultBody } }, async (req, reply) => {
    authorize(req.auth, RULE, 'admin')
    const f = req.body.fault
    // A rule that neither fails, delays nor hangs would be listed and counted but change nothing.
    if (f.error === undefined && !f.delay_ms && !f.hang)
      throw new BadRequest('A fault must fail (error), delay (delay_ms) or hang (hang) its operation.')
    const fault = await faults.add({
      operation: f.operation,
      serverId: f.server_id,
      error: f.error,
      delayMs: f.delay_ms,
      hang: f.hang,
      count: f.count,
    })
    reply.code(201)
    return { fault: view(fault) }
  })
  app.delete<{ Params: { id: string } }>('/v2.1/os-simulator/faults/:id', async (req, reply) => {
    authorize(req.auth, RULE, 'admin')
    if (!(await faults.remove(req.params.id))) throw new NotFound(`Fault ${req.params.id} could not be found.`)
    return reply.code(204).send()
  })
  app.delete('/v2.1/os-simulator/faults', async (req, reply) => {
    authorize(req.auth, RULE, 'admin')
    await faults.clear()
    return reply.code(204).send()
  })
}
