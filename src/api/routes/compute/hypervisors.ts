// /os-hypervisors: list, detail, show, statistics, and before 2.53 /{pattern}/search and
// /{pattern}/servers, as nova/api/openstack/compute/hypervisors.py: pagination from 2.33
// (limit, marker, hypervisors_links); from 2.53 uuid ids, ?hypervisor_hostname_pattern and
// ?with_servers instead of the search and servers routes; from 2.88 the detail view loses its
// resource figures (placement has them) and gains `uptime`, and statistics and uptime are gone.
import { createHash } from 'node:crypto'
import { arch } from 'node:process'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { Hypervisor } from '../../../compute/hypervisor-service.ts'
import { BadRequest, DomainError, NotFound } from '../../../errors.ts'
import { isUuidLike } from '../../formats.ts'
import { has } from '../../microversion-changes.ts'
import type { Microversion } from '../../microversion.ts'
import { collectionLinks } from './collection-links.ts'
import type { ComputeRouteDeps } from './index.ts'
import { serviceUuid } from './os-services.ts'
import { multi, NON_NEGATIVE_INTEGER, PAGINATION, validateQuery, type Query } from './query-schemas.ts'
import { BOOLEAN_STRING } from './parameter-types.ts'

const v233 = (v: Microversion) => has(v, 'hypervisorsPagination')
const v288 = (v: Microversion) => has(v, 'hypervisorStatisticsRemoved')

/** A hypervisor's uuid (2.53): stable, derived from its host name, distinct from its service's. */
export function hypervisorUuid(host: string): string {
  const h = createHash('sha1').update(`skiff compute node ${host}`).digest('hex')
  const variant = ((parseInt(h[16]!, 16) & 0x3) | 0x8).toString(16)
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-${variant}${h.slice(17, 20)}-${h.slice(20, 32)}`
}

const single = (schema: object) => ({ ...multi(schema), maxItems: 1 })
const INDEX_253 = {
  type: 'object',
  properties: {
    limit: single(NON_NEGATIVE_INTEGER),
    marker: single({ type: 'string' }),
    hypervisor_hostname_pattern: single({ type: 'string', pattern: '^[a-zA-Z0-9-._]*$', minLength: 1, maxLength: 255 }),
    with_servers: single(BOOLEAN_STRING),
  },
  additionalProperties: false,
}
const SHOW_253 = { type: 'object', properties: { with_servers: single(BOOLEAN_STRING) }, additionalProperties: false }
const ANY = { type: 'object', properties: {}, additionalProperties: true }
const truthy = (s: string | undefined) => s !== undefined && ['1', 'true', 'on', 'yes'].includes(s.toLowerCase())

const cpuArch = arch === 'x64' ? 'x86_64' : arch === 'arm64' ? 'aarch64' : arch

function cpuInfo(h: Hypervisor): Record<string, unknown> {
  return { arch: cpuArch, model: '', vendor: '', features: [], topology: { cores: h.usage.vcpus, threads: 1, sockets: 1 } }
}

export function hypervisorRoutes(app: FastifyInstance, deps: ComputeRouteDeps) {
  const { hypervisors } = deps
  const base = deps.computeUrl
  const idOf = (h: Hypervisor, v: Microversion) => (has(v, 'serviceUuids') ? hypervisorUuid(h.name) : h.rank)

  function view(h: Hypervisor, v: Microversion, detail: boolean, servers?: { name: string; uuid: string }[], withServers = false) {
    const out: Record<string, unknown> = {
      id: idOf(h, v),
      hypervisor_hostname: h.name,
      state: h.up ? 'up' : 'down',
      status: h.disabled ? 'disabled' : 'enabled',
    }
    if (detail) {
      // Nova's fake driver is 'fake' at version 1000; the qemu driver is QEMU's (libvirt's names).
      out.hypervisor_type = h.driver === 'qemu' ? 'QEMU' : 'fake'
      out.hypervisor_version = 1000
      // Nova's compute node host_ip (my_ip): the address the host's agent registered; the simulated driver's hosts have none.
      out.host_ip = h.address ?? '127.0.0.1'
      out.service = { id: has(v, 'serviceUuids') ? serviceUuid(h.name) : h.rank, host: h.name, disabled_reason: h.disabledReason }
      if (!v288(v)) {
        const u = h.usage
        Object.assign(out, {
          vcpus: u.vcpus,
          memory_mb: u.ram_mb,
          local_gb: u.disk_gb,
          vcpus_used: u.used_vcpus,
          memory_mb_used: u.used_ram_mb,
          local_gb_used: u.used_disk_gb,
          free_ram_mb: u.ram_mb - u.used_ram_mb,
          free_disk_gb: u.disk_gb - u.used_disk_gb,
          current_workload: h.workload,
          running_vms: u.servers,
          disk_available_least: u.disk_gb - u.used_disk_gb,
          // 2.28: an object; before, its JSON text.
          cpu_info: has(v, 'cpuInfoObject') ? cpuInfo(h) : JSON.stringify(cpuInfo(h)),
        })
      } else {
        // The host's `uptime` output: Skiff's agents do not report one (Nova's fake driver neither).
        out.uptime = null
      }
    }
    if (servers?.length) out.servers = servers
    else if (withServers && has(v, 'consistentServerViews')) out.servers = []
    return out
  }

  async function listing(req: FastifyRequest<{ Querystring: Query }>, detail: boolean) {
    const v = req.microversion
    const q = validateQuery(has(v, 'serviceUuids') ? INDEX_253 : v233(v) ? { ...ANY, properties: PAGINATION } : ANY, req.query)
    let all = await hypervisors.list(req.auth, detail ? 'list-detail' : 'list')
    const pattern = has(v, 'serviceUuids') ? q.hypervisor_hostname_pattern?.[0] : undefined
    const withServers = has(v, 'serviceUuids') && truthy(q.with_servers?.[0])
    let links = v233(v)
    if (pattern !== undefined) {
      if (q.limit !== undefined || q.marker !== undefined)
        throw new BadRequest('Paging over hypervisors with the hypervisor_hostname_pattern query parameter is not supported.')
      links = false
      // compute_node_search_by_hypervisor: LIKE %pattern%.
      all = all.filter((h) => h.name.includes(pattern))
      if (!all.length) throw new NotFound(`No hypervisor matching '${pattern}' could be found.`)
    }
    let limit = deps.maxLimit
    if (v233(v) && pattern === undefined) {
      const marker = q.marker?.at(-1)
      if (q.limit !== undefined) limit = Math.min(Number(q.limit.at(-1)), deps.maxLimit)
      if (marker !== undefined) {
        const i = all.findIndex((h) => String(idOf(h, v)) === marker)
        if (i < 0) throw new BadRequest(`marker [${marker}] not found`)
        all = all.slice(i + 1)
      }
      all = all.slice(0, limit)
    }
    const list = []
    for (const h of all) list.push(view(h, v, detail, withServers ? await hypervisors.servers(h.name) : undefined, withServers))
    const out: Record<string, unknown> = { hypervisors: list }
    if (links) {
      const next = collectionLinks(
        req,
        base,
        detail ? 'os-hypervisors/detail' : 'os-hypervisors',
        list.length,
        list.at(-1)?.id?.toString(),
        deps.maxLimit,
      )
      if (next.length) out.hypervisors_links = next
    }
    return out
  }

  app.get<{ Querystring: Query }>('/v2.1/os-hypervisors', (req) => listing(req, false))
  app.get<{ Querystring: Query }>('/v2.1/os-hypervisors/detail', (req) => listing(req, true))

  // Before 2.88 only: the totals of the hypervisors whose service is enabled.
  app.get<{ Querystring: Query }>('/v2.1/os-hypervisors/statistics', async (req) => {
    if (v288(req.microversion)) throw new NotFound('The resource could not be found.')
    const all = (await hypervisors.list(req.auth, 'statistics')).filter((h) => !h.disabled)
    const sum = (f: (h: Hypervisor) => number) => all.reduce((n, h) => n + f(h), 0)
    return {
      hypervisor_statistics: {
        count: all.length,
        vcpus: sum((h) => h.usage.vcpus),
        memory_mb: sum((h) => h.usage.ram_mb),
        local_gb: sum((h) => h.usage.disk_gb),
        vcpus_used: sum((h) => h.usage.used_vcpus),
        memory_mb_used: sum((h) => h.usage.used_ram_mb),
        local_gb_used: sum((h) => h.usage.used_disk_gb),
        free_ram_mb: sum((h) => h.usage.ram_mb - h.usage.used_ram_mb),
        free_disk_gb: sum((h) => h.usage.disk_gb - h.usage.used_disk_gb),
        current_workload: sum((h) => h.workload),
        running_vms: sum((h) => h.usage.servers),
        disk_available_least: sum((h) => h.usage.disk_gb - h.usage.used_disk_gb),
      },
    }
  })

  /** _validate_id, then the hypervisor (Nova's 404 for an id of no hypervisor). */
  async function find(req: FastifyRequest<{ Params: { id: string } }>, rule: 'show' | 'uptime') {
    const v = req.microversion
    const all = await hypervisors.list(req.auth, rule)
    const id = req.params.id
    if (has(v, 'serviceUuids')) {
      if (!isUuidLike(id)) throw new BadRequest(`Invalid uuid ${id}`)
    } else if (!/^\s*[+-]?\d+\s*$/.test(id)) {
      throw new NotFound(`Hypervisor with ID '${id}' could not be found.`)
    }
    const h = all.find((x) => (has(v, 'serviceUuids') ? hypervisorUuid(x.name) === id.toLowerCase() : x.rank === Number(id)))
    if (!h) throw new NotFound(`Hypervisor with ID '${id}' could not be found.`)
    return h
  }

  app.get<{ Params: { id: string }; Querystring: Query }>('/v2.1/os-hypervisors/:id', async (req) => {
    const v = req.microversion
    const q = validateQuery(has(v, 'serviceUuids') ? SHOW_253 : ANY, req.query)
    const h = await find(req, 'show')
    const withServers = has(v, 'serviceUuids') && truthy(q.with_servers?.[0])
    return { hypervisor: view(h, v, true, withServers ? await hypervisors.servers(h.name) : undefined, withServers) }
  })

  // Before 2.88: the host's `uptime`. Skiff's agents do not report one: Nova's answer for a driver
  // without get_host_uptime (501), which the clients expect (openstack hypervisor show skips it).
  app.get<{ Params: { id: string } }>('/v2.1/os-hypervisors/:id/uptime', async (req) => {
    if (v288(req.microversion)) throw new NotFound('The resource could not be found.')
    await find(req, 'uptime')
    throw new DomainError('notImplemented', 'The requested functionality is not supported.')
  })

  // Before 2.53: search by hostname pattern, with or without the servers of each.
  for (const [suffix, rule] of [
    ['search', 'search'],
    ['servers', 'servers'],
  ] as const) {
    // The same path parameter name as /:id's (fastify keeps one name per position): it holds a pattern here.
    app.get<{ Params: { id: string }; Querystring: Query }>(`/v2.1/os-hypervisors/:id/${suffix}`, async (req) => {
      const v = req.microversion
      if (has(v, 'serviceUuids')) throw new NotFound('The resource could not be found.')
      const pattern = req.params.id
      const all = (await hypervisors.list(req.auth, rule)).filter((h) => h.name.includes(pattern))
      if (!all.length) throw new NotFound(`No hypervisor matching '${pattern}' could be found.`)
      const list = []
      for (const h of all) list.push(view(h, v, false, rule === 'servers' ? await hypervisors.servers(h.name) : undefined))
      return { hypervisors: list }
    })
  }
}
