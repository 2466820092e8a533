// The dashboard's own stylesheet and scripts, served as files (no inline script or style: the
// pages' Content-Security-Policy allows 'self' only). Kept here as strings so that `tsc` alone
// builds dist/ with them; htmx and xterm.js are read from their npm packages (PACKAGE_ASSETS).
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'

/** The assets served from node_modules: URL path → the package's file and its type. No CDN. */
export const PACKAGE_ASSETS: Record<string, { file: string; type: string }> = {
  '/assets/htmx.min.js': { file: 'htmx.org/dist/htmx.min.js', type: 'text/javascript; charset=utf-8' },
  '/assets/xterm.js': { file: '@xterm/xterm/lib/xterm.js', type: 'text/javascript; charset=utf-8' },
  '/assets/xterm.css': { file: '@xterm/xterm/css/xterm.css', type: 'text/css; charset=utf-8' },
  '/assets/addon-fit.js': { file: '@xterm/addon-fit/lib/addon-fit.js', type: 'text/javascript; charset=utf-8' },
}

/** A package's file, read when first asked for (a checkout before `npm ci` still starts). */
export function readPackageAsset(file: string): string {
  return readFileSync(createRequire(import.meta.url).resolve(file), 'utf8')
}

export const CSS = String.raw`
:root { --fg: #1b1f24; --muted: #57606a; --bg: #fff; --line: #d0d7de; --accent: #0b5cad; --warn: #9a6700; --bad: #b42318; --ok: #1a7f37; --rescue: #8250df; font-family: system-ui, sans-serif; color: var(--fg); background: var(--bg); }
* { box-sizing: border-box; }
[hidden] { display: none !important; }
body { margin: 0; line-height: 1.45; }
a { color: var(--accent); }
.skip { position: absolute; left: -999px; }
.skip:focus { left: 8px; top: 8px; background: #fff; padding: 4px 8px; z-index: 10; }
header { display: flex; flex-wrap: wrap; gap: 8px 16px; align-items: center; padding: 8px 16px; border-bottom: 1px solid var(--line); }
header nav ul { display: flex; flex-wrap: wrap; gap: 4px 14px; list-style: none; margin: 0; padding: 0; }
header nav a[aria-current="page"] { font-weight: 700; text-decoration: none; color: var(--fg); }
header .who { margin-left: auto; color: var(--muted); display: flex; gap: 8px; align-items: center; flex-wrap: wrap; }
.brand { font-weight: 700; text-decoration: none; color: var(--fg); }
main { padding: 12px 16px 48px; max-width: 1200px; }
h1 { font-size: 1.4rem; margin: 8px 0 12px; }
h2 { font-size: 1.1rem; margin: 20px 0 8px; }
:focus-visible { outline: 3px solid var(--accent); outline-offset: 2px; }
button, .button { font: inherit; padding: 6px 12px; min-height: 36px; border: 1px solid var(--line); border-radius: 6px; background: #f6f8fa; color: var(--fg); cursor: pointer; text-decoration: none; display: inline-block; }
button.primary { background: var(--accent); border-color: var(--accent); color: #fff; }
button.danger { color: var(--bad); }
button:disabled { opacity: .55; cursor: default; }
form.inline { display: inline; margin: 0; }
form.extend { display: inline-flex; gap: 6px; align-items: center; }
form.extend label { margin: 0; }
input.minutes { width: 6rem; }
.spaced { margin-top: 10px; }
.actions { display: flex; flex-wrap: wrap; gap: 4px; }
label { display: block; font-weight: 600; margin: 10px 0 4px; }
label.choice { display: inline-flex; gap: 6px; font-weight: 400; margin: 4px 14px 4px 0; align-items: center; }
input[type=text], input[type=password], input[type=number], input:not([type]), select, textarea { font: inherit; width: 100%; max-width: 34rem; padding: 6px 8px; border: 1px solid #8c959f; border-radius: 6px; background: #fff; }
textarea { min-height: 5rem; font-family: ui-monospace, monospace; font-size: .85rem; }
fieldset { border: 1px solid var(--line); border-radius: 6px; margin: 10px 0; max-width: 36rem; }
.hint { color: var(--muted); font-size: .9rem; margin: 2px 0; }
.card { border: 1px solid var(--line); border-radius: 8px; padding: 12px 16px; margin: 12px 0; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 6px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
thead th { font-size: .85rem; color: var(--muted); }
.status { font-weight: 700; }
.status-active { color: var(--ok); } .status-rescue { color: var(--rescue); } .status-error { color: var(--bad); } .status-shutoff { color: var(--muted); }
.task { color: var(--warn); }
progress { width: 5rem; vertical-align: middle; }
.messages:empty { display: none; }
.messages { position: sticky; top: 0; z-index: 5; }
.message { padding: 8px 12px; border-radius: 6px; margin: 8px 0; border: 1px solid var(--line); background: #f6f8fa; }
.message.error { border-color: var(--bad); color: var(--bad); background: #fff5f5; }
.message.ok { border-color: var(--ok); }
.secret { font-family: ui-monospace, monospace; font-size: 1.05rem; }
code, pre { font-family: ui-monospace, monospace; }
pre.console { background: #0d1117; color: #e6edf3; padding: 10px; border-radius: 6px; overflow: auto; max-height: 26rem; font-size: .8rem; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 4px 14px; margin: 0; }
dl.facts dt { color: var(--muted); } dl.facts dd { margin: 0; overflow-wrap: anywhere; }
ol.timeline { list-style: none; padding: 0; border-left: 2px solid var(--line); margin-left: 6px; }
ol.timeline > li { padding: 4px 0 10px 14px; position: relative; }
ol.timeline > li::before { content: ""; position: absolute; left: -7px; top: 10px; width: 12px; height: 12px; border-radius: 50%; background: var(--line); }
ol.timeline > li.failed::before { background: var(--bad); }
ol.timeline ul { margin: 4px 0; padding-left: 18px; font-size: .9rem; }
dialog { border: 1px solid var(--line); border-radius: 10px; padding: 16px 20px; width: min(40rem, 96vw); max-height: 92vh; overflow: auto; }
dialog::backdrop { background: rgba(0,0,0,.35); }
.login { max-width: 24rem; margin: 10vh auto; padding: 0 16px; }
.login input { max-width: none; }
.countdown { font-variant-numeric: tabular-nums; font-weight: 700; }
nav.tabs ul { display: flex; gap: 4px; list-style: none; margin: 0 0 12px; padding: 0; border-bottom: 1px solid var(--line); }
nav.tabs a { display: inline-block; padding: 6px 14px; border: 1px solid transparent; border-bottom: 0; border-radius: 6px 6px 0 0; text-decoration: none; }
nav.tabs a[aria-current="page"] { border-color: var(--line); background: var(--bg); color: var(--fg); font-weight: 700; margin-bottom: -1px; }
.terminal { height: 65vh; min-height: 18rem; background: #000; padding: 4px; border-radius: 6px; overflow: hidden; }
@media (max-width: 720px) {
  table.responsive thead { position: absolute; left: -9999px; }
  table.responsive tr { display: block; border: 1px solid var(--line); border-radius: 8px; margin: 10px 0; padding: 6px 8px; }
  table.responsive th, table.responsive td { display: block; border: 0; padding: 3px 0; }
  table.responsive td[data-label]::before { content: attr(data-label) ": "; color: var(--muted); font-size: .85rem; }
  header .who { margin-left: 0; }
}
`

export const JS = String.raw`
(function () {
  'use strict'
  var meta = document.querySelector('meta[name="csrf-token"]')
  var csrf = meta ? meta.getAttribute('content') : ''
  // Every htmx request carries the session's CSRF token.
  document.addEventListener('htmx:configRequest', function (e) {
    if (csrf) e.detail.headers['X-CSRF-Token'] = csrf
  })
  // A refusal htmx would not swap in (403: an out-of-date form): say it where messages go.
  document.addEventListener('htmx:responseError', function (e) {
    var box = document.getElementById('messages')
    if (!box) return
    var p = document.createElement('p')
    p.className = 'message error'
    p.setAttribute('role', 'alert')
    p.textContent = (e.detail.xhr && e.detail.xhr.responseText) || 'The request failed.'
    box.replaceChildren(p)
  })
  // A form marked data-reset is emptied once the service accepted it (a new server's name).
  document.addEventListener('htmx:afterRequest', function (e) {
    var form = e.detail.elt
    if (form instanceof HTMLFormElement && form.hasAttribute('data-reset') && e.detail.successful && e.detail.xhr.responseText.indexOf('message error') < 0) form.reset()
  })
  var dialog = document.getElementById('dialog')
  document.addEventListener('htmx:afterSwap', function (e) {
    if (dialog && e.detail.target && e.detail.target.id === 'dialog-body') {
      if (!dialog.open) dialog.showModal()
      var first = dialog.querySelector('[autofocus], input, select, textarea, button')
      if (first) first.focus()
    }
  })
  if (dialog) dialog.addEventListener('close', function () {
    var body = document.getElementById('dialog-body')
    if (body) body.innerHTML = ''
  })
  document.addEventListener('click', function (e) {
    var t = e.target instanceof Element ? e.target : null
    if (!t) return
    var close = t.closest('[data-close-dialog]')
    if (close && dialog) dialog.close()
    var copy = t.closest('[data-copy]')
    if (copy) {
      var el = document.getElementById(copy.getAttribute('data-copy'))
      var text = el ? (el.value !== undefined ? el.value : el.textContent) : ''
      var done = function () { copy.textContent = 'Copied'; setTimeout(function () { copy.textContent = 'Copy' }, 2000) }
      if (navigator.clipboard) navigator.clipboard.writeText(text).then(done, function () { if (el && el.select) { el.select(); document.execCommand('copy'); done() } })
      else if (el && el.select) { el.select(); document.execCommand('copy'); done() }
    }
  })

  // Live state: the dashboard relays the compute API's server event stream, one rendered row per change.
  var live = document.querySelector('[data-live]')
  var announcer = document.getElementById('live-status')
  if (live && window.EventSource) {
    var es = new EventSource(live.getAttribute('data-live'))
    es.addEventListener('row', function (ev) {
      var m = JSON.parse(ev.data)
      var row = document.getElementById('server-' + m.id)
      var tbody = document.getElementById('server-rows')
      var focused = row && row.contains(document.activeElement) ? document.activeElement.textContent : null
      if (m.deleted) {
        if (row) row.remove()
      } else if (m.html) {
        var tpl = document.createElement('template')
        tpl.innerHTML = m.html.trim()
        var fresh = tpl.content.firstElementChild
        if (row) row.replaceWith(fresh)
        else if (tbody) tbody.insertBefore(fresh, tbody.firstChild)
        else fresh = null
        if (fresh && window.htmx) window.htmx.process(fresh)
        if (fresh && focused) {
          var again = Array.prototype.find.call(fresh.querySelectorAll('button, a'), function (b) { return b.textContent === focused })
          if (again) again.focus()
        }
      }
      var empty = document.getElementById('no-servers')
      if (empty && tbody && tbody.children.length > 0) empty.remove()
      if (announcer && m.name && (row || !m.deleted)) announcer.textContent = m.name + ': ' + (m.deleted ? 'deleted' : m.status + (m.task ? ' (' + m.task + ')' : ''))
      var panels = document.querySelectorAll('[data-server-panel="' + m.id + '"]')
      for (var i = 0; i < panels.length; i++) if (window.htmx) window.htmx.trigger(panels[i], 'refresh')
    })
  }

  // Countdowns to a rescue's auto-exit.
  var tick = function () {
    var els = document.querySelectorAll('[data-countdown]')
    for (var i = 0; i < els.length; i++) {
      var left = Math.max(0, Math.round((Date.parse(els[i].getAttribute('data-countdown')) - Date.now()) / 1000))
      var h = Math.floor(left / 3600), m = Math.floor((left % 3600) / 60), s = left % 60
      els[i].textContent = (h ? h + ' h ' : '') + m + ' min ' + (s < 10 ? '0' : '') + s + ' s'
    }
  }
  tick()
  setInterval(tick, 1000)

  // Image upload: the record first, then the data with a progress bar.
  document.addEventListener('submit', function (e) {
    var form = e.target
    if (!(form instanceof HTMLFormElement) || !form.hasAttribute('data-upload')) return
    e.preventDefault()
    var file = form.querySelector('input[type=file]').files[0]
    var bar = form.querySelector('progress')
    var out = document.getElementById('upload-status')
    var say = function (text, bad) { out.textContent = text; out.className = 'message ' + (bad ? 'error' : 'ok') }
    if (!file) { say('Choose a file to upload.', true); return }
    var data = new URLSearchParams(new FormData(form))
    data.delete('file')
    fetch(form.action, { method: 'POST', body: data, headers: { 'X-CSRF-Token': csrf, Accept: 'application/json' } })
      .then(function (r) { return r.json().then(function (j) { return { ok: r.ok, j: j } }) })
      .then(function (a) {
        if (!a.ok) { say(a.j.message, true); return }
        var xhr = new XMLHttpRequest()
        xhr.open('PUT', '/images/' + a.j.id + '/file')
        xhr.setRequestHeader('Content-Type', 'application/octet-stream')
        xhr.setRequestHeader('X-CSRF-Token', csrf)
        bar.hidden = false
        bar.value = 0
        xhr.upload.onprogress = function (p) { if (p.lengthComputable) { bar.max = p.total; bar.value = p.loaded } }
        xhr.onload = function () {
          var j = {}
          try { j = JSON.parse(xhr.responseText) } catch (err) { j = {} }
          if (xhr.status >= 200 && xhr.status < 300) {
            say('Uploaded ' + file.name + ' as image ' + (j.name || a.j.id) + '.', false)
            if (window.htmx) window.htmx.ajax('GET', '/images/rows', { target: '#image-rows', swap: 'innerHTML' })
          } else say(j.message || 'Upload failed: ' + xhr.status, true)
        }
        xhr.onerror = function () { say('Upload failed: the connection was lost.', true) }
        xhr.send(file)
      }, function () { say('Upload failed.', true) })
  })
})()
`

// The serial console page: xterm.js on the WebSocket of a console URL the dashboard asks the
// compute API for (as the user). Bytes both ways: the proxy sends binary frames, keystrokes go
// as binary frames of their UTF-8. A serial line has no window size: the terminal fits its box.
export const CONSOLE_JS = String.raw`
(function () {
  'use strict'
  // xterm.js writes <style> elements of its own (cell sizes, colours); they carry this page's
  // style nonce, the one thing its Content-Security-Policy allows beyond 'self'.
  var me = document.currentScript
  var nonce = me ? me.nonce : ''
  var create = Document.prototype.createElement
  Document.prototype.createElement = function (tag, opts) {
    var el = create.call(this, tag, opts)
    if (nonce && String(tag).toLowerCase() === 'style') el.nonce = nonce
    return el
  }
  var box = document.getElementById('terminal')
  var status = document.getElementById('terminal-status')
  var again = document.getElementById('terminal-reconnect')
  var meta = document.querySelector('meta[name="csrf-token"]')
  var csrf = meta ? meta.getAttribute('content') : ''
  if (!box || !window.Terminal || !window.FitAddon) {
    if (status) status.textContent = 'The terminal could not start (xterm.js missing).'
    return
  }
  var term = new window.Terminal({ cursorBlink: true, scrollback: 5000, fontFamily: 'ui-monospace, monospace', fontSize: 14 })
  var fit = new window.FitAddon.FitAddon()
  term.loadAddon(fit)
  term.open(box)
  fit.fit()
  if (window.ResizeObserver) new ResizeObserver(function () { fit.fit() }).observe(box)
  var ws = null
  var encoder = new TextEncoder()
  var send = function (bytes) { if (ws && ws.readyState === WebSocket.OPEN) ws.send(bytes) }
  term.onData(function (d) { send(encoder.encode(d)) })
  term.onBinary(function (d) {
    var b = new Uint8Array(d.length)
    for (var i = 0; i < d.length; i++) b[i] = d.charCodeAt(i) & 255
    send(b)
  })
  var say = function (text) { status.textContent = text }
  var ended = function (text) { say(text); again.hidden = false }
  var connect = function () {
    again.hidden = true
    say('Connecting…')
    fetch(box.getAttribute('data-console-url'), { method: 'POST', headers: { 'X-CSRF-Token': csrf, Accept: 'application/json' } })
      .then(function (r) { return r.json().then(function (j) { return { ok: r.ok, j: j } }) })
      .then(function (a) {
        if (!a.ok) return ended(a.j.message || 'No console URL.')
        var s = new WebSocket(a.j.url, ['binary'])
        s.binaryType = 'arraybuffer'
        s.onopen = function () {
          ws = s
          say('Connected. Press Enter for a prompt.')
          term.focus()
        }
        s.onmessage = function (e) { term.write(typeof e.data === 'string' ? e.data : new Uint8Array(e.data)) }
        s.onclose = function (e) {
          if (ws === s) ws = null
          ended('The console connection closed' + (e.reason ? ': ' + e.reason : '.'))
        }
      }, function () { ended('No console URL: reload the page (your session may have ended).') })
  }
  again.addEventListener('click', connect)
  connect()
})()
`
