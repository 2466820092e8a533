// The serial console: Nova's remote-consoles (2.6+) and os-getSerialConsole (below 2.6) answer a
// ws:// URL with a short-lived token; the serial proxy checks it and joins the console (here the
// simulated driver's: it says so, shows the console log and echoes).
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { connectWebSocket, type WebSocketConnection } from '../../src/console/websocket.ts'
import { activeServer, startTestSkiff, waitFor, type TestSkiff } from '../helpers/skiff.ts'

let skiff: TestSkiff
let demo: string
let alt: string
let reader: string
let id: string

const at = (v: string) => ({ 'openstack-api-version': `compute ${v}` })
const call = (method: string, url: string, v: string, token: string, body?: unknown) =>
  skiff.compute(method, url, { token, headers: at(v), ...(body !== undefined ? { body } : {}) })
const fault = (res: { statusCode: number; json: () => unknown }, status: number, message: string) => {
  assert.equal(res.statusCode, status, JSON.stringify(res.json()))
  const name = { 400: 'badRequest', 403: 'forbidden', 404: 'itemNotFound', 409: 'conflictingRequest' }[status]!
  assert.deepEqual(res.json(), { [name]: { code: status, message } })
}
const SERIAL = { remote_console: { protocol: 'serial', type: 'serial' } }

before(async () => {
  skiff = await startTestSkiff({}, { serialProxy: true })
  demo = await skiff.token('demo')
  alt = await skiff.token('alt_demo')
  reader = await skiff.token('reader_demo')
  id = await activeServer(skiff, demo, 'serial')
})
after(() => skiff.close())

/** Everything the console sends until `text` appears (or the deadline). */
async function readUntil(text: string, got: { out: string }) {
  await waitFor(`console output with ${JSON.stringify(text)}`, async () => got.out.includes(text), 5000)
}
function collect(ws: WebSocketConnection) {
  const got = { out: '' }
  ws.onMessage = (data) => (got.out += data.toString('utf8'))
  return got
}

test('2.6: POST remote-consoles with protocol serial answers a ws:// URL with a token', async () => {
  const res = await call('POST', `/v2.1/servers/${id}/remote-consoles`, '2.6', demo, SERIAL)
  assert.equal(res.statusCode, 200)
  const rc = res.json().remote_console
  assert.equal(rc.protocol, 'serial')
  assert.equal(rc.type, 'serial')
  assert.match(rc.url, /^ws:\/\/127\.0\.0\.1:\d+\/\?token=[A-Za-z0-9_-]{20,}$/)
  assert.deepEqual(Object.keys(rc).sort(), ['protocol', 'type', 'url'])
  // Only the token's hash is stored.
  const token = new URL(rc.url).searchParams.get('token')!
  const rows = await skiff.store.db.selectFrom('console_auth_tokens').selectAll().execute()
  assert.ok(rows.length >= 1)
  assert.ok(rows.every((r) => r.token_hash !== token && r.server_id === id))
})

test('2.1: os-getSerialConsole answers {"console": {"type", "url"}}; 2.6 and later: 404', async () => {
  const res = await call('POST', `/v2.1/servers/${id}/action`, '2.1', demo, { 'os-getSerialConsole': { type: 'serial' } })
  assert.equal(res.statusCode, 200)
  assert.deepEqual(Object.keys(res.json().console).sort(), ['type', 'url'])
  assert.equal(res.json().console.type, 'serial')
  assert.match(res.json().console.url, /^ws:\/\/127\.0\.0\.1:\d+\/\?token=/)
  fault(
    await call('POST', `/v2.1/servers/${id}/action`, '2.6', demo, { 'os-getSerialConsole': { type: 'serial' } }),
    404,
    'The resource could not be found.',
  )
})

test("bad input: Nova's 400s; other users: 404 or 403; other protocols stay unavailable", async () => {
  fault(
    await call('POST', `/v2.1/servers/${id}/action`, '2.1', demo, { 'os-getSerialConsole': { type: 'novnc' } }),
    400,
    "Invalid input for field/attribute type. Value: novnc. 'novnc' is not one of ['serial']",
  )
  fault(
    await call('POST', `/v2.1/servers/${id}/remote-consoles`, '2.6', demo, { remote_console: { protocol: 'serial', type: 'novnc' } }),
    400,
    'Invalid console type novnc',
  )
  const missing = await call('POST', `/v2.1/servers/${id}/remote-consoles`, '2.6', demo, { remote_console: { protocol: 'serial' } })
  assert.equal(missing.statusCode, 400)
  const notObject = await call('POST', `/v2.1/servers/${id}/remote-consoles`, '2.6', demo, { remote_console: 'serial' })
  assert.equal(notObject.statusCode, 400)
  fault(
    await call('POST', `/v2.1/servers/${id}/remote-consoles`, '2.6', demo, { remote_console: { protocol: 'vnc', type: 'novnc' } }),
    400,
    'Unavailable console type novnc.',
  )
  fault(await call('POST', `/v2.1/servers/${id}/remote-consoles`, '2.6', alt, SERIAL), 404, `Instance ${id} could not be found.`)
  fault(
    await call('POST', `/v2.1/servers/${id}/remote-consoles`, '2.6', reader, SERIAL),
    403,
    "Policy doesn't allow os_compute_api:os-remote-consoles to be performed.",
  )
})

test('the proxy: the simulated console says so, shows the console log and echoes; a bad token is refused', async () => {
  const url = (await call('POST', `/v2.1/servers/${id}/remote-consoles`, '2.6', demo, SERIAL)).json().remote_console.url as string
  const ws = await connectWebSocket(url, { protocols: ['binary'] })
  const got = collect(ws)
  await readUntil('simulated login: ', got)
  assert.match(got.out, new RegExp(`serial console of server ${id}`))
  assert.match(got.out, /this console is simulated/)
  const log = (await skiff.driver.consoleOutput(id)).split('\n')[0]!
  assert.ok(got.out.includes(log), `the console log (${log}) is shown`)
  ws.send('root\r')
  await readUntil('root\r\n', got)
  ws.close()

  // The same token opens it again while it is valid (as Nova's); a wrong one is refused.
  const again = await connectWebSocket(url)
  again.close()
  await assert.rejects(connectWebSocket(url.replace(/token=.*/, 'token=nope')), { status: 401 })
  await assert.rejects(connectWebSocket(url.replace(/\?token=.*/, '')), { status: 401 })
  // Expired after ten minutes.
  await skiff.clock.advance(601_000)
  await assert.rejects(connectWebSocket(url), { status: 401 })
})

test('the proxy: a deleted server ends its tokens', async () => {
  const gone = await activeServer(skiff, demo, 'gone')
  const url = (await call('POST', `/v2.1/servers/${gone}/remote-consoles`, '2.6', demo, SERIAL)).json().remote_console.url as string
  assert.equal((await call('DELETE', `/v2.1/servers/${gone}`, '2.6', demo)).statusCode, 204)
  await waitFor('deleted', async () => (await call('GET', `/v2.1/servers/${gone}`, '2.6', demo)).statusCode === 404)
  await assert.rejects(connectWebSocket(url), { status: 401 })
})
