// Rescue as the seed describes it and as Nova does it, and what Skiff adds: the readable rescue
// state, auto-exit, keys in rescue, safe failure, fault injection, 503 for a dead host.
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { hashPassword } from '../../src/identity/password-hashing.ts'
import { startTestSkiff, waitFor, waitForStatus, type TestSkiff } from '../helpers/skiff.ts'

const PUBLIC_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGt7RkRrJQnWnY0l5hYZ6jQzP0V6mYb2aJqRk3m8nQ2f rescuer@example'

let skiff: TestSkiff
let demo: string
let admin: string
let baseImage: string
let rescueImage: string

before(async () => {
  skiff = await startTestSkiff()
  demo = await skiff.token('demo')
  admin = await skiff.token('admin')
  const list = await skiff.apps.image.inject({ method: 'GET', url: '/v2/images', headers: { 'x-auth-token': demo } })
  const byName = (n: string) => list.json().images.find((i: { name: string }) => i.name === n).id as string
  baseImage = byName('skiff-base')
  rescueImage = byName('skiff-rescue')
})
after(() => skiff.close())

async function server(adminPass = 'Orig1nalPass') {
  const res = await skiff.compute('POST', '/v2.1/servers', {
    token: demo,
    body: { server: { name: 'r', imageRef: baseImage, flavorRef: '1', adminPass } },
  })
  assert.equal(res.statusCode, 202, res.body)
  const id = res.json().server.id as string
  await waitForStatus(skiff, demo, id, 'ACTIVE')
  return id
}
const action = (id: string, body: unknown, token = demo) => skiff.compute('POST', `/v2.1/servers/${id}/action`, { token, body })
const show = async (id: string, token = demo) => (await skiff.compute('GET', `/v2.1/servers/${id}`, { token })).json().server

describe('the seed: a clean rescue system with a new password, the disk second, back with the old one', () => {
  test('rescue boots the rescue image with the new password; unrescue brings the original password back', async () => {
    const id = await server('Orig1nalPass')
    assert.equal(skiff.driver.canLogin(id, 'Orig1nalPass'), true)
    const ownHostKey = skiff.driver.describe(id)!.hostKeyFingerprint

    const res = await action(id, { rescue: { rescue_image_ref: rescueImage } })
    assert.equal(res.statusCode, 200)
    const rescuePass = res.json().adminPass as string
    await waitForStatus(skiff, demo, id, 'RESCUE')
    const inRescue = skiff.driver.describe(id)!
    assert.deepEqual(inRescue.disks, [`rescue image ${rescueImage}`, `server disk ${id}`])
    assert.notEqual(inRescue.hostKeyFingerprint, ownHostKey, 'the SSH host key differs in rescue mode')
    assert.equal(skiff.driver.canLogin(id, rescuePass), true)
    assert.equal(skiff.driver.canLogin(id, 'Orig1nalPass'), false)

    assert.equal((await action(id, { unrescue: null })).statusCode, 202)
    await waitForStatus(skiff, demo, id, 'ACTIVE')
    assert.equal(skiff.driver.canLogin(id, 'Orig1nalPass'), true)
    assert.equal(skiff.driver.canLogin(id, rescuePass), false)
    assert.equal(skiff.driver.describe(id)!.hostKeyFingerprint, ownHostKey)
  })

  test('the legacy v2 path takes the seed\'s forms, including {"rescue": "none"}', async () => {
    const id = await server()
    const projectId = (await show(id)).tenant_id
    const legacy = await skiff.compute('POST', `/v2/${projectId}/servers/${id}/action`, { token: demo, body: { rescue: 'none' } })
    assert.equal(legacy.statusCode, 200, legacy.body)
    assert.match(legacy.json().adminPass, /^[2-9A-HJ-NP-Za-km-z]{12}$/)
    await waitForStatus(skiff, demo, id, 'RESCUE')
    assert.equal(
      (await skiff.compute('POST', `/v2/${projectId}/servers/${id}/action`, { token: demo, body: { unrescue: null } })).statusCode,
      202,
    )
    await waitForStatus(skiff, demo, id, 'ACTIVE')
    const withImage = await skiff.compute('POST', `/v2/${projectId}/servers/${id}/action`, {
      token: demo,
      body: { rescue: { rescue_image_ref: rescueImage } },
    })
    assert.equal(withImage.statusCode, 200)
    // On /v2.1 the same "none" is refused with Nova's message.
    const strict = await action(id, { rescue: 'none' })
    assert.equal(strict.statusCode, 400)
  })
})

describe('as Nova', () => {
  test('from SHUTOFF: SHUTOFF while rescuing, RESCUE, then ACTIVE after unrescue', async () => {
    const id = await server()
    await action(id, { 'os-stop': null })
    await waitForStatus(skiff, demo, id, 'SHUTOFF')
    const before = (await show(id))['OS-SRV-USG:launched_at']
    assert.equal((await action(id, { rescue: null })).statusCode, 200)
    const during = await show(id)
    if (during['OS-EXT-STS:task_state'] === 'rescuing') assert.equal(during.status, 'SHUTOFF')
    const rescued = await waitForStatus(skiff, demo, id, 'RESCUE')
    assert.notEqual(rescued['OS-SRV-USG:launched_at'], before, 'launched_at is reset when the rescue completes')
    await action(id, { unrescue: null })
    const back = await waitForStatus(skiff, demo, id, 'ACTIVE')
    assert.equal(back['OS-EXT-STS:power_state'], 1)
  })

  test('rescued: console output works, hard reboot and rebuild are 409, delete works', async () => {
    const id = await server()
    await action(id, { rescue: null })
    await waitForStatus(skiff, demo, id, 'RESCUE')
    const console = await action(id, { 'os-getConsoleOutput': { length: 20 } })
    assert.equal(console.statusCode, 200)
    assert.match(console.json().output, /second disk/)
    assert.equal((await action(id, { reboot: { type: 'HARD' } })).statusCode, 409)
    assert.equal((await action(id, { rebuild: { imageRef: baseImage } })).statusCode, 409)
    assert.equal((await skiff.compute('DELETE', `/v2.1/servers/${id}`, { token: demo })).statusCode, 204)
    await waitFor(
      'the server to be gone',
      async () => (await skiff.compute('GET', `/v2.1/servers/${id}`, { token: demo })).statusCode === 404,
    )
  })

  test('instance actions record rescue and unrescue with their events', async () => {
    const id = await server()
    await action(id, { rescue: null })
    await waitForStatus(skiff, demo, id, 'RESCUE')
    await action(id, { unrescue: null })
    await waitForStatus(skiff, demo, id, 'ACTIVE')
    const list = (await skiff.compute('GET', `/v2.1/servers/${id}/os-instance-actions`, { token: demo })).json().instanceActions
    assert.deepEqual(
      list.map((a: { action: string }) => a.action),
      ['unrescue', 'rescue', 'create'],
    )
    const rescue = list[1]
    const detail = (await skiff.compute('GET', `/v2.1/servers/${id}/os-instance-actions/${rescue.request_id}`, { token: admin })).json()
      .instanceAction
    assert.equal(detail.events[0].event, 'compute_rescue_instance')
    assert.equal(detail.events[0].result, 'Success')
    // A member sees no events at 2.1 (Nova's policy).
    const asMember = (await skiff.compute('GET', `/v2.1/servers/${id}/os-instance-actions/${rescue.request_id}`, { token: demo })).json()
      .instanceAction
    assert.equal(asMember.events, undefined)
  })

  test("a reader can look but not rescue: 403 with Nova's message", async () => {
    const id = await server()
    const db = skiff.store.db
    const project = await db.selectFrom('projects').select('id').where('name', '=', 'demo').executeTakeFirstOrThrow()
    const role = await db.selectFrom('roles').select('id').where('name', '=', 'reader').executeTakeFirstOrThrow()
    await db
      .insertInto('users')
      .values({
        id: 'reader0000',
        name: 'reader',
        domain_id: 'default',
        password_hash: await hashPassword('readerpw'),
        default_project_id: project.id,
        enabled: 1,
      })
      .execute()
    await db.insertInto('role_assignments').values({ user_id: 'reader0000', project_id: project.id, role_id: role.id }).execute()
    const tok = await skiff.apps.identity.inject({
      method: 'POST',
      url: '/v3/auth/tokens',
      payload: {
        auth: {
          identity: { methods: ['password'], password: { user: { id: 'reader0000', password: 'readerpw' } } },
          scope: { project: { id: project.id } },
        },
      },
    })
    const reader = String(tok.headers['x-subject-token'])
    assert.equal((await skiff.compute('GET', `/v2.1/servers/${id}`, { token: reader })).statusCode, 200)
    const res = await action(id, { rescue: null }, reader)
    assert.deepEqual(res.json(), { forbidden: { code: 403, message: "Policy doesn't allow os_compute_api:os-rescue to be performed." } })
  })
})

describe('beyond: the rescue resource, keys, auto-exit', () => {
  test('POST /servers/{id}/rescue with a public key; GET shows image, times, keys and access', async () => {
    const id = await server()
    const res = await skiff.compute('POST', `/v2.1/servers/${id}/rescue`, {
      token: demo,
      body: { rescue: { image_ref: rescueImage, public_key: PUBLIC_KEY, admin_pass: 'RescuePw1' } },
    })
    assert.equal(res.statusCode, 202, res.body)
    assert.equal(res.json().adminPass, 'RescuePw1')
    await waitForStatus(skiff, demo, id, 'RESCUE')
    const state = (await skiff.compute('GET', `/v2.1/servers/${id}/rescue`, { token: demo })).json().rescue
    assert.equal(state.status, 'rescued')
    assert.equal(state.image.id, rescueImage)
    assert.equal(state.image.name, 'skiff-rescue')
    assert.ok(state.rescued_at)
    assert.equal(state.expires_at, null)
    assert.equal(state.authorized_keys.length, 1)
    assert.equal(state.authorized_keys[0].type, 'ssh-ed25519')
    assert.match(state.access.ssh.host_key_fingerprint, /^SHA256:/)
    assert.deepEqual(skiff.driver.describe(id)!.authorizedKeys, [PUBLIC_KEY])
    assert.equal((await skiff.compute('DELETE', `/v2.1/servers/${id}/rescue`, { token: demo })).statusCode, 202)
    await waitForStatus(skiff, demo, id, 'ACTIVE')
    assert.equal((await skiff.compute('GET', `/v2.1/servers/${id}/rescue`, { token: demo })).statusCode, 404)
  })

  test('a keypair by name; bad keys and unknown keypairs are 400', async () => {
    const id = await server()
    const kp = await skiff.compute('POST', '/v2.1/os-keypairs', {
      token: demo,
      body: { keypair: { name: 'rescue-kp', public_key: PUBLIC_KEY } },
    })
    assert.equal(kp.statusCode, 200, kp.body)
    assert.equal(
      (await skiff.compute('POST', `/v2.1/servers/${id}/rescue`, { token: demo, body: { rescue: { key_name: 'nope' } } })).statusCode,
      400,
    )
    assert.equal(
      (await skiff.compute('POST', `/v2.1/servers/${id}/rescue`, { token: demo, body: { rescue: { public_key: 'ssh-rsa !!!' } } }))
        .statusCode,
      400,
    )
    assert.equal(
      (await skiff.compute('POST', `/v2.1/servers/${id}/rescue`, { token: demo, body: { rescue: { bogus: 1 } } })).statusCode,
      400,
    )
    assert.equal((await show(id))['OS-EXT-STS:task_state'], null, 'refused requests change nothing')
    const ok = await skiff.compute('POST', `/v2.1/servers/${id}/rescue`, { token: demo, body: { rescue: { key_name: 'rescue-kp' } } })
    assert.equal(ok.statusCode, 202)
    await waitForStatus(skiff, demo, id, 'RESCUE')
    assert.deepEqual(skiff.driver.describe(id)!.authorizedKeys, [PUBLIC_KEY])
  })

  test("the server's own key pair is authorized in its system and, as in Nova, in the rescue system", async () => {
    const kp = await skiff.compute('POST', '/v2.1/os-keypairs', {
      token: demo,
      body: { keypair: { name: 'own-kp', public_key: PUBLIC_KEY } },
    })
    assert.equal(kp.statusCode, 200, kp.body)
    const res = await skiff.compute('POST', '/v2.1/servers', {
      token: demo,
      body: { server: { name: 'k', imageRef: baseImage, flavorRef: '1', key_name: 'own-kp' } },
    })
    assert.equal(res.statusCode, 202, res.body)
    const id = res.json().server.id as string
    await waitForStatus(skiff, demo, id, 'ACTIVE')
    assert.deepEqual(skiff.driver.describe(id)!.authorizedKeys, [PUBLIC_KEY])
    // The key pair's deletion does not take the key from the server (Nova keeps key_data).
    assert.equal((await skiff.compute('DELETE', '/v2.1/os-keypairs/own-kp', { token: demo })).statusCode, 202)
    assert.equal((await action(id, { rescue: null })).statusCode, 200)
    await waitForStatus(skiff, demo, id, 'RESCUE')
    assert.deepEqual(skiff.driver.describe(id)!.authorizedKeys, [PUBLIC_KEY])
    const state = (await skiff.compute('GET', `/v2.1/servers/${id}/rescue`, { token: demo })).json().rescue
    assert.equal(state.authorized_keys.length, 1)
    assert.equal((await action(id, { unrescue: null })).statusCode, 202)
    await waitForStatus(skiff, demo, id, 'ACTIVE')
    assert.equal((await action(id, { rebuild: { imageRef: baseImage } })).statusCode, 202)
    await waitForStatus(skiff, demo, id, 'ACTIVE')
    assert.deepEqual(skiff.driver.describe(id)!.authorizedKeys, [PUBLIC_KEY], 'kept through rebuild')
  })

  test('auto-exit: a rescue with auto_unrescue_after ends by itself; PATCH changes it', async () => {
    const id = await server()
    await skiff.compute('POST', `/v2.1/servers/${id}/rescue`, { token: demo, body: { rescue: { auto_unrescue_after: 3600 } } })
    await waitForStatus(skiff, demo, id, 'RESCUE')
    const state = (await skiff.compute('GET', `/v2.1/servers/${id}/rescue`, { token: demo })).json().rescue
    assert.equal(state.auto_unrescue_after, 3600)
    assert.ok(Date.parse(state.expires_at) - Date.parse(state.rescued_at) >= 3599_000)
    const patched = await skiff.compute('PATCH', `/v2.1/servers/${id}/rescue`, {
      token: demo,
      body: { rescue: { auto_unrescue_after: null } },
    })
    assert.equal(patched.statusCode, 200)
    assert.equal(patched.json().rescue.expires_at, null)
    // A minute from now: not yet; a minute later the sweeper unrescues it through the normal path.
    await skiff.compute('PATCH', `/v2.1/servers/${id}/rescue`, { token: demo, body: { rescue: { auto_unrescue_after: 60 } } })
    await skiff.clock.advance(30_000)
    const waiting = (await skiff.compute('GET', `/v2.1/servers/${id}`, { token: demo })).json().server
    assert.deepEqual([waiting.status, waiting['OS-EXT-STS:task_state']], ['RESCUE', null], 'not unrescued before its time')
    await skiff.clock.advance(30_000)
    await waitForStatus(skiff, demo, id, 'ACTIVE')
    const actions = (await skiff.compute('GET', `/v2.1/servers/${id}/os-instance-actions`, { token: demo })).json().instanceActions
    assert.equal(actions[0].action, 'unrescue')
    assert.equal(actions[0].user_id, 'skiff-rescue-timeout')
  })
})

describe('beyond: safe failure and fault injection', () => {
  test('a fault rule that would change nothing is refused', async () => {
    const res = await skiff.compute('POST', '/v2.1/os-simulator/faults', { token: admin, body: { fault: { operation: 'unrescue.boot' } } })
    assert.equal(res.statusCode, 400)
    assert.deepEqual(res.json(), {
      badRequest: { code: 400, message: 'A fault must fail (error), delay (delay_ms) or hang (hang) its operation.' },
    })
    assert.deepEqual((await skiff.compute('GET', '/v2.1/os-simulator/faults', { token: admin })).json().faults, [])
  })

  test('a failure booting the rescue system puts the server back on its own disk, running, with the fault recorded', async () => {
    const id = await server('Orig1nalPass')
    const inject = await skiff.compute('POST', '/v2.1/os-simulator/faults', {
      token: admin,
      body: { fault: { operation: 'rescue.boot', server_id: id, error: 'rescue disk unreadable', count: 1 } },
    })
    assert.equal(inject.statusCode, 201, inject.body)
    assert.equal((await action(id, { rescue: null })).statusCode, 200)
    const back = await waitForStatus(skiff, demo, id, 'ACTIVE')
    assert.equal(back['OS-EXT-STS:power_state'], 1)
    assert.equal(skiff.driver.canLogin(id, 'Orig1nalPass'), true)
    const actions = (await skiff.compute('GET', `/v2.1/servers/${id}/os-instance-actions`, { token: admin })).json().instanceActions
    const rescue = actions.find((a: { action: string }) => a.action === 'rescue')
    assert.equal(rescue.message, 'Error')
    const detail = (await skiff.compute('GET', `/v2.1/servers/${id}/os-instance-actions/${rescue.request_id}`, { token: admin })).json()
      .instanceAction
    assert.equal(detail.events[0].result, 'Error')
    assert.match(detail.events[0].traceback, /rescue disk unreadable/)
    // The rule was for one call: the next rescue works.
    assert.equal((await action(id, { rescue: null })).statusCode, 200)
    await waitForStatus(skiff, demo, id, 'RESCUE')
  })

  test('from SHUTOFF a failed rescue leaves it SHUTOFF; ERROR only when even the restore fails', async () => {
    const id = await server()
    await action(id, { 'os-stop': null })
    await waitForStatus(skiff, demo, id, 'SHUTOFF')
    await skiff.compute('POST', '/v2.1/os-simulator/faults', {
      token: admin,
      body: { fault: { operation: 'rescue.power_off', server_id: id, error: 'boom', count: 1 } },
    })
    await action(id, { rescue: null })
    const off = await waitForStatus(skiff, demo, id, 'SHUTOFF')
    assert.equal(off['OS-EXT-STS:power_state'], 4)

    await skiff.compute('POST', '/v2.1/os-simulator/faults', {
      token: admin,
      body: { fault: { operation: 'rescue', server_id: id, error: 'boom', count: 2 } },
    })
    await skiff.compute('POST', '/v2.1/os-simulator/faults', {
      token: admin,
      body: { fault: { operation: 'restore', server_id: id, error: 'still boom', count: 1 } },
    })
    await action(id, { rescue: null })
    const broken = await waitForStatus(skiff, demo, id, 'ERROR')
    assert.equal(broken['OS-EXT-STS:vm_state'], 'error')
    // From ERROR a rescue is allowed again, and it works now.
    await skiff.compute('DELETE', '/v2.1/os-simulator/faults', { token: admin })
    assert.equal((await action(id, { rescue: null })).statusCode, 200)
    await waitForStatus(skiff, demo, id, 'RESCUE')
  })

  test('the fault API is admin only and validated', async () => {
    assert.equal((await skiff.compute('GET', '/v2.1/os-simulator/faults', { token: demo })).statusCode, 403)
    const bad = await skiff.compute('POST', '/v2.1/os-simulator/faults', { token: admin, body: { fault: { operation: 'explode' } } })
    assert.equal(bad.statusCode, 400)
    const made = await skiff.compute('POST', '/v2.1/os-simulator/faults', {
      token: admin,
      body: { fault: { operation: 'unrescue.boot', delay_ms: 5 } },
    })
    const listed = (await skiff.compute('GET', '/v2.1/os-simulator/faults', { token: admin })).json().faults
    assert.ok(listed.some((f: { id: string }) => f.id === made.json().fault.id))
    assert.equal((await skiff.compute('DELETE', `/v2.1/os-simulator/faults/${made.json().fault.id}`, { token: admin })).statusCode, 204)
    assert.equal((await skiff.compute('DELETE', `/v2.1/os-simulator/faults/${made.json().fault.id}`, { token: admin })).statusCode, 404)
  })
})

describe('a dead host', () => {
  test('actions on its servers answer 503 and change nothing; delete still works', async () => {
    const dead = await startTestSkiff({ hostDownAfterSeconds: 30 })
    try {
      const token = await dead.token('demo')
      const images = await dead.apps.image.inject({ method: 'GET', url: '/v2/images?name=skiff-base', headers: { 'x-auth-token': token } })
      const res = await dead.compute('POST', '/v2.1/servers', {
        token,
        body: { server: { name: 'd', imageRef: images.json().images[0].id, flavorRef: '1' } },
      })
      const id = res.json().server.id
      await waitForStatus(dead, token, id, 'ACTIVE')
      const up = (await dead.compute('GET', '/v2.1/os-services', { token: await dead.token('admin') })).json().services
      assert.equal(up[0].state, 'up')
      await dead.agent!.stop()
      // Time passes (a heartbeat already on its way when the agent stopped may land: more time passes).
      await waitFor(
        'the host to be down',
        async () => {
          await dead.clock.advance(31_000)
          const host = await dead.store.db
            .selectFrom('hosts')
            .select('heartbeat_at')
            .where('name', '=', 'skiff-1')
            .executeTakeFirstOrThrow()
          return dead.clock.now().getTime() - Date.parse(host.heartbeat_at) > 30_000
        },
        5000,
        50,
      )
      // Admins see the host down in os-services (`openstack compute service list`); others may not look.
      const admin = await dead.token('admin')
      const services = (await dead.compute('GET', '/v2.1/os-services', { token: admin })).json().services
      assert.deepEqual(
        services.map((x: Record<string, unknown>) => [x.binary, x.host, x.status, x.state]),
        [['nova-compute', 'skiff-1', 'enabled', 'down']],
      )
      assert.equal((await dead.compute('GET', '/v2.1/os-services', { token })).statusCode, 403)
      const r = await dead.compute('POST', `/v2.1/servers/${id}/action`, { token, body: { rescue: null } })
      assert.deepEqual(r.json(), { serviceUnavailable: { code: 503, message: 'Compute service of skiff-1 is unavailable at this time.' } })
      // Console output is asked of the host's agent: none answers, 503 at once.
      const c = await dead.compute('POST', `/v2.1/servers/${id}/action`, { token, body: { 'os-getConsoleOutput': {} } })
      assert.deepEqual(
        [c.statusCode, c.json()],
        [503, { serviceUnavailable: { code: 503, message: 'Compute service of skiff-1 is unavailable at this time.' } }],
      )
      const s = (await dead.compute('GET', `/v2.1/servers/${id}`, { token })).json().server
      assert.equal(s.status, 'ACTIVE')
      assert.equal(s['OS-EXT-STS:task_state'], null)
      // A new server finds no valid host: ERROR with Nova's fault.
      const create = await dead.compute('POST', '/v2.1/servers', {
        token,
        body: { server: { name: 'e', imageRef: images.json().images[0].id, flavorRef: '1' } },
      })
      const err = (await dead.compute('GET', `/v2.1/servers/${create.json().server.id}`, { token })).json().server
      assert.equal(err.status, 'ERROR')
      assert.match(err.fault.message, /No valid host was found/)
      assert.equal((await dead.compute('DELETE', `/v2.1/servers/${id}`, { token })).statusCode, 204)
      assert.equal((await dead.compute('GET', `/v2.1/servers/${id}`, { token })).statusCode, 404)
    } finally {
      await dead.close()
    }
  })
})
