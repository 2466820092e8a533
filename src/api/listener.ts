// What every listener shares: request ids, the body-size limit decided before authentication,
// token authentication, the fault mapper and Nova's uuid format.
import { randomUUID } from 'node:crypto'
import fastify, { type FastifyInstance, type FastifyRequest } from 'fastify'
import type { Logger } from 'pino'
import type { Config } from '../config.ts'
import { OverLimit, Unauthorized } from '../errors.ts'
import type { AuthContext, IdentityService } from '../identity/identity-service.ts'
import { errorBody, makeErrorHandler, type ServiceFlavor } from './errors.ts'
import { FORMATS } from './formats.ts'

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

export function createListener(flavor: ServiceFlavor, deps: ListenerDeps, opts: { rewriteUrl?: (req: { url?: string }) => string } = {}): FastifyInstance {
  const app = fastify({
    loggerInstance: deps.logger.child({ service: flavor }),
    bodyLimit: deps.config.bodyLimitBytes,
    keepAliveTimeout: deps.config.keepAliveTimeoutMs,
    genReqId: () => `req-${randomUUID()}`,
    requestIdHeader: false,
    return503OnClosing: true,
    // Errors fastify meets before routing (a malformed %-escape in the URL) get the service's fault shape too.
    frameworkErrors: (err, req, reply) => { void makeErrorHandler(flavor)(err, req, reply) },
    routerOptions: { ignoreTrailingSlash: true, ignoreDuplicateSlashes: true },
    ...(opts.rewriteUrl ? { rewriteUrl: opts.rewriteUrl } : {}),
    ajv: {
      customOptions: {
        // Unknown fields are rejected, as Nova does (fastify's default strips them silently).
        removeAdditional: false,
        // Bodies are never coerced: `{"adminPass": 123}` must be refused, not turned into "123".
        coerceTypes: false,
        useDefaults: false,
        verbose: true,
        formats: FORMATS,
      },
    },
  }) as unknown as FastifyInstance

  app.decorateRequest('auth', null as unknown as AuthContext)

  // Tempest sends `Content-Type: application/json` with an empty body on DELETE and GET; the
  // OpenStack services ignore it there. Elsewhere an empty JSON body stays a malformed request.
  const json = app.getDefaultJsonParser('error', 'error')
  app.removeContentTypeParser('application/json')
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (req, body, done) => {
    if ((body as string).length === 0 && (req.method === 'DELETE' || req.method === 'GET' || req.method === 'HEAD')) return done(null, undefined)
    json(req, body as string, done)
  })

  // 413 on the declared size alone, before authentication and before reading the body.
  app.addHook('onRequest', async (req) => {
    const length = Number(req.headers['content-length'] ?? 0)
    if (length > deps.config.bodyLimitBytes && !isStreamingUpload(req)) throw new OverLimit('Request is too large.')
  })

  app.addHook('onRequest', async (req, reply) => {
    if (req.routeOptions.config?.public || !req.routeOptions.url) return
    const ctx = await deps.identity.validate(headerValue(req, 'x-auth-token'))
    if (!ctx) {
      reply.header('www-authenticate', `Keystone uri="${deps.identityUri}"`)
      // keystonemiddleware answers this one, in Keystone's shape, for every service.
      return reply.code(401).type('application/json').send(errorBody('identity', 401, new Unauthorized().message))
    }
    req.auth = ctx
  })

  app.addHook('onSend', async (req, reply) => {
    reply.header('x-openstack-request-id', req.id)
  })

  app.setErrorHandler(makeErrorHandler(flavor))
  return app
}

function isStreamingUpload(req: FastifyRequest): boolean {
  return req.method === 'PUT' && /\/file$/.test(req.url.split('?')[0] ?? '')
}

export function headerValue(req: FastifyRequest, name: string): string | undefined {
  const v = req.headers[name]
  return Array.isArray(v) ? v[0] : v
}
