// The serial console through Debian's `openstack` CLI against a real `skiff serve` (simulated
// driver): `openstack console url show --serial` answers the serial proxy's ws:// URL (printed at
// start), and a WebSocket to it reaches the server's (simulated) console.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import { connectWebSocket } from '../../src/console/websocket.ts'
import { clientGate, Clients } from './helpers/clients.ts'
import { startSkiffProcess, type SkiffProcess } from './helpers/skiff-process.ts'

const gate = await clientGate(['openstack'])
const tag = `${process.pid}-${randomBytes(3).toString('hex')}`
const T = { timeout: 120_000 }

let skiff: SkiffProcess
let cli: Clients

describe('openstack console url show --serial', { ...gate, concurrency: false }, () => {
  let id = ''
  before(async () => {
    skiff = await startSkiffProcess({ simulatedDelayMs: 20 })
    cli = new Clients(skiff)
    const s = await cli.createServer('demo', `serial-${tag}`)
    id = s.id
  })
  after(async () => {
    await skiff?.stop()
  })

  test('the URL is the serial proxy printed at start, with a token; its WebSocket reaches the console', T, async () => {
    assert.ok(skiff.urls.serial, 'the serial proxy URL is printed at start')
    const c = await cli.openstackJson<{ type: string; url: string; protocol?: string }>('demo', ['console', 'url', 'show', '--serial', id])
    assert.equal(c.type, 'serial')
    assert.ok(c.url.startsWith(`${skiff.urls.serial}/?token=`), c.url)

    const ws = await connectWebSocket(c.url, { protocols: ['binary', 'base64'] })
    let out = ''
    ws.onMessage = (data) => (out += data.toString('utf8'))
    const deadline = Date.now() + 10_000
    while (!out.includes('simulated login: ')) {
      if (Date.now() > deadline) throw new Error(`no console greeting: ${JSON.stringify(out)}`)
      await new Promise((r) => setTimeout(r, 50))
    }
    assert.match(out, new RegExp(`serial console of server ${id}`))
    ws.send('hello\r')
    while (!out.includes('hello\r\n')) {
      if (Date.now() > deadline) throw new Error(`no echo: ${JSON.stringify(out)}`)
      await new Promise((r) => setTimeout(r, 50))
    }
    ws.close()
  })

  test('another project cannot have a URL for it', T, async () => {
    const r = await cli.openstack('alt', ['console', 'url', 'show', '--serial', id])
    assert.notEqual(r.code, 0)
  })
})
