// Glance's image members (glance/api/v2/image_members.py, the secure-RBAC defaults of
// glance/policies/image.py): a `shared` image's owner adds projects, each member accepts or
// rejects it, the list shows a member's shared images by member_status, and compute boots from
// an image shared with the project. Messages and statuses as Glance's.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { startTestSkiff, waitForStatus, type TestSkiff } from '../helpers/skiff.ts'

let skiff: TestSkiff
const tokens = { demo: '', alt: '', reader: '', admin: '' }
let altProject = ''
let shared = ''
let privateImage = ''

type Who = keyof typeof tokens
async function call(method: string, url: string, as: Who, body?: unknown) {
  const res = await skiff.apps.image.inject({
    method: method as 'GET',
    url,
    headers: { 'x-auth-token': tokens[as], ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { payload: JSON.stringify(body) } : {}),
  })
  return { status: res.statusCode, body: res.body, json: () => res.json() as Record<string, any> }
}
const TITLES: Record<number, string> = {
  400: 'Bad Request',
  403: 'Forbidden',
  404: 'Not Found',
  409: 'Conflict',
  413: 'Request Entity Too Large',
}
async function refused(r: Promise<Awaited<ReturnType<typeof call>>>, status: number, message: string) {
  const res = await r
  assert.equal(res.status, status, res.body)
  assert.deepEqual(res.json(), { message, code: `${status} ${TITLES[status]}`, title: TITLES[status] })
}
const listed = async (query: string, as: Who) =>
  ((await call('GET', `/v2/images${query}`, as)).json().images as { id: string }[]).map((i) => i.id)

before(async () => {
  skiff = await startTestSkiff()
  tokens.demo = await skiff.token('demo')
  tokens.alt = await skiff.token('alt_demo')
  tokens.reader = await skiff.token('reader_demo')
  tokens.admin = await skiff.token('admin')
  const me = await skiff.apps.identity.inject({
    method: 'GET',
    url: '/v3/auth/tokens',
    headers: { 'x-auth-token': tokens.alt, 'x-subject-token': tokens.alt },
  })
  altProject = me.json().token.project.id
  // Glance's default visibility is `shared`: the owner's until it has members.
  const made = await call('POST', '/v2/images', 'demo', { name: 'to-share', disk_format: 'raw', container_format: 'bare' })
  assert.equal(made.status, 201, made.body)
  assert.equal(made.json().visibility, 'shared')
  shared = made.json().id
  const put = await skiff.apps.image.inject({
    method: 'PUT',
    url: `/v2/images/${shared}/file`,
    headers: { 'x-auth-token': tokens.demo, 'content-type': 'application/octet-stream' },
    payload: Buffer.alloc(1024),
  })
  assert.equal(put.statusCode, 204, put.body)
  privateImage = (await call('POST', '/v2/images', 'demo', { name: 'mine', visibility: 'private' })).json().id
})
after(() => skiff.close())

test('only shared images have members: list 403, create 403, show 404, each with its message', async () => {
  await refused(
    call('GET', `/v2/images/${privateImage}/members`, 'demo'),
    403,
    `Not allowed to list members for image ${privateImage}: Only shared images have members.`,
  )
  await refused(
    call('POST', `/v2/images/${privateImage}/members`, 'demo', { member: altProject }),
    403,
    `Not allowed to create members for image ${privateImage}.`,
  )
  await refused(call('GET', `/v2/images/${privateImage}/members/${altProject}`, 'demo'), 404, 'Only shared images have members.')
  const unknown = '00000000-0000-4000-8000-000000000000'
  await refused(call('GET', `/v2/images/${unknown}/members`, 'demo'), 404, `Image ${unknown} not found.`)
  // Another project cannot see the private image at all.
  await refused(call('GET', `/v2/images/${privateImage}/members`, 'alt'), 404, `Image ${privateImage} not found.`)
})

test("the request bodies Glance's deserializer refuses", async () => {
  const res = await skiff.apps.image.inject({
    method: 'POST',
    url: `/v2/images/${shared}/members`,
    headers: { 'x-auth-token': tokens.demo },
  })
  assert.equal(res.statusCode, 400)
  assert.equal(res.json().message, 'Body expected in request.')
  await refused(call('POST', `/v2/images/${shared}/members`, 'demo', {}), 400, 'Member to be added not specified')
  await refused(call('POST', `/v2/images/${shared}/members`, 'demo', { member: '' }), 400, "Member can't be empty")
  await refused(call('POST', `/v2/images/${shared}/members`, 'demo', ['x']), 400, 'Expected a member in the form: {"member": "image_id"}')
  await refused(call('PUT', `/v2/images/${shared}/members/${altProject}`, 'alt', {}), 400, 'Status not specified')
})

test('the owner adds a member (pending); a duplicate is 409; a reader or another project may not add', async () => {
  const added = await call('POST', `/v2/images/${shared}/members`, 'demo', { member: altProject })
  assert.equal(added.status, 200, added.body)
  const m = added.json()
  assert.deepEqual(Object.keys(m), ['member_id', 'image_id', 'status', 'created_at', 'updated_at', 'schema'])
  assert.equal(m.member_id, altProject)
  assert.equal(m.image_id, shared)
  assert.equal(m.status, 'pending')
  assert.match(m.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/)
  assert.equal(m.schema, '/v2/schemas/member')
  await refused(
    call('POST', `/v2/images/${shared}/members`, 'demo', { member: altProject }),
    409,
    `Member ${altProject} is duplicated for image ${shared}`,
  )
  await refused(
    call('POST', `/v2/images/${shared}/members`, 'reader', { member: 'p-x' }),
    403,
    'You are not authorized to complete add_member action.',
  )
  await refused(
    call('POST', `/v2/images/${shared}/members`, 'alt', { member: 'p-x' }),
    403,
    'You are not authorized to complete add_member action.',
  )
  assert.equal((await call('POST', `/v2/images/${shared}/members`, 'demo', { member: 'another-project' })).status, 200)
})

test('members are listed whole to the owner (and its readers), a member sees itself only', async () => {
  const owner = await call('GET', `/v2/images/${shared}/members`, 'demo')
  assert.equal(owner.status, 200)
  assert.equal(owner.json().schema, '/v2/schemas/members')
  assert.deepEqual(
    owner
      .json()
      .members.map((m: { member_id: string }) => m.member_id)
      .sort(),
    [altProject, 'another-project'].sort(),
  )
  assert.equal((await call('GET', `/v2/images/${shared}/members`, 'reader')).json().members.length, 2)
  const member = await call('GET', `/v2/images/${shared}/members`, 'alt')
  assert.deepEqual(
    member.json().members.map((m: { member_id: string }) => m.member_id),
    [altProject],
  )
  assert.equal((await call('GET', `/v2/images/${shared}/members/${altProject}`, 'alt')).json().status, 'pending')
  await refused(
    call('GET', `/v2/images/${shared}/members/another-project`, 'alt'),
    404,
    `another-project not found in the member list of the image ${shared}.`,
  )
  assert.equal((await call('GET', '/v2/schemas/member', 'alt')).json().name, 'member')
  assert.equal((await call('GET', '/v2/schemas/members', 'alt')).json().name, 'members')
})

test('a pending member sees the image but lists it only by member_status; accepted, it is listed', async () => {
  assert.equal((await call('GET', `/v2/images/${shared}`, 'alt')).status, 200)
  assert.ok(!(await listed('', 'alt')).includes(shared))
  assert.ok((await listed('?member_status=pending', 'alt')).includes(shared))
  assert.ok((await listed('?visibility=shared&member_status=all', 'alt')).includes(shared))
  assert.ok(!(await listed('?member_status=rejected', 'alt')).includes(shared))
  // Only the member changes its status: not the owner.
  await refused(
    call('PUT', `/v2/images/${shared}/members/${altProject}`, 'demo', { status: 'accepted' }),
    403,
    'You are not authorized to complete modify_member action.',
  )
  await refused(
    call('PUT', `/v2/images/${shared}/members/${altProject}`, 'alt', { status: 'maybe' }),
    400,
    'Incorrect request: Status must be "pending", "accepted" or "rejected".',
  )
  const accepted = await call('PUT', `/v2/images/${shared}/members/${altProject}`, 'alt', { status: 'accepted' })
  assert.equal(accepted.status, 200, accepted.body)
  assert.equal(accepted.json().status, 'accepted')
  assert.ok((await listed('', 'alt')).includes(shared))
  assert.ok((await listed('?visibility=shared', 'alt')).includes(shared))
  assert.ok(!(await listed('?member_status=pending', 'alt')).includes(shared))
  // A member may read the data, but not change the image.
  const data = await skiff.apps.image.inject({ method: 'GET', url: `/v2/images/${shared}/file`, headers: { 'x-auth-token': tokens.alt } })
  assert.equal(data.statusCode, 200)
  const del = await call('DELETE', `/v2/images/${shared}`, 'alt')
  assert.equal(del.status, 403)
})

test('compute boots a server of a project the image is shared with', async () => {
  const res = await skiff.compute('POST', '/v2.1/servers', {
    token: tokens.alt,
    body: { server: { name: 'from-shared', imageRef: shared, flavorRef: '1' } },
  })
  assert.equal(res.statusCode, 202, res.body)
  await waitForStatus(skiff, tokens.alt, res.json().server.id, 'ACTIVE')
})

test('the member may not remove itself; the owner removes it and the image is gone for it', async () => {
  await refused(
    call('DELETE', `/v2/images/${shared}/members/${altProject}`, 'alt'),
    403,
    'You are not authorized to complete delete_member action.',
  )
  const del = await call('DELETE', `/v2/images/${shared}/members/${altProject}`, 'demo')
  assert.equal(del.status, 204)
  await refused(
    call('GET', `/v2/images/${shared}/members/${altProject}`, 'demo'),
    404,
    `${altProject} not found in the member list of the image ${shared}.`,
  )
  assert.equal((await call('GET', `/v2/images/${shared}`, 'alt')).status, 404)
  assert.ok(!(await listed('?member_status=all', 'alt')).includes(shared))
  // An admin sees and manages every image's members.
  assert.equal((await call('GET', `/v2/images/${shared}/members`, 'admin')).json().members.length, 1)
})
