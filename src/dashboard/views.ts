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

export function layout(opts: { title: string; session?: Session; current?: string; body: Html; live?: string }): Html {
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

const addressesOf = (s: ServerView) =>
  Object.values(s.addresses ?? {})
    .flat()
    .map((a) => a.addr)
    .join(', ')

export const imageIdOf = (s: ServerView) => (typeof s.image === 'object' && s.image ? s.image.id : '')

function actionButton(
  s: Session,
  server: ServerView,
  action: string,
  label: string,
  opts: { danger?: boolean; confirm?: string } = {},
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
    ${csrfField(s)}<input type="hidden" name="action" value="${action}" /><button type="submit" ${opts.danger ? html` class="danger"` : ''}>
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
  const imageId = imageIdOf(server)
  return html`<tr id="server-${server.id}" data-status="${server.status}">
    <th scope="row" data-label="Name">
      <a href="/servers/${server.id}">${server.name}</a>${server.locked ? html` <span title="locked">(locked)</span>` : ''}
    </th>
    ${showProject ? html`<td data-label="Project">${names.projects?.get(server.tenant_id) ?? server.tenant_id}</td>` : ''}
    <td data-label="Status">${statusCell(server)}</td>
    <td data-label="Task">${taskCell(server)}</td>
    <td data-label="Power">${powerName(server['OS-EXT-STS:power_state'])}</td>
    <td data-label="Image">${imageId ? (names.images.get(imageId) ?? imageId) : '(volume)'}</td>
    <td data-label="Flavor">${server.flavor?.original_name ?? ''}</td>
    <td data-label="Addresses">${addressesOf(server)}</td>
    <td data-label="Updated"><time datetime="${server.updated}">${server.updated.replace('T', ' ').replace('Z', '')}</time></td>
    <td data-label="Actions">${serverActions(s, server)}</td>
  </tr>`
}

export function serverTable(s: Session, servers: ServerView[], names: Names, showProject: boolean): Html {
  return html`<table class="responsive" aria-describedby="servers-caption">
      <caption id="servers-caption" class="skip">
        Servers${showProject ? ' of every project' : ''}, updated live
      </caption>
      <thead>
        <tr>
          <th scope="col">Name</th>
          ${showProject ? html`<th scope="col">Project</th>` : ''}
          <th scope="col">Status</th>
          <th scope="col">Task</th>
          <th scope="col">Power</th>
          <th scope="col">Image</th>
          <th scope="col">Flavor</th>
          <th scope="col">Addresses</th>
          <th scope="col">Updated</th>
          <th scope="col">Actions</th>
        </tr>
      </thead>
      <tbody id="server-rows">
        ${servers.map((v) => serverRow(s, v, names, showProject))}
      </tbody>
    </table>
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

/** A date for people: ISO without the T and Z. */
export const when = (iso: string | null | undefined) => (iso ? iso.replace('T', ' ').replace(/(\.\d+)?Z$/, ' UTC') : '')
