// The idempotency hooks on any route that sets `idempotent: true`, with a handler the test holds
// open (a request still in progress) and a clock the test moves (answers expire after 24 h).
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import fastify, { type FastifyInstance } from 'fastify'
import { makeErrorHandler } from '../../src/api/errors.ts'
import { installIdempotency } from '../../src/api/idempotency.ts'
import type { AuthContext } from '../../src/identity/identity-service.ts'
import { openStore, type Store } from '../../src/store/db.ts'
import { IdempotencyRepo } from '../../src/store/idempotency-repo.ts'

let store: Store
let app: FastifyInstance
let now = new Date('2026-01-01T00:00:00.000Z')
let runs = 0
let gate: Promise<void> = Promise.resolve()
let failNext = false

before(async () => {
  store = await openStore('sqlite::memory:')
  app = fastify()
  app.decorateRequest('auth', null as unknown as AuthContext)
  app.addHook('onRequest', async (req) => {
    req.auth = { projectId: String(req.headers['x-project'] ?? 'p1'), userId: 'u1' } as AuthContext
  })
  app.setErrorHandler(makeErrorHandler('compute'))
  installIdempotency(app, new IdempotencyRepo(store.db, { now: () => now }))
  app.post('/things', { config: { idempotent: true } }, async (_req, reply) => {
    runs++
    await gate
    if (failNext) {
      failNext = false
      throw new Error('boom')
    }
    return reply.code(201).send({ thing: { n: runs, adminPass: `pass-${runs}`, nested: [{ adminPass: { deep: runs } }] } })
  })
  app.post('/plain', async () => ({ n: ++runs }))
})
after(async () => {
  await app.close()
  await store.close()
})

const post = (url: string, key?: string, body: unknown = { a: 1 }, project = 'p1') =>
  app.inject({
    method: 'POST',
    url,
    payload: body as object,
    headers: { 'x-project': project, ...(key === undefined ? {} : { 'idempotency-key': key }) },
  })

test('a second request while the first still runs gets 409; afterwards the answer is replayed', async () => {
  runs = 0
  let open!: () => void
  gate = new Promise((r) => {
    open = r
  })
  const first = post('/things', 'k-slow')
  while (runs === 0) await new Promise((r) => setTimeout(r, 1))
  const second = await post('/things', 'k-slow')
  assert.equal(second.statusCode, 409)
  assert.deepEqual(second.json(), {
    conflictingRequest: { code: 409, message: 'A request with this Idempotency-Key is still in progress.' },
  })
  open()
  const a = await first
  assert.equal(a.statusCode, 201)
  const b = await post('/things', 'k-slow')
  assert.equal(b.statusCode, 201)
  assert.equal(b.headers['idempotent-replayed'], 'true')
  assert.match(String(b.headers['content-type']), /^application\/json/)
  assert.deepEqual(b.json(), a.json())
  assert.deepEqual(b.json().thing.nested, [{ adminPass: { deep: 1 } }])
  assert.equal(runs, 1)
  // Sealed at every depth.
  const rows = await store.db.selectFrom('idempotency_keys').selectAll().execute()
  assert.ok(!rows.some((r) => r.response.includes('pass-1') || r.response.includes('"deep"')))
})

test('a failed request releases its key; only 2xx answers are stored', async () => {
  runs = 0
  gate = Promise.resolve()
  failNext = true
  const failed = await post('/things', 'k-fail')
  assert.equal(failed.statusCode, 500)
  const retried = await post('/things', 'k-fail')
  assert.equal(retried.statusCode, 201)
  assert.equal(retried.headers['idempotent-replayed'], undefined)
  assert.equal(runs, 2)
})

test('routes without the flag ignore the header', async () => {
  runs = 0
  await post('/plain', 'k-plain')
  const again = await post('/plain', 'k-plain')
  assert.equal(again.headers['idempotent-replayed'], undefined)
  assert.equal(runs, 2)
})

test('the same key in another project is another key', async () => {
  runs = 0
  gate = Promise.resolve()
  assert.equal((await post('/things', 'k-shared', { a: 1 }, 'p1')).statusCode, 201)
  const other = await post('/things', 'k-shared', { a: 2 }, 'p2')
  assert.equal(other.statusCode, 201)
  assert.equal(other.headers['idempotent-replayed'], undefined)
  assert.equal((await post('/things', 'k-shared', { a: 2 }, 'p1')).statusCode, 400)
  assert.equal(runs, 2)
})

test('answers are replayed for 24 hours, then the key runs again; expired rows are purged', async () => {
  runs = 0
  gate = Promise.resolve()
  const first = await post('/things', 'k-ttl')
  now = new Date(now.getTime() + 24 * 3600_000 - 1000)
  assert.deepEqual((await post('/things', 'k-ttl')).json(), first.json())
  now = new Date(now.getTime() + 2000)
  const later = await post('/things', 'k-ttl')
  assert.equal(later.headers['idempotent-replayed'], undefined)
  assert.equal(runs, 2)
  assert.equal(await new IdempotencyRepo(store.db, { now: () => now }).purgeExpired(), 4)
})
