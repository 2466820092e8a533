// os-server-password: the password a guest encrypted with the server's key and left with the
// metadata service. Nova answers "" until one was left; clearing forgets it.
import type { AuthContext } from '../identity/identity-service.ts'
import type { ServerService } from './server-service.ts'
import { authorize } from './policy.ts'

export class ServerPasswordService {
  readonly #servers: ServerService

  constructor(servers: ServerService) {
    this.#servers = servers
  }

  async show(ctx: AuthContext, id: string): Promise<string> {
    const s = await this.#servers.get(ctx, id)
    authorize(ctx, 'os_compute_api:os-server-password:show', 'reader')
    const row = await this.#servers.repo.db.selectFrom('server_passwords').select('password').where('server_id', '=', s.id).executeTakeFirst()
    return row?.password ?? ''
  }

  async clear(ctx: AuthContext, id: string): Promise<void> {
    const s = await this.#servers.get(ctx, id)
    authorize(ctx, 'os_compute_api:os-server-password:clear', 'member')
    await this.#servers.repo.db.deleteFrom('server_passwords').where('server_id', '=', s.id).execute()
  }
}
