// GET /v2/images as Glance answers it (glance/api/v2/images.py, glance/db/sqlalchemy/api.py):
// sort_key/sort_dir and sort=, the filters with their operators, limit/marker/next, and each
// 400 with Glance's words. Through inject() on a fresh database of the run's dialect (SQLite, or
// PostgreSQL in npm test's second pass), with images made through the API at chosen times.
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import type { FastifyInstance } from 'fastify'
import pino from 'pino'
import { createListener } from '../../src/api/listener.ts'
import { imageRoutes } from '../../src/api/routes/image.ts'
import { systemClock, type Clock } from '../../src/clock.ts'
import { loadConfig } from '../../src/config.ts'
import { IdentityService } from '../../src/identity/identity-service.ts'
import { ImageService } from '../../src/images/image-service.ts'
import { FileImageStore } from '../../src/images/image-store.ts'
import { openStore, type Store } from '../../src/store/db.ts'
import { IdentityRepo } from '../../src/store/identity-repo.ts'
import { projects, seedImageAccounts } from '../helpers/image-accounts.ts'
import { ImagesRepo } from '../../src/store/images-repo.ts'
import { freshDatabase, type TestDatabase } from '../helpers/database.ts'

let database: TestDatabase
let store: Store
let app: FastifyInstance
let dir: string
const tokens: Record<'alice' | 'bob' | 'admin', string> = { alice: '', bob: '', admin: '' }

// Images are created at the time set here.
let now = Date.parse('2026-01-01T00:00:00.000Z')
const clock: Clock = { now: () => new Date(now) }

/** Ids chosen so that ties on created_at are broken by an order one can read. */
const id = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`
const A = id(1) // alice, 'alpha', active, 10 bytes, raw, tags x86 linux, os_distro=debian
const B = id(2) // alice, 'Beta', active, 30 bytes, qcow2, tag x86, os_distro=Ubuntu, protected
const C = id(3) // alice, 'gamma', queued, tag arm
const D = id(4) // alice, no name, queued; created in the same second and millisecond as C
const E = id(5) // alice, 'alpha' again, active, 20 bytes, raw
const H = id(6) // alice, 'hidden-one', os_hidden
const P = id(7) // bob, 'bob-private', private
const M = id(8) // alice, 'comm', community
const U = id(9) // admin, 'pub', public
const K = id(10) // alice, 'killed-one', status killed (set in the database)
const Q = id(11) // bob, 'bob-comm', community

type Who = keyof typeof tokens

async function call(method: 'GET' | 'POST' | 'PUT' | 'PATCH', url: string, as: Who = 'alice', body?: unknown, type?: string) {
  const headers: Record<string, string> = { 'x-auth-token': tokens[as] }
  let payload: string | Buffer | undefined
  if (body !== undefined) {
    payload = Buffer.isBuffer(body) ? body : JSON.stringify(body)
    headers['content-type'] = type ?? 'application/json'
  }
  const res = await app.inject({ method, url, headers, ...(payload !== undefined ? { payload } : {}) })
  return { status: res.statusCode, body: res.body, json: () => res.json() as Record<string, any> }
}

async function make(at: string, body: Record<string, unknown>, as: Who = 'alice', data?: Buffer) {
  now = Date.parse(at)
  const r = await call('POST', '/v2/images', as, body)
  assert.equal(r.status, 201, r.body)
  if (data) {
    const put = await call('PUT', `/v2/images/${body.id as string}/file`, as, data, 'application/octet-stream')
    assert.equal(put.status, 204, put.body)
  }
}

/** The ids of one page (as `as` sees it), after checking the answer is a 200 list. */
async function ids(query: string, as: Who = 'alice'): Promise<string[]> {
  const r = await call('GET', `/v2/images${query}`, as)
  assert.equal(r.status, 200, `${query}: ${r.body}`)
  return (r.json().images as { id: string }[]).map((i) => i.id)
}

/** Glance (webob) error shape, with the status and the message expected. */
async function glanceError(query: string, status: number, message: string, as: Who = 'alice') {
  const r = await call('GET', `/v2/images${query}`, as)
  assert.equal(r.status, status, `${query}: ${r.body}`)
  const b = r.json()
  assert.deepEqual(Object.keys(b).sort(), ['code', 'message', 'title'])
  assert.equal(b.code, `${status} ${status === 400 ? 'Bad Request' : 'Forbidden'}`)
  assert.equal(b.message, message, query)
}

before(async () => {
  database = await freshDatabase()
  store = await openStore(database.url)
  const db = store.db
  dir = await mkdtemp(path.join(tmpdir(), 'skiff-image-list-'))
  const identity = new IdentityService(new IdentityRepo(db), systemClock, 3600)
  Object.assign(tokens, await seedImageAccounts(db, identity))
  const images = new ImageService(new ImagesRepo(db, clock), clock, new FileImageStore(dir))
  app = createListener('image', {
    config: loadConfig({}, {}),
    logger: pino({ level: 'silent' }),
    identity,
    identityUri: 'http://127.0.0.1:5000/v3',
  })
  imageRoutes(app, { images, imageUrl: 'http://127.0.0.1:9292' })
  await app.ready()

  const fmt = { container_format: 'bare' }
  await make(
    '2026-01-01T00:00:01.100Z',
    { id: A, name: 'alpha', disk_format: 'raw', ...fmt, tags: ['x86', 'linux'], os_distro: 'debian' },
    'alice',
    Buffer.alloc(10),
  )
  await make(
    '2026-01-01T00:00:02.200Z',
    { id: B, name: 'Beta', disk_format: 'qcow2', ...fmt, tags: ['x86'], os_distro: 'Ubuntu', protected: true },
    'alice',
    Buffer.alloc(30),
  )
  await make('2026-01-01T00:00:03.000Z', { id: C, name: 'gamma', tags: ['arm'] })
  await make('2026-01-01T00:00:03.000Z', { id: D })
  await make('2026-01-01T00:00:04.500Z', { id: E, name: 'alpha', disk_format: 'raw', ...fmt }, 'alice', Buffer.alloc(20))
  await make('2026-01-01T00:00:05.000Z', { id: H, name: 'hidden-one', os_hidden: true })
  await make('2026-01-01T00:00:06.000Z', { id: P, name: 'bob-private', visibility: 'private' }, 'bob')
  await make('2026-01-01T00:00:07.000Z', { id: M, name: 'comm', visibility: 'community' })
  await make('2026-01-01T00:00:08.000Z', { id: U, name: 'pub', visibility: 'public' }, 'admin')
  await make('2026-01-01T00:00:09.000Z', { id: K, name: 'killed-one' })
  await make('2026-01-01T00:00:10.000Z', { id: Q, name: 'bob-comm', visibility: 'community' }, 'bob')
  await db.updateTable('images').set({ status: 'killed' }).where('id', '=', K).execute()
  // A later change: C's updated_at moves on.
  now = Date.parse('2026-01-02T12:00:00.000Z')
  const patched = await call(
    'PATCH',
    `/v2/images/${C}`,
    'alice',
    [{ op: 'add', path: '/note', value: 'x' }],
    'application/openstack-images-v2.1-json-patch',
  )
  assert.equal(patched.status, 200, patched.body)
})

after(async () => {
  await app?.close()
  await store?.close()
  await database?.drop()
  if (dir) await rm(dir, { recursive: true, force: true })
})

// What alice lists by default: her own (community included), public; not bob's, not hidden, not killed.
const NEWEST_FIRST = [U, M, E, D, C, B, A]

describe('order', () => {
  test('by default created_at desc, then id desc where created_at ties (C and D)', async () => {
    assert.deepEqual(await ids(''), NEWEST_FIRST)
  })

  test('sort_dir=asc: oldest first, and the tie-breaker id ascending too', async () => {
    assert.deepEqual(await ids('?sort_dir=asc'), [...NEWEST_FIRST].reverse())
    assert.deepEqual(await ids('?sort_key=created_at&sort_dir=asc'), [...NEWEST_FIRST].reverse())
  })

  test('sort_key=name: without regard to case, a missing name as the empty string; ties by created_at in the same direction', async () => {
    // alpha (A, E), Beta, comm, gamma, pub; D has no name.
    assert.deepEqual(await ids('?sort_key=name&sort_dir=asc'), [D, A, E, B, M, C, U])
    assert.deepEqual(await ids('?sort_key=name&sort_dir=desc'), [U, C, M, B, E, A, D])
    assert.deepEqual(await ids('?sort_key=name'), [U, C, M, B, E, A, D], 'sort_dir defaults to desc')
  })

  test('several keys: repeated sort_key with one sort_dir for all, or one sort_dir each', async () => {
    // size: A 10, E 20, B 30; queued images have none (0).
    assert.deepEqual(await ids('?sort_key=size&sort_key=name&sort_dir=asc'), [D, M, C, U, A, E, B])
    assert.deepEqual(await ids('?sort_key=size&sort_key=name&sort_dir=desc&sort_dir=asc'), [B, E, A, D, M, C, U])
    // Two dirs: the tie-breakers (created_at, id) go desc, Glance's default.
    assert.deepEqual(await ids('?sort_key=name&sort_key=size&sort_dir=asc&sort_dir=asc'), [D, A, E, B, M, C, U])
    assert.deepEqual(await ids('?sort_key=disk_format&sort_key=id&sort_dir=asc'), [C, D, M, U, B, A, E])
  })

  test('sort=key:dir,key2 (a key without a direction is desc)', async () => {
    assert.deepEqual(await ids('?sort=size:desc,name:asc'), [B, E, A, D, M, C, U])
    assert.deepEqual(await ids('?sort=name:asc'), [D, A, E, B, M, C, U])
    assert.deepEqual(await ids('?sort=name'), [U, C, M, B, E, A, D])
    assert.deepEqual(await ids('?sort=%20size%20:%20desc%20,name:asc'), [B, E, A, D, M, C, U], 'spaces around keys and dirs')
    assert.deepEqual(await ids('?sort=updated_at:desc'), [C, U, M, E, D, B, A], "C's patch moved its updated_at")
    assert.deepEqual(await ids('?sort=status:asc,id:asc'), [A, B, E, C, D, M, U])
  })

  test("bad sorts: 400 with Glance's messages", async () => {
    const keys = 'name, status, container_format, disk_format, size, id, created_at, updated_at'
    await glanceError('?sort_key=owner', 400, `Invalid sort key: owner. It must be one of the following: ${keys}.`)
    await glanceError('?sort_key=name,size', 400, `Invalid sort key: name,size. It must be one of the following: ${keys}.`)
    await glanceError('?sort_key=', 400, `Invalid sort key: . It must be one of the following: ${keys}.`)
    await glanceError('?sort_dir=up', 400, 'Invalid sort direction: up')
    await glanceError('?sort=name:up', 400, 'Invalid sort direction: up')
    await glanceError('?sort=name:asc,tags', 400, `Invalid sort key: tags. It must be one of the following: ${keys}.`)
    await glanceError('?sort=name&sort_dir=asc', 400, 'Old and new sorting syntax cannot be combined')
    await glanceError('?sort_key=name&sort=name', 400, 'Old and new sorting syntax cannot be combined')
    await glanceError(
      '?sort_key=name&sort_key=size&sort_key=id&sort_dir=asc&sort_dir=desc',
      400,
      'Number of sort dirs does not match the number of sort keys',
    )
    await glanceError('?sort_dir=asc&sort_dir=desc', 400, 'Number of sort dirs does not match the number of sort keys')
  })
})

describe('filters', () => {
  test('name: equal without regard to case; eq: and in: (quoted values may hold commas); other operators 400', async () => {
    assert.deepEqual(await ids('?name=alpha'), [E, A])
    assert.deepEqual(await ids('?name=ALPHA'), [E, A])
    assert.deepEqual(await ids('?name=eq:beta'), [B])
    assert.deepEqual(await ids('?name=in:alpha,gamma'), [E, C, A])
    assert.deepEqual(await ids(`?name=${encodeURIComponent('in:"gamma",pub,"x,y"')}`), [U, C])
    assert.deepEqual(await ids('?name='), [], 'an empty name is a name')
    assert.deepEqual(await ids('?name=in:'), [])
    await glanceError('?name=like:alp', 400, "Unable to filter by unknown operator 'like'.")
    await glanceError('?name=neq:alpha', 400, "Unable to filter by unknown operator 'neq'.")
    await glanceError(
      `?name=${encodeURIComponent('in:a"b"')}`,
      400,
      'Invalid filter value a"b". There is no comma before opening quotation mark.',
    )
    await glanceError(
      `?name=${encodeURIComponent('in:"a"b')}`,
      400,
      'Invalid filter value "a"b. There is no comma after closing quotation mark.',
    )
    await glanceError(`?name=${encodeURIComponent('in:"ab')}`, 400, 'Invalid filter value "ab. The quote is not closed.')
  })

  test('id, status, disk_format and container_format take eq: and in: too; an unknown status lists nothing', async () => {
    assert.deepEqual(await ids(`?id=in:${A},${C},${P}`), [C, A], "bob's private image stays out")
    assert.deepEqual(await ids('?status=active'), [E, B, A])
    assert.deepEqual(await ids('?status=in:queued,killed'), [U, M, D, C], 'killed images are never listed')
    assert.deepEqual(await ids('?status=bogus'), [])
    assert.deepEqual(await ids('?disk_format=raw&container_format=eq:bare'), [E, A])
    assert.deepEqual(await ids('?disk_format=in:qcow2,raw&sort_key=size&sort_dir=asc'), [A, E, B])
    await glanceError('?status=gt:active', 400, "Unable to filter by unknown operator 'gt'.")
  })

  test("visibility: one of them, all, or 400; shared is the owner's until members are added; community only when asked (or owned)", async () => {
    assert.deepEqual(await ids('?visibility=public'), [U])
    assert.deepEqual(await ids('?visibility=community'), [Q, M])
    assert.deepEqual(await ids('?visibility=private'), [])
    assert.deepEqual(await ids('?visibility=shared'), [E, D, C, B, A])
    assert.deepEqual(await ids('?visibility=shared', 'bob'), [])
    assert.deepEqual(await ids('?visibility=all'), [Q, ...NEWEST_FIRST])
    assert.deepEqual(await ids('', 'bob'), [Q, U, P], "bob: his own, public; alice's community image only when asked for")
    assert.deepEqual(await ids('?visibility=all', 'bob'), [Q, U, M, P])
    assert.deepEqual(await ids('?visibility=private', 'admin'), [P], 'an admin sees every project')
    assert.deepEqual(await ids('', 'admin'), [U, M, P, E, D, C, B, A], "but not other projects' community images unless asked")
    await glanceError('?visibility=bogus', 400, 'Invalid visibility value: bogus')
    await glanceError('?visibility=PUBLIC', 400, 'Invalid visibility value: PUBLIC')
  })

  test('owner, member_status (checked; Skiff has no members) and protected', async () => {
    assert.deepEqual(await ids(`?owner=${projects.p2}`, 'admin'), [P], "an admin too sees others' community images only when asked")
    assert.deepEqual(await ids(`?owner=${projects.p2}&visibility=all`, 'admin'), [Q, P])
    assert.deepEqual(await ids(`?owner=${projects.p2}`), [], "bob's community image is not listed to alice unasked")
    assert.deepEqual(await ids(`?owner=${projects.p2}&visibility=community`), [Q])
    for (const s of ['accepted', 'pending', 'rejected', 'all']) assert.deepEqual(await ids(`?member_status=${s}`), NEWEST_FIRST)
    await glanceError('?member_status=bogus', 400, 'Invalid status: bogus')
    assert.deepEqual(await ids('?protected=true'), [B])
    assert.deepEqual(await ids('?protected=false&status=active'), [E, A])
    await glanceError('?protected=True', 400, "Invalid value 'True' for 'protected' filter. Valid values are 'true' or 'false'.")
  })

  test('tag: repeatable, every one must match (without regard to case)', async () => {
    assert.deepEqual(await ids('?tag=x86'), [B, A])
    assert.deepEqual(await ids('?tag=x86&tag=linux'), [A])
    assert.deepEqual(await ids('?tag=X86&tag=%20linux%20'), [A], 'each tag stripped')
    assert.deepEqual(await ids('?tag=x86&tag=arm'), [])
  })

  test('os_hidden: hidden images only when asked for (any case), 400 for anything else', async () => {
    assert.deepEqual(await ids('?os_hidden=true'), [H])
    assert.deepEqual(await ids('?os_hidden=True'), [H])
    assert.deepEqual(await ids('?os_hidden=false'), NEWEST_FIRST)
    await glanceError('?os_hidden=Maybe', 400, "Invalid value 'maybe' for 'os_hidden' filter. Valid values are 'true' or 'false'.")
  })

  test('size_min and size_max (no size: never in range); 400 for a non-number', async () => {
    assert.deepEqual(await ids('?size_min=15'), [E, B])
    assert.deepEqual(await ids('?size_max=20'), [E, A])
    assert.deepEqual(await ids('?size_min=10&size_max=20'), [E, A])
    assert.deepEqual(await ids('?size_min=0&sort=size:asc'), [A, E, B])
    assert.deepEqual(await ids('?size_min=99999999999999999999999'), [])
    assert.deepEqual(await ids('?min_ram_max=0&status=active'), [E, B, A], 'any numeric attribute')
    await glanceError('?size_min=abc', 400, 'Unable to filter on a range with a non-numeric value.')
    await glanceError('?size_max=1.5', 400, 'Unable to filter on a range with a non-numeric value.')
    await glanceError('?name_min=1', 400, 'Unable to filter using the specified range.')
  })

  test('created_at and updated_at: gt gte lt lte eq neq against the time as shown (whole seconds), any ISO 8601 form', async () => {
    assert.deepEqual(await ids('?created_at=gt:2026-01-01T00:00:03Z'), [U, M, E])
    assert.deepEqual(await ids('?created_at=gte:2026-01-01T00:00:03Z'), [U, M, E, D, C])
    assert.deepEqual(await ids('?created_at=lt:2026-01-01T00:00:02Z'), [A])
    assert.deepEqual(await ids('?created_at=lte:2026-01-01T00:00:02Z'), [B, A], 'B was made at 00:00:02.200, shown 00:00:02')
    assert.deepEqual(await ids('?created_at=eq:2026-01-01T00:00:04Z'), [E])
    assert.deepEqual(await ids('?created_at=2026-01-01T00:00:04Z'), [E], 'a bare time is eq')
    assert.deepEqual(await ids('?created_at=neq:2026-01-01T00:00:03Z'), [U, M, E, B, A])
    assert.deepEqual(
      await ids('?created_at=gte:2026-01-01T01:00:04%2B01:00&created_at=lt:2026-01-01T00:00:05'),
      [E, D, C, B, A],
      'the last value counts, as in Glance',
    )
    assert.deepEqual(await ids('?created_at=lt:2026-01-01T01:00:03%2B01:00'), [B, A], 'an offset is turned to UTC')
    assert.deepEqual(await ids('?created_at=gt:2026-01-01T00:00:02.5Z'), [U, M, E, D, C], 'a fraction')
    assert.deepEqual(await ids('?created_at=gt:20260101T000003Z'), [U, M, E], 'basic format')
    assert.deepEqual(await ids('?created_at=gt:2026'), NEWEST_FIRST, 'a year alone')
    assert.deepEqual(await ids('?updated_at=gt:2026-01-02'), [C])
    assert.deepEqual(await ids('?updated_at=gte:2026-01-02T12:00:00Z&created_at=lt:2026-01-02'), [C])
    await glanceError('?created_at=in:2026-01-01T00:00:03Z', 400, 'Unable to filter on a unknown operator.')
    await glanceError('?created_at=gt:yesterday', 400, 'Bad "created_at" query filter format. Use ISO 8601 DateTime notation.')
    await glanceError('?updated_at=gt:2026-02-30', 400, 'Bad "updated_at" query filter format. Use ISO 8601 DateTime notation.')
    await glanceError('?created_at=gt:2026-01-01t00:00:00z', 400, 'Bad "created_at" query filter format. Use ISO 8601 DateTime notation.')
  })

  test('any other parameter is an extra property that must exist with that value; changes-since is gone', async () => {
    assert.deepEqual(await ids('?os_distro=debian'), [A])
    assert.deepEqual(await ids('?OS_DISTRO=ubuntu'), [B], 'without regard to case')
    assert.deepEqual(await ids('?os_distro=fedora'), [])
    assert.deepEqual(await ids('?note=x&os_distro=debian'), [])
    assert.deepEqual(await ids('?note=x'), [C])
    assert.deepEqual(await ids('?locations=x'), [], 'a Glance relation: nothing is equal to it')
    await glanceError('?changes-since=2026-01-01T00:00:00Z', 400, 'The "changes-since" filter is no longer available on v2.')
  })
})

describe('pages', () => {
  async function walk(query: string, as: Who = 'alice'): Promise<{ seen: string[]; links: string[] }> {
    const seen: string[] = []
    const links: string[] = []
    let url: string | undefined = `/v2/images${query}`
    while (url) {
      const r = await call('GET', url, as)
      assert.equal(r.status, 200, r.body)
      const b = r.json()
      seen.push(...(b.images as { id: string }[]).map((i) => i.id))
      links.push(b.first as string)
      url = b.next as string | undefined
      assert.ok(links.length < 20, 'no endless pages')
    }
    return { seen, links }
  }

  test('limit/marker: following next gives each image once, in every order', async () => {
    for (const q of [
      '',
      'sort_dir=asc',
      'sort=name:asc',
      'sort=name:desc,size:asc',
      'sort_key=size&sort_key=name&sort_dir=asc',
      'sort=disk_format:asc',
    ]) {
      const whole = await ids(`?${q}`)
      for (const limit of [1, 2, 3]) {
        const { seen } = await walk(`?${q}${q ? '&' : ''}limit=${limit}`)
        assert.deepEqual(seen, whole, `${q} limit=${limit}`)
      }
    }
  })

  test("first and next: the caller's parameters in order, the next marker last; no next once a page is not full", async () => {
    const r = (await call('GET', '/v2/images?sort=name:asc&tag=x86&limit=1')).json()
    assert.deepEqual(
      r.images.map((i: { id: string }) => i.id),
      [A],
    )
    assert.equal(r.first, '/v2/images?sort=name%3Aasc&tag=x86&limit=1')
    assert.equal(r.next, `/v2/images?sort=name%3Aasc&tag=x86&limit=1&marker=${A}`)
    assert.equal(r.schema, '/v2/schemas/images')
    const second = (await call('GET', r.next)).json()
    assert.deepEqual(
      second.images.map((i: { id: string }) => i.id),
      [B],
    )
    assert.equal(second.first, '/v2/images?sort=name%3Aasc&tag=x86&limit=1')
    assert.equal(second.next, `/v2/images?sort=name%3Aasc&tag=x86&limit=1&marker=${B}`)
    const third = (await call('GET', second.next)).json()
    assert.deepEqual(third.images, [])
    assert.equal(third.next, undefined)

    const plain = (await call('GET', '/v2/images')).json()
    assert.equal(plain.first, '/v2/images')
    assert.equal(plain.next, undefined)
    const both = (await call('GET', '/v2/images?tag=x86&tag=linux&name=a+b&limit=5')).json()
    assert.equal(both.first, '/v2/images?tag=x86&tag=linux&name=a+b&limit=5', 'every tag kept, a space as +')
  })

  test('limit: 0 lists nothing; above 1000 is 1000; Python integers; 400 otherwise', async () => {
    assert.deepEqual(await ids('?limit=0'), [])
    assert.equal((await call('GET', '/v2/images?limit=0')).json().next, undefined)
    assert.deepEqual(await ids('?limit=5000'), NEWEST_FIRST)
    assert.deepEqual(await ids('?limit=%202%20'), NEWEST_FIRST.slice(0, 2))
    assert.deepEqual(await ids('?limit=%2B3'), NEWEST_FIRST.slice(0, 3))
    await glanceError('?limit=abc', 400, 'limit param must be an integer')
    await glanceError('?limit=', 400, 'limit param must be an integer')
    await glanceError('?limit=1.0', 400, 'limit param must be an integer')
    await glanceError('?limit=-1', 400, 'limit param must be positive')
  })

  test('marker: unknown 400, not visible 403, too long 400, as Glance; any visible image may be one', async () => {
    await glanceError(`?marker=${id(999)}`, 400, `No image found with ID ${id(999)}`)
    await glanceError('?marker=', 400, 'No image found with ID ')
    await glanceError(`?marker=${P}`, 403, `Forbidding request, image ${P} not visible`)
    await glanceError(`?marker=${'x'.repeat(37)}`, 400, 'Image with the given id %(image_id)s was not found')
    assert.deepEqual(await ids(`?marker=${H}`), [E, D, C, B, A], 'a hidden image, not listed, is still a marker')
    assert.deepEqual(await ids(`?marker=${P}`, 'admin'), [E, D, C, B, A])
    assert.deepEqual(await ids(`?marker=${C}&sort_dir=asc`), [D, E, M, U])
  })

  test("the order of Glance's checks: the request, then os_hidden, then filters, then the marker", async () => {
    await glanceError(`?marker=${id(999)}&limit=x`, 400, 'limit param must be an integer')
    await glanceError('?limit=x&visibility=bogus', 400, 'Invalid visibility value: bogus')
    await glanceError(
      '?sort_key=bad&os_hidden=x',
      400,
      'Invalid sort key: bad. It must be one of the following: name, status, container_format, disk_format, size, id, created_at, updated_at.',
    )
    await glanceError('?os_hidden=x&size_min=y', 400, "Invalid value 'x' for 'os_hidden' filter. Valid values are 'true' or 'false'.")
    await glanceError(`?size_min=y&marker=${id(999)}`, 400, 'Unable to filter on a range with a non-numeric value.')
    await glanceError('?created_at=gt:x&name=lt:y', 400, 'Bad "created_at" query filter format. Use ISO 8601 DateTime notation.')
    await glanceError('?name=lt:y&created_at=gt:x', 400, "Unable to filter by unknown operator 'lt'.")
  })
})

test('any mix of parameters and values: a 200 list or a Glance 400/403, never a 500', async () => {
  const keys = [
    'name',
    'id',
    'status',
    'visibility',
    'owner',
    'member_status',
    'tag',
    'tags',
    'os_hidden',
    'protected',
    'size_min',
    'size_max',
    'foo_min',
    'created_at',
    'updated_at',
    'limit',
    'marker',
    'sort',
    'sort_key',
    'sort_dir',
    'size',
    'min_ram',
    'deleted',
    'deleted_at',
    'properties',
    'checksum',
    'os_distro',
    'changes-since',
    '',
    'x%00',
  ]
  const values = [
    '',
    'alpha',
    'in:a,"b',
    'in:"x",y',
    'eq:',
    'gt:2026',
    'gte:2026-01-01T00:00:00%2B01:00',
    'lt:x',
    'neq:2026-99',
    'true',
    'False',
    '-1',
    '0',
    '3',
    '1e3',
    '99999999999999999999',
    'name:asc,size',
    'name:',
    ':asc',
    'asc',
    'desc',
    'all',
    'shared',
    A,
    P,
    '%FF%FE',
    '%E2%82%AC',
    "'; drop table images; --",
    '\\',
    '%22',
    'a,b,,c',
  ]
  let seed = 12345
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31
    return seed % n
  }
  for (const q of ['name=a%00b', 'x%00=1', 'tag=%00', 'marker=%00', 'name=in:a,%00', 'created_at=gt:2026%00', 'owner=%00']) {
    const r = await call('GET', `/v2/images?${q}`)
    assert.ok([200, 400].includes(r.status), `${q}: ${r.status} ${r.body}`)
  }
  for (let i = 0; i < 300; i++) {
    const pairs = Array.from({ length: 1 + rand(4) }, () => `${keys[rand(keys.length)]}=${values[rand(values.length)]}`)
    const url = `/v2/images?${pairs.join('&')}`
    const r = await call('GET', url, (['alice', 'bob', 'admin'] as const)[rand(3)])
    assert.ok([200, 400, 403].includes(r.status), `${url}: ${r.status} ${r.body}`)
    const b = r.json()
    if (r.status === 200) assert.ok(Array.isArray(b.images), url)
    else assert.deepEqual(Object.keys(b).sort(), ['code', 'message', 'title'], url)
  }
})
