// GET /servers/{id}/diagnostics (admins), as nova/api/openstack/compute/server_diagnostics.py:
// 409 unless the server is on a host and running; below 2.48 the driver's free-form dict, from
// 2.48 the standard format. The figures are the server's own (flavor, addresses, config drive,
// time since launch); the counters Skiff's agents do not sample (CPU time, disk and NIC I/O) are
// 0, as a guest that has done nothing yet would report.
import type { FastifyInstance } from 'fastify'
import { systemClock } from '../../../clock.ts'
import { has } from '../../microversion-changes.ts'
import type { ComputeRouteDeps } from './index.ts'

export function serverDiagnosticsRoutes(app: FastifyInstance, deps: ComputeRouteDeps) {
  const clock = deps.clock ?? systemClock
  app.get<{ Params: { id: string } }>('/v2.1/servers/:id/diagnostics', async (req) => {
    const { server: s, extras, ips } = await deps.servers.diagnostics(req.auth, req.params.id)
    const vcpus = extras?.flavor?.vcpus ?? 1
    const ramMb = extras?.flavor?.ram ?? 0
    const cpus = Array.from({ length: vcpus }, (_, id) => id)
    // libvirt names a guest's NICs after their port (tap + the port id's start): the MAC stands in.
    const tap = (mac: string) => `tap${mac.replace(/:/g, '').slice(-11)}`
    if (!has(req.microversion, 'standardDiagnostics')) {
      const out: Record<string, number> = {}
      for (const id of cpus) out[`cpu${id}_time`] = 0
      Object.assign(out, { memory: ramMb * 1024, vda_read: 0, vda_read_req: 0, vda_write: 0, vda_write_req: 0, vda_errors: -1 })
      for (const ip of ips) {
        for (const k of ['rx', 'rx_drop', 'rx_errors', 'rx_packets', 'tx', 'tx_drop', 'tx_errors', 'tx_packets'])
          out[`${tap(ip.mac)}_${k}`] = 0
      }
      return out
    }
    const launched = s.launched_at ? Date.parse(s.launched_at) : undefined
    const nic = (mac: string) => ({
      mac_address: mac,
      rx_octets: 0,
      rx_errors: 0,
      rx_drop: 0,
      rx_packets: 0,
      rx_rate: null,
      tx_octets: 0,
      tx_errors: 0,
      tx_drop: 0,
      tx_packets: 0,
      tx_rate: null,
    })
    return {
      state: 'running',
      driver: 'libvirt',
      hypervisor: 'qemu',
      hypervisor_os: 'linux',
      uptime: launched === undefined ? null : Math.max(0, Math.floor((clock.now().getTime() - launched) / 1000)),
      config_drive: ['true', 'True', '1'].includes(s.config_drive),
      num_cpus: cpus.length,
      num_nics: ips.length,
      num_disks: 1,
      cpu_details: cpus.map((id) => ({ id, time: 0, utilisation: null })),
      nic_details: ips.map((ip) => nic(ip.mac)),
      disk_details: [{ read_bytes: 0, read_requests: 0, write_bytes: 0, write_requests: 0, errors_count: 0 }],
      memory_details: { maximum: ramMb, used: ramMb },
    }
  })
}
