// A fuzzer: thousands of mutated bodies (types swapped, huge strings, nesting, unicode, nulls,
// extra keys, numbers at the edges, broken JSON, duplicate keys) sent with valid tokens to the
// JSON routes of the three services. None may answer 5xx, and every error must come in the
// service's own fault shape. Deterministic: a seeded PRNG (SKIFF_FUZZ_SEED, SKIFF_FUZZ_COUNT to
// explore further).
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { after, before, test } from 'node:test'
import { activeServer, startTestSkiff, type TestSkiff } from '../helpers/skiff.ts'
import { faultShapeProblem, type Service } from '../helpers/faults.ts'

const SEED = Number(process.env.SKIFF_FUZZ_SEED ?? 20261201)
const COUNT = Number(process.env.SKIFF_FUZZ_COUNT ?? 5000)
const PATCH = 'application/openstack-images-v2.1-json-patch'

/** mulberry32: small, fast, good enough to pick mutations. */
function prng(seed: number) {
  let a = seed >>> 0
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  const int = (n: number) => Math.floor(next() * n)
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!
  return { next, int, pick, chance: (p: number) => next() < p }
}
type Rng = ReturnType<typeof prng>

interface Target {
  service: Service
  method: 'POST' | 'PUT' | 'PATCH'
  url: string
  token: 'demo' | 'admin' | null
  type?: string
  /** A valid body for the route, the starting point of every mutation. */
  seed: () => unknown
}

/** Numbers at the edges; `1e999` and `-1e999` are written as text (Infinity once parsed). */
const EDGE_NUMBERS = [
  0,
  -0,
  -1,
  1,
  0.5,
  -0.5,
  255,
  256,
  65535,
  65536,
  2 ** 31 - 1,
  2 ** 31,
  -(2 ** 31),
  2 ** 32,
  2 ** 53 - 1,
  2 ** 53 + 2,
  2 ** 63,
  -(2 ** 63),
  2 ** 64,
  1e308,
  -1e308,
  5e-324,
  1e-7,
  3600000,
  604800,
  604801,
]
const STRANGE_STRINGS = [
  '',
  ' ',
  '\u0000',
  'nul\u0000inside',
  '\ud800',
  'lone \udfff surrogate',
  '😀'.repeat(100),
  'e\u0301\u0301\u0301',
  '\u202eRTL',
  '\uffff\ufffe',
  '${x}',
  '%s%n',
  '../../etc/passwd',
  '<script>',
  "'; DROP TABLE servers; --",
  '__proto__',
  'constructor',
  'null',
  'true',
  '1e999',
  '00000000-0000-0000-0000-000000000000',
  'HARD',
  'add',
  '/name',
  '/tags/-',
  'password',
  'token',
  'unscoped',
  'affinity',
  'public',
  'raw',
  'bare',
  '\\',
  '"',
  "'",
  '\n\r\t',
  '\u2028\u2029',
  'ÿ'.repeat(300),
]
const EXTRA_KEYS = [
  '__proto__',
  'constructor',
  'prototype',
  'toString',
  'hasOwnProperty',
  '',
  ' ',
  'x'.repeat(300),
  '😀',
  'id',
  'name',
  'server',
  'adminPass',
  'metadata',
  'rescue',
  'unrescue',
  'reboot',
  'auth',
  'scope',
  'op',
  'path',
  'value',
  'tags',
  'visibility',
  'os:scheduler_hints',
]

function randomScalar(r: Rng): unknown {
  switch (r.int(6)) {
    case 0:
      return null
    case 1:
      return r.chance(0.5)
    case 2:
      return r.pick(EDGE_NUMBERS)
    case 3:
      return r.pick(STRANGE_STRINGS)
    case 4:
      return 'x'.repeat(r.pick([1, 255, 256, 1024, 4096, 16_384, 65_535, 65_536]))
    default:
      return r.int(1000)
  }
}

function randomValue(r: Rng, depth = 0): unknown {
  if (depth > 3 || r.chance(0.6)) return randomScalar(r)
  if (r.chance(0.5)) return Array.from({ length: r.int(4) }, () => randomValue(r, depth + 1))
  const o: Record<string, unknown> = {}
  for (let i = r.int(4); i > 0; i--) o[r.pick(EXTRA_KEYS)] = randomValue(r, depth + 1)
  return o
}

/** Every container (object or array) of `v`, with the keys it holds. */
function containers(v: unknown, out: Array<Record<string, unknown> | unknown[]> = []): Array<Record<string, unknown> | unknown[]> {
  if (Array.isArray(v)) {
    out.push(v)
    v.forEach((x) => containers(x, out))
  } else if (v !== null && typeof v === 'object') {
    out.push(v as Record<string, unknown>)
    Object.values(v).forEach((x) => containers(x, out))
  }
  return out
}

/** One structural mutation, in place where it can; returns the (possibly new) body. */
function mutate(r: Rng, body: unknown): unknown {
  const all = containers(body)
  if (all.length === 0 || r.chance(0.05)) return randomValue(r) // the whole body of another type
  const c = r.pick(all)
  const keys: Array<string | number> = Array.isArray(c) ? c.map((_, i) => i) : Object.keys(c)
  const set = (k: string | number, v: unknown) => {
    ;(c as Record<string | number, unknown>)[k] = v
  }
  const get = (k: string | number) => (c as Record<string | number, unknown>)[k]
  const k = keys.length > 0 ? r.pick(keys) : undefined
  switch (r.int(11)) {
    case 0:
      if (k !== undefined) set(k, randomScalar(r))
      break // type swap
    case 10:
      if (k !== undefined && typeof get(k) === 'string')
        set(k, `${get(k) as string}${r.pick(['\u0000', '\u0001', '\ud800', '😀', '\u200b'])}`)
      break // a valid string, spoiled
    case 1:
      if (k !== undefined) set(k, null)
      break
    case 2:
      if (k !== undefined) {
        // nested, sometimes past the depth limit
        let v = get(k)
        for (let i = r.pick([1, 2, 10, 63, 64, 65, 200]); i > 0; i--) v = r.chance(0.5) ? [v] : { a: v }
        set(k, v)
      }
      break
    case 3:
      if (k !== undefined && !Array.isArray(c)) delete (c as Record<string, unknown>)[k as string]
      break
    case 4:
      if (Array.isArray(c)) c.push(randomValue(r))
      else Object.defineProperty(c, r.pick(EXTRA_KEYS), { value: randomValue(r), enumerable: true, configurable: true, writable: true })
      break
    case 5:
      if (k !== undefined) set(k, r.pick(STRANGE_STRINGS))
      break
    case 6:
      if (k !== undefined) set(k, r.pick(EDGE_NUMBERS))
      break
    case 7:
      if (k !== undefined) {
        // many of it: mostly under 100 KB, sometimes past the 1 MB body limit (413)
        const size = (JSON.stringify(get(k)) ?? '').length + 1
        const budget = r.chance(0.1) ? 2_000_000 : 100_000
        set(
          k,
          Array.from({ length: Math.min(r.pick([0, 1, 2, 513, 10_000]), Math.floor(budget / size)) }, () => get(k)),
        )
      }
      break
    case 8:
      if (k !== undefined) set(k, randomValue(r))
      break
    case 9:
      if (k !== undefined) set(k, { [r.pick(EXTRA_KEYS)]: get(k) })
      break
  }
  return body
}

/** Mutations of the JSON text itself: broken syntax, duplicate keys, numbers JSON cannot hold. */
function mutateText(r: Rng, text: string): string {
  const at = r.int(text.length + 1)
  switch (r.int(8)) {
    case 0:
      return text.slice(0, at) // truncated
    case 1:
      return (
        text.slice(0, at) + r.pick(['{', '}', '[', ']', '"', ',', ':', '\\', '\u0000', 'NaN', 'undefined', '/*', '\ud800']) + text.slice(at)
      )
    case 2:
      return text.replace(/^\{/, `{${JSON.stringify(r.pick(EXTRA_KEYS))}: ${JSON.stringify(randomValue(r))}, `) // a duplicate key maybe
    case 3: {
      const m = /^\{"([^"]+)":/.exec(text)
      return m ? `${text.slice(0, -1)}, "${m[1]}": ${r.pick(['null', '1', '"x"', '[]', '{}'])}}` : text
    } // duplicate first key, last wins
    case 4:
      return text.replace(
        /-?\d+(\.\d+)?/,
        r.pick(['1e999', '-1e999', '1E400', '0.0000000000000000000000001', '123456789012345678901234567890', '-0.0']),
      )
    case 5:
      return `\ufeff${text}` // a byte-order mark
    case 6:
      return text.replace(/"/g, "'")
    default:
      return ` \n\t${text}\n `
  }
}

let skiff: TestSkiff
const tokens: Record<string, string> = {}
let targets: Target[]

before(async () => {
  // No action rate limit: thousands of actions a minute would mostly answer 413 and test nothing.
  skiff = await startTestSkiff({ actionRateLimit: 0 })
  tokens.demo = await skiff.token('demo')
  tokens.admin = await skiff.token('admin')
  const base = await skiff.imageId('skiff-base')
  const rescueImage = await skiff.imageId('skiff-rescue')
  const server = await activeServer(skiff, tokens.demo, 'fuzzed')
  const created = await skiff.apps.image.inject({
    method: 'POST',
    url: '/v2/images',
    headers: { 'x-auth-token': tokens.demo },
    payload: { name: 'fuzzed' },
  })
  const image = created.json().id as string
  const password = skiff.passwords.demo!
  const project = (
    await skiff.apps.identity.inject({
      method: 'GET',
      url: '/v3/auth/tokens',
      headers: { 'x-auth-token': tokens.demo, 'x-subject-token': tokens.demo },
    })
  ).json().token.project.id as string
  const aggregate = (
    await skiff.compute('POST', '/v2.1/os-aggregates', { token: tokens.admin, body: { aggregate: { name: 'fuzzed' } } })
  ).json().aggregate.id as number
  const action = (body: () => unknown): Target => ({
    service: 'compute',
    method: 'POST',
    url: `/v2.1/servers/${server}/action`,
    token: 'demo',
    seed: body,
  })
  targets = [
    {
      service: 'identity',
      method: 'POST',
      url: '/v3/auth/tokens',
      token: null,
      seed: () => ({
        auth: {
          identity: { methods: ['password'], password: { user: { name: 'demo', domain: { name: 'Default' }, password } } },
          scope: { project: { name: 'demo', domain: { name: 'Default' } } },
        },
      }),
    },
    {
      service: 'identity',
      method: 'POST',
      url: '/v3/auth/tokens',
      token: null,
      seed: () => ({ auth: { identity: { methods: ['password'], password: { user: { id: 'nope', password: 'x' } } }, scope: 'unscoped' } }),
    },
    {
      service: 'identity',
      method: 'POST',
      url: '/v3/auth/tokens?nocatalog=1',
      token: null,
      seed: () => ({ auth: { identity: { methods: ['token'], token: { id: tokens.demo } }, scope: { domain: { id: 'default' } } } }),
    },
    {
      service: 'compute',
      method: 'POST',
      url: '/v2.1/servers',
      token: 'demo',
      seed: () => ({
        server: {
          name: 'f',
          imageRef: base,
          flavorRef: '1',
          metadata: { a: 'b' },
          min_count: 1,
          config_drive: 'true',
          networks: [{ uuid: randomUUID() }],
          user_data: 'IyEvYmluL3NoCg==',
        },
        'os:scheduler_hints': { group: randomUUID() },
      }),
    },
    {
      service: 'compute',
      method: 'POST',
      url: '/v2.1/servers',
      token: 'demo',
      type: 'text/plain',
      seed: () => ({ server: { name: 'f', imageRef: base, flavorRef: 1, adminPass: 'p', key_name: 'k', accessIPv4: '10.0.0.1' } }),
    },
    {
      service: 'compute',
      method: 'PUT',
      url: `/v2.1/servers/${server}`,
      token: 'demo',
      seed: () => ({ server: { name: 'fuzzed', accessIPv6: '::1', 'OS-DCF:diskConfig': 'AUTO' } }),
    },
    action(() => ({ rescue: { adminPass: 'p', rescue_image_ref: rescueImage } })),
    action(() => ({ rescue: null })),
    action(() => ({ unrescue: null })),
    action(() => ({ reboot: { type: 'SOFT' } })),
    action(() => ({ 'os-stop': null })),
    action(() => ({ 'os-start': null })),
    action(() => ({ pause: null })),
    action(() => ({ unpause: null })),
    action(() => ({ lock: {} })),
    action(() => ({ unlock: null })),
    {
      service: 'compute',
      method: 'POST',
      url: `/v2.1/servers/${server}/action`,
      token: 'admin',
      seed: () => ({ 'os-resetState': { state: 'active' } }),
    },
    {
      service: 'compute',
      method: 'PUT',
      url: `/v2.1/os-quota-sets/${project}`,
      token: 'admin',
      seed: () => ({ quota_set: { cores: 2000, instances: '1000', force: 'true' } }),
    },
    {
      service: 'compute',
      method: 'PUT',
      url: '/v2.1/os-quota-class-sets/default',
      token: 'admin',
      seed: () => ({ quota_class_set: { metadata_items: 128 } }),
    },
    {
      service: 'compute',
      method: 'POST',
      url: '/v2.1/os-aggregates',
      token: 'admin',
      seed: () => ({ aggregate: { name: `a${randomUUID().slice(0, 8)}`, availability_zone: 'z1' } }),
    },
    {
      service: 'compute',
      method: 'PUT',
      url: `/v2.1/os-aggregates/${aggregate}`,
      token: 'admin',
      seed: () => ({ aggregate: { name: 'fuzzed' } }),
    },
    {
      service: 'compute',
      method: 'POST',
      url: `/v2.1/os-aggregates/${aggregate}/action`,
      token: 'admin',
      seed: () => ({ set_metadata: { metadata: { k: 'v', gone: null } } }),
    },
    {
      service: 'compute',
      method: 'POST',
      url: `/v2.1/os-aggregates/${aggregate}/action`,
      token: 'admin',
      seed: () => ({ add_host: { host: 'skiff-1' } }),
    },
    action(() => ({
      rebuild: { imageRef: base, name: 'r', adminPass: 'p', metadata: { a: 'b' }, preserve_ephemeral: false, personality: [] },
    })),
    action(() => ({ 'os-getConsoleOutput': { length: 10 } })),
    {
      service: 'compute',
      method: 'POST',
      url: `/v2/${'0'.repeat(32)}/servers/${server}/action`,
      token: 'demo',
      seed: () => ({ rescue: 'none' }),
    },
    {
      service: 'compute',
      method: 'POST',
      url: `/v2.1/servers/${server}/rescue`,
      token: 'demo',
      seed: () => ({ rescue: { image_ref: rescueImage, admin_pass: 'p', public_key: 'ssh-ed25519 AAAA x', auto_unrescue_after: 60 } }),
    },
    {
      service: 'compute',
      method: 'PATCH',
      url: `/v2.1/servers/${server}/rescue`,
      token: 'demo',
      seed: () => ({ rescue: { auto_unrescue_after: 3600 } }),
    },
    {
      service: 'compute',
      method: 'POST',
      url: `/v2.1/servers/${server}/metadata`,
      token: 'demo',
      seed: () => ({ metadata: { a: 'b', c: 'd' } }),
    },
    { service: 'compute', method: 'PUT', url: `/v2.1/servers/${server}/metadata`, token: 'demo', seed: () => ({ metadata: { a: 'b' } }) },
    { service: 'compute', method: 'PUT', url: `/v2.1/servers/${server}/metadata/k`, token: 'demo', seed: () => ({ meta: { k: 'v' } }) },
    {
      service: 'compute',
      method: 'POST',
      url: '/v2.1/os-keypairs',
      token: 'demo',
      seed: () => ({ keypair: { name: `k${randomUUID().slice(0, 8)}` } }),
    },
    {
      service: 'compute',
      method: 'POST',
      url: '/v2.1/os-keypairs',
      token: 'demo',
      seed: () => ({ keypair: { name: `k${randomUUID().slice(0, 8)}`, public_key: 'ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ x' } }),
    },
    {
      service: 'compute',
      method: 'POST',
      url: '/v2.1/os-server-groups',
      token: 'demo',
      seed: () => ({ server_group: { name: 'g', policies: ['anti-affinity'] } }),
    },
    {
      service: 'compute',
      method: 'POST',
      url: '/v2.1/flavors',
      token: 'admin',
      seed: () => ({
        flavor: {
          name: `f${randomUUID().slice(0, 8)}`,
          ram: 512,
          vcpus: 1,
          disk: 1,
          id: randomUUID(),
          'os-flavor-access:is_public': true,
          swap: 0,
          rxtx_factor: 1.0,
        },
      }),
    },
    {
      service: 'compute',
      method: 'POST',
      url: '/v2.1/flavors/1/os-extra_specs',
      token: 'admin',
      seed: () => ({ extra_specs: { 'hw:cpu_policy': 'shared' } }),
    },
    { service: 'compute', method: 'PUT', url: '/v2.1/flavors/1/os-extra_specs/k', token: 'admin', seed: () => ({ k: 'v' }) },
    {
      service: 'image',
      method: 'POST',
      url: '/v2/images',
      token: 'demo',
      seed: () => ({
        name: 'i',
        disk_format: 'qcow2',
        container_format: 'bare',
        visibility: 'private',
        tags: ['a'],
        min_ram: 0,
        min_disk: 0,
        os_distro: 'debian',
      }),
    },
    {
      service: 'image',
      method: 'PATCH',
      url: `/v2/images/${image}`,
      token: 'demo',
      type: PATCH,
      seed: () => [
        { op: 'replace', path: '/name', value: 'n' },
        { op: 'add', path: '/tags/-', value: 't' },
        { op: 'add', path: '/hw_x', value: 'y' },
        { op: 'remove', path: '/hw_x' },
      ],
    },
  ]
})

after(async () => {
  await skiff?.close()
})

test(`${COUNT} mutated bodies on every JSON route of the three services: no 5xx, every fault in its service's shape`, async (t) => {
  const r = prng(SEED)
  const problems: string[] = []
  const statuses = new Map<number, number>()
  for (let i = 0; i < COUNT; i++) {
    const t = targets[i % targets.length]!
    const body: unknown = t.seed()
    let text = JSON.stringify(body)
    for (let n = 1 + r.int(3); n > 0; n--) {
      // Through text after each step: no value shared by two places, no body beyond a few MB.
      const next = JSON.stringify(mutate(r, JSON.parse(text))) ?? 'null'
      if (next.length < 3_000_000) text = next
    }
    if (r.chance(0.15)) text = mutateText(r, text)
    const headers: Record<string, string> = {}
    if (t.token) headers['x-auth-token'] = tokens[t.token]!
    // Nova reads any content type as JSON; the others refuse it (415).
    const type = r.chance(0.05)
      ? r.pick(['text/plain', 'application/xml', 'application/json; charset=latin1', ''])
      : (t.type ?? 'application/json')
    if (type) headers['content-type'] = type
    if (r.chance(0.1)) headers['idempotency-key'] = randomUUID()
    const res = await skiff.apps[t.service].inject({ method: t.method, url: t.url, headers, payload: text })
    statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1)
    if (res.statusCode >= 500) problems.push(`${res.statusCode} ${t.method} ${t.url}: ${res.body.slice(0, 300)} <- ${text.slice(0, 300)}`)
    else if (res.statusCode >= 400) {
      let parsed: unknown
      try {
        parsed = res.json()
      } catch {
        parsed = undefined
      }
      // keystonemiddleware answers 401 in Keystone's shape on every service.
      const service = res.statusCode === 401 ? 'identity' : t.service
      const problem = faultShapeProblem(service, res.statusCode, parsed)
      if (problem) problems.push(`${problem}: ${res.statusCode} ${t.method} ${t.url}: ${res.body.slice(0, 300)} <- ${text.slice(0, 300)}`)
    }
  }
  t.diagnostic(`seed ${SEED}; statuses ${JSON.stringify(Object.fromEntries([...statuses].sort(([a], [b]) => a - b)))}`)
  assert.deepEqual(
    problems.slice(0, 10),
    [],
    `${problems.length} of ${COUNT} answers were wrong; statuses ${JSON.stringify([...statuses])}`,
  )
  // The fuzzer reaches past validation too, not only 400s.
  assert.ok(
    [...statuses.keys()].some((s) => s < 300),
    JSON.stringify([...statuses]),
  )
})
