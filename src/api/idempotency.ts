// Idempotent retries: a client that sends `Idempotency-Key` on a POST may send it again (after a
// timeout, a dropped connection) and gets the first answer back, with `Idempotent-Replayed: true`,
// instead of running the request twice (a second rescue would answer 409).
//
// - Which routes: those whose route config sets `idempotent: true` (server create, server actions).
// - The key is stored only as sha256(project, method, path, key): another project, or the same key
//   on another server, is another key.
// - The body is compared by the sha256 of its canonical JSON (keys sorted): same key with another
//   body is a client bug and answers 400.
// - A pending row is inserted before the request runs; the primary key lets only one of two
//   concurrent requests run, the other gets 409. A failed request (not 2xx) drops its row, so a
//   retry runs again; only 2xx answers are stored, for 24 h.
// - Secrets in a stored answer (`adminPass`, at any depth) are sealed with AES-256-GCM under a key
//   derived (HKDF-SHA256) from the raw Idempotency-Key, which is never stored: only a client that
//   holds the key can have the password replayed. The derived key is never logged.
import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes, randomUUID } from 'node:crypto'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { BadRequest, Conflict } from '../errors.ts'
import { addRouteHooks } from './route-hooks.ts'
import { writeNested } from './write-nested.ts'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Routes (POST, PUT, PATCH, DELETE) that honour an `Idempotency-Key` header: replay the stored 2xx answer. */
    idempotent?: boolean
  }
}

/** What the idempotency hooks need from the store (src/store/idempotency-repo.ts implements it). */
export interface IdempotencyStore {
  now(): Date
  claim(c: { keyHash: string; projectId: string; bodyHash: string; owner: string; leaseSeconds: number }): Promise<boolean>
  find(
    keyHash: string,
  ): Promise<{ project_id: string; body_hash: string; status: number; response: string; expires_at: string } | undefined>
  complete(keyHash: string, owner: string, status: number, response: string, ttlSeconds: number): Promise<boolean>
  release(keyHash: string, owner: string): Promise<void>
  dropExpired(keyHash: string, expiresAt: string): Promise<void>
  purgeExpired(): Promise<number>
}

export interface IdempotencyOptions {
  /** How long a stored answer is replayed. */
  ttlSeconds?: number
  /**
   * How long a pending row blocks the key. Requests here only check and enqueue, so they take
   * well under a second; the lease only matters when a process died mid-request.
   */
  leaseSeconds?: number
}

export const IDEMPOTENCY_TTL_SECONDS = 24 * 3600
const LEASE_SECONDS = 60
const PURGE_EVERY_MS = 10 * 60_000
/** `status` of a pending row (no HTTP answer is 0). */
const PENDING = 0
/** Fields sealed wherever they appear in a stored answer. */
const SECRET_FIELDS = new Set(['adminPass'])
/** Answer headers replayed as they were (the request id and version headers are the replay's own). */
const REPLAYED_HEADERS = ['content-type', 'location'] as const
const KEY_FORMAT = /^[\x20-\x7e]{1,255}$/
const IN_PROGRESS = 'A request with this Idempotency-Key is still in progress.'

interface Claimed {
  keyHash: string
  owner: string
  sealKey: Buffer
}

interface StoredAnswer {
  headers: Record<string, string>
  body: unknown
}

export function installIdempotency(app: FastifyInstance, store: IdempotencyStore, opts: IdempotencyOptions = {}) {
  const ttlSeconds = opts.ttlSeconds ?? IDEMPOTENCY_TTL_SECONDS
  const leaseSeconds = opts.leaseSeconds ?? LEASE_SECONDS
  const claimed = new WeakMap<FastifyRequest, Claimed>()
  let lastPurge = 0

  // Only on the routes that set `idempotent: true` (route-hooks.ts).
  // preHandler: after authentication (the project is known) and after body parsing and schema
  // validation, so a malformed request never takes a key.
  const preHandler = async (req: FastifyRequest, reply: FastifyReply) => {
    // GET and HEAD are idempotent by nature: a key there means nothing.
    if (req.method === 'GET' || req.method === 'HEAD') return
    const raw = req.headers['idempotency-key']
    if (raw === undefined) return
    if (typeof raw !== 'string' || !KEY_FORMAT.test(raw)) {
      throw new BadRequest('Invalid Idempotency-Key header: it must be 1 to 255 printable ASCII characters.')
    }
    const projectId = scopeOf(req)
    const path = req.url.split('?')[0] ?? req.url
    const context = JSON.stringify([projectId, req.method, path])
    const keyHash = sha256(JSON.stringify([projectId, req.method, path, raw]))
    const bodyHash = sha256(canonicalJson(req.body ?? null))
    const owner = randomUUID()

    // A few rounds: a row we find may expire or be released between our insert and our read.
    for (let round = 0; round < 3; round++) {
      if (await store.claim({ keyHash, projectId, bodyHash, owner, leaseSeconds })) {
        claimed.set(req, { keyHash, owner, sealKey: deriveSealKey(raw, context) })
        return
      }
      const row = await store.find(keyHash)
      if (!row) continue
      if (row.expires_at <= store.now().toISOString()) {
        await store.dropExpired(keyHash, row.expires_at)
        continue
      }
      if (row.project_id !== projectId || row.body_hash !== bodyHash) {
        throw new BadRequest('This Idempotency-Key was already used with a different request; use a new key for a new request.')
      }
      if (row.status === PENDING) throw new Conflict(IN_PROGRESS)
      return replay(req, reply, row.status, row.response, deriveSealKey(raw, context), keyHash)
    }
    throw new Conflict(IN_PROGRESS)
  }

  // onSend sees the serialized answer before it leaves: a 2xx is stored before the client can
  // retry, anything else releases the key.
  const onSend = async (req: FastifyRequest, reply: FastifyReply, payload: unknown) => {
    const c = claimed.get(req)
    if (!c) return payload
    claimed.delete(req)
    try {
      const body = reply.statusCode >= 200 && reply.statusCode < 300 ? storableBody(payload) : NOT_STORABLE
      if (body === NOT_STORABLE) {
        await store.release(c.keyHash, c.owner)
      } else {
        const headers: Record<string, string> = {}
        for (const name of REPLAYED_HEADERS) {
          const v = reply.getHeader(name)
          if (v !== undefined) headers[name] = String(v)
        }
        const answer: StoredAnswer = { headers, body: mapSecrets(body, (v) => seal(v, c.sealKey, c.keyHash)) }
        if (!(await store.complete(c.keyHash, c.owner, reply.statusCode, JSON.stringify(answer), ttlSeconds))) {
          req.log.warn('idempotency: the pending row was taken over before the answer was stored')
        }
      }
    } catch (err) {
      // The answer still goes out; the key is released so that a retry is not stuck on 409.
      req.log.error({ error: (err as Error).message }, 'idempotency: could not store the answer')
      await store.release(c.keyHash, c.owner).catch(() => {})
    }
    const now = Date.now()
    if (now - lastPurge > PURGE_EVERY_MS) {
      lastPurge = now
      store.purgeExpired().catch((err: Error) => req.log.warn({ error: err.message }, 'idempotency: purge failed'))
    }
    return payload
  }

  // A request that ends without onSend (connection gone mid-way) must not hold its key.
  const onResponse = async (req: FastifyRequest) => {
    const c = claimed.get(req)
    if (!c) return
    claimed.delete(req)
    await store.release(c.keyHash, c.owner).catch(() => {})
  }

  addRouteHooks(app, 'idempotent', { preHandler, onSend, onResponse })
}

function replay(req: FastifyRequest, reply: FastifyReply, status: number, stored: string, sealKey: Buffer, keyHash: string) {
  const answer = JSON.parse(stored) as StoredAnswer
  const body = mapSecrets(answer.body, (v) => unseal(v, sealKey, keyHash))
  req.log.info({ status }, 'idempotency: replaying the stored answer')
  reply.code(status).headers(answer.headers).header('idempotent-replayed', 'true')
  return body === null ? reply.send() : reply.send(JSON.stringify(body))
}

const NOT_STORABLE = Symbol('not storable')

/** The answer as JSON (null when empty); NOT_STORABLE for streams and non-JSON bodies. */
function storableBody(payload: unknown): unknown {
  if (payload === undefined || payload === null || payload === '') return null
  const text = typeof payload === 'string' ? payload : Buffer.isBuffer(payload) ? payload.toString('utf8') : undefined
  if (text === undefined) return NOT_STORABLE
  if (text === '') return null
  try {
    return JSON.parse(text)
  } catch {
    return NOT_STORABLE
  }
}

/** Whose keys: the token's project (a domain-scoped token: its user); public routes share one space. */
export const scopeOf = (req: FastifyRequest) => (req.auth ? (req.auth.projectId ?? `user:${req.auth.userId}`) : 'anonymous')

const sha256 = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex')

/**
 * JSON with object keys sorted at every depth: equal bodies hash equal whatever their key order.
 * Iterative (a work list, no recursion): the body is a client's, of any depth.
 */
export function canonicalJson(value: unknown): string {
  return writeNested(value, CANONICAL)
}

const CANONICAL = {
  scalar: (v: unknown) => JSON.stringify(v) ?? 'null',
  key: (k: string) => `${JSON.stringify(k)}:`,
  comma: ',',
  entries: (o: Record<string, unknown>) =>
    Object.entries(o)
      .filter(([, x]) => x !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
}

/** Apply `fn` to the value of every secret field, at any depth. */
function mapSecrets(v: unknown, fn: (secret: unknown) => unknown): unknown {
  if (Array.isArray(v)) return v.map((x) => mapSecrets(x, fn))
  if (v !== null && typeof v === 'object') {
    const out: Record<string, unknown> = {}
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) out[k] = SECRET_FIELDS.has(k) ? fn(x) : mapSecrets(x, fn)
    return out
  }
  return v
}

/** 32 bytes for AES-256-GCM, from the raw key; the salt binds it to the project, method and path. */
function deriveSealKey(rawKey: string, context: string): Buffer {
  return Buffer.from(hkdfSync('sha256', Buffer.from(rawKey, 'utf8'), Buffer.from(context, 'utf8'), 'skiff idempotency seal v1', 32))
}

/** `{"sealed": "v1.<iv>.<tag>.<ciphertext>"}` (base64url); the row's key hash is the associated data. */
function seal(value: unknown, key: Buffer, keyHash: string): { sealed: string } {
  const iv = randomBytes(12)
  const cipher = createCipheriv('aes-256-gcm', key, iv)
  cipher.setAAD(Buffer.from(keyHash, 'utf8'))
  const ct = Buffer.concat([cipher.update(JSON.stringify(value), 'utf8'), cipher.final()])
  return { sealed: ['v1', iv, cipher.getAuthTag(), ct].map((p) => (typeof p === 'string' ? p : p.toString('base64url'))).join('.') }
}

function unseal(value: unknown, key: Buffer, keyHash: string): unknown {
  const sealed = (value as { sealed?: unknown } | null)?.sealed
  const parts = typeof sealed === 'string' ? sealed.split('.') : []
  if (parts.length !== 4 || parts[0] !== 'v1') throw new Error('idempotency: a stored secret is not sealed')
  const [iv, tag, ct] = parts.slice(1).map((p) => Buffer.from(p, 'base64url')) as [Buffer, Buffer, Buffer]
  const decipher = createDecipheriv('aes-256-gcm', key, iv)
  decipher.setAAD(Buffer.from(keyHash, 'utf8'))
  decipher.setAuthTag(tag)
  return JSON.parse(Buffer.concat([decipher.update(ct), decipher.final()]).toString('utf8'))
}
