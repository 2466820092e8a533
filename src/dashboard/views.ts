// The dashboard's pages and fragments: server-rendered HTML, htmx attributes for the partial
// updates, no inline script or style. Every control has a visible label or an accessible name.
import { html, type Html } from './html.ts'
import type { Session } from './session.ts'

/** What the dashboard reads of a server (compute 2.79's detail view). */
export interface ServerView {
  id: string
  name: string
  status: string
  'OS-EXT-STS:task_state': string | null
  'OS-EXT-STS:vm_state': string
  'OS-EXT-STS:power_state': number
  'OS-EXT-SRV-ATTR:host'?: string | null
  image: { id: string } | ''
  flavor: { original_name?: string; vcpus?: number; ram?: number; disk?: number }
  addresses: Record<string, { addr: string; version: number }[]>
  updated: string
  created: string
  locked?: boolean
  locked_reason?: string | null
  fault?: { code: number; message: string; created: string }
  key_name: string | null
  tenant_id: string
  user_id: string
}

export interface ImageInfo {
  id: string
  name: string | null
  status: string
  visibility: string
  disk_format: string | null
  container_format: string | null
  size: number | null
  owner: string | null
  created_at: string
}

export interface Names {
  images: Map<string, string>
  projects?: Map<string, string>
}

const POWER: Record<number, string> = { 0: 'No state', 1: 'Running', 3: 'Paused', 4: 'Shut down', 6: 'Crashed', 7: 'Suspended' }
export const powerName = (p: number) => POWER[p] ?? String(p)

export function csrfField(s: Session): Html {
  return html`<input type="hidden" name="_csrf" value="${s.csrf}" />`
}

/** What a page's <head> may add: the terminal's scripts and stylesheet (`terminalHead`). */
export function layout(opts: { title: string; session?: Session; current?: string; body: Html; live?: string; head?: Html }): Html {
  const s = opts.session
  const nav = s
    ? [
        ['servers', '/servers', 'Servers'],
        ['images', '/images', 'Images'],
        ['keypairs', '/keypairs', 'Key pairs'],
        ...(s.isAdmin ? [['hosts', '/hosts', 'Hosts']] : []),
      ]
    : []
  return html`<!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <meta name="htmx-config" content='{"includeIndicatorStyles": false, "allowEval": false, "selfRequestsOnly": true}' />
        ${s ? html`<meta name="csrf-token" content="${s.csrf}" />` : ''}
        <title>${opts.title} · Skiff</title>
        <link rel="stylesheet" href="/assets/dashboard.css" />
        <script src="/assets/htmx.min.js" defer></script>
        <script src="/assets/dashboard.js" defer></script>
        ${opts.head ?? ''}
      </head>
      <body>
        <a class="skip" href="#main">Skip to content</a>
        <header>
          <a class="brand" href="/">Skiff</a>
          ${
            s
              ? html`<nav aria-label="Main">
                    <ul>
                      ${nav.map(
                        ([key, href, label]) =>
                          html`<li><a href="${href}" ${key === opts.current ? html` aria-current="page"` : ''}>${label}</a></li>`,
                      )}
                    </ul>
                  </nav>
                  <div class="who">
                    <span>${s.userName} · project ${s.projectName}${s.isAdmin ? ' · admin' : ''}</span>
                    <form class="inline" method="post" action="/logout">${csrfField(s)}<button type="submit">Log out</button></form>
                  </div>`
              : ''
          }
        </header>
        <main id="main" ${opts.live ? html` data-live="${opts.live}"` : ''}>
          <div id="messages" class="messages" role="status" aria-live="polite"></div>
          ${opts.body}
        </main>
        <div id="live-status" class="skip" role="status" aria-live="polite"></div>
        <dialog id="dialog" aria-labelledby="dialog-title"><div id="dialog-body"></div></dialog>
      </body>
    </html>`
}

export function loginPage(opts: { csrf: string; error?: string; user?: string; project?: string; domain: string }): Html {
  return layout({
    title: 'Log in',
    body: html`<div class="login">
      <h1>Log in to Skiff</h1>
      ${opts.error ? html`<p class="message error" role="alert">${opts.error}</p>` : ''}
      <form method="post" action="/login">
        <input type="hidden" name="_csrf" value="${opts.csrf}" />
        <label for="login-user">User name</label>
        <input
          id="login-user"
          name="user"
          autocomplete="username"
          required
          value="${opts.user ?? ''}"
          ${opts.user ? '' : html`autofocus`}
        />
        <label for="login-password">Password</label>
        <input
          id="login-password"
          name="password"
          type="password"
          autocomplete="current-password"
          required
          ${opts.user ? html`autofocus` : ''}
        />
        <label for="login-project">Project</label>
        <input id="login-project" name="project" required value="${opts.project ?? ''}" />
        <p class="hint">Domain ${opts.domain}</p>
        <p><button class="primary" type="submit">Log in</button></p>
      </form>
    </div>`,
  })
}

export function message(text: string, kind: 'ok' | 'error'): Html {
  return html`<p class="message ${kind}" ${kind === 'error' ? html`role="alert"` : ''}>${text}</p>`
}

export const addressesOf = (s: ServerView) =>
  Object.values(s.addresses ?? {})
    .flat()
    .map((a) => a.addr)
    .join(', ')

export const imageIdOf = (s: ServerView) => (typeof s.image === 'object' && s.image ? s.image.id : '')

/** The server's image by name where it is known; '(volume)' for a server booted from a volume. */
export function imageName(server: ServerView, names: Names): string {
  const id = imageIdOf(server)
  return id ? (names.images.get(id) ?? id) : '(volume)'
}

/** A Delete button posting to `action` (htmx, its answer in the messages) after the browser's confirmation. */
export function deleteForm(s: Session, action: string, confirm: string, fields: Html = html``): Html {
  return html`<form class="inline" method="post" action="${action}" hx-post="${action}" hx-target="#messages" hx-confirm="${confirm}">
    ${csrfField(s)}${fields}<button type="submit" class="danger">Delete</button>
  </form>`
}

/** A table that becomes cards below 720 px; its caption is for screen readers. */
export function dataTable(opts: { caption: string; columns: (string | false)[]; rows: Html[]; bodyId?: string }): Html {
  return html`<table class="responsive">
    <caption class="skip">
      ${opts.caption}
    </caption>
    <thead>
      <tr>
        ${opts.columns.filter((c) => c !== false).map((c) => html`<th scope="col">${c}</th>`)}
      </tr>
    </thead>
    <tbody ${opts.bodyId ? html`id="${opts.bodyId}"` : ''}>
      ${opts.rows}
    </tbody>
  </table>`
}

function actionButton(
  s: Session,
  server: ServerView,
  action: string,
  label: string,
  opts: { danger?: boolean; primary?: boolean; confirm?: string } = {},
): Html {
  return html`<form
    class="inline"
    method="post"
    action="/servers/${server.id}/action"
    hx-post="/servers/${server.id}/action"
    hx-disabled-elt="find button"
    hx-target="#messages"
    ${opts.confirm ? html` hx-confirm="${opts.confirm}"` : ''}
  >
    ${csrfField(s)}<input type="hidden" name="action" value="${action}" /><button
      type="submit"
      ${opts.danger ? html` class="danger"` : opts.primary ? html` class="primary"` : ''}
    >
      ${label}
    </button>
  </form>`
}

/** The buttons of the actions Nova accepts from the server's status (it refuses the others with its 409 anyway). */
export function serverActions(s: Session, server: ServerView): Html {
  const st = server.status
  const b: Html[] = []
  if (st === 'SHUTOFF') b.push(actionButton(s, server, 'start', 'Start'))
  if (st === 'ACTIVE') b.push(actionButton(s, server, 'stop', 'Stop'), actionButton(s, server, 'reboot', 'Reboot'))
  if (['ACTIVE', 'SHUTOFF', 'ERROR'].includes(st))
    b.push(
      html`<button type="button" hx-get="/servers/${server.id}/rescue/dialog" hx-target="#dialog-body" aria-haspopup="dialog">
        Rescue
      </button>`,
    )
  if (st === 'RESCUE') b.push(actionButton(s, server, 'unrescue', 'Unrescue'))
  b.push(server.locked ? actionButton(s, server, 'unlock', 'Unlock') : actionButton(s, server, 'lock', 'Lock'))
  b.push(actionButton(s, server, 'delete', 'Delete', { danger: true, confirm: `Delete server ${server.name}?` }))
  return html`<div class="actions">${b}</div>`
}

export function statusCell(server: ServerView): Html {
  return html`<span class="status status-${server.status.toLowerCase()}">${server.status}</span>`
}

export function taskCell(server: ServerView): Html {
  const t = server['OS-EXT-STS:task_state']
  return t
    ? html`<span class="task">${t}</span> <progress aria-label="${t} in progress"></progress>`
    : html`<span aria-label="no task">—</span>`
}

export function serverRow(s: Session, server: ServerView, names: Names, showProject: boolean): Html {
  return html`<tr id="server-${server.id}" data-status="${server.status}">
    <th scope="row" data-label="Name">
      <a href="/servers/${server.id}">${server.name}</a>${server.locked ? html` <span title="locked">(locked)</span>` : ''}
    </th>
    ${showProject ? html`<td data-label="Project">${names.projects?.get(server.tenant_id) ?? server.tenant_id}</td>` : ''}
    <td data-label="Status">${statusCell(server)}</td>
    <td data-label="Task">${taskCell(server)}</td>
    <td data-label="Power">${powerName(server['OS-EXT-STS:power_state'])}</td>
    <td data-label="Image">${imageName(server, names)}</td>
    <td data-label="Flavor">${server.flavor?.original_name ?? ''}</td>
    <td data-label="Addresses">${addressesOf(server)}</td>
    <td data-label="Updated"><time datetime="${server.updated}">${when(server.updated)}</time></td>
    <td data-label="Actions">${serverActions(s, server)}</td>
  </tr>`
}

export function serverTable(s: Session, servers: ServerView[], names: Names, showProject: boolean): Html {
  return html`${dataTable({
    caption: `Servers${showProject ? ' of every project' : ''}, updated live`,
    columns: ['Name', showProject && 'Project', 'Status', 'Task', 'Power', 'Image', 'Flavor', 'Addresses', 'Updated', 'Actions'],
    rows: servers.map((v) => serverRow(s, v, names, showProject)),
    bodyId: 'server-rows',
  })}
  ${servers.length === 0 ? html`<p id="no-servers">No servers yet.</p>` : ''}`
}

export interface Choice {
  value: string
  label: string
}

export function options(choices: Choice[], selected?: string): Html[] {
  return choices.map((c) => html`<option value="${c.value}" ${c.value === selected ? html` selected` : ''}>${c.label}</option>`)
}

export function createServerForm(s: Session, opts: { images: Choice[]; flavors: Choice[]; keypairs: Choice[] }): Html {
  return html`<section class="card" aria-labelledby="create-title">
    <h2 id="create-title">New server</h2>
    <form method="post" action="/servers" hx-post="/servers" hx-target="#create-result" hx-disabled-elt="find button" data-reset>
      ${csrfField(s)}
      <label for="create-name">Name</label><input id="create-name" name="name" required maxlength="255" />
      <label for="create-image">Image</label
      ><select id="create-image" name="image" required>
        ${options(opts.images)}
      </select>
      <label for="create-flavor">Flavor</label
      ><select id="create-flavor" name="flavor" required>
        ${options(opts.flavors)}
      </select>
      <label for="create-key">Key pair</label
      ><select id="create-key" name="key_name">
        <option value="">None</option>
        ${options(opts.keypairs)}
      </select>
      <label for="create-user-data">User data</label
      ><textarea id="create-user-data" name="user_data" aria-describedby="create-user-data-hint"></textarea>
      <p class="hint" id="create-user-data-hint">A <code>#!</code> script runs once at first boot (qemu driver).</p>
      <p><button class="primary" type="submit">Create server</button></p>
    </form>
    <div id="create-result"></div>
  </section>`
}

/** A secret shown once, in a read-only field with a copy button. */
export function secretField(id: string, label: string, value: string): Html {
  return html`<label for="${id}">${label}</label>
    <p><input id="${id}" class="secret" readonly value="${value}" /> <button type="button" data-copy="${id}">Copy</button></p>`
}

export function rescueDialog(
  s: Session,
  server: ServerView,
  opts: { images: Choice[]; keypairs: Choice[]; ownImage: string; defaultMinutes?: number },
): Html {
  return html`<h2 id="dialog-title">Rescue ${server.name}</h2>
    <p class="hint">
      The server's VM is shut down and a clean rescue system boots, with the server's own disk attached second. Unrescue boots the
      (repaired) disk again.
    </p>
    <form
      method="post"
      action="/servers/${server.id}/rescue"
      hx-post="/servers/${server.id}/rescue"
      hx-target="#dialog-body"
      hx-disabled-elt="find button[type=submit]"
    >
      ${csrfField(s)}
      <label for="rescue-image">Rescue image</label>
      <select id="rescue-image" name="image_ref">
        <option value="">The server's own image (${opts.ownImage})</option>
        ${options(opts.images)}
      </select>
      <fieldset>
        <legend>Root password of the rescue system</legend>
        <label class="choice"><input type="radio" name="password_mode" value="generate" checked /> Generate one</label>
        <label class="choice"><input type="radio" name="password_mode" value="given" /> Use this password</label>
        <label for="rescue-pass">Password to use</label
        ><input id="rescue-pass" name="admin_pass" type="password" autocomplete="new-password" maxlength="255" />
      </fieldset>
      <fieldset>
        <legend>SSH keys authorized in the rescue system</legend>
        <label for="rescue-key">Key pair</label
        ><select id="rescue-key" name="key_name">
          <option value="">None</option>
          ${options(opts.keypairs)}
        </select>
        <label for="rescue-public-key">Or a public key</label
        ><textarea id="rescue-public-key" name="public_key" placeholder="ssh-ed25519 AAAA..."></textarea>
      </fieldset>
      <label for="rescue-minutes">Auto-exit after (minutes)</label>
      <input
        id="rescue-minutes"
        name="minutes"
        type="number"
        min="1"
        max="10080"
        value="${opts.defaultMinutes ?? ''}"
        aria-describedby="rescue-minutes-hint"
      />
      <p class="hint" id="rescue-minutes-hint">Leave empty to stay in rescue until you unrescue.</p>
      <p class="actions"><button class="primary" type="submit">Rescue</button> <button type="button" data-close-dialog>Cancel</button></p>
    </form>`
}

/** What the dashboard reads of a rescue (Skiff's `GET /servers/{id}/rescue`). */
export interface RescueView {
  status: string
  auto_unrescue_after: number | null
  image: { id: string; name: string | null }
  requested_at: string
  rescued_at: string | null
  expires_at: string | null
  authorized_keys: { type: string; fingerprint: string }[]
  access: { ssh: { host?: string; port?: number; host_key_fingerprint: string | null } }
}

/** Where `GET /servers/{id}/access` says SSH reaches the server, when the driver forwards a port. */
export interface SshAccess {
  host: string
  port: number
}

const sshLine = (ssh: SshAccess) => html`<code>ssh -p ${ssh.port} root@${ssh.host}</code>`

const countdown = (expiresAt: string) => html`<span class="countdown" data-countdown="${expiresAt}"></span> (at ${when(expiresAt)})`

/** The way into the server's serial console in the browser (the console tab). */
export const terminalHref = (server: { id: string }) => `/servers/${server.id}/terminal`

/** The tabs of a server's pages: its overview and its serial console. */
export function serverTabs(server: ServerView, current: 'overview' | 'console'): Html {
  const tab = (key: string, href: string, label: string) =>
    html`<li><a href="${href}" ${key === current ? html` aria-current="page"` : ''}>${label}</a></li>`
  return html`<nav class="tabs" aria-label="Server ${server.name}">
    <ul>
      ${tab('overview', `/servers/${server.id}`, 'Overview')} ${tab('console', terminalHref(server), 'Console')}
    </ul>
  </nav>`
}

/** What a rescue answered, in the dialog: the password once, how to reach the rescue system, the auto-exit. */
export function rescueStarted(
  server: ServerView,
  rescue: RescueView,
  opts: { adminPass?: string; ssh: SshAccess | null; serialConsole: boolean },
): Html {
  const hostKey = rescue.access.ssh.host_key_fingerprint
  return html`<h2 id="dialog-title">Rescue of ${server.name} started</h2>
    <p>The server goes to <strong>RESCUE</strong> in a moment; the list shows it live.</p>
    ${
      opts.adminPass
        ? secretField('rescue-password', 'Rescue password (shown once)', opts.adminPass)
        : html`<p>No password is returned by this cloud (instance passwords are off); use your SSH key.</p>`
    }
    ${
      opts.ssh
        ? html`<p>
            Reach it with
            ${sshLine(opts.ssh)}${
              hostKey
                ? html`, host key <code>${hostKey}</code>`
                : ' (the rescue system makes a new host key: see the server page once it is up)'
            }.
          </p>`
        : html`<p>This driver forwards no SSH port.</p>`
    }
    ${
      rescue.expires_at
        ? html`<p>Auto-exit in ${countdown(rescue.expires_at)}.</p>`
        : rescue.auto_unrescue_after
          ? html`<p>
              Auto-exit ${Math.round(rescue.auto_unrescue_after / 60)} minutes after the rescue system is up (the server page counts down).
            </p>`
          : ''
    }
    <p class="actions">
      ${opts.serialConsole ? html`<a class="button" href="${terminalHref(server)}">Log in to the rescue system in the browser</a>` : ''}
      <a class="button" href="/servers/${server.id}">Open the server page</a> <button type="button" data-close-dialog>Close</button>
    </p>`
}

/** A form of the rescue's auto-exit (PATCH through the dashboard's extend route). */
function extendForm(s: Session, server: ServerView, cls: string, fields: Html): Html {
  return html`<form
    class="${cls}"
    method="post"
    action="/servers/${server.id}/rescue/extend"
    hx-post="/servers/${server.id}/rescue/extend"
    hx-target="#messages"
  >
    ${csrfField(s)} ${fields}
  </form>`
}

/** The rescue state on the server page: image, times, keys, access, auto-exit with extend and end now. */
export function rescueCard(
  s: Session,
  server: ServerView,
  rescue: RescueView,
  opts: { ssh: SshAccess | null; serialConsole: boolean },
): Html {
  const hostKey = rescue.access.ssh.host_key_fingerprint
  return html`<div class="card" aria-labelledby="rescue-title">
    <h3 id="rescue-title">Rescue: ${rescue.status}</h3>
    <dl class="facts">
      <dt>Rescue image</dt>
      <dd>${rescue.image.name ?? rescue.image.id}</dd>
      <dt>Requested</dt>
      <dd>${when(rescue.requested_at)}</dd>
      <dt>Rescued</dt>
      <dd>${rescue.rescued_at ? when(rescue.rescued_at) : 'not yet'}</dd>
      <dt>Disks</dt>
      <dd>the rescue image first; the server's own disk second, untouched until unrescue</dd>
      <dt>Authorized keys</dt>
      <dd>${rescue.authorized_keys.length ? rescue.authorized_keys.map((k) => html`<code>${k.type} ${k.fingerprint}</code> `) : 'none'}</dd>
      <dt>SSH</dt>
      <dd>${opts.ssh ? sshLine(opts.ssh) : 'not forwarded by this driver'}</dd>
      <dt>Host key</dt>
      <dd>${hostKey ? html`<code>${hostKey}</code>` : 'not known yet'}</dd>
      <dt>Console</dt>
      <dd>
        ${opts.serialConsole ? html`<a href="${terminalHref(server)}">Log in to the rescue system in the browser</a>` : 'no serial console in this cloud'}
      </dd>
      <dt>Auto-exit</dt>
      <dd>${rescue.expires_at ? html`in ${countdown(rescue.expires_at)}` : 'never'}</dd>
    </dl>
    <div class="actions">
      ${extendForm(
        s,
        server,
        'inline extend',
        html`<label for="extend-minutes" class="choice">Minutes</label
          ><input id="extend-minutes" name="minutes" type="number" min="1" max="10080" value="30" class="minutes" />
          <button type="submit">Extend</button>`,
      )}
      ${
        rescue.expires_at
          ? extendForm(
              s,
              server,
              'inline',
              html`<input type="hidden" name="never" value="1" /><button type="submit">Never end by itself</button>`,
            )
          : ''
      }
      ${actionButton(s, server, 'unrescue', 'End now (Unrescue)', { primary: true })}
    </div>
  </div>`
}

/** The server page's state panel (refreshed live): its facts, the rescue card when rescued, its actions. */
export function serverPanel(s: Session, server: ServerView, names: Names, rescue: Html): Html {
  const f = server.flavor
  return html`<dl class="facts">
      <dt>Status</dt>
      <dd>${statusCell(server)}</dd>
      <dt>Task</dt>
      <dd>${taskCell(server)}</dd>
      <dt>Power</dt>
      <dd>${powerName(server['OS-EXT-STS:power_state'])}</dd>
      <dt>Image</dt>
      <dd>${imageName(server, names)}</dd>
      <dt>Flavor</dt>
      <dd>${f?.original_name ?? ''}${f?.vcpus !== undefined ? ` (${f.vcpus} vCPU, ${f.ram} MB, ${f.disk} GB)` : ''}</dd>
      <dt>Addresses</dt>
      <dd>${addressesOf(server)}</dd>
      <dt>Key pair</dt>
      <dd>${server.key_name ?? 'none'}</dd>
      <dt>Locked</dt>
      <dd>${server.locked ? `yes${server.locked_reason ? `: ${server.locked_reason}` : ''}` : 'no'}</dd>
      <dt>Created</dt>
      <dd>${when(server.created)}</dd>
      <dt>Updated</dt>
      <dd>${when(server.updated)}</dd>
      <dt>ID</dt>
      <dd><code>${server.id}</code></dd>
      ${
        server.fault
          ? html`<dt>Fault</dt>
              <dd class="message error">${server.fault.code}: ${server.fault.message} (${when(server.fault.created)})</dd>`
          : ''
      }
    </dl>
    ${rescue}
    <div class="actions spaced">${serverActions(s, server)}</div>`
}

/** xterm.js, its fit addon and its stylesheet from node_modules, then the console script with the page's style nonce. */
export function terminalHead(styleNonce: string): Html {
  return html`<link rel="stylesheet" href="/assets/xterm.css" />
    <script src="/assets/xterm.js" defer></script>
    <script src="/assets/addon-fit.js" defer></script>
    <script src="/assets/console.js" nonce="${styleNonce}" defer></script>`
}

/** The console tab: a terminal joined to the server's serial port (or the simulated console). */
export function terminalBody(server: ServerView): Html {
  return html`<p><a href="/servers">All servers</a></p>
    <h1>${server.name}</h1>
    ${serverTabs(server, 'console')}
    <section aria-labelledby="terminal-title">
      <h2 id="terminal-title">Serial console</h2>
      <p class="hint">
        The server's first serial port, as a cable plugged into it would show it. Press Enter for a login prompt; in rescue, log in as root
        with the rescue password. Status: ${statusCell(server)}
      </p>
      <p id="terminal-status" role="status" aria-live="polite">Starting the terminal…</p>
      <p><button type="button" id="terminal-reconnect" hidden>Reconnect</button></p>
      <div
        id="terminal"
        class="terminal"
        role="region"
        aria-label="Serial console of ${server.name}"
        data-console-url="/servers/${server.id}/console-url"
      ></div>
    </section>`
}

/** A date for people: ISO without the T and Z. */
export const when = (iso: string | null | undefined) => (iso ? iso.replace('T', ' ').replace(/(\.\d+)?Z$/, ' UTC') : '')
