// Who may do what: every route of the four listeners × {admin, member, reader, another
// project's member, no token} → the status each one gets, with the service's fault body.
// The routes are read from fastify's own route tables, so a new route without a row here fails
// the test. Expectations follow the services' default policies (Nova's and Glance's "secure
// RBAC" defaults, Keystone's token rules): a reader may look but not change anything, another
// project's server, image or group does not exist for its caller (404), no token is 401.
import assert from 'node:assert/strict'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, test } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { activeServer, startTestSkiff, waitForStatus, type TestSkiff } from '../helpers/skiff.ts'
import { GONE_ROUTES } from '../../src/api/routes/compute/gone-apis.ts'

type Service = 'identity' | 'compute' | 'image' | 'volume'
const CALLERS = ['admin', 'member', 'reader', 'other', 'none'] as const
type Caller = (typeof CALLERS)[number]
/** The bootstrap account each caller is: demo is a member of demo, reader_demo a reader of demo, alt_demo a member of alt_demo. */
const ACCOUNT = { admin: 'admin', member: 'demo', reader: 'reader_demo', other: 'alt_demo' } as const
type Expect = Record<Caller, number>
const e = (admin: number, member: number, reader: number, other: number, none: number): Expect => ({ admin, member, reader, other, none })

/** What a row's request builders get: who asks, and whether this cell should succeed (fixtures then are fresh). */
interface Cell {
  as: Caller
  ok: boolean
}
interface Request {
  url: string
  body?: unknown
  headers?: Record<string, string>
}
interface Row {
  service: Service
  method: string
  /** The route as fastify registered it, e.g. /v2.1/servers/:id/action. */
  route: string
  /** Tells rows of one route apart (the server actions, the public image). */
  label?: string
  request: (cell: Cell) => Promise<Request> | Request
  expect: Expect
  /** A Server-Sent Events stream: only its status line is read. */
  stream?: true
}

let skiff: TestSkiff
let port: number
const tokens = {} as Record<Exclude<Caller, 'none'>, string>
const PATCH = 'application/openstack-images-v2.1-json-patch'
let seq = 0
const unique = (prefix: string) => `${prefix}-${++seq}`

// ---- fixtures: shared ones for cells that must be refused, fresh ones for cells that succeed ----

type ServerState = 'active' | 'stopped' | 'paused' | 'rescued' | 'locked' | 'resized' | 'suspended' | 'shelved'
const shared = {} as {
  server: string
  rescued: string
  requestId: string
  baseImage: string
  image: string
  activeImage: string
  group: string
  keypair: string
  flavor: string
  userId: string
  projectId: string
  aggregate: number
  volume: string
  snapshot: string
  attachedServer: string
  attachedVolume: string
}

async function ok<T extends { statusCode: number; body: string }>(what: string, res: T, status: number): Promise<T> {
  assert.equal(res.statusCode, status, `${what}: ${res.body}`)
  return res
}

const act = (id: string, body: unknown) => skiff.compute('POST', `/v2.1/servers/${id}/action`, { token: tokens.member, body })

/** A server of the demo project in `state`, created by demo; its metadata holds `k`. */
async function newServer(state: ServerState): Promise<string> {
  const id = await activeServer(skiff, tokens.member, unique('srv'), { metadata: { k: 'v' } })
  const to: Record<ServerState, [unknown, string] | null> = {
    active: null,
    locked: null,
    stopped: [{ 'os-stop': null }, 'SHUTOFF'],
    paused: [{ pause: null }, 'PAUSED'],
    rescued: [{ rescue: null }, 'RESCUE'],
    resized: [{ resize: { flavorRef: '2' } }, 'VERIFY_RESIZE'],
    suspended: [{ suspend: null }, 'SUSPENDED'],
    // This Skiff never offloads by itself (shelved_offload_time -1): shelveOffload has a SHELVED server to act on.
    shelved: [{ shelve: null }, 'SHELVED'],
  }
  if (state === 'locked') await ok('lock', await act(id, { lock: null }), 202)
  const step = to[state]
  if (step) {
    const res = await act(id, step[0])
    assert.ok(res.statusCode < 300, `${state}: ${res.body}`)
    await waitForStatus(skiff, tokens.member, id, step[1])
  }
  return id
}
/** The server a cell acts on: fresh (in `state`) when the cell should succeed, else the shared one (refusals come before any state check). */
const server = async (cell: Cell, state: ServerState = 'active') => (cell.ok ? newServer(state) : shared.server)

async function imageCall(method: string, url: string, token: string, body?: unknown, headers: Record<string, string> = {}) {
  return skiff.apps.image.inject({
    method: method as 'GET',
    url,
    headers: { 'x-auth-token': token, ...headers },
    ...(body !== undefined ? { payload: body as object } : {}),
  })
}
/** An image owned by `owner`'s project, queued with its formats set (ready for data). */
async function newImage(owner: 'member' | 'admin', extra: Record<string, unknown> = {}): Promise<string> {
  const res = await ok(
    'image create',
    await imageCall('POST', '/v2/images', tokens[owner], { name: unique('img'), disk_format: 'raw', container_format: 'bare', ...extra }),
    201,
  )
  return res.json().id as string
}
async function upload(id: string, token: string) {
  await ok(
    'upload',
    await imageCall('PUT', `/v2/images/${id}/file`, token, Buffer.from('data'), { 'content-type': 'application/octet-stream' }),
    204,
  )
}
const image = async (cell: Cell) => (cell.ok ? newImage('member') : shared.image)
/** shared.image (Glance's default visibility, shared) with a member that is none of the callers' projects. */
const MATRIX_MEMBER = 'matrix-member-project'
let matrixMember: Promise<string> | undefined
const imageWithMember = () =>
  (matrixMember ??= (async () => {
    await ok('member', await imageCall('POST', `/v2/images/${shared.image}/members`, tokens.member, { member: MATRIX_MEMBER }), 200)
    return shared.image
  })())
/** An image of the member's project shared with the other caller's project (alt_demo). */
let sharedWithOther: Promise<{ image: string; member: string }> | undefined
const imageSharedWithOther = () =>
  (sharedWithOther ??= (async () => {
    const id = await newImage('member')
    const member = await projectId('alt_demo')
    await ok('member', await imageCall('POST', `/v2/images/${id}/members`, tokens.member, { member }), 200)
    return { image: id, member }
  })())
const publicImage = async (cell: Cell) => (cell.ok ? newImage('admin', { visibility: 'public' }) : shared.baseImage)

async function newGroup(): Promise<string> {
  const res = await ok(
    'group',
    await skiff.compute('POST', '/v2.1/os-server-groups', {
      token: tokens.member,
      body: { server_group: { name: unique('grp'), policies: ['affinity'] } },
    }),
    200,
  )
  return res.json().server_group.id as string
}
async function newAggregate(): Promise<number> {
  const res = await ok(
    'aggregate',
    await skiff.compute('POST', '/v2.1/os-aggregates', { token: tokens.admin, body: { aggregate: { name: unique('agg') } } }),
    200,
  )
  return res.json().aggregate.id as number
}

async function newKeypair(): Promise<string> {
  const name = unique('kp')
  await ok('keypair', await skiff.compute('POST', '/v2.1/os-keypairs', { token: tokens.member, body: { keypair: { name } } }), 200)
  return name
}
async function newFlavor(): Promise<string> {
  const id = unique('flv')
  await ok(
    'flavor',
    await skiff.compute('POST', '/v2.1/flavors', { token: tokens.admin, body: { flavor: { id, name: id, ram: 64, vcpus: 1, disk: 1 } } }),
    200,
  )
  await ok(
    'extra spec',
    await skiff.compute('POST', `/v2.1/flavors/${id}/os-extra_specs`, { token: tokens.admin, body: { extra_specs: { 'hw:k': 'v' } } }),
    200,
  )
  return id
}
async function newPrivateFlavor(): Promise<string> {
  const id = unique('flv')
  const body = { flavor: { id, name: id, ram: 64, vcpus: 1, disk: 1, 'os-flavor-access:is_public': false } }
  await ok('flavor', await skiff.compute('POST', '/v2.1/flavors', { token: tokens.admin, body }), 200)
  return id
}
async function newFault(): Promise<string> {
  const res = await ok(
    'fault',
    await skiff.compute('POST', '/v2.1/os-simulator/faults', {
      token: tokens.admin,
      body: { fault: { operation: 'spawn', server_id: '00000000-0000-4000-8000-000000000000', error: 'unused' } },
    }),
    201,
  )
  return res.json().fault.id as string
}
async function newToken(account: string): Promise<string> {
  const res = await ok(
    'token',
    await skiff.apps.identity.inject({ method: 'POST', url: '/v3/auth/tokens', payload: passwordAuth(account) }),
    201,
  )
  return String(res.headers['x-subject-token'])
}
const passwordAuth = (account: string) => ({
  auth: {
    identity: {
      methods: ['password'],
      password: { user: { name: account, domain: { name: 'Default' }, password: skiff.passwords[account] } },
    },
    scope: { project: { name: account === 'reader_demo' ? 'demo' : account, domain: { name: 'Default' } } },
  },
})

// ---- the matrix ----

const get = (service: Service, route: string, expect: Expect, url: Row['request'] | string = route): Row => ({
  service,
  method: 'GET',
  route,
  expect,
  request: typeof url === 'string' ? () => ({ url }) : url,
})
const PUBLIC = (status: number) => e(status, status, status, status, status)
const ANY_TOKEN = e(200, 200, 200, 200, 401)
const ADMIN_ONLY = (status: number) => e(status, 403, 403, 403, 401)
/** A reader of the project may read it; another project's caller finds nothing. */
const PROJECT_READ = e(200, 200, 200, 404, 401)
/** A member (or an admin) may change the project's resource; a reader may not; another project finds nothing. */
const PROJECT_WRITE = (status: number) => e(status, status, 403, 404, 401)

const srv =
  (path = '') =>
  async (cell: Cell) => ({ url: `/v2.1/servers/${await server(cell)}${path}` })

const mv = (v: string) => ({ 'openstack-api-version': `compute ${v}` })
/** The /servers/{id}/tags rows, at 2.26 (below it the paths do not exist). */
function tagRows(): Row[] {
  const TAGS_READ = e(200, 200, 200, 403, 401)
  const TAGS_WRITE = (status: number) => e(status, status, 403, 403, 401)
  const at = (path: string, body?: unknown) => async (cell: Cell) => ({
    ...(await srv(path)(cell)),
    headers: mv('2.26'),
    ...(body !== undefined ? { body } : {}),
  })
  const row = (method: string, route: string, expect: Expect, request: Row['request']): Row => ({
    service: 'compute',
    method,
    route,
    expect,
    request,
  })
  return [
    row('GET', '/v2.1/servers/:id/tags', TAGS_READ, at('/tags')),
    row('PUT', '/v2.1/servers/:id/tags', TAGS_WRITE(200), at('/tags', { tags: ['a'] })),
    row('DELETE', '/v2.1/servers/:id/tags', TAGS_WRITE(204), at('/tags')),
    row('GET', '/v2.1/servers/:id/tags/:tag', e(404, 404, 404, 403, 401), at('/tags/none')),
    row('PUT', '/v2.1/servers/:id/tags/:tag', TAGS_WRITE(201), at('/tags/a')),
    row('DELETE', '/v2.1/servers/:id/tags/:tag', e(404, 404, 403, 403, 401), at('/tags/none')),
  ]
}
const action = (name: string, value: unknown, expect: Expect, state: ServerState = 'active'): Row => ({
  service: 'compute',
  method: 'POST',
  route: '/v2.1/servers/:id/action',
  label: name,
  expect,
  request: async (cell) => ({
    url: `/v2.1/servers/${await server(cell, state)}/action`,
    body: { [name]: typeof value === 'function' ? value() : value },
  }),
})

const ROWS: Row[] = [
  // -- identity --
  get('identity', '/', PUBLIC(300)),
  get('identity', '/v3', PUBLIC(200)),
  {
    service: 'identity',
    method: 'POST',
    route: '/v3/auth/tokens',
    expect: PUBLIC(201),
    request: () => ({ url: '/v3/auth/tokens', body: passwordAuth('demo') }),
  },
  // Validating a token: one's own, or any as admin (Keystone's identity:validate_token).
  get('identity', '/v3/auth/tokens', e(200, 200, 403, 403, 401), () => ({
    url: '/v3/auth/tokens',
    headers: { 'x-subject-token': tokens.member },
  })),
  // Revoking one's own token is every user's right, a reader's too (Keystone's identity:revoke_token).
  {
    service: 'identity',
    method: 'DELETE',
    route: '/v3/auth/tokens',
    label: 'own token',
    expect: e(204, 204, 204, 204, 401),
    request: async (cell) => ({
      url: '/v3/auth/tokens',
      headers: { 'x-subject-token': await newToken(ACCOUNT[cell.as === 'none' ? 'member' : cell.as]) },
    }),
  },
  {
    service: 'identity',
    method: 'DELETE',
    route: '/v3/auth/tokens',
    label: "demo's token",
    expect: e(204, 204, 403, 403, 401),
    request: async () => ({ url: '/v3/auth/tokens', headers: { 'x-subject-token': await newToken('demo') } }),
  },
  get('identity', '/v3/auth/catalog', ANY_TOKEN),
  get('identity', '/v3/auth/projects', ANY_TOKEN),
  get('identity', '/v3/auth/domains', ANY_TOKEN),
  get('identity', '/v3/domains', ANY_TOKEN),
  get('identity', '/v3/domains/:id', ANY_TOKEN, '/v3/domains/default'),
  get('identity', '/v3/projects', ADMIN_ONLY(200)),
  get('identity', '/v3/projects/:id', e(200, 200, 200, 403, 401), async () => ({ url: `/v3/projects/${await projectId('demo')}` })),
  get('identity', '/v3/users', ADMIN_ONLY(200)),
  get('identity', '/v3/users/:id', e(200, 200, 403, 403, 401), () => ({ url: `/v3/users/${shared.userId}` })),
  get('identity', '/v3/users/:id/projects', e(200, 200, 403, 403, 401), () => ({ url: `/v3/users/${shared.userId}/projects` })),
  get('identity', '/v3/roles', ADMIN_ONLY(200)),
  get('identity', '/v3/roles/:id', ADMIN_ONLY(200), async () => ({ url: `/v3/roles/${await roleId('reader')}` })),
  get('identity', '/v3/role_assignments', ADMIN_ONLY(200)),

  // -- compute --
  get('compute', '/', PUBLIC(200)),
  get('compute', '/v2', PUBLIC(200)),
  get('compute', '/v2.1', PUBLIC(200)),
  get('compute', '/v2.1/servers', ANY_TOKEN),
  get('compute', '/v2.1/servers/detail', ANY_TOKEN),
  { ...get('compute', '/v2.1/servers/events', ANY_TOKEN), stream: true },
  {
    service: 'compute',
    method: 'POST',
    route: '/v2.1/servers',
    expect: e(202, 202, 403, 202, 401),
    request: () => ({ url: '/v2.1/servers', body: { server: { name: unique('new'), imageRef: shared.baseImage, flavorRef: '1' } } }),
  },
  get('compute', '/v2.1/servers/:id', PROJECT_READ, srv()),
  // Nova's os-volume_attachments: the server's project's readers list and show, members attach and detach.
  get('compute', '/v2.1/servers/:id/os-volume_attachments', PROJECT_READ, srv('/os-volume_attachments')),
  get('compute', '/v2.1/servers/:id/os-volume_attachments/:volume_id', PROJECT_READ, () => ({
    url: `/v2.1/servers/${shared.attachedServer}/os-volume_attachments/${shared.attachedVolume}`,
  })),
  {
    service: 'compute',
    method: 'POST',
    route: '/v2.1/servers/:id/os-volume_attachments',
    expect: PROJECT_WRITE(200),
    request: async (cell) => ({
      url: `/v2.1/servers/${await server(cell)}/os-volume_attachments`,
      body: { volumeAttachment: { volumeId: cell.ok ? await newVolume() : shared.volume } },
    }),
  },
  {
    service: 'compute',
    method: 'DELETE',
    route: '/v2.1/servers/:id/os-volume_attachments/:volume_id',
    expect: PROJECT_WRITE(202),
    request: async (cell) => {
      const [srvId, volId] = cell.ok ? await newAttached() : [shared.attachedServer, shared.attachedVolume]
      return { url: `/v2.1/servers/${srvId}/os-volume_attachments/${volId}` }
    },
  },
  {
    service: 'compute',
    method: 'PUT',
    route: '/v2.1/servers/:id',
    expect: PROJECT_WRITE(200),
    request: async (cell) => ({ ...(await srv()(cell)), body: { server: { name: 'renamed' } } }),
  },
  { service: 'compute', method: 'DELETE', route: '/v2.1/servers/:id', expect: PROJECT_WRITE(204), request: srv() },
  get('compute', '/v2.1/servers/:id/ips', PROJECT_READ, srv('/ips')),
  get('compute', '/v2.1/servers/:id/ips/:network', PROJECT_READ, srv('/ips/private')),
  // Nova's 410 Gone APIs (gone-apis.ts): anyone with a token, before any lookup, at every version.
  ...GONE_ROUTES.flatMap(([path, methods]) =>
    methods.map((method): Row => ({
      service: 'compute',
      method,
      route: `/v2.1${path}`,
      expect: e(410, 410, 410, 410, 401),
      request: () => ({ url: `/v2.1${path.replace(/:[a-z]+/g, 'x1')}`, ...(method === 'POST' || method === 'PUT' ? { body: {} } : {}) }),
    })),
  ),
  get('compute', '/v2.1/servers/:id/os-server-password', PROJECT_READ, srv('/os-server-password')),
  {
    service: 'compute',
    method: 'DELETE',
    route: '/v2.1/servers/:id/os-server-password',
    expect: PROJECT_WRITE(204),
    request: srv('/os-server-password'),
  },
  get('compute', '/v2.1/servers/:id/os-instance-actions', PROJECT_READ, srv('/os-instance-actions')),
  get('compute', '/v2.1/servers/:id/os-instance-actions/:requestId', PROJECT_READ, () => ({
    url: `/v2.1/servers/${shared.server}/os-instance-actions/${shared.requestId}`,
  })),
  get('compute', '/v2.1/servers/:id/metadata', PROJECT_READ, srv('/metadata')),
  {
    service: 'compute',
    method: 'POST',
    route: '/v2.1/servers/:id/metadata',
    expect: PROJECT_WRITE(200),
    request: async (cell) => ({ ...(await srv('/metadata')(cell)), body: { metadata: { a: 'b' } } }),
  },
  {
    service: 'compute',
    method: 'PUT',
    route: '/v2.1/servers/:id/metadata',
    expect: PROJECT_WRITE(200),
    request: async (cell) => ({ ...(await srv('/metadata')(cell)), body: { metadata: { k: 'w' } } }),
  },
  get('compute', '/v2.1/servers/:id/metadata/:key', PROJECT_READ, srv('/metadata/k')),
  {
    service: 'compute',
    method: 'PUT',
    route: '/v2.1/servers/:id/metadata/:key',
    expect: PROJECT_WRITE(200),
    request: async (cell) => ({ ...(await srv('/metadata/k')(cell)), body: { meta: { k: 'w' } } }),
  },
  {
    service: 'compute',
    method: 'DELETE',
    route: '/v2.1/servers/:id/metadata/:key',
    expect: PROJECT_WRITE(204),
    request: srv('/metadata/k'),
  },
  { ...get('compute', '/v2.1/servers/:id/events', PROJECT_READ, srv('/events')), stream: true },
  get('compute', '/v2.1/servers/:id/access', PROJECT_READ, srv('/access')),
  // Tags (2.26): Nova checks the policy against the server's project before reading the server,
  // so another project's server is 403 here, not 404 (server_tags.py).
  ...tagRows(),
  {
    service: 'compute',
    method: 'GET',
    route: '/v2.1/servers/:id/topology',
    expect: PROJECT_READ,
    request: async (cell) => ({ ...(await srv('/topology')(cell)), headers: mv('2.78') }),
  },
  // Nova's order for actions: 404 (another project), policy (403), lock and state (409).
  action('rescue', null, PROJECT_WRITE(200)),
  action('unrescue', null, PROJECT_WRITE(202), 'rescued'),
  action('os-stop', null, PROJECT_WRITE(202)),
  action('os-start', null, PROJECT_WRITE(202), 'stopped'),
  action('pause', null, PROJECT_WRITE(202)),
  action('unpause', null, PROJECT_WRITE(202), 'paused'),
  action('reboot', { type: 'SOFT' }, PROJECT_WRITE(202)),
  action('rebuild', () => ({ imageRef: shared.baseImage }), PROJECT_WRITE(202)),
  action('forceDelete', null, PROJECT_WRITE(202)),
  // Skiff never soft-deletes (reclaim_instance_interval = 0): restore is always Nova's 409.
  action('restore', null, PROJECT_WRITE(409)),
  action('lock', null, PROJECT_WRITE(202)),
  action('unlock', null, PROJECT_WRITE(202), 'locked'),
  action('os-getConsoleOutput', {}, PROJECT_WRITE(200)),
  // Moves: resize and its confirm/revert by the project's members; the rest admin only (another
  // project's server is 404 before the policy). One host: the admin's live migration is accepted
  // (2.34+, checked afterwards) and its evacuation refused (the host is up).
  action('resize', { flavorRef: '2' }, PROJECT_WRITE(202)),
  action('confirmResize', null, PROJECT_WRITE(204), 'resized'),
  action('revertResize', null, PROJECT_WRITE(202), 'resized'),
  action('migrate', null, e(202, 403, 403, 404, 401)),
  {
    ...action('os-migrateLive', { host: null, block_migration: 'auto' }, e(202, 403, 403, 404, 401)),
    request: async (cell) => ({
      url: `/v2.1/servers/${await server(cell)}/action`,
      body: { 'os-migrateLive': { host: null, block_migration: 'auto' } },
      headers: mv('2.93'),
    }),
  },
  action('evacuate', { onSharedStorage: false }, e(400, 403, 403, 404, 401)),
  get('compute', '/v2.1/os-migrations', ADMIN_ONLY(200)),
  {
    ...get('compute', '/v2.1/servers/:id/migrations', e(200, 403, 403, 404, 401), srv('/migrations')),
    request: async (cell) => ({ ...(await srv('/migrations')(cell)), headers: mv('2.23') }),
  },
  {
    ...get('compute', '/v2.1/servers/:id/migrations/:migrationId', e(404, 403, 403, 404, 401)),
    request: async (cell) => ({ ...(await srv('/migrations/1')(cell)), headers: mv('2.23') }),
  },
  {
    service: 'compute',
    method: 'POST',
    route: '/v2.1/servers/:id/migrations/:migrationId/action',
    // The server is not migrating: Nova's 409.
    expect: e(409, 403, 403, 404, 401),
    request: async (cell) => ({ ...(await srv('/migrations/1/action')(cell)), headers: mv('2.22'), body: { force_complete: null } }),
  },
  {
    service: 'compute',
    method: 'DELETE',
    route: '/v2.1/servers/:id/migrations/:migrationId',
    expect: e(409, 403, 403, 404, 401),
    request: async (cell) => ({ ...(await srv('/migrations/1')(cell)), headers: mv('2.24') }),
  },
  // Admins only; another project's server is not found first (Nova's get_instance, then the policy).
  action('os-resetState', { state: 'active' }, e(202, 403, 403, 404, 401)),
  action('suspend', null, PROJECT_WRITE(202)),
  action('resume', null, PROJECT_WRITE(202), 'suspended'),
  action('createImage', { name: 'pm-snap' }, PROJECT_WRITE(202)),
  action('createBackup', { name: 'pm-backup', backup_type: 'daily', rotation: 1 }, PROJECT_WRITE(202)),
  action('shelve', null, PROJECT_WRITE(202)),
  // Nova's default: admins only (os_compute_api:os-shelve:shelve_offload).
  action('shelveOffload', null, e(202, 403, 403, 404, 401), 'shelved'),
  action('unshelve', null, PROJECT_WRITE(202), 'shelved'),
  ...(['GET', 'PUT', 'DELETE', 'PATCH'] as const).map((method): Row => ({
    service: 'compute',
    method,
    route: '/v2.1/servers/:id/action',
    expect: e(405, 405, 405, 405, 401),
    request: () => ({ url: `/v2.1/servers/${shared.server}/action` }),
  })),
  get('compute', '/v2.1/servers/:id/rescue', PROJECT_READ, () => ({ url: `/v2.1/servers/${shared.rescued}/rescue` })),
  {
    service: 'compute',
    method: 'POST',
    route: '/v2.1/servers/:id/rescue',
    expect: PROJECT_WRITE(202),
    request: async (cell) => ({ ...(await srv('/rescue')(cell)), body: { rescue: {} } }),
  },
  {
    service: 'compute',
    method: 'PATCH',
    route: '/v2.1/servers/:id/rescue',
    expect: PROJECT_WRITE(200),
    request: async (cell) => ({
      url: `/v2.1/servers/${await server(cell, 'rescued')}/rescue`,
      body: { rescue: { auto_unrescue_after: 60 } },
    }),
  },
  {
    service: 'compute',
    method: 'DELETE',
    route: '/v2.1/servers/:id/rescue',
    expect: PROJECT_WRITE(202),
    request: async (cell) => ({ url: `/v2.1/servers/${await server(cell, 'rescued')}/rescue` }),
  },
  {
    service: 'compute',
    method: 'POST',
    route: '/v2.1/os-server-groups',
    expect: e(200, 200, 403, 200, 401),
    request: () => ({ url: '/v2.1/os-server-groups', body: { server_group: { name: unique('grp'), policies: ['anti-affinity'] } } }),
  },
  get('compute', '/v2.1/os-server-groups', ANY_TOKEN),
  get('compute', '/v2.1/os-server-groups/:id', PROJECT_READ, () => ({ url: `/v2.1/os-server-groups/${shared.group}` })),
  {
    service: 'compute',
    method: 'DELETE',
    route: '/v2.1/os-server-groups/:id',
    expect: PROJECT_WRITE(204),
    request: async (cell) => ({ url: `/v2.1/os-server-groups/${cell.ok ? await newGroup() : shared.group}` }),
  },
  get('compute', '/v2.1/os-services', ADMIN_ONLY(200)),
  {
    service: 'compute',
    method: 'PUT',
    route: '/v2.1/os-services/:id',
    expect: ADMIN_ONLY(200),
    // Before 2.53 the id is the action's name, the body names the host.
    request: async () => {
      const list = await skiff.compute('GET', '/v2.1/os-services', { token: tokens.admin })
      return { url: '/v2.1/os-services/enable', body: { host: list.json().services[0].host, binary: 'nova-compute' } }
    },
  },
  {
    service: 'compute',
    method: 'DELETE',
    route: '/v2.1/os-services/:id',
    // No such service: the policy is checked first.
    expect: e(404, 403, 403, 403, 401),
    request: () => ({ url: '/v2.1/os-services/999' }),
  },
  {
    service: 'compute',
    method: 'POST',
    route: '/v2.1/servers/:id/remote-consoles',
    // From 2.6; no console is configured: Nova's 400 "Unavailable console type novnc." once allowed.
    expect: PROJECT_WRITE(400),
    request: () => ({
      url: `/v2.1/servers/${shared.server}/remote-consoles`,
      body: { remote_console: { protocol: 'vnc', type: 'novnc' } },
      headers: { 'openstack-api-version': 'compute 2.6' },
    }),
  },
  // The one proxy API Skiff serves up to 2.35 (an empty list).
  get('compute', '/v2.1/os-security-groups', ANY_TOKEN),
  get('compute', '/v2.1/os-floating-ip-pools', ANY_TOKEN),
  get('compute', '/v2.1/os-floating-ips', ANY_TOKEN),
  // Nova: the show policy (a reader of the caller's own project), then Neutron's 404.
  get('compute', '/v2.1/os-floating-ips/:id', e(404, 404, 404, 404, 401), '/v2.1/os-floating-ips/x1'),
  get('compute', '/v2.1/os-simulator/faults', ADMIN_ONLY(200)),
  {
    service: 'compute',
    method: 'POST',
    route: '/v2.1/os-simulator/faults',
    expect: ADMIN_ONLY(201),
    request: () => ({
      url: '/v2.1/os-simulator/faults',
      body: { fault: { operation: 'spawn', server_id: '00000000-0000-4000-8000-000000000000', error: 'unused' } },
    }),
  },
  {
    service: 'compute',
    method: 'DELETE',
    route: '/v2.1/os-simulator/faults',
    expect: ADMIN_ONLY(204),
    request: () => ({ url: '/v2.1/os-simulator/faults' }),
  },
  {
    service: 'compute',
    method: 'DELETE',
    route: '/v2.1/os-simulator/faults/:id',
    expect: ADMIN_ONLY(204),
    request: async () => ({ url: `/v2.1/os-simulator/faults/${await newFault()}` }),
  },
  // Key pairs are each user's own: the name is looked up among the caller's, so demo's key pair
  // is 404 to everyone else, an admin included (no ?user_id= at 2.1). Nova's default lets any
  // user, a reader too, keep key pairs (admin_or_owner); Skiff asks for member to write them,
  // as for every other write: a reader can boot nothing a key pair would serve.
  get('compute', '/v2.1/os-keypairs', ANY_TOKEN),
  {
    service: 'compute',
    method: 'POST',
    route: '/v2.1/os-keypairs',
    expect: e(200, 200, 403, 200, 401),
    request: () => ({ url: '/v2.1/os-keypairs', body: { keypair: { name: unique('kp') } } }),
  },
  get('compute', '/v2.1/os-keypairs/:name', e(404, 200, 404, 404, 401), () => ({ url: `/v2.1/os-keypairs/${shared.keypair}` })),
  {
    service: 'compute',
    method: 'DELETE',
    route: '/v2.1/os-keypairs/:name',
    expect: e(404, 202, 403, 404, 401),
    request: async (cell) => ({ url: `/v2.1/os-keypairs/${cell.ok ? await newKeypair() : shared.keypair}` }),
  },
  get('compute', '/v2.1/os-availability-zone', ANY_TOKEN),
  get('compute', '/v2.1/os-availability-zone/detail', ADMIN_ONLY(200)),
  // Quotas: a reader of the project (or an admin) reads them; another project's are refused by
  // the policy (a project is not a resource the caller cannot see); only admins change them.
  get('compute', '/v2.1/os-quota-sets/:id', e(200, 200, 200, 403, 401), () => ({ url: `/v2.1/os-quota-sets/${shared.projectId}` })),
  get('compute', '/v2.1/os-quota-sets/:id/detail', e(200, 200, 200, 403, 401), () => ({
    url: `/v2.1/os-quota-sets/${shared.projectId}/detail`,
  })),
  get('compute', '/v2.1/os-quota-sets/:id/defaults', ANY_TOKEN, () => ({ url: `/v2.1/os-quota-sets/${shared.projectId}/defaults` })),
  {
    service: 'compute',
    method: 'PUT',
    route: '/v2.1/os-quota-sets/:id',
    expect: ADMIN_ONLY(200),
    request: () => ({ url: `/v2.1/os-quota-sets/${shared.projectId}`, body: { quota_set: { metadata_items: 128 } } }),
  },
  {
    service: 'compute',
    method: 'DELETE',
    route: '/v2.1/os-quota-sets/:id',
    expect: ADMIN_ONLY(202),
    request: () => ({ url: `/v2.1/os-quota-sets/${shared.projectId}` }),
  },
  get('compute', '/v2.1/os-quota-class-sets/:id', ADMIN_ONLY(200), '/v2.1/os-quota-class-sets/default'),
  {
    service: 'compute',
    method: 'PUT',
    route: '/v2.1/os-quota-class-sets/:id',
    expect: ADMIN_ONLY(200),
    request: () => ({ url: '/v2.1/os-quota-class-sets/default', body: { quota_class_set: { metadata_items: 128 } } }),
  },
  get('compute', '/v2.1/os-simple-tenant-usage', ADMIN_ONLY(200)),
  get('compute', '/v2.1/os-simple-tenant-usage/:id', e(200, 200, 200, 403, 401), () => ({
    url: `/v2.1/os-simple-tenant-usage/${shared.projectId}`,
  })),
  // os-hosts (to 2.42): the fake driver's answers; no such host is 404 after the policy.
  get('compute', '/v2.1/os-hosts', ADMIN_ONLY(200)),
  get('compute', '/v2.1/os-hosts/:host', ADMIN_ONLY(200), '/v2.1/os-hosts/skiff-1'),
  {
    service: 'compute',
    method: 'PUT',
    route: '/v2.1/os-hosts/:host',
    expect: ADMIN_ONLY(200),
    request: () => ({ url: '/v2.1/os-hosts/skiff-1', body: { status: 'enable' } }),
  },
  get('compute', '/v2.1/os-hosts/:host/startup', ADMIN_ONLY(200), '/v2.1/os-hosts/skiff-1/startup'),
  get('compute', '/v2.1/os-hosts/:host/shutdown', ADMIN_ONLY(200), '/v2.1/os-hosts/skiff-1/shutdown'),
  get('compute', '/v2.1/os-hosts/:host/reboot', ADMIN_ONLY(200), '/v2.1/os-hosts/skiff-1/reboot'),
  get('compute', '/v2.1/os-instance_usage_audit_log', ADMIN_ONLY(200)),
  get('compute', '/v2.1/os-instance_usage_audit_log/:id', ADMIN_ONLY(200), '/v2.1/os-instance_usage_audit_log/2020-03-01%2000:00:00'),
  // Another project's server is not found (instance_get_by_uuid is project-only) before the policy.
  get('compute', '/v2.1/servers/:id/diagnostics', e(200, 403, 403, 404, 401), srv('/diagnostics')),
  {
    service: 'compute',
    method: 'POST',
    route: '/v2.1/os-server-external-events',
    expect: ADMIN_ONLY(200),
    request: async (cell) => ({
      url: '/v2.1/os-server-external-events',
      body: { events: [{ name: 'network-changed', server_uuid: await server(cell) }] },
    }),
  },
  get('compute', '/v2.1/os-hypervisors', ADMIN_ONLY(200)),
  get('compute', '/v2.1/os-hypervisors/detail', ADMIN_ONLY(200)),
  get('compute', '/v2.1/os-hypervisors/statistics', ADMIN_ONLY(200)),
  get('compute', '/v2.1/os-hypervisors/:id', ADMIN_ONLY(200), '/v2.1/os-hypervisors/1'),
  // Skiff's hosts report no uptime: Nova's 501 for such a driver, once allowed.
  get('compute', '/v2.1/os-hypervisors/:id/uptime', ADMIN_ONLY(501), '/v2.1/os-hypervisors/1/uptime'),
  get('compute', '/v2.1/os-hypervisors/:id/search', ADMIN_ONLY(200), '/v2.1/os-hypervisors/skiff/search'),
  get('compute', '/v2.1/os-hypervisors/:id/servers', ADMIN_ONLY(200), '/v2.1/os-hypervisors/skiff/servers'),
  get('compute', '/v2.1/os-aggregates', ADMIN_ONLY(200)),
  {
    service: 'compute',
    method: 'POST',
    route: '/v2.1/os-aggregates',
    expect: ADMIN_ONLY(200),
    request: () => ({ url: '/v2.1/os-aggregates', body: { aggregate: { name: unique('agg') } } }),
  },
  get('compute', '/v2.1/os-aggregates/:id', ADMIN_ONLY(200), () => ({ url: `/v2.1/os-aggregates/${shared.aggregate}` })),
  {
    service: 'compute',
    method: 'PUT',
    route: '/v2.1/os-aggregates/:id',
    expect: ADMIN_ONLY(200),
    request: () => ({ url: `/v2.1/os-aggregates/${shared.aggregate}`, body: { aggregate: { name: unique('agg') } } }),
  },
  {
    service: 'compute',
    method: 'DELETE',
    route: '/v2.1/os-aggregates/:id',
    expect: ADMIN_ONLY(200),
    request: async (cell) => ({ url: `/v2.1/os-aggregates/${cell.ok ? await newAggregate() : shared.aggregate}` }),
  },
  {
    service: 'compute',
    method: 'POST',
    route: '/v2.1/os-aggregates/:id/action',
    expect: ADMIN_ONLY(200),
    request: () => ({ url: `/v2.1/os-aggregates/${shared.aggregate}/action`, body: { set_metadata: { metadata: { k: 'v' } } } }),
  },
  // The image proxy (to 2.35): no Nova policy, Glance's get_images / get_image (reader) behind it.
  get('compute', '/v2.1/images', ANY_TOKEN),
  get('compute', '/v2.1/images/detail', ANY_TOKEN),
  get('compute', '/v2.1/images/:id', ANY_TOKEN, () => ({ url: `/v2.1/images/${shared.baseImage}` })),
  get('compute', '/v2.1/images/:id/metadata', ANY_TOKEN, () => ({ url: `/v2.1/images/${shared.baseImage}/metadata` })),
  get('compute', '/v2.1/images/:id/metadata/:key', e(404, 404, 404, 404, 401), () => ({
    url: `/v2.1/images/${shared.baseImage}/metadata/no-such-key`,
  })),
  // The image proxy's delete: Glance's delete_image (its project's members), Nova's words for a 403.
  {
    service: 'compute',
    method: 'DELETE',
    route: '/v2.1/images/:id',
    expect: PROJECT_WRITE(204),
    request: async (cell) => ({ url: `/v2.1/images/${await image(cell)}` }),
  },
  // The image proxy's metadata writes: Glance's modify_image on the image (its project's members).
  ...(
    [
      ['POST', '/v2.1/images/:id/metadata', '/metadata', { metadata: { k: 'w' } }, 200],
      ['PUT', '/v2.1/images/:id/metadata', '/metadata', { metadata: { k: 'w' } }, 200],
      ['PUT', '/v2.1/images/:id/metadata/:key', '/metadata/k', { meta: { k: 'w' } }, 200],
      ['DELETE', '/v2.1/images/:id/metadata/:key', '/metadata/k', undefined, 204],
    ] as const
  ).map(([method, route, suffix, body, status]) => ({
    service: 'compute' as const,
    method,
    route,
    expect: PROJECT_WRITE(status),
    request: async () => ({ url: `/v2.1/images/${await newImage('member', { k: 'v' })}${suffix}`, body }),
  })),
  get('compute', '/v2.1/limits', ANY_TOKEN),
  get('compute', '/v2.1/flavors', ANY_TOKEN),
  get('compute', '/v2.1/flavors/detail', ANY_TOKEN),
  get('compute', '/v2.1/flavors/:id', ANY_TOKEN, '/v2.1/flavors/1'),
  {
    service: 'compute',
    method: 'POST',
    route: '/v2.1/flavors',
    expect: ADMIN_ONLY(200),
    request: () => {
      const id = unique('flv')
      return { url: '/v2.1/flavors', body: { flavor: { id, name: id, ram: 64, vcpus: 1, disk: 1 } } }
    },
  },
  {
    service: 'compute',
    method: 'PUT',
    route: '/v2.1/flavors/:id',
    expect: ADMIN_ONLY(200),
    // From 2.55 (below, no such method: 404).
    request: () => ({
      url: `/v2.1/flavors/${shared.flavor}`,
      body: { flavor: { description: 'd' } },
      headers: { 'openstack-api-version': 'compute 2.55' },
    }),
  },
  {
    service: 'compute',
    method: 'DELETE',
    route: '/v2.1/flavors/:id',
    expect: ADMIN_ONLY(202),
    request: async (cell) => ({ url: `/v2.1/flavors/${cell.ok ? await newFlavor() : shared.flavor}` }),
  },
  // Flavor access (policies/flavor_access.py): admin for the list and both actions.
  get('compute', '/v2.1/flavors/:id/os-flavor-access', ADMIN_ONLY(200), async () => ({
    url: `/v2.1/flavors/${await newPrivateFlavor()}/os-flavor-access`,
  })),
  {
    service: 'compute',
    method: 'POST',
    route: '/v2.1/flavors/:id/action',
    expect: ADMIN_ONLY(200),
    request: async () => ({
      url: `/v2.1/flavors/${await newPrivateFlavor()}/action`,
      body: { addTenantAccess: { tenant: shared.projectId } },
    }),
  },
  get('compute', '/v2.1/flavors/:id/os-extra_specs', ANY_TOKEN, () => ({ url: `/v2.1/flavors/${shared.flavor}/os-extra_specs` })),
  {
    service: 'compute',
    method: 'POST',
    route: '/v2.1/flavors/:id/os-extra_specs',
    expect: ADMIN_ONLY(200),
    request: () => ({ url: `/v2.1/flavors/${shared.flavor}/os-extra_specs`, body: { extra_specs: { 'hw:x': '1' } } }),
  },
  get('compute', '/v2.1/flavors/:id/os-extra_specs/:key', ANY_TOKEN, () => ({ url: `/v2.1/flavors/${shared.flavor}/os-extra_specs/hw:k` })),
  {
    service: 'compute',
    method: 'PUT',
    route: '/v2.1/flavors/:id/os-extra_specs/:key',
    expect: ADMIN_ONLY(200),
    request: () => ({ url: `/v2.1/flavors/${shared.flavor}/os-extra_specs/hw:k`, body: { 'hw:k': 'w' } }),
  },
  {
    service: 'compute',
    method: 'DELETE',
    route: '/v2.1/flavors/:id/os-extra_specs/:key',
    // Nova's delete has no response decorator: 200.
    expect: ADMIN_ONLY(200),
    request: async (cell) => ({ url: `/v2.1/flavors/${cell.ok ? await newFlavor() : shared.flavor}/os-extra_specs/hw:k` }),
  },

  // -- image: Glance's defaults (glance/policies/image.py): get_images and get_image need
  // reader, download_image, add_image, modify_image, upload_image and delete_image need member
  // (of the image's owner, for the last four), publicize_image needs admin. An image the caller
  // cannot see is 404, one it can see but may not touch 403. --
  get('image', '/', PUBLIC(300)),
  get('image', '/versions', PUBLIC(200)),
  get('image', '/v2/schemas/image', ANY_TOKEN),
  get('image', '/v2/schemas/images', ANY_TOKEN),
  get('image', '/v2/schemas/member', ANY_TOKEN),
  get('image', '/v2/schemas/members', ANY_TOKEN),
  // Image members (glance/policies/image.py): get_members / get_member the owner's readers (and the
  // member), add_member / delete_member the owner's members, modify_member the member's only.
  get('image', '/v2/images/:id/members', PROJECT_READ, async () => ({ url: `/v2/images/${await imageWithMember()}/members` })),
  {
    service: 'image',
    method: 'POST',
    route: '/v2/images/:id/members',
    expect: PROJECT_WRITE(200),
    request: () => ({ url: `/v2/images/${shared.image}/members`, body: { member: unique('proj') } }),
  },
  get('image', '/v2/images/:id/members/:member', PROJECT_READ, async () => ({
    url: `/v2/images/${await imageWithMember()}/members/${MATRIX_MEMBER}`,
  })),
  {
    service: 'image',
    method: 'PUT',
    route: '/v2/images/:id/members/:member',
    expect: e(200, 403, 403, 200, 401),
    request: async () => {
      const { image, member } = await imageSharedWithOther()
      return { url: `/v2/images/${image}/members/${member}`, body: { status: 'accepted' } }
    },
  },
  {
    service: 'image',
    method: 'DELETE',
    route: '/v2/images/:id/members/:member',
    expect: PROJECT_WRITE(204),
    request: async (cell) => {
      if (!cell.ok) return { url: `/v2/images/${await imageWithMember()}/members/${MATRIX_MEMBER}` }
      const member = unique('gone-proj')
      await ok('member', await imageCall('POST', `/v2/images/${shared.image}/members`, tokens.member, { member }), 200)
      return { url: `/v2/images/${shared.image}/members/${member}` }
    },
  },
  get('image', '/v2/images', ANY_TOKEN),
  {
    service: 'image',
    method: 'POST',
    route: '/v2/images',
    expect: e(201, 201, 403, 201, 401),
    request: () => ({ url: '/v2/images', body: { name: unique('img') } }),
  },
  {
    service: 'image',
    method: 'POST',
    route: '/v2/images',
    label: 'public',
    expect: ADMIN_ONLY(201),
    request: () => ({ url: '/v2/images', body: { name: unique('img'), visibility: 'public' } }),
  },
  get('image', '/v2/images/:id', PROJECT_READ, () => ({ url: `/v2/images/${shared.image}` })),
  {
    service: 'image',
    method: 'PATCH',
    route: '/v2/images/:id',
    expect: PROJECT_WRITE(200),
    request: async (cell) => ({
      url: `/v2/images/${await image(cell)}`,
      body: [{ op: 'replace', path: '/name', value: 'renamed' }],
      headers: { 'content-type': PATCH },
    }),
  },
  {
    service: 'image',
    method: 'PATCH',
    route: '/v2/images/:id',
    label: 'public image',
    expect: e(200, 403, 403, 403, 401),
    request: async (cell) => ({
      url: `/v2/images/${await publicImage(cell)}`,
      body: [{ op: 'replace', path: '/name', value: 'renamed' }],
      headers: { 'content-type': PATCH },
    }),
  },
  {
    service: 'image',
    method: 'DELETE',
    route: '/v2/images/:id',
    expect: PROJECT_WRITE(204),
    request: async (cell) => ({ url: `/v2/images/${await image(cell)}` }),
  },
  {
    service: 'image',
    method: 'DELETE',
    route: '/v2/images/:id',
    label: 'public image',
    expect: e(204, 403, 403, 403, 401),
    request: async (cell) => ({ url: `/v2/images/${await publicImage(cell)}` }),
  },
  {
    service: 'image',
    method: 'PUT',
    route: '/v2/images/:id/file',
    expect: PROJECT_WRITE(204),
    request: async (cell) => ({
      url: `/v2/images/${await image(cell)}/file`,
      body: Buffer.from('data'),
      headers: { 'content-type': 'application/octet-stream' },
    }),
  },
  // download_image needs member: a reader sees the image but may not have its data.
  get('image', '/v2/images/:id/file', e(200, 200, 403, 404, 401), () => ({ url: `/v2/images/${shared.activeImage}/file` })),
  {
    ...get('image', '/v2/images/:id/file', e(200, 200, 403, 200, 401), () => ({ url: `/v2/images/${shared.baseImage}/file` })),
    label: 'public image',
  },
  // -- volume (Cinder's default policy: project reader reads, member writes; quotas changed by admins) --
  get('volume', '/', PUBLIC(300)),
  get('volume', '/v3', PUBLIC(200)),
  get('volume', '/v3/volumes', ANY_TOKEN, async (cell) => ({ url: await vol(cell, '/volumes') })),
  get('volume', '/v3/volumes/detail', ANY_TOKEN, async (cell) => ({ url: await vol(cell, '/volumes/detail') })),
  get('volume', '/v3/volumes/summary', ANY_TOKEN, async (cell) => ({
    url: await vol(cell, '/volumes/summary'),
    headers: { 'openstack-api-version': 'volume 3.36' },
  })),
  volRow('POST', '/v3/volumes', e(202, 202, 403, 202, 401), async (cell) => ({
    url: await vol(cell, '/volumes'),
    body: { volume: { size: 1 } },
  })),
  get('volume', '/v3/volumes/:id', PROJECT_READ, async (cell) => ({ url: await vol(cell, `/volumes/${shared.volume}`) })),
  volRow('PUT', '/v3/volumes/:id', PROJECT_WRITE(200), async (cell) => ({
    url: await vol(cell, `/volumes/${await volume(cell)}`),
    body: { volume: { name: unique('vol') } },
  })),
  volRow('DELETE', '/v3/volumes/:id', PROJECT_WRITE(202), async (cell) => ({ url: await vol(cell, `/volumes/${await volume(cell)}`) })),
  volRow('POST', '/v3/volumes/:id/action', PROJECT_WRITE(202), async (cell) => ({
    url: await vol(cell, `/volumes/${await volume(cell)}/action`),
    body: { 'os-extend': { new_size: 2 } },
  })),
  get('volume', '/v3/volumes/:id/metadata', PROJECT_READ, async (cell) => ({ url: await vol(cell, `/volumes/${shared.volume}/metadata`) })),
  volRow('POST', '/v3/volumes/:id/metadata', PROJECT_WRITE(200), async (cell) => ({
    url: await vol(cell, `/volumes/${await volume(cell)}/metadata`),
    body: { metadata: { a: 'b' } },
  })),
  volRow('PUT', '/v3/volumes/:id/metadata', PROJECT_WRITE(200), async (cell) => ({
    url: await vol(cell, `/volumes/${await volume(cell)}/metadata`),
    body: { metadata: { a: 'b' } },
  })),
  get('volume', '/v3/volumes/:id/metadata/:key', PROJECT_READ, async (cell) => ({
    url: await vol(cell, `/volumes/${shared.volume}/metadata/k`),
  })),
  volRow('PUT', '/v3/volumes/:id/metadata/:key', PROJECT_WRITE(200), async (cell) => ({
    url: await vol(cell, `/volumes/${await volume(cell)}/metadata/k`),
    body: { meta: { k: 'w' } },
  })),
  volRow('DELETE', '/v3/volumes/:id/metadata/:key', PROJECT_WRITE(200), async (cell) => ({
    url: await vol(cell, `/volumes/${await volume(cell)}/metadata/k`),
  })),
  get('volume', '/v3/snapshots', ANY_TOKEN, async (cell) => ({ url: await vol(cell, '/snapshots') })),
  get('volume', '/v3/snapshots/detail', ANY_TOKEN, async (cell) => ({ url: await vol(cell, '/snapshots/detail') })),
  volRow('POST', '/v3/snapshots', e(202, 202, 403, 404, 401), async (cell) => ({
    url: await vol(cell, '/snapshots'),
    body: { snapshot: { volume_id: await volume(cell), name: unique('snap') } },
  })),
  get('volume', '/v3/snapshots/:id', PROJECT_READ, async (cell) => ({ url: await vol(cell, `/snapshots/${shared.snapshot}`) })),
  volRow('PUT', '/v3/snapshots/:id', PROJECT_WRITE(200), async (cell) => ({
    url: await vol(cell, `/snapshots/${await snapshot(cell)}`),
    body: { snapshot: { name: unique('snap') } },
  })),
  get('volume', '/v3/snapshots/:id/metadata', PROJECT_READ, async (cell) => ({
    url: await vol(cell, `/snapshots/${shared.snapshot}/metadata`),
  })),
  volRow('POST', '/v3/snapshots/:id/metadata', PROJECT_WRITE(200), async (cell) => ({
    url: await vol(cell, `/snapshots/${await snapshot(cell)}/metadata`),
    body: { metadata: { k: 'v' } },
  })),
  volRow('PUT', '/v3/snapshots/:id/metadata', PROJECT_WRITE(200), async (cell) => ({
    url: await vol(cell, `/snapshots/${await snapshot(cell)}/metadata`),
    body: { metadata: { k: 'v' } },
  })),
  get('volume', '/v3/snapshots/:id/metadata/:key', PROJECT_READ, async (cell) => ({
    url: await vol(cell, `/snapshots/${shared.snapshot}/metadata/k`),
  })),
  volRow('PUT', '/v3/snapshots/:id/metadata/:key', PROJECT_WRITE(200), async (cell) => ({
    url: await vol(cell, `/snapshots/${await snapshot(cell)}/metadata/k`),
    body: { meta: { k: 'w' } },
  })),
  volRow('DELETE', '/v3/snapshots/:id/metadata/:key', PROJECT_WRITE(200), async (cell) => ({
    url: await vol(cell, `/snapshots/${await snapshot(cell)}/metadata/k`),
  })),
  volRow('DELETE', '/v3/snapshots/:id', PROJECT_WRITE(202), async (cell) => ({
    url: await vol(cell, `/snapshots/${await snapshot(cell)}`),
  })),
  get('volume', '/v3/types', ANY_TOKEN, async (cell) => ({ url: await vol(cell, '/types') })),
  get('volume', '/v3/types/:id', ANY_TOKEN, async (cell) => ({ url: await vol(cell, '/types/default') })),
  // A project's quotas: its readers and admins (another project's caller: 403, as Cinder's quotas:show).
  get('volume', '/v3/os-quota-sets/:project', e(200, 200, 200, 403, 401), async (cell) => ({
    url: await vol(cell, `/os-quota-sets/${shared.projectId}`),
  })),
  get('volume', '/v3/os-quota-sets/:project/defaults', ANY_TOKEN, async (cell) => ({
    url: await vol(cell, `/os-quota-sets/${shared.projectId}/defaults`),
  })),
  volRow('PUT', '/v3/os-quota-sets/:project', ADMIN_ONLY(200), async (cell) => ({
    url: await vol(cell, `/os-quota-sets/${shared.projectId}`),
    body: { quota_set: { volumes: -1 } },
  })),
  volRow('DELETE', '/v3/os-quota-sets/:project', ADMIN_ONLY(200), async (cell) => ({
    url: await vol(cell, `/os-quota-sets/${await projectId('alt_demo')}`),
  })),
]

async function projectId(name: string): Promise<string> {
  const res = await skiff.apps.identity.inject({
    method: 'GET',
    url: `/v3/projects?name=${name}`,
    headers: { 'x-auth-token': tokens.admin },
  })
  return res.json().projects[0].id as string
}
async function roleId(name: string): Promise<string> {
  const res = await skiff.apps.identity.inject({ method: 'GET', url: `/v3/roles?name=${name}`, headers: { 'x-auth-token': tokens.admin } })
  return res.json().roles[0].id as string
}

// ---- volume fixtures ----

/** A block storage URL as the caller's catalog gives it: /v3/{the caller's project}{path}. */
async function vol(cell: Cell, path: string): Promise<string> {
  const account = ACCOUNT[cell.as === 'none' ? 'member' : cell.as]
  return `/v3/${await projectId(account === 'reader_demo' ? 'demo' : account)}${path}`
}
function volRow(method: string, route: string, expect: Expect, request: Row['request']): Row {
  return { service: 'volume', method, route, expect, request }
}
async function waitVolumeStatus(id: string, status: string): Promise<void> {
  const deadline = Date.now() + 5000
  for (;;) {
    const res = await skiff.volume('GET', `/v3/${shared.projectId}/volumes/${id}`, { token: tokens.member })
    if (res.json().volume?.status === status) return
    if (Date.now() > deadline) throw new Error(`volume ${id} not ${status}: ${res.body}`)
    await new Promise((r) => setTimeout(r, 5))
  }
}
/** An available volume of the demo project, with metadata k=v. */
async function newVolume(): Promise<string> {
  const res = await ok(
    'volume',
    await skiff.volume('POST', `/v3/${shared.projectId}/volumes`, {
      token: tokens.member,
      body: { volume: { size: 1, metadata: { k: 'v' } } },
    }),
    202,
  )
  const id = res.json().volume.id as string
  await waitVolumeStatus(id, 'available')
  return id
}
const volume = async (cell: Cell) => (cell.ok ? newVolume() : shared.volume)
async function newSnapshot(): Promise<string> {
  const res = await ok(
    'snapshot',
    await skiff.volume('POST', `/v3/${shared.projectId}/snapshots`, {
      token: tokens.member,
      body: { snapshot: { volume_id: await newVolume(), metadata: { k: 'v' } } },
    }),
    202,
  )
  const id = res.json().snapshot.id as string
  const deadline = Date.now() + 5000
  while (
    (await skiff.volume('GET', `/v3/${shared.projectId}/snapshots/${id}`, { token: tokens.member })).json().snapshot.status !== 'available'
  ) {
    if (Date.now() > deadline) throw new Error(`snapshot ${id} not available`)
    await new Promise((r) => setTimeout(r, 5))
  }
  return id
}
const snapshot = async (cell: Cell) => (cell.ok ? newSnapshot() : shared.snapshot)
/** A server of the demo project with a volume attached (in-use). */
async function newAttached(): Promise<[string, string]> {
  const srvId = await newServer('active')
  const volId = await newVolume()
  await ok(
    'attach',
    await skiff.compute('POST', `/v2.1/servers/${srvId}/os-volume_attachments`, {
      token: tokens.member,
      body: { volumeAttachment: { volumeId: volId } },
    }),
    200,
  )
  await waitVolumeStatus(volId, 'in-use')
  return [srvId, volId]
}

// ---- running a cell ----

/** The status of an event stream, read from its first line; the stream is then dropped. */
function streamStatus(url: string, token: string | undefined): Promise<{ statusCode: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: url, agent: false, headers: token ? { 'x-auth-token': token } : {} }, (res) => {
      if (res.statusCode === 200) {
        res.destroy()
        return resolve({ statusCode: 200, body: '' })
      }
      let body = ''
      res
        .setEncoding('utf8')
        .on('data', (c: string) => {
          body += c
        })
        .on('end', () => resolve({ statusCode: res.statusCode ?? 0, body }))
    })
    req.on('error', reject)
  })
}

async function run(row: Row, as: Caller): Promise<{ statusCode: number; body: string }> {
  const expected = row.expect[as]
  const r = await row.request({ as, ok: expected < 300 })
  const token = as === 'none' ? undefined : tokens[as]
  if (row.stream) return streamStatus(r.url, token)
  const headers: Record<string, string> = { ...(token ? { 'x-auth-token': token } : {}), ...r.headers }
  const app: FastifyInstance = skiff.apps[row.service]
  return app.inject({ method: row.method as 'GET', url: r.url, headers, ...(r.body !== undefined ? { payload: r.body as object } : {}) })
}

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
}
const NOVA_FAULT: Record<number, string> = {
  400: 'badRequest',
  403: 'forbidden',
  404: 'itemNotFound',
  405: 'badMethod',
  409: 'conflictingRequest',
  410: 'computeFault',
  501: 'notImplemented',
}

/** The fault body each service answers with (401 comes from the token check, in Keystone's shape, on every service). */
function assertFault(row: Row, status: number, body: string, where: string) {
  const json = JSON.parse(body) as Record<string, any>
  if (status === 401 || row.service === 'identity') {
    assert.deepEqual(Object.keys(json), ['error'], where)
    assert.equal(json.error.code, status, where)
    assert.equal(json.error.title, TITLES[status], where)
  } else if (row.service === 'image') {
    assert.equal(json.code, `${status} ${TITLES[status]}`, where)
    assert.equal(json.title, TITLES[status], where)
    assert.equal(typeof json.message, 'string', where)
  } else {
    assert.deepEqual(Object.keys(json), [NOVA_FAULT[status]], where)
    assert.equal(json[NOVA_FAULT[status]!].code, status, where)
  }
}

/** `METHOD /path` of every route a listener serves, from fastify's printed route tree (HEAD comes with GET). */
function routesOf(app: FastifyInstance): string[] {
  const out: string[] = []
  const stack: string[] = []
  for (const line of app.printRoutes({ commonPrefix: false }).split('\n')) {
    const m = /^([│├└─ ]*)(.+?)(?: \(([A-Z, ]+)\))?$/.exec(line)
    if (!m || m[2]!.trim() === '') continue
    const depth = m[1]!.length / 4
    stack.length = depth - 1
    const path = (stack[depth - 2] ?? '') + m[2]!
    stack[depth - 1] = path
    for (const method of (m[3] ?? '').split(', ').filter(Boolean)) if (method !== 'HEAD') out.push(`${method} ${path}`)
  }
  return out
}

before(async () => {
  skiff = await startTestSkiff({ actionRateLimit: 0, allowResizeToSameHost: true, shelvedOffloadTimeSeconds: -1 })
  await skiff.apps.compute.listen({ port: 0, host: '127.0.0.1' })
  port = (skiff.apps.compute.server.address() as AddressInfo).port
  for (const [caller, account] of Object.entries(ACCOUNT)) tokens[caller as keyof typeof ACCOUNT] = await skiff.token(account)
  shared.baseImage = await skiff.imageId('skiff-base')
  shared.server = await newServer('active')
  shared.rescued = await newServer('rescued')
  const actions = await skiff.compute('GET', `/v2.1/servers/${shared.server}/os-instance-actions`, { token: tokens.member })
  shared.requestId = actions.json().instanceActions[0].request_id
  shared.image = await newImage('member')
  shared.activeImage = await newImage('member')
  await upload(shared.activeImage, tokens.member)
  shared.group = await newGroup()
  shared.keypair = await newKeypair()
  shared.flavor = await newFlavor()
  const me = await skiff.apps.identity.inject({
    method: 'GET',
    url: '/v3/auth/tokens',
    headers: { 'x-auth-token': tokens.member, 'x-subject-token': tokens.member },
  })
  shared.userId = me.json().token.user.id
  shared.projectId = me.json().token.project.id
  shared.aggregate = await newAggregate()
  // The rows make many volumes and snapshots in demo: no count limit there.
  const adminProject = await projectId('admin')
  await ok(
    'volume quotas',
    await skiff.volume('PUT', `/v3/${adminProject}/os-quota-sets/${shared.projectId}`, {
      token: tokens.admin,
      body: { quota_set: { volumes: -1, snapshots: -1 } },
    }),
    200,
  )
  shared.volume = await newVolume()
  shared.snapshot = await newSnapshot()
  ;[shared.attachedServer, shared.attachedVolume] = await newAttached()
})
after(() => skiff.close())

const key = (service: Service, method: string, route: string) => `${service} ${method} ${route}`

test('every route of the four services has a row, and every row a route', () => {
  const served = new Set<string>()
  for (const service of ['identity', 'compute', 'image', 'volume'] as const) {
    for (const r of routesOf(skiff.apps[service])) served.add(`${service} ${r}`)
  }
  const rows = new Set(ROWS.map((r) => key(r.service, r.method, r.route)))
  assert.deepEqual(
    [...served].filter((r) => !rows.has(r)),
    [],
    'routes without a row in the policy matrix',
  )
  assert.deepEqual(
    [...rows].filter((r) => !served.has(r)),
    [],
    'rows for routes that do not exist',
  )
})

for (const row of ROWS) {
  const name = `${row.method} ${row.route}${row.label ? ` (${row.label})` : ''} [${row.service}]`
  test(name, async () => {
    const wrong: string[] = []
    for (const as of CALLERS) {
      const res = await run(row, as)
      const expected = row.expect[as]
      if (res.statusCode !== expected) {
        wrong.push(`${as}: ${res.statusCode} (expected ${expected}) ${res.body.slice(0, 200)}`)
        continue
      }
      if (expected >= 400) assertFault(row, expected, res.body, `${name} as ${as}: ${res.body}`)
    }
    assert.deepEqual(wrong, [])
  })
}

test("a reader's refusals name the rule, in each service's words", async () => {
  const reader = tokens.reader
  const glance = (rule: string) => ({
    message: `You are not authorized to complete ${rule} action.`,
    code: '403 Forbidden',
    title: 'Forbidden',
  })
  const img = shared.activeImage
  const cases: [Promise<{ statusCode: number; json(): unknown }>, unknown][] = [
    [imageCall('POST', '/v2/images', reader, { name: 'r' }), glance('add_image')],
    [
      imageCall('PATCH', `/v2/images/${img}`, reader, [{ op: 'replace', path: '/name', value: 'r' }], { 'content-type': PATCH }),
      glance('modify_image'),
    ],
    [
      imageCall('PUT', `/v2/images/${shared.image}/file`, reader, Buffer.from('r'), { 'content-type': 'application/octet-stream' }),
      glance('upload_image'),
    ],
    [imageCall('DELETE', `/v2/images/${img}`, reader), glance('delete_image')],
    [imageCall('GET', `/v2/images/${img}/file`, reader), glance('download_image')],
    [
      skiff.compute('POST', '/v2.1/os-keypairs', { token: reader, body: { keypair: { name: 'r' } } }),
      { forbidden: { code: 403, message: "Policy doesn't allow os_compute_api:os-keypairs:create to be performed." } },
    ],
  ]
  for (const [res, body] of cases) {
    const r = await res
    assert.equal(r.statusCode, 403)
    assert.deepEqual(r.json(), body)
  }
})
