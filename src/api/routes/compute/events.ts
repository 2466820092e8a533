// Server state changes as Server-Sent Events, so a client can wait for RESCUE (or ACTIVE, or
// the deletion) without polling: GET /servers/{id}/events and GET /servers/events.
// Not a Nova API; Nova clients never call it. Each stream first sends the current state, then
// one event per change of status, vm_state, task_state or power_state, read from the
// process's one ServerChangeFeed.
import type { ServerResponse } from 'node:http'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { isoSeconds } from '../../../clock.ts'
import { InstanceNotFound } from '../../../compute/errors.ts'
import { authorize } from '../../../compute/policy.ts'
import type { Server } from '../../../compute/server.ts'
import type { ServerChangeFeed, ServerWatch } from '../../../compute/server-change-feed.ts'
import { statusOf } from '../../../compute/states.ts'
import { Forbidden } from '../../../errors.ts'
import type { AuthContext } from '../../../identity/identity-service.ts'
import { headerValue } from '../../listener.ts'
import type { ComputeRouteDeps } from './index.ts'

export interface ServerEventsDeps {
  feed: ServerChangeFeed
  /** Interval of the `: keep-alive` comment, ms (proxies drop connections that stay silent). */
  keepAliveMs: number
}

/** A client that reads nothing cannot make us buffer without end: past this, its stream is cut. */
const MAX_BUFFERED_BYTES = 1 << 20

type Query = Record<string, string | string[] | undefined>
const one = (v: string | string[] | undefined) => (Array.isArray(v) ? v[v.length - 1] : v)
const truthy = (v: string | undefined) => v !== undefined && (v === '' || ['true', '1', 'yes', 'on', 't', 'y'].includes(v.toLowerCase()))

const isDeleted = (s: Server) => s.deleted !== 0 || s.vm_state === 'deleted'

/** An event's data: the state fields of the server view, derived exactly as it derives them. */
export function serverStateView(s: Server) {
  return {
    id: s.id,
    name: s.name,
    status: statusOf(s.vm_state, s.task_state),
    'OS-EXT-STS:vm_state': s.vm_state,
    'OS-EXT-STS:task_state': s.task_state,
    'OS-EXT-STS:power_state': s.power_state,
    updated: isoSeconds(s.updated_at),
  }
}

/** What makes an event: a rename or a lock changes updated_at but is no state change. */
const stateKey = (s: Server) => `${statusOf(s.vm_state, s.task_state)}|${s.vm_state}|${s.task_state ?? ''}|${s.power_state}`

/** The last state sent for one server; rows older than it (replays of the feed) are ignored. */
interface Sent {
  key: string
  updatedAt: string
}

/** Decides, row by row, whether a row is news for the client. */
function isChange(sent: Sent | undefined, row: Server): boolean {
  if (sent && row.updated_at < sent.updatedAt) return false
  const key = stateKey(row)
  if (sent && sent.key === key) {
    sent.updatedAt = row.updated_at
    return false
  }
  return true
}

/** One open text/event-stream response, written by hand after reply.hijack(). */
class EventStream {
  readonly #res: ServerResponse
  readonly #keepAlive: NodeJS.Timeout
  readonly #cleanups: (() => void)[] = []
  #closed = false

  constructor(req: FastifyRequest, reply: FastifyReply, keepAliveMs: number) {
    reply.hijack()
    this.#res = reply.raw
    // onSend hooks do not run for a hijacked reply: the request id headers are set here.
    const headers: Record<string, string> = {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache',
      // nginx would otherwise buffer the stream and deliver events late.
      'x-accel-buffering': 'no',
      'x-openstack-request-id': req.id,
      'x-compute-request-id': req.id,
    }
    if (req.versionEcho !== undefined) {
      headers['openstack-api-version'] = `compute ${req.versionEcho}`
      headers['x-openstack-nova-api-version'] = req.versionEcho
      headers.vary = 'OpenStack-API-Version, X-OpenStack-Nova-API-Version'
    }
    req.raw.socket.setNoDelay(true)
    this.#res.writeHead(200, headers)
    this.#res.flushHeaders()
    this.#keepAlive = setInterval(() => this.#write(': keep-alive\n\n'), keepAliveMs)
    this.#keepAlive.unref()
    // 'close' comes when we end the stream and when the client goes away, whichever is first.
    this.#res.once('close', () => this.#cleanup())
    // A client gone while we checked the server: its 'close' has already been emitted.
    if (req.raw.socket.destroyed) this.#cleanup()
  }

  get closed(): boolean {
    return this.#closed
  }

  /** Run `fn` when the stream closes, for whatever reason. */
  onClose(fn: () => void): void {
    if (this.#closed) fn()
    else this.#cleanups.push(fn)
  }

  send(row: Server): void {
    // The id is updated_at (ms); a reconnecting client sends it back as Last-Event-ID.
    this.#write(`event: server\nid: ${row.updated_at}\ndata: ${JSON.stringify(serverStateView(row))}\n\n`)
  }

  end(): void {
    if (this.#closed) return
    this.#res.end()
    this.#cleanup()
  }

  #write(chunk: string): void {
    if (this.#closed) return
    if (this.#res.writableLength > MAX_BUFFERED_BYTES) {
      this.#res.destroy()
      this.#cleanup()
      return
    }
    this.#res.write(chunk)
  }

  #cleanup(): void {
    if (this.#closed) return
    this.#closed = true
    clearInterval(this.#keepAlive)
    for (const fn of this.#cleanups.splice(0)) fn()
  }
}

export function eventRoutes(app: FastifyInstance, deps: ComputeRouteDeps) {
  const { servers } = deps
  const { feed, keepAliveMs } = deps.serverEvents
  const open = new Set<EventStream>()

  // Open streams would keep app.close() waiting for ever (they are not idle connections).
  app.addHook('preClose', async () => {
    for (const stream of [...open]) stream.end()
  })

  const start = (req: FastifyRequest, reply: FastifyReply) => {
    const stream = new EventStream(req, reply, keepAliveMs)
    open.add(stream)
    stream.onClose(() => open.delete(stream))
    return stream
  }

  /**
   * Subscribe first, then read the current state, then replay what the feed delivered
   * meanwhile: a change between the read and the subscription cannot fall in between.
   */
  const follow = async (
    stream: EventStream,
    req: FastifyRequest,
    watch: ServerWatch,
    current: () => Promise<Server[]>,
    onRow: (row: Server) => void,
  ) => {
    let pending: Server[] | undefined = []
    const unsubscribe = feed.subscribe(watch, (row) => (pending ? pending.push(row) : onRow(row)))
    stream.onClose(unsubscribe)
    try {
      for (const row of await current()) onRow(row)
      const replay: Server[] = pending
      pending = undefined
      for (const row of replay) onRow(row)
    } catch (err) {
      req.log.error({ err }, 'server event stream failed')
      stream.end()
    }
  }

  /** The server the caller may watch; 404 as Nova for another project's or an unknown server. */
  const watched = async (ctx: AuthContext, id: string, resuming: boolean): Promise<Server> => {
    try {
      return await servers.show(ctx, id)
    } catch (err) {
      // A client reconnecting (Last-Event-ID) after its stream was cut just before the final
      // event learns of the deletion instead of a 404.
      if (!resuming || !(err instanceof InstanceNotFound)) throw err
      const gone = await servers.getIncludingDeleted(id)
      if (!gone || !isDeleted(gone) || (gone.project_id !== ctx.projectId && !ctx.isAdmin)) throw err
      authorize(ctx, 'os_compute_api:servers:show', 'reader')
      return gone
    }
  }

  app.get<{ Params: { id: string } }>('/v2.1/servers/:id/events', async (req, reply) => {
    // Last-Event-ID needs no replay: the stream starts with the current state anyway.
    const resuming = headerValue(req, 'last-event-id') !== undefined
    const server = await watched(req.auth, req.params.id, resuming)
    const stream = start(req, reply)
    let sent: Sent | undefined
    await follow(
      stream,
      req,
      { serverId: server.id },
      async () => [(await servers.getIncludingDeleted(server.id)) ?? server],
      (row) => {
        if (stream.closed || !isChange(sent, row)) return
        sent = { key: stateKey(row), updatedAt: row.updated_at }
        stream.send(row)
        // DELETED is the last word about a server: the stream ends with it.
        if (isDeleted(row)) stream.end()
      },
    )
  })

  app.get<{ Querystring: Query }>('/v2.1/servers/events', async (req, reply) => {
    const ctx = req.auth
    authorize(ctx, 'os_compute_api:servers:detail', 'reader')
    // As for the server list: all_tenants is an admin's; for others it is ignored.
    const allTenants = ctx.isAdmin && truthy(one(req.query.all_tenants))
    const projectId = allTenants ? (one(req.query.project_id) ?? one(req.query.tenant_id)) : (ctx.projectId ?? undefined)
    if (!allTenants && !projectId) throw new Forbidden('A project-scoped token is required.')
    const watch: ServerWatch = projectId ? { projectId } : { allProjects: true }
    const stream = start(req, reply)
    const sent = new Map<string, Sent>()
    const current = async () => (await servers.list(ctx, { detail: true, allTenants, projectId })).reverse()
    await follow(stream, req, watch, current, (row) => {
      if (stream.closed) return
      const before = sent.get(row.id)
      // A server the client never saw (created and deleted between two reads) is no news.
      if (!before && isDeleted(row)) return
      if (!isChange(before, row)) return
      stream.send(row)
      if (isDeleted(row)) sent.delete(row.id)
      else sent.set(row.id, { key: stateKey(row), updatedAt: row.updated_at })
    })
  })
}
