// /os-hosts (up to 2.42; 404 from 2.43), as nova/api/openstack/compute/hosts.py: the services
// of the deployment (the control plane's conductor and scheduler, one compute per agent host),
// a host's resources (totals, used now, used by its servers), and update / startup / shutdown /
// reboot answered as Nova's fake driver does (it changes nothing: os-services disables a host).
import { hostname } from 'node:os'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { authorize } from '../../../compute/policy.ts'
import { NotFound } from '../../../errors.ts'
import { has } from '../../microversion-changes.ts'
import type { ComputeRouteDeps } from './index.ts'
import { multi, validateQuery, type Query } from './query-schemas.ts'
import { validateBody } from './schemas.ts'

const ENABLE = { type: 'string', enum: ['enable', 'disable', 'Enable', 'Disable', 'ENABLE', 'DISABLE'] }
const UPDATE = {
  type: 'object',
  properties: { status: ENABLE, maintenance_mode: ENABLE },
  anyOf: [{ required: ['status'] }, { required: ['maintenance_mode'] }],
  additionalProperties: false,
}
const INDEX_QUERY = { type: 'object', properties: { zone: multi({ type: 'string' }) }, additionalProperties: true }

type Params = { Params: { host: string } }

export function osHostRoutes(app: FastifyInstance, deps: ComputeRouteDeps) {
  const gate = (req: FastifyRequest) => {
    if (has(req.microversion, 'osHostsDeprecated')) throw new NotFound('The resource could not be found.')
  }
  /** The compute host by name, or Nova's HostMappingNotFound. */
  const computeHost = async (name: string) => {
    const h = (await deps.hosts.list()).find((x) => x.name === name)
    if (!h) throw new NotFound(`Host '${name}' is not mapped to any cell`)
    return h
  }

  app.get<{ Querystring: Query }>('/v2.1/os-hosts', async (req) => {
    gate(req)
    const q = validateQuery(INDEX_QUERY, req.query)
    authorize(req.auth, 'os_compute_api:os-hosts:list', 'admin')
    // webob's req.GET.get: the last value; an empty zone filters nothing. Disabled services are left out.
    const zone = q.zone?.at(-1)
    const zones = await deps.aggregates.hostZones()
    const control = hostname()
    const all = [
      { host_name: control, service: 'conductor', zone: 'internal' },
      { host_name: control, service: 'scheduler', zone: 'internal' },
      ...(await deps.hosts.list())
        .filter((h) => !h.service_disabled)
        .map((h) => ({ host_name: h.name, service: 'compute', zone: zones.get(h.name) ?? 'nova' })),
    ]
    return { hosts: all.filter((h) => !zone || h.zone === zone) }
  })

  app.get<Params>('/v2.1/os-hosts/:host', async (req) => {
    gate(req)
    authorize(req.auth, 'os_compute_api:os-hosts:show', 'admin')
    const name = req.params.host
    await computeHost(name)
    const h = (await deps.hypervisors.list(req.auth, 'show')).find((x) => x.name === name)
    if (!h) throw new NotFound(`Compute host ${name} could not be found.`)
    const u = h.usage
    const resource = (project: string, cpu: number, memory_mb: number, disk_gb: number) => ({
      resource: { host: name, project, cpu, memory_mb, disk_gb },
    })
    const used = await deps.hypervisors.usageByProject(name)
    const sum = (f: (x: (typeof used)[number]) => number) => used.reduce((n, x) => n + f(x), 0)
    return {
      host: [
        resource('(total)', u.vcpus, u.ram_mb, u.disk_gb),
        resource('(used_now)', u.used_vcpus, u.used_ram_mb, u.used_disk_gb),
        resource(
          '(used_max)',
          sum((x) => x.vcpus),
          sum((x) => x.ram_mb),
          sum((x) => x.disk_gb),
        ),
        ...used.map((x) => resource(x.project_id, x.vcpus, x.ram_mb, x.disk_gb)),
      ],
    }
  })

  app.put<Params>('/v2.1/os-hosts/:host', async (req) => {
    gate(req)
    validateBody(UPDATE, req.body)
    authorize(req.auth, 'os_compute_api:os-hosts:update', 'admin')
    const name = req.params.host
    const body = req.body as { status?: string; maintenance_mode?: string }
    await computeHost(name)
    const out: Record<string, string> = { host: name }
    const enable = (s: string) => s.trim().toLowerCase() === 'enable'
    if (body.status !== undefined) out.status = enable(body.status) ? 'enabled' : 'disabled'
    if (body.maintenance_mode !== undefined) out.maintenance_mode = enable(body.maintenance_mode) ? 'on_maintenance' : 'off_maintenance'
    return out
  })

  for (const [action, rule] of [
    ['startup', 'start'],
    ['shutdown', 'shutdown'],
    ['reboot', 'reboot'],
  ] as const) {
    app.get<Params>(`/v2.1/os-hosts/:host/${action}`, async (req) => {
      gate(req)
      authorize(req.auth, `os_compute_api:os-hosts:${rule}`, 'admin')
      await computeHost(req.params.host)
      return { host: req.params.host, power_action: action }
    })
  }
}
