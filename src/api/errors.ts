// The one place that knows status codes and fault bodies. Domain errors, schema errors and
// fastify's own errors all end here; route handlers hold no try/catch.
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import { DomainError, type ErrorKind } from '../errors.ts'
import { novaValidationMessage, type AjvError } from './validation.ts'

/** Block storage (Cinder) answers faults in Nova's shape: the same wsgi Fault. */
export type ServiceFlavor = 'compute' | 'identity' | 'image' | 'volume'

const STATUS: Record<ErrorKind, number> = {
  badRequest: 400,
  unauthorized: 401,
  forbidden: 403,
  notFound: 404,
  badMethod: 405,
  notAcceptable: 406,
  conflict: 409,
  overLimit: 413,
  badMediaType: 415,
  notImplemented: 501,
  unavailable: 503,
}

// nova/api/openstack/wsgi.py Fault._fault_names
const NOVA_FAULT: Record<number, string> = {
  400: 'badRequest',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'itemNotFound',
  405: 'badMethod',
  409: 'conflictingRequest',
  413: 'overLimit',
  415: 'badMediaType',
  429: 'overLimit',
  501: 'notImplemented',
  503: 'serviceUnavailable',
}

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  406: 'Not Acceptable',
  408: 'Request Timeout',
  409: 'Conflict',
  413: 'Request Entity Too Large',
  415: 'Unsupported Media Type',
  429: 'Too Many Requests',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  501: 'Not Implemented',
  503: 'Service Unavailable',
}

/** Nova's fault body: {"conflictingRequest": {"code": 409, "message": "..."}}. */
export function novaFault(status: number, message: string, retryAfter?: number) {
  const inner: Record<string, unknown> = { code: status, message }
  if (retryAfter !== undefined) inner.retryAfter = String(retryAfter)
  return { [NOVA_FAULT[status] ?? 'computeFault']: inner }
}

/** Keystone's error body. */
export const keystoneError = (status: number, message: string) => ({ error: { code: status, title: TITLES[status] ?? 'Error', message } })

/** Glance (webob) error body. */
export const glanceError = (status: number, message: string) => ({
  message,
  code: `${status} ${TITLES[status] ?? 'Error'}`,
  title: TITLES[status] ?? 'Error',
})

export function errorBody(flavor: ServiceFlavor, status: number, message: string, retryAfter?: number) {
  if (flavor === 'identity') return keystoneError(status, message)
  if (flavor === 'image') return glanceError(status, message)
  return novaFault(status, message, retryAfter)
}

/** A path no route serves, in the service's fault shape (fastify's own 404 is not). */
export function notFoundHandler(flavor: ServiceFlavor) {
  return async (_req: FastifyRequest, reply: FastifyReply) =>
    reply
      .code(404)
      .type('application/json; charset=UTF-8')
      .send(errorBody(flavor, 404, 'The resource could not be found.'))
}

interface Classified {
  status: number
  message: string
  headers: Record<string, string>
}

function classify(err: FastifyError | DomainError | Error, flavor: ServiceFlavor): Classified | null {
  if (err instanceof DomainError) return { status: STATUS[err.kind], message: err.message, headers: err.headers }
  const fe = err as FastifyError & { validation?: AjvError[]; validationContext?: string }
  if (fe.validation) {
    const message =
      flavor === 'compute' || flavor === 'volume'
        ? novaValidationMessage(fe.validation)
        : `Invalid input: ${novaValidationMessage(fe.validation)}`
    return { status: 400, message, headers: {} }
  }
  switch (fe.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return {
        status: 400,
        message: flavor === 'compute' || flavor === 'volume' ? 'Malformed request body' : 'Malformed JSON in request body.',
        headers: {},
      }
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return { status: 413, message: 'Request is too large.', headers: {} }
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return { status: 415, message: 'Unsupported Content-Type', headers: {} }
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return { status: 400, message: 'Malformed request body', headers: {} }
  }
  if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
    return { status: fe.statusCode, message: fe.message, headers: {} }
  }
  return null
}

/** Fastify error handler for one listener. Unexpected errors answer 500 without internals. */
export function makeErrorHandler(flavor: ServiceFlavor) {
  return function errorHandler(err: FastifyError, req: FastifyRequest, reply: FastifyReply) {
    // Classifying must not fail in turn: fastify would answer its own shape, with the internal message.
    let c: Classified | null
    try {
      c = classify(err, flavor)
    } catch (inner) {
      req.log.error({ err: inner }, 'could not build the fault message')
      c = null
    }
    if (!c) {
      req.log.error({ err }, 'unexpected error')
      const message =
        flavor === 'compute'
          ? `Unexpected API Error. Please report this and attach the Skiff API log if possible (request ${req.id}).`
          : flavor === 'volume'
            ? `The server has either erred or is incapable of performing the requested operation (request ${req.id}).`
            : `An unexpected error prevented the server from fulfilling your request (request ${req.id}).`
      return reply
        .code(500)
        .type('application/json; charset=UTF-8')
        .send(errorBody(flavor, 500, message))
    }
    if (c.status >= 500) req.log.error({ err }, c.message)
    reply.headers(c.headers)
    const retryAfter = c.headers['retry-after'] !== undefined ? Number(c.headers['retry-after']) : undefined
    return reply
      .code(c.status)
      .type('application/json; charset=UTF-8')
      .send(errorBody(flavor, c.status, c.message, retryAfter))
  }
}
