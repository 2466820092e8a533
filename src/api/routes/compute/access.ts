// How to reach a server (Skiff's own extension; the server document keeps Nova's exact shape):
//   GET /v2.1/servers/{id}/access → {"access": {"ssh": {"host", "port", "host_key_fingerprint"}}}
// The port is the one forwarded to the guest's SSH on the hypervisor host; it stays the same
// through rescue, while the host key is the booted system's (the rescue system's has its own).
// `ssh` is null where the driver forwards nothing (the simulated driver). The agent running the
// server records it (server_access), so any API process answers for servers on any host.
import type { FastifyInstance } from 'fastify'
import type { ComputeRouteDeps } from './index.ts'

export function accessRoutes(app: FastifyInstance, deps: ComputeRouteDeps) {
  app.get<{ Params: { id: string } }>('/v2.1/servers/:id/access', async (req) => {
    const s = await deps.servers.show(req.auth, req.params.id)
    const ssh = await deps.servers.access(s.id)
    return { access: { ssh: ssh ? { host: ssh.ssh_host, port: ssh.ssh_port, host_key_fingerprint: ssh.host_key_fingerprint } : null } }
  })
}
