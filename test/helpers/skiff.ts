// A whole Skiff in the test process: in-memory SQLite (or a fresh PostgreSQL schema when the
// tests are given one, see database.ts), a temp data dir, the simulated driver, the agent
// running, the three listeners reachable with inject() (no sockets), and a clock the test moves
// (clock.ts): rescue expiry, leases and host heartbeats without waiting real seconds.
import { createServer as createNetServer } from 'node:net'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import pino, { type Logger } from 'pino'
import type { LightMyRequestResponse } from 'fastify'
import { loadConfig, type Config } from '../../src/config.ts'
import { buildSkiff, type SkiffCore } from '../../src/main.ts'
import { SimulatedDriver } from '../../src/drivers/simulated/simulated-driver.ts'
import { TestClock } from './clock.ts'
import { freshDatabase } from './database.ts'

export interface TestSkiff extends Omit<SkiffCore, 'driver'> {
  /** These tests run on the simulated driver: what a user would observe of the VMs is asked of it. */
  driver: SimulatedDriver
  dataDir: string
  /** The clock of this Skiff: `await skiff.clock.advance(ms)` instead of waiting for a rescue to expire or a host to go down. */
  clock: TestClock
  /** A project-scoped token of one of the bootstrap users. */
  token(user: 'admin' | 'demo' | 'alt_demo' | 'reader_demo'): Promise<string>
  /** The id of a bootstrap image by name (`skiff-base`, `skiff-rescue`). */
  imageId(name: string): Promise<string>
  compute(
    method: string,
    url: string,
    opts?: { token?: string; body?: unknown; headers?: Record<string, string> },
  ): Promise<LightMyRequestResponse>
  /** A request to the block storage listener (Cinder v3). */
  volume(
    method: string,
    url: string,
    opts?: { token?: string; body?: unknown; headers?: Record<string, string> },
  ): Promise<LightMyRequestResponse>
}

/**
 * `opts.logger`: where the log goes (by default nowhere: `logLevel` is silent). `opts.serialProxy`:
 * the serial console proxy listens on a free port of 127.0.0.1 (its URL in `roots.serialProxy`).
 */
export async function startTestSkiff(
  overrides: Partial<Config> = {},
  opts: { logger?: Logger; serialProxy?: boolean } = {},
): Promise<TestSkiff> {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'skiff-test-'))
  const database = overrides.databaseUrl ? { url: overrides.databaseUrl, drop: async () => {} } : await freshDatabase()
  const config = { ...loadConfig({}, {}), dataDir, simulatedDelayMs: 0, logLevel: 'silent', ...overrides, databaseUrl: database.url }
  const serialPort = opts.serialProxy ? await freePort() : undefined
  const roots = {
    identity: 'http://127.0.0.1:5000',
    compute: 'http://127.0.0.1:8774',
    image: 'http://127.0.0.1:9292',
    volume: 'http://127.0.0.1:8776',
    ...(serialPort !== undefined ? { serialProxy: `ws://127.0.0.1:${serialPort}` } : {}),
  }
  const clock = new TestClock()
  let core: SkiffCore
  try {
    core = await buildSkiff(config, opts.logger ?? pino({ level: config.logLevel }), roots, clock)
  } catch (err) {
    await database.drop()
    throw err
  }
  if (!(core.driver instanceof SimulatedDriver)) throw new Error('startTestSkiff runs the simulated driver')
  const proxy = core.serialProxy
  if (proxy && serialPort !== undefined) await new Promise<void>((resolve) => proxy.listen(serialPort, '127.0.0.1', resolve))
  const driver = core.driver
  const tokens = new Map<string, string>()
  const skiff: TestSkiff = {
    ...core,
    driver,
    dataDir,
    clock,
    async imageId(name) {
      const res = await core.apps.image.inject({
        method: 'GET',
        url: `/v2/images?name=${encodeURIComponent(name)}`,
        headers: { 'x-auth-token': await skiff.token('admin') },
      })
      const id = res.json().images[0]?.id as string | undefined
      if (!id) throw new Error(`no image named ${name}: ${res.body}`)
      return id
    },
    async token(user) {
      const cached = tokens.get(user)
      if (cached) return cached
      const res = await core.apps.identity.inject({
        method: 'POST',
        url: '/v3/auth/tokens',
        payload: {
          auth: {
            identity: {
              methods: ['password'],
              password: { user: { name: user, domain: { name: 'Default' }, password: core.passwords[user] } },
            },
            scope: { project: { name: user === 'reader_demo' ? 'demo' : user, domain: { name: 'Default' } } },
          },
        },
      })
      if (res.statusCode !== 201) throw new Error(`token for ${user}: ${res.statusCode} ${res.body}`)
      const token = String(res.headers['x-subject-token'])
      tokens.set(user, token)
      return token
    },
    async compute(method, url, opts = {}) {
      const headers: Record<string, string> = { ...(opts.headers ?? {}) }
      if (opts.token) headers['x-auth-token'] = opts.token
      return core.apps.compute.inject({
        method: method as 'GET',
        url,
        headers,
        ...(opts.body !== undefined ? { payload: opts.body as object } : {}),
      })
    },
    async volume(method, url, opts = {}) {
      const headers: Record<string, string> = { ...(opts.headers ?? {}) }
      if (opts.token) headers['x-auth-token'] = opts.token
      return core.apps.volume.inject({
        method: method as 'GET',
        url,
        headers,
        ...(opts.body !== undefined ? { payload: opts.body as object } : {}),
      })
    },
    async close() {
      await core.close()
      await database.drop()
      rmSync(dataDir, { recursive: true, force: true })
    },
  }
  return skiff
}

/** Poll `check` until it returns a value, or fail after `timeoutMs`. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined | false>, timeoutMs = 5000, intervalMs = 5): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = await check()
    if (v !== undefined && v !== false) return v
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((r) => setTimeout(r, intervalMs))
  }
}

/** Wait until a server's status is `status` with no task running (as tempest waits). */
export async function waitForStatus(skiff: TestSkiff, token: string, id: string, status: string, timeoutMs = 5000) {
  return waitFor(
    `server ${id} to be ${status}`,
    async () => {
      const res = await skiff.compute('GET', `/v2.1/servers/${id}`, { token })
      if (res.statusCode !== 200) return undefined
      const s = res.json().server
      return s.status === status && s['OS-EXT-STS:task_state'] === null ? s : undefined
    },
    timeoutMs,
  )
}

/** A server created through the API by `token`'s user, once it is ACTIVE. */
export async function activeServer(skiff: TestSkiff, token: string, name = 'test', extra: Record<string, unknown> = {}): Promise<string> {
  const res = await skiff.compute('POST', '/v2.1/servers', {
    token,
    body: { server: { name, imageRef: await skiff.imageId('skiff-base'), flavorRef: '1', ...extra } },
  })
  if (res.statusCode !== 202) throw new Error(`create: ${res.statusCode} ${res.body}`)
  const id = res.json().server.id as string
  await waitForStatus(skiff, token, id, 'ACTIVE')
  return id
}

async function freePort(): Promise<number> {
  const server = createNetServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise((resolve) => server.close(resolve))
  return port
}
