// The server event streams (text/event-stream) on a real socket: what a client waiting for
// RESCUE, ACTIVE or the deletion reads, event by event, with deadlines and no fixed sleeps.
import assert from 'node:assert/strict'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, test } from 'node:test'
import { startTestSkiff, waitFor, waitForStatus, type TestSkiff } from '../helpers/skiff.ts'

interface ServerState {
  id: string
  name: string
  status: string
  'OS-EXT-STS:vm_state': string
  'OS-EXT-STS:task_state': string | null
  'OS-EXT-STS:power_state': number
  updated: string
}
interface ServerEvent {
  id: string
  data: ServerState
}

const DEADLINE_MS = 5000

/** A minimal EventSource over node:http: parses events and comments as they arrive. */
class EventReader {
  readonly events: ServerEvent[] = []
  readonly comments: string[] = []
  ended = false
  #buffer = ''
  #next = 0
  readonly #waiters = new Set<() => void>()

  constructor(readonly res: http.IncomingMessage) {
    res.setEncoding('utf8')
    res.on('data', (chunk: string) => {
      this.#buffer += chunk
      let end: number
      while ((end = this.#buffer.indexOf('\n\n')) >= 0) {
        this.#parse(this.#buffer.slice(0, end))
        this.#buffer = this.#buffer.slice(end + 2)
      }
      this.#notify()
    })
    const ended = () => {
      this.ended = true
      this.#notify()
    }
    res.on('end', ended)
    res.on('close', ended)
  }

  #parse(block: string) {
    let event = 'message',
      id = '',
      data = ''
    for (const line of block.split('\n')) {
      if (line.startsWith(':')) {
        this.comments.push(line)
        continue
      }
      const i = line.indexOf(':')
      const field = i < 0 ? line : line.slice(0, i)
      const value = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '')
      if (field === 'event') event = value
      else if (field === 'id') id = value
      else if (field === 'data') data += value
    }
    if (data) {
      assert.equal(event, 'server')
      this.events.push({ id, data: JSON.parse(data) as ServerState })
    }
  }

  #notify() {
    for (const wake of [...this.#waiters]) wake()
  }

  async #until<T>(what: string, get: () => T | undefined, timeoutMs: number): Promise<T> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const v = get()
      if (v !== undefined) return v
      const left = deadline - Date.now()
      if (left <= 0)
        throw new Error(
          `timed out after ${timeoutMs} ms waiting for ${what}; events so far: ${JSON.stringify(this.events.map((e) => e.data))}`,
        )
      await new Promise<void>((resolve) => {
        const wake = () => {
          clearTimeout(timer)
          this.#waiters.delete(wake)
          resolve()
        }
        const timer = setTimeout(wake, left)
        this.#waiters.add(wake)
      })
    }
  }

  /** The next server event, in order. */
  next(timeoutMs = DEADLINE_MS): Promise<ServerEvent> {
    return this.#until(
      'the next event',
      () => (this.events[this.#next] ? this.events[this.#next++] : this.ended ? fail('the stream ended') : undefined),
      timeoutMs,
    )
  }

  /** Events up to and including the first one `done` accepts. */
  async until(done: (s: ServerState) => boolean, timeoutMs = DEADLINE_MS): Promise<ServerEvent[]> {
    const out: ServerEvent[] = []
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const e = await this.next(Math.max(1, deadline - Date.now()))
      out.push(e)
      if (done(e.data)) return out
    }
  }

  comment(timeoutMs = DEADLINE_MS): Promise<string> {
    return this.#until('a comment', () => this.comments[0], timeoutMs)
  }

  end(timeoutMs = DEADLINE_MS): Promise<true> {
    return this.#until('the end of the stream', () => (this.ended ? true : undefined), timeoutMs)
  }

  close() {
    this.res.destroy()
  }
}

function fail(message: string): never {
  throw new Error(message)
}

let skiff: TestSkiff
let port: number
let demo: string
let alt: string
let admin: string
let imageId: string
const readers: EventReader[] = []

before(async () => {
  skiff = await startTestSkiff({ serverEventsIntervalMs: 20, serverEventsKeepAliveMs: 100 })
  await skiff.apps.compute.listen({ port: 0, host: '127.0.0.1' })
  port = (skiff.apps.compute.server.address() as AddressInfo).port
  demo = await skiff.token('demo')
  alt = await skiff.token('alt_demo')
  admin = await skiff.token('admin')
  const images = await skiff.apps.image.inject({ method: 'GET', url: '/v2/images?name=skiff-base', headers: { 'x-auth-token': demo } })
  imageId = images.json().images[0].id
})
after(async () => {
  for (const r of readers) r.close()
  await skiff.close()
})

type Opened = { status: number; headers: http.IncomingHttpHeaders; reader: EventReader; body: () => Promise<string> }

function open(path: string, token: string | undefined, headers: Record<string, string> = {}): Promise<Opened> {
  return new Promise((resolve, reject) => {
    const req = http.get(
      {
        host: '127.0.0.1',
        port,
        path,
        agent: false,
        headers: { accept: 'text/event-stream', ...(token ? { 'x-auth-token': token } : {}), ...headers },
      },
      (res) => {
        const reader = new EventReader(res)
        readers.push(reader)
        const body = async () => {
          await reader.end()
          return ''
        }
        if (res.statusCode === 200) return resolve({ status: 200, headers: res.headers, reader, body })
        let text = ''
        res.removeAllListeners('data')
        res.on('data', (c: string) => {
          text += c
        })
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, reader, body: async () => text }))
      },
    )
    req.on('error', reject)
  })
}

async function stream(path: string, token: string, headers: Record<string, string> = {}): Promise<EventReader> {
  const o = await open(path, token, headers)
  if (o.status !== 200) assert.fail(`${path}: ${o.status} ${await o.body()}`)
  return o.reader
}

async function createServer(token: string, name: string): Promise<string> {
  const res = await skiff.compute('POST', '/v2.1/servers', { token, body: { server: { name, imageRef: imageId, flavorRef: '1' } } })
  assert.equal(res.statusCode, 202, res.body)
  return res.json().server.id as string
}

async function activeServer(token: string, name: string): Promise<string> {
  const id = await createServer(token, name)
  await waitForStatus(skiff, token, id, 'ACTIVE')
  return id
}

const action = (id: string, body: unknown, token = demo) => skiff.compute('POST', `/v2.1/servers/${id}/action`, { token, body })
const brief = (s: ServerState) => `${s.status}/${s['OS-EXT-STS:task_state']}`

test('one server: current state first, then ACTIVE(rescuing) → RESCUE, then back to ACTIVE', async () => {
  const id = await activeServer(demo, 'events-rescue')
  // Each rescue phase takes 150 ms more: ACTIVE(rescuing) lasts far longer than a feed tick (20 ms).
  await skiff.driver.injectFault({ operation: 'rescue', serverId: id, delayMs: 150 })
  const o = await open(`/v2.1/servers/${id}/events`, demo)
  assert.equal(o.status, 200)
  assert.equal(o.headers['content-type'], 'text/event-stream')
  assert.equal(o.headers['cache-control'], 'no-cache')
  assert.match(String(o.headers['x-openstack-request-id']), /^req-[0-9a-f-]{36}$/)
  assert.equal(o.headers['x-compute-request-id'], o.headers['x-openstack-request-id'])
  const events = o.reader

  const first = await events.next()
  assert.deepEqual(Object.keys(first.data).sort(), [
    'OS-EXT-STS:power_state',
    'OS-EXT-STS:task_state',
    'OS-EXT-STS:vm_state',
    'id',
    'name',
    'status',
    'updated',
  ])
  assert.deepEqual(first.data, {
    id,
    name: 'events-rescue',
    status: 'ACTIVE',
    'OS-EXT-STS:vm_state': 'active',
    'OS-EXT-STS:task_state': null,
    'OS-EXT-STS:power_state': 1,
    updated: first.data.updated,
  })
  assert.match(first.id, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)

  // A rename changes updated_at but not the state: no event for it.
  assert.equal(
    (await skiff.compute('PUT', `/v2.1/servers/${id}`, { token: demo, body: { server: { name: 'events-rescue' } } })).statusCode,
    200,
  )

  const rescue = await action(id, { rescue: {} })
  assert.equal(rescue.statusCode, 200, rescue.body)
  const rescuing = await events.next()
  assert.equal(brief(rescuing.data), 'ACTIVE/rescuing')
  assert.equal(rescuing.data['OS-EXT-STS:vm_state'], 'active')
  const rescued = await events.next()
  assert.equal(brief(rescued.data), 'RESCUE/null')
  assert.equal(rescued.data['OS-EXT-STS:vm_state'], 'rescued')
  assert.ok(rescued.id > rescuing.id && rescuing.id >= first.id)
  // The event says what GET /servers/{id} says.
  const shown = (await skiff.compute('GET', `/v2.1/servers/${id}`, { token: demo })).json().server
  assert.equal(shown.status, rescued.data.status)
  assert.equal(shown.updated, rescued.data.updated)
  assert.equal(shown['OS-EXT-STS:power_state'], rescued.data['OS-EXT-STS:power_state'])

  assert.equal((await action(id, { unrescue: null })).statusCode, 202)
  const back = await events.until((s) => s.status === 'ACTIVE' && s['OS-EXT-STS:task_state'] === null)
  for (const e of back.slice(0, -1)) assert.equal(brief(e.data), 'RESCUE/unrescuing')
  events.close()
})

test('the project stream sees a new server go BUILD → ACTIVE, and no other project', async () => {
  const mine = (await skiff.compute('GET', '/v2.1/servers', { token: demo })).json().servers.map((s: { id: string }) => s.id) as string[]
  const events = await stream('/v2.1/servers/events', demo)
  // First the current state of every server of the project.
  const initial = await Promise.all(mine.map(() => events.next()))
  assert.deepEqual(initial.map((e) => e.data.id).sort(), [...mine].sort())

  // The next spawn takes 300 ms more: BUILD lasts many feed ticks.
  await skiff.driver.injectFault({ operation: 'spawn', delayMs: 300, count: 1 })
  const id = await createServer(demo, 'events-new')
  const build = await events.next()
  assert.equal(build.data.id, id)
  assert.equal(build.data.status, 'BUILD')
  const altId = await createServer(alt, 'events-elsewhere')
  const rest = await events.until((s) => s.id === id && s.status === 'ACTIVE' && s['OS-EXT-STS:task_state'] === null)
  for (const e of rest) assert.equal(e.data.id, id)
  for (const e of rest.slice(0, -1)) assert.equal(e.data.status, 'BUILD')

  // The other project's server is ACTIVE before our next change: had its events been sent,
  // they would come before the SHUTOFF below.
  await waitForStatus(skiff, alt, altId, 'ACTIVE')
  assert.equal((await action(id, { 'os-stop': null })).statusCode, 202)
  const stop = await events.until((s) => s.id === id && s.status === 'SHUTOFF')
  assert.ok(stop.every((e) => e.data.id === id))
  assert.ok(!events.events.some((e) => e.data.id === altId), 'another project leaked into the stream')
  events.close()

  // An admin's all_tenants stream starts with both projects' servers.
  const all = await stream('/v2.1/servers/events?all_tenants=1', admin)
  const seen = new Set<string>()
  await all.until((s) => {
    seen.add(s.id)
    return seen.has(id) && seen.has(altId)
  })
  all.close()
})

test("another project's server, an unknown one and no token: Nova's 404 and Keystone's 401", async () => {
  const id = await activeServer(demo, 'events-private')
  const other = await open(`/v2.1/servers/${id}/events`, alt)
  assert.equal(other.status, 404)
  assert.match(String(other.headers['content-type']), /^application\/json/)
  assert.deepEqual(JSON.parse(await other.body()), { itemNotFound: { code: 404, message: `Instance ${id} could not be found.` } })
  const unknown = await open('/v2.1/servers/4f0b1a3e-6c1e-4d2b-9a55-2f6f1c0e9d11/events', demo)
  assert.equal(unknown.status, 404)
  assert.equal(JSON.parse(await unknown.body()).itemNotFound.message, 'Instance 4f0b1a3e-6c1e-4d2b-9a55-2f6f1c0e9d11 could not be found.')
  const anonymous = await open(`/v2.1/servers/${id}/events`, undefined)
  assert.equal(anonymous.status, 401)
  assert.equal(anonymous.headers['content-type']?.startsWith('text/event-stream'), false)
  // An admin may watch any project's server.
  const watched = await stream(`/v2.1/servers/${id}/events`, admin)
  assert.equal((await watched.next()).data.id, id)
  watched.close()
})

test('a deleted server: DELETED is the last event and the stream ends; a reconnect is told so', async () => {
  const id = await activeServer(demo, 'events-doomed')
  const events = await stream(`/v2.1/servers/${id}/events`, demo)
  assert.equal((await events.next()).data.status, 'ACTIVE')
  assert.equal((await skiff.compute('DELETE', `/v2.1/servers/${id}`, { token: demo })).statusCode, 204)
  const tail = await events.until((s) => s.status === 'DELETED')
  const last = tail[tail.length - 1]!.data
  assert.equal(last['OS-EXT-STS:vm_state'], 'deleted')
  assert.equal(last['OS-EXT-STS:task_state'], null)
  await events.end()
  assert.equal(events.events[events.events.length - 1]!.data.status, 'DELETED')

  // A new watcher gets Nova's 404; one resuming with Last-Event-ID gets the DELETED it missed.
  assert.equal((await open(`/v2.1/servers/${id}/events`, demo)).status, 404)
  const resumed = await stream(`/v2.1/servers/${id}/events`, demo, { 'last-event-id': tail[0]!.id })
  assert.equal((await resumed.next()).data.status, 'DELETED')
  await resumed.end()
  assert.equal((await open(`/v2.1/servers/${id}/events`, alt, { 'last-event-id': tail[0]!.id })).status, 404)
})

test('Last-Event-ID: the current state again; keep-alive comments; a client that leaves is forgotten', async () => {
  const id = await activeServer(demo, 'events-resume')
  const firstStream = await stream(`/v2.1/servers/${id}/events`, demo)
  const seen = await firstStream.next()
  firstStream.close()
  const again = await stream(`/v2.1/servers/${id}/events`, demo, { 'last-event-id': seen.id })
  const current = await again.next()
  assert.deepEqual(current, seen)
  assert.equal(await again.comment(), ': keep-alive')

  // The feed runs only while someone listens.
  await waitFor('only one subscriber left', async () => skiff.serverFeed.subscriberCount === 1)
  // `running` is its next tick being scheduled: while a query is in flight (slow on a busy
  // PostgreSQL) it is between two ticks, so look again until then.
  await waitFor('the feed to run for the one left', async () => skiff.serverFeed.running)
  again.close()
  await waitFor('the feed to stop', async () => skiff.serverFeed.subscriberCount === 0 && !skiff.serverFeed.running)
})

test('close() ends the open streams instead of waiting for them', async () => {
  const other = await startTestSkiff({ serverEventsIntervalMs: 20 })
  await other.apps.compute.listen({ port: 0, host: '127.0.0.1' })
  const token = await other.token('demo')
  const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
    http
      .get(
        {
          host: '127.0.0.1',
          port: (other.apps.compute.server.address() as AddressInfo).port,
          path: '/v2.1/servers/events',
          agent: false,
          headers: { 'x-auth-token': token },
        },
        resolve,
      )
      .on('error', reject)
  })
  assert.equal(res.statusCode, 200)
  const reader = new EventReader(res)
  readers.push(reader)
  const closed = other.close()
  await reader.end()
  await closed
  assert.equal(other.serverFeed.running, false)
})
