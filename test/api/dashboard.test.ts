// The web dashboard in process (inject, no browser): log in and out with Keystone, sealed
// session cookies, CSRF on every POST, what each user may see and do (the API's policy, through
// the API), rescue from the dialog, and sessions across two API processes on one PostgreSQL.
// The browser itself: test/e2e/dashboard.test.ts.
import assert from 'node:assert/strict'
import type { AddressInfo } from 'node:net'
import { after, before, describe, test } from 'node:test'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { connectWebSocket } from '../../src/console/websocket.ts'
import { freshDatabase, testPostgresUrl, type TestDatabase } from '../helpers/database.ts'
import { startTestSkiff, waitFor, waitForStatus, type TestSkiff } from '../helpers/skiff.ts'

/** A browser of one user: its cookies, and the CSRF token of the last page it read. */
class Browser {
  readonly cookies = new Map<string, string>()
  csrf = ''
  constructor(readonly app: FastifyInstance) {}

  async request(
    method: string,
    url: string,
    form?: Record<string, string>,
    headers: Record<string, string> = {},
  ): Promise<LightMyRequestResponse> {
    const res = await this.app.inject({
      method: method as 'GET',
      url,
      headers: {
        ...(this.cookies.size ? { cookie: [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ') } : {}),
        ...(form ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
        ...headers,
      },
      ...(form ? { payload: new URLSearchParams(form).toString() } : {}),
    })
    for (const c of res.cookies as { name: string; value: string; maxAge?: number }[]) {
      if (c.maxAge === 0 || c.value === '') this.cookies.delete(c.name)
      else this.cookies.set(c.name, encodeURIComponent(c.value))
    }
    const m = /name="_csrf" value="([^"]+)"/.exec(res.body) ?? /<meta name="csrf-token" content="([^"]+)"/.exec(res.body)
    if (m) this.csrf = m[1]!
    return res
  }

  get(url: string) {
    return this.request('GET', url)
  }

  /** A form as htmx sends it: the CSRF token in the form, the HX-Request header. */
  post(url: string, form: Record<string, string> = {}, opts: { csrf?: string | null; htmx?: boolean } = {}) {
    const csrf = opts.csrf === undefined ? this.csrf : opts.csrf
    return this.request(
      'POST',
      url,
      { ...form, ...(csrf === null ? {} : { _csrf: csrf }) },
      opts.htmx === false ? {} : { 'hx-request': 'true' },
    )
  }

  async login(user: string, password: string, project: string): Promise<LightMyRequestResponse> {
    await this.get('/login')
    return this.request('POST', '/login', { _csrf: this.csrf, user, password, project })
  }
}

/** A server of demo's, created through the API and ACTIVE. */
async function activeServer(skiff: TestSkiff, name: string): Promise<string> {
  const token = await skiff.token('demo')
  const res = await skiff.compute('POST', '/v2.1/servers', {
    token,
    body: { server: { name, imageRef: await skiff.imageId('skiff-base'), flavorRef: '1' } },
  })
  assert.equal(res.statusCode, 202, res.body)
  const id = res.json().server.id as string
  await waitForStatus(skiff, token, id, 'ACTIVE')
  return id
}

describe('the web dashboard', () => {
  let skiff: TestSkiff
  let app: FastifyInstance

  before(async () => {
    skiff = await startTestSkiff()
    app = skiff.dashboard!
  })
  after(async () => skiff?.close())

  const serverOf = (name: string) => activeServer(skiff, name)

  test('the login form is labelled, and a wrong password, user or project gets one message', async () => {
    const b = new Browser(app)
    const page = await b.get('/login')
    assert.equal(page.statusCode, 200)
    for (const label of ['User name', 'Password', 'Project']) assert.match(page.body, new RegExp(`<label for="[^"]+">${label}</label>`))
    assert.match(page.body, /<button class="primary" type="submit">Log in<\/button>/)
    const wrong = [
      ['demo', 'not-the-password', 'demo'],
      ['nobody', skiff.passwords.demo!, 'demo'],
      ['demo', skiff.passwords.demo!, 'alt_demo'],
    ] as const
    for (const [user, password, project] of wrong) {
      const res = await b.login(user, password, project)
      assert.equal(res.statusCode, 401, `${user}/${project}`)
      assert.match(res.body, /Wrong user name, password or project\./)
      assert.equal(b.cookies.has('skiff_session'), false)
    }
  })

  test('a login sets a sealed HttpOnly SameSite=Strict session; the servers page lists the project', async () => {
    const id = await serverOf('dash-listed')
    const b = new Browser(app)
    const res = await b.login('demo', skiff.passwords.demo!, 'demo')
    assert.equal(res.statusCode, 303)
    assert.equal(res.headers.location, '/servers')
    const set = ([] as string[]).concat(res.headers['set-cookie'] as string[]).find((c) => c.startsWith('skiff_session='))!
    assert.match(set, /; HttpOnly/)
    assert.match(set, /; SameSite=Strict/)
    // The token is sealed: it does not show in the cookie.
    assert.ok(!decodeURIComponent(set).includes('"token"'))
    const page = await b.get('/servers')
    assert.equal(page.statusCode, 200)
    assert.match(page.body, new RegExp(`<tr id="server-${id}" data-status="ACTIVE">`))
    assert.match(page.body, /<button class="primary" type="submit">Create server<\/button>/)
    assert.match(page.headers['content-security-policy'] as string, /script-src 'self'/)
    const htmx = await b.get('/assets/htmx.min.js')
    assert.equal(htmx.statusCode, 200)
    assert.match(htmx.body, /htmx/)
  })

  test('every POST needs the session CSRF token; a changed cookie is no session', async () => {
    const b = new Browser(app)
    await b.login('demo', skiff.passwords.demo!, 'demo')
    await b.get('/servers')
    const image = await skiff.imageId('skiff-base')
    const none = await b.post('/servers', { name: 'csrf-1', image, flavor: '1' }, { csrf: null })
    assert.equal(none.statusCode, 403)
    const other = await b.post('/servers', { name: 'csrf-1', image, flavor: '1' }, { csrf: 'x'.repeat(24) })
    assert.equal(other.statusCode, 403)
    const cross = await b.request(
      'POST',
      '/servers',
      { name: 'csrf-1', image, flavor: '1', _csrf: b.csrf },
      { origin: 'http://evil.example' },
    )
    assert.equal(cross.statusCode, 403)
    const list = await skiff.compute('GET', '/v2.1/servers?name=csrf-1', { token: await skiff.token('demo') })
    assert.equal(list.json().servers.length, 0)
    const sealed = b.cookies.get('skiff_session')!
    b.cookies.set('skiff_session', sealed.slice(0, -6) + 'AAAAAA')
    const res = await b.get('/servers')
    assert.equal(res.statusCode, 303)
    assert.equal(res.headers.location, '/login')
  })

  test('create, rescue with a generated password (shown once), extend, unrescue, delete', async () => {
    const b = new Browser(app)
    await b.login('demo', skiff.passwords.demo!, 'demo')
    await b.get('/servers')
    const token = await skiff.token('demo')
    const created = await b.post('/servers', {
      name: 'dash-<b>1</b>',
      image: await skiff.imageId('skiff-base'),
      flavor: '1',
      user_data: '#!/bin/sh\necho hi',
    })
    assert.equal(created.statusCode, 200, created.body)
    assert.match(created.body, /is being created/)
    assert.match(created.body, /Root password of dash-&lt;b&gt;1&lt;\/b&gt; \(shown once\)/)
    const id = /href="\/servers\/([0-9a-f-]{36})"/.exec(created.body)![1]!
    await waitForStatus(skiff, token, id, 'ACTIVE')

    const dialog = await b.get(`/servers/${id}/rescue/dialog`)
    assert.match(dialog.body, /<label for="rescue-image">Rescue image<\/label>/)
    assert.match(dialog.body, /Generate one/)
    const rescued = await b.post(`/servers/${id}/rescue`, {
      image_ref: '',
      password_mode: 'generate',
      key_name: '',
      public_key: '',
      minutes: '45',
    })
    assert.equal(rescued.statusCode, 200, rescued.body)
    const pass = /id="rescue-password" class="secret" readonly value="([^"]+)"/.exec(rescued.body)?.[1]
    assert.ok(pass && pass.length >= 8, rescued.body)
    assert.match(rescued.body, /Auto-exit 45 minutes after the rescue system is up/)
    await waitForStatus(skiff, token, id, 'RESCUE')
    const rescue = (await skiff.compute('GET', `/v2.1/servers/${id}/rescue`, { token })).json().rescue
    assert.equal(rescue.auto_unrescue_after, 45 * 60)

    const panel = await b.get(`/servers/${id}/panel`)
    assert.match(panel.body, /Rescue: rescued/)
    assert.match(panel.body, /End now \(Unrescue\)/)
    assert.ok(!panel.body.includes(pass!), 'the password is shown once, at the rescue only')
    const extended = await b.post(`/servers/${id}/rescue/extend`, { minutes: '30' })
    assert.match(extended.body, /Auto-exit moved/)
    const after = (await skiff.compute('GET', `/v2.1/servers/${id}/rescue`, { token })).json().rescue
    assert.ok(Date.parse(after.expires_at) > Date.parse(rescue.expires_at) + 25 * 60_000, JSON.stringify(after))

    const again = await b.post(`/servers/${id}/rescue`, { password_mode: 'generate' })
    assert.match(again.body, /role="alert">Cannot &#39;rescue&#39; instance [0-9a-f-]+ while it is in vm_state rescued/)

    const reboot = await b.post(`/servers/${id}/action`, { action: 'reboot' })
    assert.match(
      reboot.body,
      /role="alert">Reboot dash-&lt;b&gt;1&lt;\/b&gt;: Cannot &#39;reboot&#39; instance [0-9a-f-]+ while it is in vm_state rescued/,
    )

    const un = await b.post(`/servers/${id}/action`, { action: 'unrescue' })
    assert.match(un.body, /Unrescue of dash-&lt;b&gt;1&lt;\/b&gt; accepted/)
    await waitForStatus(skiff, token, id, 'ACTIVE')

    const actions = await b.get(`/servers/${id}/actions`)
    assert.match(actions.body, /<strong>unrescue<\/strong>/)
    assert.match(actions.body, /<strong>rescue<\/strong>/)
    assert.match(actions.body, /compute_rescue_instance: Success/)
    const consoleLog = await b.get(`/servers/${id}/console`)
    assert.match(consoleLog.body, /<pre class="console"/)

    for (const [action, status] of [
      ['stop', 'SHUTOFF'],
      ['start', 'ACTIVE'],
      ['reboot', 'ACTIVE'],
    ] as const) {
      const res = await b.post(`/servers/${id}/action`, { action })
      assert.match(res.body, /message ok/, `${action}: ${res.body}`)
      await waitForStatus(skiff, token, id, status)
    }
    const row = await b.get('/servers')
    assert.match(row.body, new RegExp(`<tr id="server-${id}" data-status="ACTIVE">`))

    const locked = await b.post(`/servers/${id}/action`, { action: 'lock' })
    assert.match(locked.body, /Lock of .* accepted/)
    const refused = await b.post(`/servers/${id}/action`, { action: 'delete' })
    assert.match(refused.body, /role="alert">Delete dash-&lt;b&gt;1&lt;\/b&gt;: Instance [0-9a-f-]+ is locked/)
    await b.post(`/servers/${id}/action`, { action: 'unlock' })
    const gone = await b.post(`/servers/${id}/action`, { action: 'delete' })
    assert.match(gone.body, /Delete of .* accepted/)
  })

  test('another project sees nothing of the server and can do nothing to it', async () => {
    const id = await serverOf('dash-private')
    const alt = new Browser(app)
    await alt.login('alt_demo', skiff.passwords.alt_demo!, 'alt_demo')
    const list = await alt.get('/servers')
    assert.ok(!list.body.includes('dash-private'))
    const page = await alt.get(`/servers/${id}`)
    assert.equal(page.statusCode, 404)
    assert.match(page.body, new RegExp(`Instance ${id} could not be found\\.`))
    const del = await alt.post(`/servers/${id}/action`, { action: 'delete' })
    assert.match(del.body, /could not be found/)
    const rescue = await alt.post(`/servers/${id}/rescue`, { password_mode: 'generate' })
    assert.match(rescue.body, /could not be found/)
    const res = await skiff.compute('GET', `/v2.1/servers/${id}`, { token: await skiff.token('demo') })
    assert.equal(res.json().server.status, 'ACTIVE')
  })

  test("a reader's create is refused with Nova's message; the hosts page is for admins", async () => {
    const r = new Browser(app)
    await r.login('reader_demo', skiff.passwords.reader_demo!, 'demo')
    await r.get('/servers')
    const res = await r.post('/servers', { name: 'by-reader', image: await skiff.imageId('skiff-base'), flavor: '1' })
    assert.match(res.body, /role="alert">Policy doesn&#39;t allow os_compute_api:servers:create to be performed\./)
    const hosts = await r.get('/hosts')
    assert.match(hosts.body, /role="alert">Policy doesn&#39;t allow os_compute_api:os-hypervisors:list-detail to be performed\./)
    const admin = new Browser(app)
    await admin.login('admin', skiff.passwords.admin!, 'admin')
    const page = await admin.get('/hosts')
    assert.match(page.body, /<th scope="row" data-label="Host">skiff-1<\/th>\s*<td data-label="State" class="status-active">up<\/td>/)
    const all = await admin.get('/servers?all=1')
    assert.match(all.body, /Servers of every project/)
    assert.match(all.body, /dash-private/)
  })

  test('key pairs: created with the private key offered once, imported, deleted', async () => {
    const b = new Browser(app)
    await b.login('demo', skiff.passwords.demo!, 'demo')
    await b.get('/keypairs')
    const made = await b.post('/keypairs', { name: 'dash-key' })
    assert.match(made.body, /Key pair dash-key created/)
    assert.match(made.body, /download="dash-key.pem" href="data:application\/x-pem-file;base64,/)
    const page = await b.get('/keypairs')
    assert.match(page.body, /<th scope="row" data-label="Name">dash-key<\/th>/)
    assert.ok(!page.body.includes('PRIVATE KEY'))
    const bad = await b.post('/keypairs', { name: 'dash-bad', public_key: 'not a key' })
    assert.match(bad.body, /role="alert">Keypair data is invalid/)
    const del = await b.post('/keypairs/delete', { name: 'dash-key' })
    assert.match(del.body, /Key pair dash-key deleted/)
  })

  test('images: the record, its data streamed through, delete', async () => {
    const b = new Browser(app)
    await b.login('demo', skiff.passwords.demo!, 'demo')
    await b.get('/images')
    const made = await b.request('POST', '/images', { name: 'dash-img', disk_format: 'raw' }, { 'x-csrf-token': b.csrf })
    assert.equal(made.statusCode, 201, made.body)
    const id = made.json().id as string
    const up = await app.inject({
      method: 'PUT',
      url: `/images/${id}/file`,
      headers: {
        cookie: [...b.cookies].map(([k, v]) => `${k}=${v}`).join('; '),
        'content-type': 'application/octet-stream',
        'x-csrf-token': b.csrf,
      },
      payload: Buffer.alloc(3 * 1024 * 1024, 7),
    })
    assert.equal(up.statusCode, 200, up.body)
    assert.equal(up.json().status, 'active')
    const rows = await b.get('/images/rows')
    assert.match(rows.body, /dash-img<\/th>\s*<td data-label="Status">active<\/td>/)
    const del = await b.post(`/images/${id}/delete`)
    assert.match(del.body, /Image deleted/)
  })

  test('log out revokes the token: the API refuses it, and the old cookie is no session', async () => {
    const b = new Browser(app)
    await b.login('demo', skiff.passwords.demo!, 'demo')
    await b.get('/servers')
    const old = b.cookies.get('skiff_session')!
    const out = await b.post('/logout', {}, { htmx: false })
    assert.equal(out.statusCode, 303)
    assert.equal(b.cookies.has('skiff_session'), false)
    b.cookies.set('skiff_session', old)
    const again = await b.get('/servers')
    assert.equal(again.statusCode, 303)
    assert.equal(again.headers.location, '/login')
  })
})

describe('the console tab: xterm.js on the serial proxy', () => {
  let skiff: TestSkiff
  let proxy = ''
  before(async () => {
    skiff = await startTestSkiff({}, { serialProxy: true })
    proxy = `ws://127.0.0.1:${(skiff.serialProxy!.address() as AddressInfo).port}`
  })
  after(async () => skiff?.close())

  test('its page allows exactly the proxy and a style nonce; the URL comes from the API as the user; the WebSocket shows the simulated console', async () => {
    const token = await skiff.token('demo')
    const id = await activeServer(skiff, 'console-1')
    const b = new Browser(skiff.dashboard!)
    await b.login('demo', skiff.passwords.demo!, 'demo')

    const overview = await b.get(`/servers/${id}`)
    assert.match(overview.body, new RegExp(`<a href="/servers/${id}/terminal"\\s*>Console</a>`))
    assert.equal(overview.headers['content-security-policy'], (await b.get('/servers')).headers['content-security-policy'])
    assert.doesNotMatch(overview.headers['content-security-policy'] as string, /nonce|ws:/)

    const page = await b.get(`/servers/${id}/terminal`)
    assert.equal(page.statusCode, 200)
    const csp = page.headers['content-security-policy'] as string
    const nonce = /<script src="\/assets\/console.js" nonce="([^"]+)"/.exec(page.body)?.[1]
    assert.ok(nonce, 'the console script carries the nonce')
    assert.equal(
      csp,
      `default-src 'self'; script-src 'self'; style-src 'self' 'nonce-${nonce}'; img-src 'self' data:; ` +
        `connect-src 'self' ${proxy}; form-action 'self'; frame-ancestors 'none'; base-uri 'none'`,
    )
    assert.doesNotMatch(csp, /unsafe/)
    assert.notEqual(/nonce="([^"]+)"/.exec((await b.get(`/servers/${id}/terminal`)).body)?.[1], nonce, 'a nonce per page')
    assert.match(page.body, /<a href="\/servers\/[^"]+\/terminal"\s*aria-current="page"\s*>Console<\/a>/)
    for (const [url, type, text] of [
      ['/assets/xterm.js', 'javascript', 'Terminal'],
      ['/assets/addon-fit.js', 'javascript', 'FitAddon'],
      ['/assets/xterm.css', 'css', '.xterm'],
      ['/assets/console.js', 'javascript', 'WebSocket'],
    ] as const) {
      const a = await b.get(url)
      assert.equal(a.statusCode, 200, url)
      assert.match(a.headers['content-type'] as string, new RegExp(type))
      assert.ok(a.body.includes(text), url)
    }

    const refused = await b.request('POST', `/servers/${id}/console-url`)
    assert.equal(refused.statusCode, 403, 'no CSRF token, no console')
    const res = await b.request('POST', `/servers/${id}/console-url`, undefined, { 'x-csrf-token': b.csrf })
    assert.equal(res.statusCode, 200, res.body)
    const url = res.json().url as string
    assert.ok(url.startsWith(`${proxy}/?token=`), url)
    const ws = await connectWebSocket(url, { protocols: ['binary'] })
    let out = ''
    ws.onMessage = (data) => (out += data.toString('utf8'))
    await waitFor('the simulated console', async () => out.includes('simulated login: '), 5000, 10)
    assert.match(out, /this console is simulated/)
    ws.close()

    // Another project's user: the API's 404, said as the API says it.
    const alt = new Browser(skiff.dashboard!)
    await alt.login('alt_demo', skiff.passwords.alt_demo!, 'alt_demo')
    await alt.get('/servers')
    const other = await alt.request('POST', `/servers/${id}/console-url`, undefined, { 'x-csrf-token': alt.csrf })
    assert.equal(other.statusCode, 404)
    assert.match(other.json().message, /could not be found/)
    assert.equal((await alt.get(`/servers/${id}/terminal`)).statusCode, 404)

    // The rescue's answer and the rescue card lead to the console.
    await b.get(`/servers/${id}`)
    const rescued = await b.post(`/servers/${id}/rescue`, { password_mode: 'generate' })
    assert.match(
      rescued.body,
      new RegExp(`<a class="button" href="/servers/${id}/terminal">Log in to the rescue system in the browser</a>`),
    )
    await waitForStatus(skiff, token, id, 'RESCUE')
    const panel = await b.get(`/servers/${id}/panel`)
    assert.match(panel.body, /Log in to the rescue system in the browser/)
  })

  test("without a serial proxy the tab says the API's refusal, and the rescue answer offers no console", async () => {
    const plain = await startTestSkiff()
    try {
      const id = await activeServer(plain, 'console-2')
      const b = new Browser(plain.dashboard!)
      await b.login('demo', plain.passwords.demo!, 'demo')
      const page = await b.get(`/servers/${id}/terminal`)
      assert.match(page.headers['content-security-policy'] as string, /connect-src 'self';/)
      const res = await b.request('POST', `/servers/${id}/console-url`, undefined, { 'x-csrf-token': b.csrf })
      assert.equal(res.statusCode, 400)
      assert.equal(res.json().message, 'Unavailable console type serial.')
      const rescued = await b.post(`/servers/${id}/rescue`, { password_mode: 'generate' })
      assert.match(rescued.body, /Rescue of console-2 started/)
      assert.doesNotMatch(rescued.body, /in the browser/)
    } finally {
      await plain.close()
    }
  })
})

test('--no-dashboard: no dashboard is built', async () => {
  const skiff = await startTestSkiff({ dashboard: false })
  try {
    assert.equal(skiff.dashboard, undefined)
  } finally {
    await skiff.close()
  }
})

describe('dashboard sessions across two API processes on one PostgreSQL', { skip: testPostgresUrl() ? false : 'needs PostgreSQL' }, () => {
  let database: TestDatabase
  let a: TestSkiff
  let b: TestSkiff
  before(async () => {
    database = await freshDatabase('postgres')
    a = await startTestSkiff({ databaseUrl: database.url })
    b = await startTestSkiff({ databaseUrl: database.url, agentHost: 'skiff-2', secretKeyFile: `${a.dataDir}/secret.key` })
  })
  after(async () => {
    await b?.close()
    await a?.close()
    await database?.drop()
  })

  test('a session made by one process works on the other; its logout ends it on both within a second', async () => {
    const onA = new Browser(a.dashboard!)
    await onA.login('demo', a.passwords.demo!, 'demo')
    const onB = new Browser(b.dashboard!)
    for (const [k, v] of onA.cookies) onB.cookies.set(k, v)
    const page = await onB.get('/servers')
    assert.equal(page.statusCode, 200, page.body)
    assert.match(page.body, /demo · project demo/)
    await onA.get('/servers')
    const t0 = Date.now()
    await onA.post('/logout', {}, { htmx: false })
    await waitFor('B to end the session', async () => (await onB.get('/servers')).statusCode === 303, 1000, 5)
    assert.ok(Date.now() - t0 < 1000)
  })
})
