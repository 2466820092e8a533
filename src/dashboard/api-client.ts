// The dashboard's way to Skiff: the public HTTP APIs of its own three listeners, with the
// user's token, through fastify's inject() (the same routes, hooks, authentication, policy and
// faults as a request from the network; no socket). The dashboard never reaches a service or the
// store directly, so it can do nothing the API would refuse the same user.
import type { Readable } from 'node:stream'
import type { Apps } from '../api/app.ts'

export type Service = 'identity' | 'compute' | 'image'

/** The compute microversion the dashboard reads: 2.47's embedded flavor, 2.73's lock reason, 2.51 action events. */
export const COMPUTE_VERSION = '2.79'

export interface Answer<T = unknown> {
  status: number
  ok: boolean
  body: T
  headers: Record<string, string | string[] | number | undefined>
  /** The service's own message when it refused (Nova's fault, Keystone's error, Glance's message). */
  message: string
}

export interface CallOptions {
  token?: string
  body?: unknown
  /** A raw body (image data), streamed. */
  stream?: Readable
  contentType?: string
  /** Compute microversion; COMPUTE_VERSION by default, `null` for none (2.1). */
  microversion?: string | null
  headers?: Record<string, string>
}

/** The message of any of the three services' error bodies. */
export function faultMessage(body: unknown, fallback: string): string {
  if (body && typeof body === 'object') {
    const b = body as Record<string, unknown>
    if (typeof b.message === 'string') return b.message // Glance
    const err = b.error as { message?: unknown } | undefined
    if (err && typeof err.message === 'string') return err.message // Keystone
    for (const v of Object.values(b)) {
      const m = (v as { message?: unknown } | null)?.message
      if (typeof m === 'string') return m // Nova: {"conflictingRequest": {"message": ...}}
    }
  }
  return fallback
}

export class SkiffApi {
  readonly #apps: Pick<Apps, Service>

  constructor(apps: Pick<Apps, Service>) {
    this.#apps = apps
  }

  async call<T = unknown>(service: Service, method: string, url: string, opts: CallOptions = {}): Promise<Answer<T>> {
    const headers: Record<string, string> = { accept: 'application/json', ...(opts.headers ?? {}) }
    if (opts.token) headers['x-auth-token'] = opts.token
    if (service === 'compute' && opts.microversion !== null)
      headers['openstack-api-version'] = `compute ${opts.microversion ?? COMPUTE_VERSION}`
    let payload: string | Readable | undefined
    if (opts.stream) {
      payload = opts.stream
      headers['content-type'] = opts.contentType ?? 'application/octet-stream'
    } else if (opts.body !== undefined) {
      payload = JSON.stringify(opts.body)
      headers['content-type'] = opts.contentType ?? 'application/json'
    }
    const res = await this.#apps[service].inject({
      method: method as 'GET',
      url,
      headers,
      ...(payload !== undefined ? { payload } : {}),
    })
    let body: unknown = undefined
    if (res.body.length > 0) {
      try {
        body = JSON.parse(res.body)
      } catch {
        body = res.body
      }
    }
    const ok = res.statusCode >= 200 && res.statusCode < 300
    return {
      status: res.statusCode,
      ok,
      body: body as T,
      headers: res.headers,
      message: ok ? '' : faultMessage(body, `${res.statusCode} ${res.statusMessage}`),
    }
  }
}
