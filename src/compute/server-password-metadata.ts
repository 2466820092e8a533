// os-server-password: the password a guest encrypted with the server's key and left with the
// metadata service. Nova answers "" until one was left; clearing forgets it. Skiff has no
// metadata service a guest could leave one with, so there is never one: "" always.
import type { AuthContext } from '../identity/identity-service.ts'
import type { ServerService } from './server-service.ts'
import { authorize } from './policy.ts'

export class ServerPasswordService {
  readonly #servers: ServerService

  constructor(servers: ServerService) {
    this.#servers = servers
  }

  async show(ctx: AuthContext, id: string): Promise<string> {
    // 404 for an unknown server first, then policy, as Nova.
    await this.#servers.get(ctx, id)
    authorize(ctx, 'os_compute_api:os-server-password:show', 'reader')
    return ''
  }

  async clear(ctx: AuthContext, id: string): Promise<void> {
    await this.#servers.get(ctx, id)
    authorize(ctx, 'os_compute_api:os-server-password:clear', 'member')
  }
}
