// The serial console of a real VM: `skiff serve --driver qemu`, a server created with the
// `openstack` CLI, `openstack console url show --serial`, and a WebSocket to that URL reaching
// the guest's getty on ttyS0: a login prompt, then a root login with the create password.
// Skipped where QEMU and the guest packages are absent, except in CI (.ci/run installs them).
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { connectWebSocket } from '../../src/console/websocket.ts'
import { guestSkipReason } from '../helpers/qemu.ts'
import { clientGate, Clients } from './helpers/clients.ts'
import { startQemuSkiff, type QemuSkiff } from './helpers/qemu-skiff.ts'

const skip = guestSkipReason() || (await clientGate(['openstack'])).skip
const BOOT_MS = 240_000

describe('qemu driver: the serial console through the proxy', { skip, timeout: 10 * 60_000 }, () => {
  let vm: QemuSkiff
  let cli: Clients

  before(async () => {
    vm = await startQemuSkiff({ sshPorts: '23300-23349' })
    cli = new Clients(vm.skiff)
  })

  after(() => vm?.stop())

  test('openstack console url show --serial: its WebSocket reaches a login prompt, and root logs in', async () => {
    const created = await cli.openstackJson<{ id: string; adminPass: string; status: string }>(
      'demo',
      ['server', 'create', '--image', 'skiff-base', '--flavor', 'm1.tiny', '--wait', 'serial vm'],
      { timeoutMs: BOOT_MS },
    )
    assert.equal(created.status, 'ACTIVE')
    const c = await cli.openstackJson<{ type: string; url: string }>('demo', ['console', 'url', 'show', '--serial', created.id])
    assert.equal(c.type, 'serial')

    const t0 = Date.now()
    const ws = await connectWebSocket(c.url, { protocols: ['binary'] })
    let out = ''
    ws.onMessage = (data) => (out += data.toString('utf8'))
    const until = async (re: RegExp, what: string, ms: number) => {
      const deadline = Date.now() + ms
      while (!re.test(out)) {
        if (Date.now() > deadline) throw new Error(`no ${what} on the serial console: ${JSON.stringify(out.slice(-500))}`)
        await new Promise((r) => setTimeout(r, 100))
      }
    }
    // getty prints its prompt again for an empty line.
    ws.send('\r')
    await until(/login: *$/, 'login prompt', 60_000)
    console.log(`# login prompt ${Date.now() - t0} ms after connecting`)
    out = ''
    ws.send('root\r')
    await until(/Password: *$/, 'password prompt', 60_000)
    ws.send(`${created.adminPass}\r`)
    await until(/ # /, 'shell prompt', 60_000)
    out = ''
    ws.send('echo serial-$((6*7))\r')
    await until(/serial-42/, 'command output', 60_000)
    ws.close()
  })
})
