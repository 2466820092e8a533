// A request answered on node:http alone, before fastify sees it: for the hottest read only
// (GET /servers/{id}, routes/compute/show-shortcut.ts). Fastify's lifecycle for one request (its
// request and reply objects, the child logger, eight hooks, the router) costs more than
// everything the read itself does once its view is memoized; the bench (`npm run bench`) shows
// what the two cost.
//
// A shortcut answers only what it is sure of, with the same bytes the route would: a request it
// does not recognise, a token not validated a moment ago, a server shutting down, and any
// answer other than the plain one (a 404, a 403, a bad microversion) go to fastify untouched,
// which answers them as always. It writes the request's log line as request-log.ts does.
import type { IncomingMessage, ServerResponse } from 'node:http'
import { performance } from 'node:perf_hooks'
import type { FastifyInstance } from 'fastify'
import type { Logger } from 'pino'
import type { AuthContext, IdentityService } from '../identity/identity-service.ts'
import { headerValue, newRequestId } from './listener.ts'
import { requestLine } from './request-log.ts'

export interface Shortcut {
  /** Cheap and synchronous: whether this request is one the shortcut may answer. */
  takes(req: IncomingMessage): boolean
  /**
   * True once the whole answer is written (at once, or when the promise resolves); false (or a
   * rejection) with nothing written, and fastify answers the request instead.
   */
  answer(req: IncomingMessage, res: ServerResponse, ctx: AuthContext, requestId: string): boolean | Promise<boolean>
}

type RequestListener = (req: IncomingMessage, res: ServerResponse) => void

/** Put `shortcut` in front of `app`'s routes on its HTTP server (inject() never meets it). */
export function installShortcut(app: FastifyInstance, identity: IdentityService, shortcut: Shortcut): void {
  const server = app.server
  const [routed, ...others] = server.listeners('request') as RequestListener[]
  if (!routed || others.length > 0) throw new Error('installShortcut: expected fastify as the only request listener')
  server.removeListener('request', routed)
  // While closing, fastify answers 503 (return503OnClosing): every request goes to it.
  let closing = false
  app.addHook('preClose', (done) => {
    closing = true
    done()
  })
  // createListener's pino logger (the listener's child): the route's request lines go there too.
  const log = app.log as unknown as Logger
  const logged = (req: IncomingMessage, res: ServerResponse, id: string, started: number) => {
    if (log.isLevelEnabled('info'))
      log.info(
        { reqId: id, ...requestLine(req.method!, req.url!, res.statusCode, performance.now() - started, req.socket.remoteAddress) },
        'request',
      )
  }

  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    if (closing || !shortcut.takes(req)) return routed(req, res)
    const ctx = identity.cachedContext(headerValue(req, 'x-auth-token'))
    if (!ctx) return routed(req, res)
    const started = performance.now()
    const id = newRequestId()
    let done: boolean | Promise<boolean>
    try {
      done = shortcut.answer(req, res, ctx, id)
    } catch {
      // Nothing was written: fastify does it again and answers, a fault included.
      return routed(req, res)
    }
    if (done === true) return logged(req, res, id, started)
    if (done === false) return routed(req, res)
    done.then(
      (written) => (written ? logged(req, res, id, started) : routed(req, res)),
      () => routed(req, res),
    )
  })
}
