// One log line per request, at info, when its answer has gone out: method, url, status, time,
// the action of `POST /servers/{id}/action` and, for 4xx and 5xx, the fault message, so that a
// 409 in the log says why. Fastify's own two lines per request are turned off
// (disableRequestLogging in listener.ts).
//
// Fault messages may quote what the client sent ("Value: {'adminPass': 'x', ...}"), so every
// secret of the request body is blanked out of them before they are logged.
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { pyRepr } from './py-repr.ts'

/** Longest fault message logged; a validation message may quote a whole 1 MB body. */
const MAX_FAULT_CHARS = 500
const MAX_ACTION_CHARS = 64
/** Body fields whose values (every string or number under them) are secrets. */
const SECRET_FIELDS = new Set(['password', 'adminPass', 'admin_pass', 'token', 'user_data', 'secret', 'private_key'])
const CENSOR = '***'

export function installRequestLog(app: FastifyInstance) {
  const faults = new WeakMap<FastifyRequest, string>()

  // Callback-form hooks: neither waits, and every request runs both (listener.ts says why).
  app.addHook('onSend', (req, reply, payload, done) => {
    if (reply.statusCode >= 400 && infoEnabled(req)) {
      const message = faultMessage(payload)
      if (message !== undefined) faults.set(req, message)
    }
    done(null, payload)
  })

  app.addHook('onResponse', (req, reply, done) => {
    // The level is the request logger's (a route may set its own): below info, nothing to build.
    if (!infoEnabled(req)) return done()
    const line = requestLine(req.method, req.url, reply.statusCode, reply.elapsedTime, req.ip)
    const action = actionOf(req)
    if (action !== undefined) line.action = action
    const fault = faults.get(req)
    if (fault !== undefined) line.fault = truncate(redact(fault, req.body), MAX_FAULT_CHARS)
    req.log.info(line, 'request')
    done()
  })
}

/** The fields of a request's line (shortcut.ts writes the same for the requests it answers). */
export function requestLine(method: string, url: string, status: number, ms: number, remote: string | undefined): Record<string, unknown> {
  return { method, url, status, ms: Math.round(ms * 10) / 10, remote }
}

/** pino's own check; a logger without one (fastify's abstract logger) logs as asked. */
function infoEnabled(req: FastifyRequest): boolean {
  const log = req.log as unknown as { isLevelEnabled?: (level: string) => boolean }
  return typeof log.isLevelEnabled === 'function' ? log.isLevelEnabled('info') : true
}

/** The action of `POST /servers/{id}/action` (and its legacy v2 path): the body's single key. */
function actionOf(req: FastifyRequest): string | undefined {
  if (req.method !== 'POST' || !req.routeOptions.url?.endsWith('/servers/:id/action')) return undefined
  const body = req.body
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return undefined
  const key = Object.keys(body)[0]
  return key === undefined ? undefined : truncate(key, MAX_ACTION_CHARS)
}

/** The message of a fault body of any of the three services (Nova, Keystone, Glance). */
function faultMessage(payload: unknown): string | undefined {
  const text = typeof payload === 'string' ? payload : Buffer.isBuffer(payload) ? payload.toString('utf8') : undefined
  if (!text) return undefined
  let body: unknown
  try {
    body = JSON.parse(text)
  } catch {
    return undefined
  }
  if (body === null || typeof body !== 'object') return undefined
  const b = body as Record<string, unknown>
  if (typeof b.message === 'string') return b.message // Glance
  const inner = (b.error ?? Object.values(b)[0]) as { message?: unknown } | undefined // Keystone, then Nova
  return typeof inner?.message === 'string' ? inner.message : undefined
}

/** `message` with every secret of `body` blanked out, as sent and as a message would quote it. */
export function redact(message: string, body: unknown): string {
  let out = message
  for (const secret of secretsOf(body)) {
    const quoted = pyRepr(secret)
    for (const form of new Set([secret, quoted.slice(1, -1), JSON.stringify(secret).slice(1, -1)])) {
      if (form.length > 0) out = out.split(form).join(CENSOR)
    }
  }
  return out
}

/**
 * Every string and number under a secret field of `body`, longest first (so that a secret that
 * contains another is blanked out whole). A body that is a string was not parsed (text/plain):
 * it is all secret.
 */
function secretsOf(body: unknown): string[] {
  const found = new Set<string>()
  if (typeof body === 'string') found.add(body)
  // Iterative: a body is a client's value.
  const todo: Array<{ v: unknown; secret: boolean }> = [{ v: body, secret: false }]
  while (todo.length > 0) {
    const { v, secret } = todo.pop()!
    if (typeof v === 'string' || typeof v === 'number') {
      if (secret) found.add(String(v))
    } else if (Array.isArray(v)) {
      for (const x of v) todo.push({ v: x, secret })
    } else if (v !== null && typeof v === 'object') {
      for (const [k, x] of Object.entries(v)) todo.push({ v: x, secret: secret || SECRET_FIELDS.has(k) })
    }
  }
  return [...found].sort((a, b) => b.length - a.length)
}

const truncate = (s: string, max: number) => (s.length > max ? `${s.slice(0, max)}…` : s)
