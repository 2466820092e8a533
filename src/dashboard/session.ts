// Dashboard sessions, sealed into the cookie with the deployment's key (secrets.ts) rather than
// stored in a table: the only secret a session holds is the Keystone token, which the identity
// service already stores (as a hash), expires and revokes. So every API process that holds the
// deployment's key (all of them must, to start) opens any session, with no write per login, no
// table to sweep, and logout is the token's revocation, which reaches every process within a
// second (token-revocations.ts): a copy of the cookie kept after logout opens a dead token.
// AES-256-GCM: a cookie changed by its holder, or made with another key, does not open.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Sealer } from '../secrets.ts'

export const SESSION_COOKIE = 'skiff_session'
/** The login form's own CSRF token (double submit: this cookie and the form's hidden field). */
export const LOGIN_COOKIE = 'skiff_login'

export interface Session {
  token: string
  /** When the token expires, ms since the epoch: the cookie's life too. */
  expiresAt: number
  userId: string
  userName: string
  projectId: string
  projectName: string
  isAdmin: boolean
  roles: string[]
  /** Sent back with every form and htmx request (field `_csrf`, header `X-CSRF-Token`). */
  csrf: string
}

export function parseCookies(header: string | undefined): Record<string, string> {
  const out: Record<string, string> = {}
  for (const part of (header ?? '').split(';')) {
    const i = part.indexOf('=')
    if (i < 0) continue
    const name = part.slice(0, i).trim()
    const value = part.slice(i + 1).trim()
    try {
      out[name] = decodeURIComponent(value)
    } catch {
      /* not ours: ignored */
    }
  }
  return out
}

function cookie(name: string, value: string, maxAgeSeconds: number, secure: boolean): string {
  return [
    `${name}=${encodeURIComponent(value)}`,
    'Path=/',
    'HttpOnly',
    'SameSite=Strict',
    `Max-Age=${Math.max(0, Math.floor(maxAgeSeconds))}`,
    ...(secure ? ['Secure'] : []),
  ].join('; ')
}

const isSecure = (req: FastifyRequest) => req.protocol === 'https'

export class Sessions {
  readonly #sealer: Sealer
  readonly #now: () => number

  constructor(sealer: Sealer, now: () => number = Date.now) {
    this.#sealer = sealer
    this.#now = now
  }

  newCsrf(): string {
    return randomBytes(18).toString('base64url')
  }

  /** The request's session, or undefined (none, expired, or not sealed with this deployment's key). */
  read(req: FastifyRequest): Session | undefined {
    const sealed = parseCookies(req.headers.cookie)[SESSION_COOKIE]
    if (!sealed) return undefined
    try {
      const s = this.#sealer.open<Session & { kind?: string }>(sealed)
      if (s.kind !== 'dashboard-session' || typeof s.token !== 'string' || s.expiresAt <= this.#now()) return undefined
      return s
    } catch {
      return undefined
    }
  }

  write(req: FastifyRequest, reply: FastifyReply, s: Session): void {
    const sealed = this.#sealer.seal({ ...s, kind: 'dashboard-session' })
    reply.header('set-cookie', [
      cookie(SESSION_COOKIE, sealed, (s.expiresAt - this.#now()) / 1000, isSecure(req)),
      cookie(LOGIN_COOKIE, '', 0, isSecure(req)),
    ])
  }

  clear(req: FastifyRequest, reply: FastifyReply): void {
    reply.header('set-cookie', cookie(SESSION_COOKIE, '', 0, isSecure(req)))
  }

  /** The login form's CSRF token: the one in its cookie, or a new one set now. */
  loginCsrf(req: FastifyRequest, reply: FastifyReply): string {
    const existing = parseCookies(req.headers.cookie)[LOGIN_COOKIE]
    if (existing && /^[A-Za-z0-9_-]{24}$/.test(existing)) return existing
    const fresh = this.newCsrf()
    reply.header('set-cookie', cookie(LOGIN_COOKIE, fresh, 3600, isSecure(req)))
    return fresh
  }

  checkLoginCsrf(req: FastifyRequest, given: string | undefined): boolean {
    return same(parseCookies(req.headers.cookie)[LOGIN_COOKIE], given)
  }
}

/** Constant-time comparison of two CSRF tokens (HMAC'd first so that lengths may differ). */
export function same(a: string | undefined, b: string | undefined): boolean {
  if (!a || !b) return false
  const key = randomBytes(16)
  const ha = createHmac('sha256', key).update(a).digest()
  const hb = createHmac('sha256', key).update(b).digest()
  return timingSafeEqual(ha, hb)
}
