// The fault shape of each service, as clients parse it: Nova's {"<name>": {"code", "message"}},
// Keystone's {"error": {"code", "title", "message"}}, Glance's {"message", "code": "400 Bad Request", "title"}.
import assert from 'node:assert/strict'
import type { LightMyRequestResponse } from 'fastify'

export type Service = 'identity' | 'compute' | 'image'

const NOVA_FAULTS = new Set([
  'badRequest',
  'unauthorized',
  'forbidden',
  'itemNotFound',
  'badMethod',
  'conflictingRequest',
  'overLimit',
  'badMediaType',
  'notImplemented',
  'serviceUnavailable',
  'computeFault',
])

/** Why `body` (already parsed) is not `service`'s fault for `status`; undefined when it is. */
export function faultShapeProblem(service: Service, status: number, body: unknown): string | undefined {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return 'not a JSON object'
  const b = body as Record<string, any>
  if (service === 'compute') {
    const keys = Object.keys(b)
    if (keys.length !== 1 || !NOVA_FAULTS.has(keys[0]!)) return `not a Nova fault: keys ${keys.join(', ')}`
    const inner = b[keys[0]!]
    if (inner?.code !== status || typeof inner?.message !== 'string') return 'Nova fault without code or message'
    return undefined
  }
  if (service === 'identity') {
    if (Object.keys(b).join() !== 'error') return 'not a Keystone error'
    if (b.error?.code !== status || typeof b.error?.title !== 'string' || typeof b.error?.message !== 'string')
      return 'Keystone error without code, title or message'
    return undefined
  }
  if (typeof b.message !== 'string' || typeof b.title !== 'string' || typeof b.code !== 'string' || !b.code.startsWith(`${status} `)) {
    return 'not a Glance error'
  }
  return undefined
}

/** Assert that `res` is a 4xx (or `status`) in `service`'s fault shape; returns the fault message. */
export function assertFault(service: Service, res: LightMyRequestResponse, status?: number, context = ''): string {
  const where = `${context}${context ? ': ' : ''}${res.statusCode} ${res.body.slice(0, 300)}`
  if (status !== undefined) assert.equal(res.statusCode, status, where)
  else assert.ok(res.statusCode >= 400 && res.statusCode < 500, where)
  let body: unknown
  try {
    body = res.json()
  } catch {
    assert.fail(`not JSON: ${where}`)
  }
  const problem = faultShapeProblem(service, res.statusCode, body)
  assert.equal(problem, undefined, `${problem}: ${where}`)
  const b = body as Record<string, any>
  return service === 'compute' ? b[Object.keys(b)[0]!].message : service === 'identity' ? b.error.message : b.message
}
