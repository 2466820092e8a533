// Rescue, the feature Skiff exists for, through the real clients against a real `skiff serve`:
// `openstack server rescue/unrescue`, `nova rescue/unrescue`, and openstacksdk's
// rescue_server/unrescue_server/wait_for_server plus the raw action body. Each refused request
// must leave the server as it was. The CLI and sdk suites run side by side, each on its own server.
import assert from 'node:assert/strict'
import { randomBytes, randomUUID } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import { clientGate, Clients } from './helpers/clients.ts'
import { describeRun, failed, ok } from './helpers/process.ts'
import { runSdkChecks, type SdkResults } from './helpers/sdk.ts'
import { startSkiffProcess, type SkiffProcess } from './helpers/skiff-process.ts'

const gate = await clientGate(['openstack', 'nova', 'openstacksdk'])
const tag = `${process.pid}-${randomBytes(3).toString('hex')}`
const T = { timeout: 120_000 }

let skiff: SkiffProcess
let cli: Clients

const noServer = (ref: string) => new RegExp(`No server with a name or ID of '${ref}' exists`)
const conflict = (action: string, id: string, vmState: string) =>
  new RegExp(`Cannot '${action}' instance ${id} while it is in vm_state ${vmState} \\(HTTP 409\\)`)

describe('rescue with the real clients against skiff serve', { ...gate, concurrency: true }, () => {
  before(async () => {
    skiff = await startSkiffProcess({ simulatedDelayMs: 20 })
    cli = new Clients(skiff)
  })
  after(async () => {
    await skiff?.stop()
  })

  describe('openstack and nova CLIs', { concurrency: false }, () => {
    const name = `e2e-rescue-cli-${tag}`
    const password = `Rescue-Pw-${randomBytes(6).toString('hex')}`
    const novaPassword = `Nova-Pw-${randomBytes(6).toString('hex')}`
    const nosuch = randomUUID()
    let id = ''
    let baseImage = ''

    const status = async () => (await cli.showServer('demo', id)).status

    test('server create --wait: an ACTIVE server to rescue', T, async () => {
      const s = await cli.createServer('demo', name)
      assert.equal(s.status, 'ACTIVE')
      id = s.id
      baseImage = String(s.image)
    })

    test('server rescue: RESCUE, vm_state rescued, still showing its own image', T, async () => {
      const r = ok(await cli.openstack('demo', ['server', 'rescue', id]))
      assert.equal(r.stderr.trim(), '', describeRun(r))
      const s = await cli.waitForStatus('demo', id, 'RESCUE')
      assert.equal(s['OS-EXT-STS:vm_state'], 'rescued')
      assert.equal(s.image, baseImage)
      assert.equal(s.name, name)
    })

    test('server unrescue: ACTIVE', T, async () => {
      ok(await cli.openstack('demo', ['server', 'unrescue', id]))
      const s = await cli.waitForStatus('demo', id, 'ACTIVE')
      assert.equal(s['OS-EXT-STS:vm_state'], 'active')
    })

    test('server rescue --image skiff-rescue --password P: RESCUE, the console shows the rescue image booted', T, async () => {
      ok(await cli.openstack('demo', ['server', 'rescue', '--image', 'skiff-rescue', '--password', password, id]))
      await cli.waitForStatus('demo', id, 'RESCUE')
      const log = ok(await cli.openstack('demo', ['console', 'log', 'show', id])).stdout
      assert.match(log, /skiff-rescue/, log)
    })

    test('server unrescue (after the rescue image): ACTIVE', T, async () => {
      ok(await cli.openstack('demo', ['server', 'unrescue', id]))
      await cli.waitForStatus('demo', id, 'ACTIVE')
    })

    test('nova rescue --password P --image skiff-rescue: prints adminPass P; RESCUE (nova show too)', T, async () => {
      const r = ok(await cli.nova('demo', ['rescue', '--password', novaPassword, '--image', 'skiff-rescue', id]))
      assert.match(r.stdout, new RegExp(`^\\|\\s*adminPass\\s*\\|\\s*${novaPassword}\\s*\\|`, 'm'), describeRun(r))
      await cli.waitForStatus('demo', id, 'RESCUE')
      const show = ok(await cli.nova('demo', ['show', id]))
      assert.match(show.stdout, /^\|\s*status\s*\|\s*RESCUE\s*\|/m, show.stdout)
    })

    test('nova rescue while RESCUE: 409, stays RESCUE', T, async () => {
      const r = failed(await cli.nova('demo', ['rescue', id]))
      assert.match(r.stderr, conflict('rescue', id, 'rescued'), describeRun(r))
      assert.equal(await status(), 'RESCUE')
    })

    test('nova unrescue: ACTIVE', T, async () => {
      ok(await cli.nova('demo', ['unrescue', id]))
      await cli.waitForStatus('demo', id, 'ACTIVE')
    })

    test('nova unrescue while ACTIVE: 409, stays ACTIVE', T, async () => {
      const r = failed(await cli.nova('demo', ['unrescue', id]))
      assert.match(r.stderr, conflict('unrescue', id, 'active'), describeRun(r))
      assert.equal(await status(), 'ACTIVE')
    })

    test('nova rescue with no options: prints a generated adminPass; RESCUE; nova unrescue: ACTIVE', T, async () => {
      const r = ok(await cli.nova('demo', ['rescue', id]))
      const pass = /^\|\s*adminPass\s*\|\s*(\S+)\s*\|/m.exec(r.stdout)?.[1]
      assert.ok(pass && pass.length >= 8 && pass !== novaPassword, describeRun(r))
      await cli.waitForStatus('demo', id, 'RESCUE')
      ok(await cli.nova('demo', ['unrescue', id]))
      await cli.waitForStatus('demo', id, 'ACTIVE')
    })

    test('server rescue twice: the second is refused (409) and the server stays RESCUE', T, async () => {
      ok(await cli.openstack('demo', ['server', 'rescue', id]))
      await cli.waitForStatus('demo', id, 'RESCUE')
      const r = failed(await cli.openstack('demo', ['server', 'rescue', id]))
      assert.match(r.stderr, conflict('rescue', id, 'rescued'), describeRun(r))
      const s = await cli.showServer('demo', id)
      assert.equal(s.status, 'RESCUE')
      assert.equal(s['OS-EXT-STS:task_state'], null)
    })

    test('server unrescue of an ACTIVE server: refused (409), stays ACTIVE', T, async () => {
      ok(await cli.openstack('demo', ['server', 'unrescue', id]))
      await cli.waitForStatus('demo', id, 'ACTIVE')
      const r = failed(await cli.openstack('demo', ['server', 'unrescue', id]))
      assert.match(r.stderr, conflict('unrescue', id, 'active'), describeRun(r))
      const s = await cli.showServer('demo', id)
      assert.equal(s.status, 'ACTIVE')
      assert.equal(s['OS-EXT-STS:task_state'], null)
    })

    test('rescue and unrescue of a nonexistent server: "No server with a name or ID"', T, async () => {
      for (const args of [
        ['server', 'rescue', nosuch],
        ['server', 'unrescue', nosuch],
      ]) {
        const r = failed(await cli.openstack('demo', args))
        assert.match(r.stderr, noServer(nosuch), describeRun(r))
      }
      const r = failed(await cli.nova('demo', ['rescue', nosuch]))
      assert.match(r.stderr, noServer(nosuch), describeRun(r))
    })

    test('another project (alt) cannot rescue the server: "No server with a name or ID"', T, async () => {
      const r = failed(await cli.openstack('alt', ['server', 'rescue', id]))
      assert.match(r.stderr, noServer(id), describeRun(r))
      const n = failed(await cli.nova('alt', ['rescue', id]))
      assert.match(n.stderr, noServer(id), describeRun(n))
      assert.equal(await status(), 'ACTIVE')
    })

    test('nova rescue --image with an unknown image: an error, and the server stays ACTIVE', T, async () => {
      const r = failed(await cli.nova('demo', ['rescue', '--image', nosuch, id]))
      assert.match(r.stderr, new RegExp(`No image found with ID ${nosuch}|${nosuch}`), describeRun(r))
      const s = await cli.showServer('demo', id)
      assert.equal(s.status, 'ACTIVE')
      assert.equal(s['OS-EXT-STS:task_state'], null)
    })

    test('server delete --wait: gone', T, async () => {
      ok(await cli.openstack('demo', ['server', 'delete', '--wait', id]))
      const r = failed(await cli.openstack('demo', ['server', 'show', id]))
      assert.match(r.stderr, noServer(id), describeRun(r))
    })
  })

  describe('openstacksdk', { concurrency: false }, () => {
    const name = `e2e-rescue-sdk-${tag}`
    const password = `Sdk-Pw-${randomBytes(6).toString('hex')}`
    let sdk: SdkResults

    interface Server {
      id: string
      status: string
      vm_state: string | null
      task_state: string | null
      image_id: string
    }
    const settled = (check: string, status: string, vmState: string) => {
      const s = sdk.value<Server>(check)
      assert.deepEqual(
        { status: s.status, vm_state: s.vm_state, task_state: s.task_state },
        { status, vm_state: vmState, task_state: null },
      )
      return s
    }
    const conflictError = (check: string, action: string, vmState: string) => {
      const e = sdk.error(check)
      assert.equal(e.status, 409)
      assert.ok(e.classes.includes('ConflictException'), e.classes.join(','))
      const id = sdk.value<Server>('create_server').id
      assert.match(e.message, new RegExp(`Cannot '${action}' instance ${id} while it is in vm_state ${vmState}`))
    }
    const notFoundError = (check: string) => {
      const e = sdk.error(check)
      assert.equal(e.status, 404)
      assert.ok(e.classes.includes('NotFoundException'), e.classes.join(','))
    }

    before(async () => {
      sdk = await runSdkChecks(skiff, 'rescue', ['--name', name, '--password', password])
    }, T)

    test('create_server and wait_for_server: ACTIVE', () => {
      settled('wait_for_server ACTIVE', 'ACTIVE', 'active')
    })

    test('compute.rescue_server, wait_for_server: RESCUE, still on its own image', () => {
      sdk.value('rescue_server (default image)')
      const s = settled('wait_for_server RESCUE', 'RESCUE', 'rescued')
      assert.equal(s.image_id, sdk.value<{ base: string }>('images').base)
    })

    test('compute.unrescue_server, wait_for_server: ACTIVE', () => {
      sdk.value('unrescue_server')
      settled('wait_for_server ACTIVE after unrescue', 'ACTIVE', 'active')
    })

    test('rescue_server(admin_pass=P, image_ref=skiff-rescue): RESCUE; unrescue: ACTIVE', () => {
      sdk.value('rescue_server (admin_pass, image_ref)')
      settled('wait_for_server RESCUE (rescue image)', 'RESCUE', 'rescued')
      sdk.value('unrescue_server (after rescue image)')
      settled('wait_for_server ACTIVE after second unrescue', 'ACTIVE', 'active')
    })

    test('raw POST {"rescue": {"adminPass": P}}: 200 {"adminPass": P}, then RESCUE', () => {
      const r = sdk.value<{ status: number; body: unknown }>('raw rescue {adminPass}')
      assert.equal(r.status, 200)
      assert.deepEqual(r.body, { adminPass: password })
      settled('wait_for_server RESCUE (raw)', 'RESCUE', 'rescued')
    })

    test('rescue_server while RESCUE: ConflictException (409), stays RESCUE', () => {
      conflictError('rescue_server while RESCUE', 'rescue', 'rescued')
      settled('get_server after refused rescue', 'RESCUE', 'rescued')
    })

    test('another project (alt): rescue_server and unrescue_server are NotFound (404)', () => {
      notFoundError('alt: rescue_server')
      notFoundError('alt: unrescue_server')
    })

    test('unrescue_server while ACTIVE: ConflictException (409), stays ACTIVE', () => {
      sdk.value('unrescue_server (raw rescue)')
      settled('wait_for_server ACTIVE (raw)', 'ACTIVE', 'active')
      conflictError('unrescue_server while ACTIVE', 'unrescue', 'active')
      settled('get_server after refused unrescue', 'ACTIVE', 'active')
    })

    test('unknown rescue_image_ref: 400 "Requested rescue image \'<id>\' is not supported", stays ACTIVE', () => {
      const nosuch = sdk.value<string>('nosuch')
      const r = sdk.value<{ status: number; body: unknown }>('raw rescue with unknown rescue_image_ref')
      assert.equal(r.status, 400)
      assert.deepEqual(r.body, { badRequest: { code: 400, message: `Requested rescue image '${nosuch}' is not supported` } })
      settled('get_server after refused bad-image rescue', 'ACTIVE', 'active')
    })

    test('rescue_server and unrescue_server of a nonexistent server: NotFoundException (404)', () => {
      notFoundError('rescue_server nonexistent')
      notFoundError('unrescue_server nonexistent')
    })

    test('two rescues back to back (a double click): one 200, the other 409; the server ends RESCUE', () => {
      const id = sdk.value<Server>('create_server').id
      const [first, second] = sdk.value<{ status: number; body: any }[]>('raw rescue, twice back to back')
      assert.equal(first?.status, 200)
      assert.match(String(first?.body?.adminPass), /^\S{8,}$/)
      assert.equal(second?.status, 409)
      // Still rescuing, or already rescued: either way Nova's words.
      assert.match(
        String(second?.body?.conflictingRequest?.message),
        new RegExp(`^Cannot 'rescue' instance ${id} while it is in (task_state rescuing|vm_state rescued)$`),
      )
      settled('wait_for_server RESCUE (double click)', 'RESCUE', 'rescued')
    })

    test('reboot HARD of a RESCUE server: 409 (as tempest expects)', () => {
      const id = sdk.value<Server>('create_server').id
      const r = sdk.value<{ status: number; body: unknown }>('raw reboot HARD while RESCUE')
      assert.equal(r.status, 409)
      assert.deepEqual(r.body, {
        conflictingRequest: { code: 409, message: `Cannot 'reboot' instance ${id} while it is in vm_state rescued` },
      })
      sdk.value('unrescue_server (double click)')
      settled('wait_for_server ACTIVE (double click)', 'ACTIVE', 'active')
    })

    test("a locked server: the owner's rescue and unrescue are refused (409 locked), an admin's are not", () => {
      const id = sdk.value<Server>('create_server').id
      sdk.value('lock_server')
      for (const check of ['rescue_server while locked', 'unrescue_server while locked']) {
        const e = sdk.error(check)
        assert.equal(e.status, 409)
        assert.match(e.message, new RegExp(`Instance ${id} is locked`))
      }
      settled('get_server after refused locked rescue', 'ACTIVE', 'active')
      sdk.value('admin: rescue_server while locked')
      settled('wait_for_server RESCUE (admin, locked)', 'RESCUE', 'rescued')
      sdk.value('admin: unrescue_server while locked')
      settled('wait_for_server ACTIVE (admin, locked)', 'ACTIVE', 'active')
      sdk.value('unlock_server')
    })

    test('a PAUSED server: rescue refused (409 vm_state paused), stays PAUSED', () => {
      sdk.value('pause_server')
      settled('wait_for_server PAUSED', 'PAUSED', 'paused')
      conflictError('rescue_server while PAUSED', 'rescue', 'paused')
      settled('get_server after refused paused rescue', 'PAUSED', 'paused')
      sdk.value('unpause_server')
      settled('wait_for_server ACTIVE (unpaused)', 'ACTIVE', 'active')
    })

    test('a SHUTOFF server: rescue gives RESCUE, unrescue ends ACTIVE (as Nova)', () => {
      sdk.value('stop_server')
      settled('wait_for_server SHUTOFF', 'SHUTOFF', 'stopped')
      sdk.value('rescue_server while SHUTOFF')
      settled('wait_for_server RESCUE (from SHUTOFF)', 'RESCUE', 'rescued')
      sdk.value('unrescue_server (stopped before)')
      settled('wait_for_server ACTIVE (stopped before)', 'ACTIVE', 'active')
    })

    test('delete_server and wait_for_delete', () => {
      sdk.value('delete_server')
      assert.equal(sdk.value('wait_for_delete'), sdk.value<Server>('create_server').id)
    })
  })
})
