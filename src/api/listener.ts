// What every listener shares: request ids, the body-size limit decided before authentication,
// token authentication, the fault mapper and the one Ajv configuration (Nova's formats); how long a connection may take
// to send its request, and how many may be open.
import { randomUUID } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { STATUS_CODES, type IncomingHttpHeaders } from 'node:http'
import type { Socket } from 'node:net'
import fastify, { LogController, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import type { Logger } from 'pino'
import type { Config } from '../config.ts'
import { BadRequest, OverLimit, Unauthorized } from '../errors.ts'
import type { AuthContext, IdentityService } from '../identity/identity-service.ts'
import { errorBody, makeErrorHandler, type ServiceFlavor } from './errors.ts'
import { jsonBodyParser } from './json-body.ts'
import { lazyValidators } from './lazy-validators.ts'
import { installRequestLog } from './request-log.ts'

declare module 'fastify' {
  interface FastifyRequest {
    auth: AuthContext
  }
  interface FastifyContextConfig {
    /** Routes that need no token (version documents, token issue). */
    public?: boolean
  }
}

export interface ListenerDeps {
  config: Config
  logger: Logger
  identity: IdentityService
  /** `Keystone uri="..."` for the WWW-Authenticate header of 401 answers. */
  identityUri: string
}

/** Nova's form of a request id (oslo.context): `req-` and a UUID. */
export const newRequestId = () => `req-${randomUUID()}`

/** Node fires a timer longer than this after 1 ms. */
const MAX_TIMER_MS = 2 ** 31 - 1
/**
 * A body no larger than this, left unread by an early answer (401, 413, 415), is read and dropped
 * to keep the connection; a larger one, or one of unknown size, closes the connection instead.
 */
const DRAIN_LIMIT_BYTES = 64 * 1024
const DROP_WARN_EVERY_MS = 10_000

export function createListener(
  flavor: ServiceFlavor,
  deps: ListenerDeps,
  opts: { rewriteUrl?: (req: { url?: string }) => string } = {},
): FastifyInstance {
  const { config } = deps
  const log = deps.logger.child({ service: flavor })
  const headersTimeout = Math.min(config.headersTimeoutMs, MAX_TIMER_MS)
  const validators = lazyValidators()
  const app = fastify({
    loggerInstance: log,
    // One line per request, with the action and the fault, instead of fastify's two: request-log.ts.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: config.bodyLimitBytes,
    keepAliveTimeout: config.keepAliveTimeoutMs,
    // A connection with no traffic for the keep-alive timeout is closed, in a request or between
    // two (Node's default is never): a stalled upload, a client that stopped reading.
    connectionTimeout: Math.min(config.keepAliveTimeoutMs, MAX_TIMER_MS),
    http: {
      // Headers must be in within headersTimeout; Node applies it to a connection that has sent
      // nothing too. It checks every connectionsCheckingInterval (30 s by default: a 60 s timeout
      // closed after up to 90 s), so check often enough to close within a tenth of the timeout.
      headersTimeout,
      connectionsCheckingInterval: headersTimeout > 0 ? Math.max(10, Math.min(1000, Math.floor(headersTimeout / 10))) : 30_000,
      // Node's requestTimeout (whole request) stays off: it would cut a long image upload. JSON
      // bodies get their own deadline below.
      requestTimeout: 0,
    },
    // A connection closed before it made a request (headers timeout, malformed HTTP) still gets
    // its answer in the service's fault shape, not fastify's.
    clientErrorHandler: (err: NodeJS.ErrnoException, socket: Socket) => answerClientError(flavor, log, err, socket),
    genReqId: newRequestId,
    requestIdHeader: false,
    return503OnClosing: true,
    // Errors fastify meets before routing (a malformed %-escape in the URL) get the service's fault shape too.
    frameworkErrors: (err, req, reply) => {
      void makeErrorHandler(flavor)(err, req, reply)
    },
    routerOptions: { ignoreTrailingSlash: true, ignoreDuplicateSlashes: true },
    ...(opts.rewriteUrl ? { rewriteUrl: opts.rewriteUrl } : {}),
  }) as unknown as FastifyInstance
  // Route schemas compile with the one Ajv configuration (ajv.ts): unknown fields rejected, no
  // coercion, Nova's formats (fastify's own compiler would put ajv-formats over them); each at
  // its route's first use (lazy-validators.ts).
  app.setValidatorCompiler(validators.validatorCompiler)
  app.addHook('onListen', async () => validators.warm())

  app.decorateRequest('auth', null as unknown as AuthContext)
  limitConnections(app, flavor, config.maxConnections || defaultMaxConnections(), log)
  installRequestLog(app)

  // Tempest sends `Content-Type: application/json` with an empty body on DELETE and GET; the
  // OpenStack services ignore it there. Elsewhere an empty JSON body stays a malformed request.
  // jsonBodyParser: nesting deeper than MAX_JSON_DEPTH, or a NUL, is a 400, decided before JSON.parse.
  const json = jsonBodyParser(app, flavor)
  app.removeContentTypeParser('application/json')
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (req, body, done) => {
    if ((body as string).length === 0 && (req.method === 'DELETE' || req.method === 'GET' || req.method === 'HEAD'))
      return done(null, undefined)
    json(req, body as string, done)
  })

  // The hooks every request runs take fastify's callback form where they need not wait: an async
  // hook costs a promise and a turn of the microtask queue, per hook and per request. A throw in
  // one is caught by fastify's hook runner as a rejection would be.

  // Before authentication and before reading the body: a NUL in the URL, 413 on the declared size alone.
  app.addHook('onRequest', (req, _reply, done) => {
    // A NUL in a path or query value: PostgreSQL cannot compare text with it (a 500 there).
    if (req.url.includes('%00')) throw new BadRequest('NUL characters (%00) are not allowed in a request URL.')
    const length = Number(req.headers['content-length'] ?? 0)
    if (length > config.bodyLimitBytes && !isStreamingUpload(req)) throw new OverLimit('Request is too large.')
    // A JSON body must be in within the request timeout, however slowly it trickles. Image
    // uploads may take as long as they need; the idle timeout closes one that stalls.
    if (config.requestTimeoutMs > 0 && hasBody(req) && !isStreamingUpload(req))
      armBodyDeadline(req, Math.min(config.requestTimeoutMs, MAX_TIMER_MS))
    done()
  })

  const unauthorized = (reply: FastifyReply) => {
    reply.header('www-authenticate', `Keystone uri="${deps.identityUri}"`)
    // keystonemiddleware answers this one, in Keystone's shape, for every service.
    return reply
      .code(401)
      .type('application/json')
      .send(errorBody('identity', 401, new Unauthorized().message))
  }
  app.addHook('onRequest', (req, reply, done) => {
    if (req.routeOptions.config?.public || !req.routeOptions.url) return done()
    const token = headerValue(req, 'x-auth-token')
    // A token validated a moment ago: no promise, no wait (most requests).
    const cached = deps.identity.cachedContext(token)
    if (cached) {
      req.auth = cached
      return done()
    }
    deps.identity.validate(token).then((ctx) => {
      if (!ctx) return unauthorized(reply)
      req.auth = ctx
      done()
    }, done)
  })

  app.addHook('onSend', (req, reply, payload, done) => {
    reply.header('x-openstack-request-id', req.id)
    // An answer that goes out before the body was read (a 413 on the declared size, a 401, an
    // upload refused): Node would read the rest of the body, to the end, to keep the connection.
    // A large one is not worth it: `Connection: close`, and Node closes the socket once the
    // answer is written.
    if (!bodyReceived(req) && hasBody(req) && !(Number(req.headers['content-length']) <= DRAIN_LIMIT_BYTES))
      reply.header('connection', 'close')
    done(null, payload)
  })

  // Node answers `Expect: 100-continue` with 100 at once, so the client sends a body that an
  // answer decided on the headers (401, 413) will not read. The 100 goes out only once the body
  // is about to be read; an early answer goes out without it, and the client sends no body.
  app.server.on('checkContinue', (req, res) => app.server.emit('request', req, res))
  app.addHook('preParsing', (req, reply, payload, done) => {
    const expect = req.headers.expect
    if (expect !== undefined && /^100-continue$/i.test(headerValue(req, 'expect') ?? '') && !reply.raw.headersSent)
      reply.raw.writeContinue()
    done(null, payload)
  })

  app.setErrorHandler(makeErrorHandler(flavor))
  return app
}

function answerClientError(flavor: ServiceFlavor, log: Logger, err: NodeJS.ErrnoException, socket: Socket) {
  if (err.code === 'ECONNRESET' || socket.destroyed) return
  const [status, message] =
    err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? [408, 'The request was not received in time.']
      : err.code === 'HPE_HEADER_OVERFLOW'
        ? [431, 'The request headers are too large.']
        : [400, 'Malformed HTTP request.']
  log.debug({ err: err.message, status }, 'connection closed before a request')
  if (socket.writable) {
    const body = JSON.stringify(errorBody(flavor, status, message))
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json; charset=UTF-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    )
  }
  socket.destroy(err)
}

/** Cap the open connections of one listener; say so in the log (at most every 10 s) when a connection is refused. */
function limitConnections(app: FastifyInstance, flavor: ServiceFlavor, max: number, log: Logger) {
  app.server.maxConnections = max
  let refused = 0
  let lastWarning = 0
  // Node closes a connection over the cap at once and emits 'drop'.
  app.server.on('drop', () => {
    refused++
    const now = Date.now()
    if (now - lastWarning < DROP_WARN_EVERY_MS) return
    log.warn(
      { maxConnections: max, refused },
      `${flavor} listener: ${max} connections open (--max-connections); new connections are refused`,
    )
    lastWarning = now
    refused = 0
  })
}

/**
 * A quarter of the process's open-file limit per listener: the three listeners together keep a
 * quarter for the database, image files and QEMU. Node raises the soft limit to the hard one.
 */
export function defaultMaxConnections(): number {
  let limit = 4096
  try {
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync('/proc/self/limits', 'utf8'))
    if (m?.[1] && m[1] !== 'unlimited') limit = Number(m[1])
  } catch {
    // Not Linux: keep the guess.
  }
  return Math.max(16, Math.floor(limit / 4))
}

const hasBody = (req: FastifyRequest) => req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0

/** The whole body has come in (`complete`: Node's parser saw its end; inject() has only `readableEnded`). */
const bodyReceived = (req: FastifyRequest) => req.raw.complete || req.raw.readableEnded

/** Close the connection if the body of `req` is not all in within `ms`. */
function armBodyDeadline(req: FastifyRequest, ms: number) {
  const raw = req.raw
  if (bodyReceived(req)) return
  const timer = setTimeout(() => {
    req.log.warn({ requestTimeoutMs: ms }, 'request body not received within the request timeout: closing the connection')
    // inject()'s requests have no real socket.
    if (typeof raw.socket?.destroy === 'function') raw.socket.destroy()
  }, ms)
  timer.unref()
  const clear = () => clearTimeout(timer)
  raw.once('end', clear)
  raw.once('close', clear)
}

function isStreamingUpload(req: FastifyRequest): boolean {
  return req.method === 'PUT' && /\/file$/.test(req.url.split('?')[0] ?? '')
}

export function headerValue(req: { headers: IncomingHttpHeaders }, name: string): string | undefined {
  const v = req.headers[name]
  return Array.isArray(v) ? v[0] : v
}
