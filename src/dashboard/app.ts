// The web dashboard (`--dashboard-port`): server-rendered HTML with htmx, one more client of
// Skiff's public APIs (api-client.ts: the user's own token through the listeners' routes), so
// what a user cannot do in the API they cannot do here. Sessions are sealed cookies
// (session.ts); every POST carries the session's CSRF token. Live state is the compute API's
// server event stream, relayed as rendered table rows. The console tab is xterm.js on a WebSocket
// to the serial proxy, at a URL the compute API hands the user (remote-consoles).
import { randomBytes } from 'node:crypto'
import type { Readable } from 'node:stream'
import fastify, { LogController, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import type { Logger } from 'pino'
import type { Apps } from '../api/app.ts'
import type { Sealer } from '../secrets.ts'
import { SkiffApi, type Answer } from './api-client.ts'
import { CONSOLE_JS, CSS, JS, PACKAGE_ASSETS, readPackageAsset } from './assets.ts'
import { html, type Html } from './html.ts'
import { Sessions, same, type Session } from './session.ts'
import {
  createServerForm,
  csrfField,
  dataTable,
  deleteForm,
  imageIdOf,
  layout,
  loginPage,
  message,
  rescueCard,
  rescueDialog,
  rescueStarted,
  secretField,
  serverPanel,
  serverRow,
  serverTable,
  serverTabs,
  terminalBody,
  terminalHead,
  when,
  type Choice,
  type ImageInfo,
  type Names,
  type RescueView,
  type ServerView,
  type SshAccess,
} from './views.ts'

export interface DashboardDeps {
  apps: Pick<Apps, 'identity' | 'compute' | 'image'>
  /** The deployment's key: sessions are sealed with it, so any API process opens them. */
  sealer: Sealer
  /** Where this process's compute API listens (the event stream is read over HTTP: it never ends). */
  computeRoot: string
  /** The serial console proxy's ws:// root (the console URLs the compute API answers): the console tab's connect-src. */
  serialProxy?: string
  logger: Logger
  /** The Keystone domain users log in to. */
  domain?: string
  keepAliveTimeoutMs?: number
  /** Interval of the `: keep-alive` comment on the dashboard's event stream, ms. */
  keepAliveMs?: number
}

/** A session whose token the API no longer accepts (expired, revoked, logged out elsewhere). */
class SessionGone extends Error {}

type Form = Record<string, string>

const ACTIONS: Record<string, { label: string; call: (id: string) => { method: string; url: string; body?: unknown } }> = {
  start: { label: 'Start', call: (id) => ({ method: 'POST', url: `/v2.1/servers/${id}/action`, body: { 'os-start': null } }) },
  stop: { label: 'Stop', call: (id) => ({ method: 'POST', url: `/v2.1/servers/${id}/action`, body: { 'os-stop': null } }) },
  reboot: { label: 'Reboot', call: (id) => ({ method: 'POST', url: `/v2.1/servers/${id}/action`, body: { reboot: { type: 'SOFT' } } }) },
  lock: { label: 'Lock', call: (id) => ({ method: 'POST', url: `/v2.1/servers/${id}/action`, body: { lock: null } }) },
  unlock: { label: 'Unlock', call: (id) => ({ method: 'POST', url: `/v2.1/servers/${id}/action`, body: { unlock: null } }) },
  unrescue: { label: 'Unrescue', call: (id) => ({ method: 'DELETE', url: `/v2.1/servers/${id}/rescue` }) },
  delete: { label: 'Delete', call: (id) => ({ method: 'DELETE', url: `/v2.1/servers/${id}` }) },
}

const UUID = /^[0-9a-fA-F-]{32,36}$/
/** Where a plain (non-htmx) form goes back to: the page it was sent from, on this site only. */
function backTo(req: FastifyRequest): string {
  const path = (req.headers.referer ?? '').replace(/^https?:\/\/[^/]+/, '')
  return /^\/(?!\/)[\w\-/?=&%.]*$/.test(path) && path !== '' ? path : '/servers'
}
const isHtmx = (req: FastifyRequest) => req.headers['hx-request'] === 'true'
const one = (v: unknown): string | undefined => (Array.isArray(v) ? (v[v.length - 1] as string) : typeof v === 'string' ? v : undefined)

/**
 * Every page's policy: its own script and style only. The console tab adds exactly what its
 * terminal needs: the serial proxy's origin to connect to, and a nonce for xterm.js's <style>s.
 */
function contentSecurityPolicy(terminal?: { connect: string; styleNonce: string }): string {
  return (
    `default-src 'self'; script-src 'self'; style-src 'self'${terminal ? ` 'nonce-${terminal.styleNonce}'` : ''}; ` +
    `img-src 'self' data:; connect-src 'self'${terminal?.connect ? ` ${terminal.connect}` : ''}; ` +
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
  )
}

const SECURITY_HEADERS = {
  'content-security-policy': contentSecurityPolicy(),
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
}

export function buildDashboard(deps: DashboardDeps): FastifyInstance {
  const api = new SkiffApi(deps.apps)
  const sessions = new Sessions(deps.sealer)
  const domain = deps.domain ?? 'Default'
  const keepAliveMs = deps.keepAliveMs ?? 15_000
  // The proxy's origin (ws://host:port), which the console tab's page may connect to.
  const proxyOrigin = deps.serialProxy ? new URL(deps.serialProxy).origin : ''
  const app = fastify({
    loggerInstance: deps.logger.child({ component: 'dashboard' }),
    logController: new LogController({ disableRequestLogging: true }),
    keepAliveTimeout: deps.keepAliveTimeoutMs ?? 75_000,
    bodyLimit: 1 << 20,
    // pino's Logger type is narrower than fastify's base logger: the instance is used as fastify's own.
  }) as unknown as FastifyInstance
  const streams = new Set<() => void>()
  app.addHook('preClose', async () => {
    for (const end of [...streams]) end()
  })

  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) => {
    const form: Form = {}
    for (const [k, v] of new URLSearchParams(body as string)) form[k] = v
    done(null, form)
  })
  // Image data goes through as a stream, to the image API's upload (no body limit: it streams).
  app.addContentTypeParser('application/octet-stream', (_req, payload, done) => done(null, payload))

  app.addHook('onSend', async (_req, reply, payload) => {
    // A page that set its own policy (the console tab) keeps it.
    for (const [k, v] of Object.entries(SECURITY_HEADERS)) if (!reply.hasHeader(k)) reply.header(k, v)
    if (!reply.hasHeader('cache-control')) reply.header('cache-control', 'no-store')
    return payload
  })

  // --- sessions, CSRF -------------------------------------------------------------------------

  const session = (req: FastifyRequest): Session => {
    const s = sessions.read(req)
    if (!s) throw new SessionGone()
    return s
  }

  // Every state-changing request: a session, its CSRF token, and (when the browser says) our origin.
  app.addHook('preHandler', async (req, reply) => {
    if (req.method === 'GET' || req.method === 'HEAD' || req.url === '/login') return
    const origin = req.headers.origin
    if (origin && origin !== 'null') {
      let host = ''
      try {
        host = new URL(origin).host
      } catch {
        /* refused below */
      }
      if (host !== req.headers.host) return reply.code(403).type('text/plain').send('Cross-origin request refused.')
    }
    const s = sessions.read(req)
    if (!s) throw new SessionGone()
    const given = (req.headers['x-csrf-token'] as string | undefined) ?? (req.body as Form | undefined)?._csrf
    if (!same(s.csrf, given)) return reply.code(403).type('text/plain').send('The form is out of date (CSRF token). Reload the page.')
  })

  app.setErrorHandler(async (err, req, reply) => {
    if (err instanceof SessionGone) {
      sessions.clear(req, reply)
      if (isHtmx(req)) return reply.code(200).header('hx-redirect', '/login').send('')
      if (req.method === 'GET') return reply.redirect('/login', 303)
      return reply
        .code(401)
        .type('text/html')
        .send(String(loginPage({ csrf: sessions.loginCsrf(req, reply), domain, error: 'Your session has ended. Log in again.' })))
    }
    const status = (err as { statusCode?: number }).statusCode ?? 500
    if (status >= 500) req.log.error({ err }, 'dashboard request failed')
    const text = status >= 500 ? 'Something went wrong in the dashboard.' : (err as Error).message
    if (isHtmx(req))
      return reply
        .code(200)
        .type('text/html')
        .send(String(message(text, 'error')))
    return reply
      .code(status)
      .type('text/html')
      .send(
        String(
          layout({
            title: 'Error',
            body: html`${message(text, 'error')}
              <p><a href="/servers">Back</a></p>`,
          }),
        ),
      )
  })

  /** A call with the session's token; a 401 means the session is over. */
  async function call<T>(
    s: Session,
    service: 'identity' | 'compute' | 'image',
    method: string,
    url: string,
    opts: Parameters<SkiffApi['call']>[3] = {},
  ) {
    const a = await api.call<T>(service, method, url, { ...opts, token: s.token })
    if (a.status === 401) throw new SessionGone()
    return a
  }

  const page = (reply: FastifyReply, title: string, s: Session, current: string, body: Html, live?: string) =>
    reply.type('text/html').send(String(layout({ title, session: s, current, body, ...(live ? { live } : {}) })))

  /** The answer to a form: a fragment for htmx, else back to `back` (or a page with the message). */
  function answer(req: FastifyRequest, reply: FastifyReply, s: Session, fragment: Html, back: string, failed = false) {
    if (isHtmx(req)) return reply.type('text/html').send(String(fragment))
    if (!failed) return reply.redirect(back, 303)
    return reply
      .code(200)
      .type('text/html')
      .send(
        String(
          layout({
            title: 'Skiff',
            session: s,
            body: html`${fragment}
              <p><a href="${back}">Back</a></p>`,
          }),
        ),
      )
  }

  // --- assets -----------------------------------------------------------------------------------

  const asset = (type: string, body: string) => async (_req: FastifyRequest, reply: FastifyReply) =>
    reply.type(type).header('cache-control', 'public, max-age=3600').send(body)
  app.get('/assets/dashboard.css', asset('text/css; charset=utf-8', CSS))
  app.get('/assets/dashboard.js', asset('text/javascript; charset=utf-8', JS))
  app.get('/assets/console.js', asset('text/javascript; charset=utf-8', CONSOLE_JS))
  // Read at their first request: a checkout whose node_modules lacks them (before `npm ci`) still
  // starts, and says what is missing when a page asks for it.
  for (const [url, { file, type }] of Object.entries(PACKAGE_ASSETS)) {
    let body: string | undefined
    app.get(url, async (req, reply) => {
      try {
        body ??= readPackageAsset(file)
      } catch (err) {
        req.log.error({ err: (err as Error).message }, `dashboard: ${file} is not installed (npm ci)`)
        return reply.code(500).type('text/plain').send(`${file} is not installed: run npm ci`)
      }
      return asset(type, body)(req, reply)
    })
  }
  app.get('/favicon.ico', async (_req, reply) => reply.code(204).send())

  // --- log in, log out ---------------------------------------------------------------------------

  app.get('/', async (req, reply) => reply.redirect(sessions.read(req) ? '/servers' : '/login', 303))

  app.get('/login', async (req, reply) => {
    if (sessions.read(req)) return reply.redirect('/servers', 303)
    return reply.type('text/html').send(String(loginPage({ csrf: sessions.loginCsrf(req, reply), domain })))
  })

  app.post<{ Body: Form }>('/login', async (req, reply) => {
    const f = req.body ?? {}
    const user = (f.user ?? '').trim()
    const project = (f.project ?? '').trim()
    const again = (error: string, code: number) =>
      reply
        .code(code)
        .type('text/html')
        .send(String(loginPage({ csrf: sessions.loginCsrf(req, reply), domain, error, user, project })))
    if (!sessions.checkLoginCsrf(req, f._csrf)) return again('The form is out of date. Log in again.', 403)
    if (!user || !f.password || !project) return again('Give your user name, password and project.', 400)
    const a = await api.call<{ token: TokenBody }>('identity', 'POST', '/v3/auth/tokens?nocatalog', {
      body: {
        auth: {
          identity: { methods: ['password'], password: { user: { name: user, domain: { name: domain }, password: f.password } } },
          scope: { project: { name: project, domain: { name: domain } } },
        },
      },
    })
    // One message for a wrong user name, password or project: which one is not said.
    if (a.status === 401 || a.status === 400 || a.status === 404 || a.status === 403) {
      req.log.info({ user, project, status: a.status }, 'dashboard: login refused')
      return again('Wrong user name, password or project.', 401)
    }
    if (!a.ok) return again(`The identity service refused: ${a.message}`, 502)
    const t = a.body.token
    const roles = (t.roles ?? []).map((r) => r.name)
    const s: Session = {
      token: String(a.headers['x-subject-token']),
      expiresAt: Date.parse(t.expires_at),
      userId: t.user.id,
      userName: t.user.name,
      projectId: t.project?.id ?? '',
      projectName: t.project?.name ?? project,
      isAdmin: roles.includes('admin'),
      roles,
      csrf: sessions.newCsrf(),
    }
    sessions.write(req, reply, s)
    req.log.info({ user, project, admin: s.isAdmin }, 'dashboard: logged in')
    return reply.redirect('/servers', 303)
  })

  app.post('/logout', async (req, reply) => {
    const s = sessions.read(req)
    // Keystone's revocation: the token dies in every API process within a second.
    if (s) await api.call('identity', 'DELETE', '/v3/auth/tokens', { token: s.token, headers: { 'x-subject-token': s.token } })
    sessions.clear(req, reply)
    return reply.redirect('/login', 303)
  })

  // --- what pages need --------------------------------------------------------------------------

  async function imageList(s: Session): Promise<ImageInfo[]> {
    const a = await call<{ images: ImageInfo[] }>(s, 'image', 'GET', '/v2/images?limit=1000')
    return a.ok ? a.body.images : []
  }
  async function names(s: Session, all: boolean): Promise<Names> {
    const images = new Map((await imageList(s)).map((i) => [i.id, i.name ?? i.id]))
    if (!all) return { images }
    const p = await call<{ projects: { id: string; name: string }[] }>(s, 'identity', 'GET', '/v3/projects')
    return { images, projects: new Map(p.ok ? p.body.projects.map((x) => [x.id, x.name]) : []) }
  }
  const bootable = (images: ImageInfo[]) =>
    images
      .filter((i) => i.status === 'active' && !['aki', 'ari'].includes(i.disk_format ?? ''))
      .map((i) => ({ value: i.id, label: i.name ?? i.id }))
  async function keypairChoices(s: Session): Promise<Choice[]> {
    const a = await call<{ keypairs: { keypair: { name: string } }[] }>(s, 'compute', 'GET', '/v2.1/os-keypairs')
    return a.ok ? a.body.keypairs.map((k) => ({ value: k.keypair.name, label: k.keypair.name })) : []
  }
  async function server(s: Session, id: string): Promise<Answer<{ server: ServerView }>> {
    if (!UUID.test(id))
      return {
        status: 404,
        ok: false,
        body: { server: undefined as unknown as ServerView },
        headers: {},
        message: `Instance ${id} could not be found.`,
      }
    return call<{ server: ServerView }>(s, 'compute', 'GET', `/v2.1/servers/${id}`)
  }
  /** A server page whose server the API would not show (another project's, deleted): its message. */
  const noServer = (reply: FastifyReply, s: Session, cur: Answer, title: string) =>
    page(
      reply.code(cur.status === 404 ? 404 : 200),
      title,
      s,
      'servers',
      html`<h1>${title}</h1>
        ${message(cur.message, 'error')}
        <p><a href="/servers">All servers</a></p>`,
    )
  const allOf = (req: FastifyRequest, s: Session) => s.isAdmin && one((req.query as Record<string, unknown>).all) === '1'

  // --- servers ----------------------------------------------------------------------------------

  app.get('/servers', async (req, reply) => {
    const s = session(req)
    const all = allOf(req, s)
    const since = new Date(Date.now() - 2000).toISOString()
    const [list, n, images, flavors, keypairs] = await Promise.all([
      call<{ servers: ServerView[] }>(s, 'compute', 'GET', `/v2.1/servers/detail${all ? '?all_tenants=1' : ''}`),
      names(s, all),
      imageList(s),
      call<{ flavors: { id: string; name: string; vcpus: number; ram: number; disk: number }[] }>(
        s,
        'compute',
        'GET',
        '/v2.1/flavors/detail',
      ),
      keypairChoices(s),
    ])
    const body = html`<h1>Servers${all ? ' of every project' : ''}</h1>
      ${s.isAdmin ? html`<p><a href="${all ? '/servers' : '/servers?all=1'}">${all ? 'Only this project' : 'All projects'}</a></p>` : ''}
      ${list.ok ? serverTable(s, list.body.servers, n, all) : message(list.message, 'error')}
      ${createServerForm(s, {
        images: bootable(images),
        flavors: flavors.ok
          ? flavors.body.flavors.map((f) => ({ value: f.id, label: `${f.name} (${f.vcpus} vCPU, ${f.ram} MB, ${f.disk} GB)` }))
          : [],
        keypairs,
      })}`
    return page(reply, 'Servers', s, 'servers', body, `/events?since=${encodeURIComponent(since)}${all ? '&all=1' : ''}`)
  })

  app.post<{ Body: Form }>('/servers', async (req, reply) => {
    const s = session(req)
    const f = req.body
    const srv: Record<string, unknown> = {
      name: (f.name ?? '').trim(),
      imageRef: f.image ?? '',
      flavorRef: f.flavor ?? '',
      networks: 'auto',
    }
    if (f.key_name) srv.key_name = f.key_name
    if (f.user_data) srv.user_data = Buffer.from(f.user_data.replace(/\r\n/g, '\n'), 'utf8').toString('base64')
    const a = await call<{ server: { id: string; adminPass?: string } }>(s, 'compute', 'POST', '/v2.1/servers', { body: { server: srv } })
    if (!a.ok) return answer(req, reply, s, message(a.message, 'error'), '/servers', true)
    const id = a.body.server.id
    const pass = a.body.server.adminPass
    return answer(
      req,
      reply,
      s,
      html`${message(`Server ${String(srv.name)} is being created.`, 'ok')}
        ${pass ? secretField(`create-pass-${id}`, `Root password of ${String(srv.name)} (shown once)`, pass) : ''}
        <p><a href="/servers/${id}">Open ${String(srv.name)}</a></p>`,
      '/servers',
    )
  })

  app.post<{ Params: { id: string }; Body: Form }>('/servers/:id/action', async (req, reply) => {
    const s = session(req)
    const action = ACTIONS[req.body.action ?? '']
    const back = backTo(req)
    if (!action) return answer(req, reply, s, message(`Unknown action ${req.body.action ?? ''}.`, 'error'), back, true)
    const current = await server(s, req.params.id)
    if (!current.ok) return answer(req, reply, s, message(current.message, 'error'), '/servers', true)
    const c = action.call(current.body.server.id)
    const a = await call(s, 'compute', c.method, c.url, c.body === undefined ? {} : { body: c.body })
    const name = current.body.server.name
    if (!a.ok) return answer(req, reply, s, message(`${action.label} ${name}: ${a.message}`, 'error'), back, true)
    return answer(req, reply, s, message(`${action.label} of ${name} accepted.`, 'ok'), req.body.action === 'delete' ? '/servers' : back)
  })

  // --- rescue -----------------------------------------------------------------------------------

  app.get<{ Params: { id: string } }>('/servers/:id/rescue/dialog', async (req, reply) => {
    const s = session(req)
    const [cur, images, keypairs] = await Promise.all([server(s, req.params.id), imageList(s), keypairChoices(s)])
    if (!cur.ok)
      return reply.type('text/html').send(
        String(
          html`<h2 id="dialog-title">Rescue</h2>
            ${message(cur.message, 'error')}<button type="button" data-close-dialog>Close</button>`,
        ),
      )
    const own = imageIdOf(cur.body.server)
    const ownName = images.find((i) => i.id === own)?.name ?? (own || 'skiff-rescue')
    return reply.type('text/html').send(String(rescueDialog(s, cur.body.server, { images: bootable(images), keypairs, ownImage: ownName })))
  })

  app.post<{ Params: { id: string }; Body: Form }>('/servers/:id/rescue', async (req, reply) => {
    const s = session(req)
    const f = req.body
    const cur = await server(s, req.params.id)
    if (!cur.ok) return answer(req, reply, s, message(cur.message, 'error'), '/servers', true)
    const sv = cur.body.server
    const body: Record<string, unknown> = {}
    if (f.image_ref) body.image_ref = f.image_ref
    if (f.password_mode === 'given') {
      if (!f.admin_pass)
        return answer(req, reply, s, message('Give the password to use, or choose "Generate one".', 'error'), `/servers/${sv.id}`, true)
      body.admin_pass = f.admin_pass
    }
    if (f.key_name) body.key_name = f.key_name
    if (f.public_key?.trim()) body.public_key = f.public_key.trim()
    if (f.minutes?.trim()) {
      const m = Number(f.minutes)
      if (!Number.isInteger(m) || m < 1 || m > 10080)
        return answer(req, reply, s, message('Auto-exit takes whole minutes from 1 to 10080 (a week).', 'error'), `/servers/${sv.id}`, true)
      body.auto_unrescue_after = m * 60
    }
    const a = await call<{ rescue: RescueView; adminPass?: string }>(s, 'compute', 'POST', `/v2.1/servers/${sv.id}/rescue`, {
      body: { rescue: body },
    })
    if (!a.ok)
      return answer(
        req,
        reply,
        s,
        html`<h2 id="dialog-title">Rescue ${sv.name}</h2>
          ${message(a.message, 'error')}
          <p><button type="button" data-close-dialog>Close</button></p>`,
        `/servers/${sv.id}`,
        true,
      )
    const ssh = await sshAccess(s, sv.id)
    return answer(
      req,
      reply,
      s,
      rescueStarted(sv, a.body.rescue, {
        ...(a.body.adminPass ? { adminPass: a.body.adminPass } : {}),
        ssh,
        serialConsole: proxyOrigin !== '',
      }),
      `/servers/${sv.id}`,
    )
  })

  app.post<{ Params: { id: string }; Body: Form }>('/servers/:id/rescue/extend', async (req, reply) => {
    const s = session(req)
    const back = `/servers/${req.params.id}`
    if (!UUID.test(req.params.id)) return answer(req, reply, s, message('No such server.', 'error'), '/servers', true)
    const cur = await call<{ rescue: RescueView }>(s, 'compute', 'GET', `/v2.1/servers/${req.params.id}/rescue`)
    if (!cur.ok) return answer(req, reply, s, message(cur.message, 'error'), back, true)
    const minutes = Number(req.body.minutes ?? 30)
    const left = cur.body.rescue.expires_at ? Math.max(0, Math.round((Date.parse(cur.body.rescue.expires_at) - Date.now()) / 1000)) : 0
    const after =
      req.body.never === '1' ? null : Math.min(7 * 24 * 3600, left + (Number.isInteger(minutes) && minutes > 0 ? minutes : 30) * 60)
    const a = await call(s, 'compute', 'PATCH', `/v2.1/servers/${req.params.id}/rescue`, {
      body: { rescue: { auto_unrescue_after: after } },
    })
    if (!a.ok) return answer(req, reply, s, message(a.message, 'error'), back, true)
    return answer(
      req,
      reply,
      s,
      message(
        after === null ? 'The rescue no longer ends by itself.' : `Auto-exit moved: ${Math.round(after / 60)} minutes from now.`,
        'ok',
      ),
      back,
    )
  })

  // --- one server -------------------------------------------------------------------------------

  app.get<{ Params: { id: string } }>('/servers/:id', async (req, reply) => {
    const s = session(req)
    const cur = await server(s, req.params.id)
    if (!cur.ok) return noServer(reply, s, cur, 'Server')
    const sv = cur.body.server
    const body = html`<p><a href="/servers">All servers</a></p>
      <h1>${sv.name}</h1>
      ${serverTabs(sv, 'overview')}
      <section aria-labelledby="state-title">
        <h2 id="state-title">State</h2>
        <div id="server-panel" data-server-panel="${sv.id}" hx-get="/servers/${sv.id}/panel" hx-trigger="refresh" hx-swap="innerHTML">
          ${await panel(s, sv)}
        </div>
      </section>
      <section aria-labelledby="actions-title">
        <h2 id="actions-title">Instance actions</h2>
        <div data-server-panel="${sv.id}" hx-get="/servers/${sv.id}/actions" hx-trigger="load, refresh" hx-swap="innerHTML">
          <p>Loading…</p>
        </div>
      </section>
      <section aria-labelledby="console-title">
        <h2 id="console-title">Console log</h2>
        <div id="console" hx-get="/servers/${sv.id}/console" hx-trigger="load" hx-swap="innerHTML"><p>Loading…</p></div>
      </section>`
    return page(
      reply,
      sv.name,
      s,
      'servers',
      body,
      `/events?since=${encodeURIComponent(new Date(Date.now() - 2000).toISOString())}${s.isAdmin && sv.tenant_id !== s.projectId ? '&all=1' : ''}`,
    )
  })

  /** Where SSH reaches the server (or the rescue system), when the driver forwards a port. */
  async function sshAccess(s: Session, id: string): Promise<SshAccess | null> {
    const a = await call<{ access: { ssh: SshAccess | null } }>(s, 'compute', 'GET', `/v2.1/servers/${id}/access`)
    return a.ok ? a.body.access.ssh : null
  }

  async function panel(s: Session, sv: ServerView): Promise<Html> {
    const rescuing = sv.status === 'RESCUE' || sv['OS-EXT-STS:task_state'] === 'rescuing' || sv['OS-EXT-STS:task_state'] === 'unrescuing'
    const [n, r, ssh] = await Promise.all([
      names(s, false),
      rescuing ? call<{ rescue: RescueView }>(s, 'compute', 'GET', `/v2.1/servers/${sv.id}/rescue`) : undefined,
      rescuing ? sshAccess(s, sv.id) : null,
    ])
    const rescue = r?.ok ? rescueCard(s, sv, r.body.rescue, { ssh, serialConsole: proxyOrigin !== '' }) : html``
    return serverPanel(s, sv, n, rescue)
  }

  app.get<{ Params: { id: string } }>('/servers/:id/panel', async (req, reply) => {
    const s = session(req)
    const cur = await server(s, req.params.id)
    if (!cur.ok)
      return reply.type('text/html').send(String(message(cur.status === 404 ? 'This server has been deleted.' : cur.message, 'error')))
    return reply.type('text/html').send(String(await panel(s, cur.body.server)))
  })

  app.get<{ Params: { id: string } }>('/servers/:id/actions', async (req, reply) => {
    const s = session(req)
    if (!UUID.test(req.params.id)) return reply.type('text/html').send(String(message('No such server.', 'error')))
    const list = await call<{ instanceActions: ActionView[] }>(s, 'compute', 'GET', `/v2.1/servers/${req.params.id}/os-instance-actions`)
    if (!list.ok) return reply.type('text/html').send(String(message(list.message, 'error')))
    const recent = list.body.instanceActions.slice(0, 15)
    const detailed = await Promise.all(
      recent.map(async (a) => {
        const d = await call<{ instanceAction: ActionView }>(
          s,
          'compute',
          'GET',
          `/v2.1/servers/${req.params.id}/os-instance-actions/${a.request_id}`,
        )
        return d.ok ? d.body.instanceAction : a
      }),
    )
    const failed = (a: ActionView) => (a.events ?? []).some((e) => e.result === 'Error') || a.message === 'Error'
    return reply.type('text/html').send(
      String(
        html`<ol class="timeline">
            ${detailed.map(
              (
                a,
              ) => html`<li${failed(a) ? html` class="failed"` : ''}><strong>${a.action}</strong> · ${when(a.start_time + 'Z')}${a.message ? html` · <span class="task">${a.message}</span>` : ''}
<ul>${(a.events ?? []).map(
                (e) =>
                  html`<li>
                    ${e.event}: ${e.result ?? 'running'}
                    (${when(e.start_time + 'Z')}${e.finish_time ? ` → ${when(e.finish_time + 'Z')}` : ''})${e.traceback ? html`<pre>${e.traceback}</pre>` : ''}
                  </li>`,
              )}</ul></li>`,
            )}
          </ol>
          ${detailed.length === 0 ? html`<p>No actions yet.</p>` : ''}`,
      ),
    )
  })

  app.get<{ Params: { id: string } }>('/servers/:id/console', async (req, reply) => {
    const s = session(req)
    if (!UUID.test(req.params.id)) return reply.type('text/html').send(String(message('No such server.', 'error')))
    const a = await call<{ output: string }>(s, 'compute', 'POST', `/v2.1/servers/${req.params.id}/action`, {
      body: { 'os-getConsoleOutput': { length: 200 } },
    })
    const refresh = html`<p>
      <button type="button" hx-get="/servers/${req.params.id}/console" hx-target="#console">Refresh console log</button>
    </p>`
    if (!a.ok) return reply.type('text/html').send(String(html`${message(a.message, 'error')}${refresh}`))
    return reply.type('text/html').send(
      String(
        html`<pre class="console" tabindex="0" aria-label="Console log">${a.body.output || '(empty)'}</pre>
          ${refresh}`,
      ),
    )
  })

  // --- the console tab: xterm.js on the serial proxy ------------------------------------------------

  app.get<{ Params: { id: string } }>('/servers/:id/terminal', async (req, reply) => {
    const s = session(req)
    const cur = await server(s, req.params.id)
    if (!cur.ok) return noServer(reply, s, cur, 'Console')
    const styleNonce = randomBytes(16).toString('base64')
    reply.header('content-security-policy', contentSecurityPolicy({ connect: proxyOrigin, styleNonce }))
    const sv = cur.body.server
    return reply.type('text/html').send(
      String(
        layout({
          title: `Console of ${sv.name}`,
          session: s,
          current: 'servers',
          body: terminalBody(sv),
          head: terminalHead(styleNonce),
        }),
      ),
    )
  })

  // A console URL for the terminal, from the compute API as the user (policy, project, state apply).
  app.post<{ Params: { id: string } }>('/servers/:id/console-url', async (req, reply) => {
    const s = session(req)
    if (!UUID.test(req.params.id)) return reply.code(404).send({ message: `Instance ${req.params.id} could not be found.` })
    const a = await call<{ remote_console: { url: string } }>(s, 'compute', 'POST', `/v2.1/servers/${req.params.id}/remote-consoles`, {
      body: { remote_console: { protocol: 'serial', type: 'serial' } },
    })
    if (!a.ok) return reply.code(a.status).send({ message: a.message })
    return reply.send({ url: a.body.remote_console.url })
  })

  // --- live state: the compute API's event stream, relayed as rendered rows ------------------------

  app.get('/events', async (req, reply) => {
    const s = session(req)
    const all = allOf(req, s)
    const since = one((req.query as Record<string, unknown>).since) ?? ''
    const abort = new AbortController()
    let upstream: Response
    try {
      upstream = await fetch(`${deps.computeRoot}/v2.1/servers/events${all ? '?all_tenants=1' : ''}`, {
        headers: { 'x-auth-token': s.token, accept: 'text/event-stream' },
        signal: abort.signal,
      })
    } catch (err) {
      req.log.warn({ err: (err as Error).message }, 'dashboard: the server event stream could not be opened')
      return reply.code(503).send()
    }
    if (upstream.status === 401) throw new SessionGone()
    if (!upstream.ok || !upstream.body) {
      abort.abort()
      return reply.code(upstream.status).send()
    }
    reply.hijack()
    const res = reply.raw
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', 'x-accel-buffering': 'no', ...SECURITY_HEADERS })
    res.flushHeaders()
    let closed = false
    const end = () => {
      if (closed) return
      closed = true
      clearInterval(keepAlive)
      abort.abort()
      streams.delete(end)
      res.end()
    }
    streams.add(end)
    const keepAlive = setInterval(() => res.write(': keep-alive\n\n'), keepAliveMs)
    keepAlive.unref()
    res.once('close', end)
    const n = await names(s, all)
    // One row at a time, in the order of the events: a slower render never overtakes a later one.
    let chain = Promise.resolve()
    const relay = async (state: { id: string; name: string; status: string; 'OS-EXT-STS:task_state': string | null }) => {
      const send = (data: object) => !closed && res.write(`event: row\ndata: ${JSON.stringify(data)}\n\n`)
      if (state.status === 'DELETED') return void send({ id: state.id, name: state.name, deleted: true })
      const cur = await api.call<{ server: ServerView }>('compute', 'GET', `/v2.1/servers/${state.id}`, { token: s.token })
      if (cur.status === 404) return void send({ id: state.id, name: state.name, deleted: true })
      // The token expired or was revoked (logged out elsewhere): the stream ends with the session.
      if (cur.status === 401) return end()
      if (!cur.ok) return
      const sv = cur.body.server
      if (imageIdOf(sv) && !n.images.has(imageIdOf(sv))) for (const i of await imageList(s)) n.images.set(i.id, i.name ?? i.id)
      send({ id: sv.id, name: sv.name, status: sv.status, task: sv['OS-EXT-STS:task_state'], html: String(serverRow(s, sv, n, all)) })
    }
    const reader = upstream.body.getReader()
    const decoder = new TextDecoder()
    let buffer = ''
    try {
      for (;;) {
        const { done, value } = await reader.read()
        if (done) break
        buffer += decoder.decode(value, { stream: true })
        let cut: number
        while ((cut = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, cut)
          buffer = buffer.slice(cut + 2)
          const id = /^id: (.*)$/m.exec(block)?.[1] ?? ''
          const data = /^data: (.*)$/m.exec(block)?.[1]
          // The stream starts with every server's current state: what the page already shows is skipped.
          if (!data || (since && id && id < since)) continue
          const state = JSON.parse(data) as Parameters<typeof relay>[0]
          chain = chain
            .then(() => relay(state))
            .catch((err: Error) => req.log.warn({ err: err.message }, 'dashboard: a row could not be rendered'))
        }
      }
    } catch {
      /* aborted: the page went away, or Skiff is closing */
    }
    await chain
    end()
  })

  // --- images -----------------------------------------------------------------------------------

  const imageRows = (s: Session, images: ImageInfo[]) =>
    images.map(
      (i) =>
        html`<tr id="image-${i.id}">
          <th scope="row" data-label="Name">${i.name ?? '(no name)'}</th>
          <td data-label="Status">${i.status}</td>
          <td data-label="Visibility">${i.visibility}</td>
          <td data-label="Format">${i.disk_format ?? ''}</td>
          <td data-label="Size">${i.size === null ? '' : `${(i.size / 1048576).toFixed(1)} MiB`}</td>
          <td data-label="Created"><time datetime="${i.created_at}">${when(i.created_at)}</time></td>
          <td data-label="Actions">
            ${i.owner === s.projectId || s.isAdmin ? deleteForm(s, `/images/${i.id}/delete`, `Delete image ${i.name ?? i.id}?`) : ''}
          </td>
        </tr>`,
    )

  app.get('/images', async (req, reply) => {
    const s = session(req)
    const images = await imageList(s)
    const body = html`<h1>Images</h1>
      ${dataTable({
        caption: 'Images this project can use',
        columns: ['Name', 'Status', 'Visibility', 'Format', 'Size', 'Created', 'Actions'],
        rows: imageRows(s, images),
        bodyId: 'image-rows',
      })}
      <section class="card" aria-labelledby="upload-title">
        <h2 id="upload-title">Upload an image</h2>
        <form method="post" action="/images" data-upload>
          ${csrfField(s)}
          <label for="upload-name">Image name</label><input id="upload-name" name="name" required maxlength="255" />
          <label for="upload-format">Disk format</label
          ><select id="upload-format" name="disk_format">
            ${['qcow2', 'raw', 'iso', 'vmdk', 'vdi', 'vhd', 'ami', 'aki', 'ari'].map((f) => html`<option>${f}</option>`)}
          </select>
          <label for="upload-file">File</label><input id="upload-file" name="file" type="file" required />
          <p><progress hidden value="0" max="1" aria-label="Upload progress"></progress></p>
          <p><button class="primary" type="submit">Upload image</button></p>
          <p id="upload-status" role="status" aria-live="polite"></p>
        </form>
      </section>`
    return page(reply, 'Images', s, 'images', body)
  })

  app.get('/images/rows', async (req, reply) => {
    const s = session(req)
    return reply.type('text/html').send(String(html`${imageRows(s, await imageList(s))}`))
  })

  app.post<{ Body: Form }>('/images', async (req, reply) => {
    const s = session(req)
    const f = req.body
    const disk = f.disk_format ?? 'qcow2'
    const container = ['aki', 'ari', 'ami'].includes(disk) ? disk : 'bare'
    const a = await call<{ id: string; name: string }>(s, 'image', 'POST', '/v2/images', {
      body: { name: (f.name ?? '').trim(), disk_format: disk, container_format: container, visibility: 'private' },
    })
    if (!a.ok) return reply.code(a.status).send({ message: a.message })
    return reply.code(201).send({ id: a.body.id, name: a.body.name })
  })

  app.put<{ Params: { id: string }; Body: Readable }>('/images/:id/file', async (req, reply) => {
    const s = session(req)
    if (!UUID.test(req.params.id)) return reply.code(404).send({ message: 'No such image.' })
    const a = await call(s, 'image', 'PUT', `/v2/images/${req.params.id}/file`, { stream: req.body })
    if (!a.ok) return reply.code(a.status).send({ message: a.message })
    const img = await call<ImageInfo>(s, 'image', 'GET', `/v2/images/${req.params.id}`)
    return reply.send({ id: req.params.id, name: img.ok ? img.body.name : null, status: img.ok ? img.body.status : null })
  })

  app.post<{ Params: { id: string }; Body: Form }>('/images/:id/delete', async (req, reply) => {
    const s = session(req)
    if (!UUID.test(req.params.id)) return answer(req, reply, s, message('No such image.', 'error'), '/images', true)
    const a = await call(s, 'image', 'DELETE', `/v2/images/${req.params.id}`)
    if (!a.ok) return answer(req, reply, s, message(a.message, 'error'), '/images', true)
    if (isHtmx(req)) reply.header('hx-trigger', 'images-changed')
    return answer(
      req,
      reply,
      s,
      html`${message('Image deleted.', 'ok')}
        <div hx-swap-oob="delete" id="image-${req.params.id}"></div>`,
      '/images',
    )
  })

  // --- key pairs --------------------------------------------------------------------------------

  app.get('/keypairs', async (req, reply) => {
    const s = session(req)
    const a = await call<{ keypairs: { keypair: { name: string; fingerprint: string; type?: string } }[] }>(
      s,
      'compute',
      'GET',
      '/v2.1/os-keypairs',
      { microversion: '2.2' },
    )
    const rows = a.ok ? a.body.keypairs.map((k) => k.keypair) : []
    const body = html`<h1>Key pairs</h1>
      ${a.ok ? '' : message(a.message, 'error')}
      ${dataTable({
        caption: 'Your key pairs',
        columns: ['Name', 'Type', 'Fingerprint', 'Actions'],
        rows: rows.map(
          (k) =>
            html`<tr id="keypair-${k.name}">
              <th scope="row" data-label="Name">${k.name}</th>
              <td data-label="Type">${k.type ?? 'ssh'}</td>
              <td data-label="Fingerprint"><code>${k.fingerprint}</code></td>
              <td data-label="Actions">
                ${deleteForm(s, '/keypairs/delete', `Delete key pair ${k.name}?`, html`<input type="hidden" name="name" value="${k.name}" />`)}
              </td>
            </tr>`,
        ),
      })}
      ${rows.length === 0 ? html`<p>No key pairs yet.</p>` : ''}
      <section class="card" aria-labelledby="kp-create-title">
        <h2 id="kp-create-title">Create a key pair</h2>
        <form method="post" action="/keypairs" hx-post="/keypairs" hx-target="#keypair-result">
          ${csrfField(s)} <label for="kp-name">Key pair name</label><input id="kp-name" name="name" required maxlength="255" />
          <p><button class="primary" type="submit">Create key pair</button></p>
        </form>
      </section>
      <section class="card" aria-labelledby="kp-import-title">
        <h2 id="kp-import-title">Import a public key</h2>
        <form method="post" action="/keypairs" hx-post="/keypairs" hx-target="#keypair-result">
          ${csrfField(s)} <label for="kp-import-name">Key pair name</label
          ><input id="kp-import-name" name="name" required maxlength="255" /> <label for="kp-public-key">Public key</label
          ><textarea id="kp-public-key" name="public_key" required placeholder="ssh-ed25519 AAAA..."></textarea>
          <p><button class="primary" type="submit">Import key pair</button></p>
        </form>
      </section>
      <div id="keypair-result" aria-live="polite"></div>`
    return page(reply, 'Key pairs', s, 'keypairs', body)
  })

  app.post<{ Body: Form }>('/keypairs', async (req, reply) => {
    const s = session(req)
    const name = (req.body.name ?? '').trim()
    const publicKey = req.body.public_key?.trim()
    // Below 2.92 Nova still generates key pairs (and answers the private key, once).
    const a = await call<{ keypair: { name: string; fingerprint: string; private_key?: string } }>(
      s,
      'compute',
      'POST',
      '/v2.1/os-keypairs',
      {
        microversion: '2.2',
        body: { keypair: { name, ...(publicKey ? { public_key: publicKey } : {}) } },
      },
    )
    if (!a.ok) return answer(req, reply, s, message(a.message, 'error'), '/keypairs', true)
    const k = a.body.keypair
    const pk = k.private_key
    return answer(
      req,
      reply,
      s,
      html`${message(`Key pair ${k.name} ${pk ? 'created' : 'imported'} (${k.fingerprint}). Reload to see it in the list.`, 'ok')}
      ${
        pk
          ? html`<p><strong>The private key is shown this once:</strong> save it now.</p>
              <p>
                <a class="button" download="${k.name}.pem" href="data:application/x-pem-file;base64,${Buffer.from(pk).toString('base64')}"
                  >Download ${k.name}.pem</a
                >
              </p>
              <label for="kp-private">Private key</label><textarea id="kp-private" readonly rows="8">${pk}</textarea>`
          : ''
      }`,
      '/keypairs',
    )
  })

  app.post<{ Body: Form }>('/keypairs/delete', async (req, reply) => {
    const s = session(req)
    const name = req.body.name ?? ''
    const a = await call(s, 'compute', 'DELETE', `/v2.1/os-keypairs/${encodeURIComponent(name)}`)
    if (!a.ok) return answer(req, reply, s, message(a.message, 'error'), '/keypairs', true)
    return answer(req, reply, s, message(`Key pair ${name} deleted. Reload to update the list.`, 'ok'), '/keypairs')
  })

  // --- hosts (admins: the API refuses others) ------------------------------------------------------

  app.get('/hosts', async (req, reply) => {
    const s = session(req)
    const a = await call<{ hypervisors: HypervisorView[] }>(s, 'compute', 'GET', '/v2.1/os-hypervisors/detail', { microversion: '2.53' })
    const body = a.ok
      ? html`<h1>Hosts</h1>
          ${dataTable({
            caption: 'Hypervisor hosts',
            columns: ['Host', 'State', 'Status', 'Servers', 'vCPUs used', 'RAM used'],
            rows: a.body.hypervisors.map(
              (h) =>
                html`<tr>
                  <th scope="row" data-label="Host">${h.hypervisor_hostname}</th>
                  <td data-label="State" class="${h.state === 'up' ? 'status-active' : 'status-error'}">${h.state}</td>
                  <td data-label="Status">${h.status}</td>
                  <td data-label="Servers">${h.running_vms}</td>
                  <td data-label="vCPUs used">${h.vcpus_used} of ${h.vcpus}</td>
                  <td data-label="RAM used">${h.memory_mb_used} of ${h.memory_mb} MB</td>
                </tr>`,
            ),
          })}`
      : html`<h1>Hosts</h1>
          ${message(a.message, 'error')}`
    return page(reply, 'Hosts', s, 'hosts', body)
  })

  return app
}

interface TokenBody {
  expires_at: string
  user: { id: string; name: string }
  project?: { id: string; name: string }
  roles?: { id: string; name: string }[]
}

interface ActionView {
  action: string
  request_id: string
  start_time: string
  message: string | null
  events?: { event: string; start_time: string; finish_time: string | null; result: string | null; traceback?: string | null }[]
}

interface HypervisorView {
  hypervisor_hostname: string
  state: string
  status: string
  running_vms: number
  vcpus: number
  vcpus_used: number
  memory_mb: number
  memory_mb_used: number
}
