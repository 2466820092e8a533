// The web dashboard in a real browser: Debian's chromium, headless, driven by playwright-core
// through accessible names and labels only (what a screen reader user has), against a real
// `skiff serve`. Log in as demo, create a server, rescue it from the dialog with a generated
// password, watch RESCUE arrive without a reload, read the password, unrescue, ACTIVE, delete;
// the alt user sees none of it; a rescue started by the API and by the `openstack` CLI shows in
// the open page within a second. Screenshots of each step go to a directory printed at the start.
import assert from 'node:assert/strict'
import { existsSync, mkdirSync, mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import { chromiumSkipReason, launchChromium, logIn as logInAt, screenshot, terminalText, until } from './helpers/browser.ts'
import { Clients } from './helpers/clients.ts'
import { ok } from './helpers/process.ts'
import { openrcToken, startSkiffProcess, type SkiffProcess } from './helpers/skiff-process.ts'

const skip = chromiumSkipReason()
if (skip) console.log(`# dashboard.test.ts skipped: ${skip}`)
const T = { timeout: 120_000 }

describe('the dashboard in chromium', { skip, concurrency: false }, () => {
  let skiff: SkiffProcess
  let browser: Browser
  let demo: BrowserContext
  let page: Page
  let shots: string
  let step = 0
  let navigations = 0
  let serverId = ''
  const consoleErrors: string[] = []
  const name = `dash-${process.pid}`

  const shot = async (p: Page, what: string) => {
    const file = path.join(shots, `${String(++step).padStart(2, '0')}-${what}.png`)
    await screenshot(p, file)
  }
  const row = (p: Page, server: string) => p.getByRole('row', { name: new RegExp(`^${server}\\b`) })
  const api = async (method: string, url: string, body?: unknown) => {
    const token = await openrcToken(skiff.urls.identity, skiff.openrc.demo)
    const res = await fetch(`${skiff.urls.compute.replace(/\/v2\.1$/, '')}${url}`, {
      method,
      headers: { 'x-auth-token': token, 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    })
    return { status: res.status, body: (await res.text()) || '{}' }
  }

  before(async () => {
    shots = process.env.SKIFF_SCREENSHOTS ?? mkdtempSync(path.join(tmpdir(), 'skiff-dashboard-shots-'))
    mkdirSync(shots, { recursive: true })
    console.log(`# dashboard screenshots: ${shots}`)
    skiff = await startSkiffProcess({ simulatedDelayMs: 150 })
    assert.ok(skiff.urls.dashboard, `no dashboard URL in the banner:\n${skiff.output()}`)
    browser = await launchChromium()
    demo = await browser.newContext({ viewport: { width: 1280, height: 900 } })
    page = await demo.newPage()
    // The pages allow only their own script and style: a violation would mean something does not work.
    demo.on('console', (m) => {
      // The 401 of the refused login and such are answers, not errors of the page.
      if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) consoleErrors.push(`${m.page()?.url()}: ${m.text()}`)
    })
  })
  after(async () => {
    await browser?.close()
    await skiff?.stop()
  })

  const logIn = (p: Page, user: string, password: string, project: string) => logInAt(p, skiff.urls.dashboard!, user, password, project)

  test('a wrong password is one message; then demo logs in', T, async () => {
    await logIn(page, 'demo', 'wrong-password', 'demo')
    await page.getByText('Wrong user name, password or project.').waitFor()
    await shot(page, 'login-refused')
    await logIn(page, 'demo', skiff.openrcEnv('demo').OS_PASSWORD!, 'demo')
    await page.getByRole('heading', { name: 'Servers' }).waitFor()
    await shot(page, 'servers-empty')
    // From here on the page is never loaded again: every change must come to it live.
    page.on('framenavigated', (f) => {
      if (f === page.mainFrame()) navigations++
    })
  })

  test('create a server: it appears, BUILD then ACTIVE, without a reload', T, async () => {
    await page.getByLabel('Name', { exact: true }).fill(name)
    await page.getByLabel('Image', { exact: true }).selectOption({ label: 'skiff-base' })
    const tiny = await page.getByLabel('Flavor').locator('option', { hasText: 'm1.tiny' }).getAttribute('value')
    await page.getByLabel('Flavor').selectOption(tiny!)
    await page.getByRole('button', { name: 'Create server' }).click()
    await page.getByText(`Server ${name} is being created.`).waitFor()
    const r = row(page, name)
    await until('the new server ACTIVE in the list', async () => (await r.getAttribute('data-status')) === 'ACTIVE')
    serverId = String(await r.getAttribute('id')).replace('server-', '')
    await shot(page, 'created-active')
    assert.equal(navigations, 0)
  })

  test('rescue from the dialog with a generated password: RESCUE arrives live, the password is shown once', T, async () => {
    const r = row(page, name)
    await r.getByRole('button', { name: 'Rescue', exact: true }).click()
    const dialog = page.getByRole('dialog', { name: `Rescue ${name}` })
    await dialog.waitFor()
    assert.equal(await dialog.getByLabel('Generate one').isChecked(), true)
    await dialog.getByLabel('Auto-exit after (minutes)').fill('30')
    await shot(page, 'rescue-dialog')
    await dialog.getByRole('button', { name: 'Rescue', exact: true }).click()
    const done = page.getByRole('dialog', { name: `Rescue of ${name} started` })
    await done.waitFor()
    const password = await done.getByLabel('Rescue password (shown once)').inputValue()
    assert.match(password, /^[A-Za-z0-9]{8,}$/)
    await shot(page, 'rescue-password')
    await done.getByRole('button', { name: 'Close' }).click()
    await until('RESCUE in the list', async () => (await r.getAttribute('data-status')) === 'RESCUE')
    await shot(page, 'rescued')
    const rescue = JSON.parse((await api('GET', `/v2.1/servers/${serverId}/rescue`)).body)
    assert.equal(rescue.rescue.status, 'rescued')
    assert.equal(rescue.rescue.auto_unrescue_after, 1800)
    assert.equal(navigations, 0)
  })

  test('the server page: rescue state with its countdown, the actions timeline, the console', T, async () => {
    const p = await demo.newPage()
    await p.goto(`${skiff.urls.dashboard}/servers/${serverId}`)
    await p.getByRole('heading', { name: 'Rescue: rescued' }).waitFor()
    await p.getByRole('button', { name: 'Extend' }).waitFor()
    await until('the countdown', async () => /min/.test((await p.locator('.countdown').first().textContent()) ?? ''))
    await p.getByText('compute_rescue_instance: Success').waitFor()
    await p.getByRole('region', { name: 'Console log' }).getByRole('button', { name: 'Refresh console log' }).waitFor()
    await shot(p, 'server-page-rescued')
    await p.close()
  })

  test('the console tab: the simulated console in xterm.js, with the console log; typing goes both ways', T, async () => {
    const p = await demo.newPage()
    await p.goto(`${skiff.urls.dashboard}/servers/${serverId}`)
    await p
      .getByRole('navigation', { name: `Server ${name}` })
      .getByRole('link', { name: 'Console' })
      .click()
    await p.getByRole('heading', { name: 'Serial console' }).waitFor()
    await p.getByText('Connected. Press Enter for a prompt.').waitFor()
    const ms = await until('the simulated console in the terminal', async () => /simulated login:$/m.test(await terminalText(p)))
    console.log(`# simulated console in the terminal ${ms} ms after the WebSocket opened`)
    assert.equal(await p.getByRole('button', { name: 'Reconnect' }).isVisible(), false, 'no Reconnect while connected')
    const text = await terminalText(p)
    assert.match(text, /this console is simulated/)
    // The console log (the server is in rescue: the simulated driver logged entering it).
    assert.match(text, /Power down \(entering rescue\)/)
    await p.getByRole('region', { name: `Serial console of ${name}` }).click()
    await p.keyboard.type('hello-xterm')
    await p.keyboard.press('Enter')
    await until('the echo of what was typed', async () => /login: hello-xterm$/m.test(await terminalText(p)))
    await shot(p, 'console-simulated')
    await p.close()
  })

  test('unrescue: ACTIVE again, live', T, async () => {
    const r = row(page, name)
    await r.getByRole('button', { name: 'Unrescue', exact: true }).click()
    await page.getByText(`Unrescue of ${name} accepted.`).waitFor()
    await until('ACTIVE in the list', async () => (await r.getAttribute('data-status')) === 'ACTIVE')
    await shot(page, 'unrescued')
    assert.equal(navigations, 0)
  })

  test('the alt user cannot see demo’s server, in the list or by its address', T, async () => {
    const alt = await browser.newContext({ viewport: { width: 1280, height: 900 } })
    const p = await alt.newPage()
    // By keyboard only: tab from field to field, Enter to send.
    await p.goto(skiff.urls.dashboard!)
    await p.getByLabel('User name').focus()
    await p.keyboard.type('alt_demo')
    await p.keyboard.press('Tab')
    await p.keyboard.type(skiff.openrcEnv('alt').OS_PASSWORD!)
    await p.keyboard.press('Tab')
    await p.keyboard.type('alt_demo')
    await p.keyboard.press('Enter')
    await p.getByRole('heading', { name: 'Servers' }).waitFor()
    assert.equal(await row(p, name).count(), 0)
    await shot(p, 'alt-servers')
    await p.goto(`${skiff.urls.dashboard}/servers/${serverId}`)
    await p.getByText(`Instance ${serverId} could not be found.`).waitFor()
    await shot(p, 'alt-not-found')
    await alt.close()
  })

  test('a rescue started through the API, then through the openstack CLI, shows in the open page within a second', T, async () => {
    const r = row(page, name)
    const res = await api('POST', `/v2.1/servers/${serverId}/action`, { rescue: null })
    assert.equal(res.status, 200, res.body)
    const ms = await until('RESCUE after the API rescue', async () => (await r.getAttribute('data-status')) === 'RESCUE', 5000)
    console.log(`# API rescue → RESCUE in the open page: ${ms} ms after the POST answered`)
    assert.ok(ms < 1000, `${ms} ms`)
    assert.equal((await api('POST', `/v2.1/servers/${serverId}/action`, { unrescue: null })).status, 202)
    await until('ACTIVE after the API unrescue', async () => (await r.getAttribute('data-status')) === 'ACTIVE', 5000)
    if (!existsSync('/usr/bin/openstack')) {
      console.log('# openstack CLI not installed: its part is skipped')
      return
    }
    const cli = new Clients(skiff)
    ok(await cli.openstack('demo', ['server', 'rescue', serverId]))
    const cliMs = await until('RESCUE after the CLI rescue', async () => (await r.getAttribute('data-status')) === 'RESCUE', 5000)
    console.log(`# openstack server rescue → RESCUE in the open page: ${cliMs} ms after the command ended`)
    assert.ok(cliMs < 1000, `${cliMs} ms`)
    await shot(page, 'cli-rescue-live')
    ok(await cli.openstack('demo', ['server', 'unrescue', serverId]))
    await until('ACTIVE after the CLI unrescue', async () => (await r.getAttribute('data-status')) === 'ACTIVE', 5000)
    assert.equal(navigations, 0)
  })

  test('images: upload with a progress bar, then delete; key pairs: the private key offered once', T, async () => {
    const p = await demo.newPage()
    await p.goto(`${skiff.urls.dashboard}/images`)
    await p.getByLabel('Image name').fill(`${name}-img`)
    await p.getByLabel('Disk format').selectOption('raw')
    await p.getByLabel('File').setInputFiles({ name: 'disk.raw', mimeType: 'application/octet-stream', buffer: Buffer.alloc(2 << 20, 1) })
    await p.getByRole('button', { name: 'Upload image' }).click()
    await p.getByText(`Uploaded disk.raw as image ${name}-img.`).waitFor()
    assert.ok(Number(await p.getByRole('progressbar', { name: 'Upload progress' }).getAttribute('value')) > 0, 'the progress bar moved')
    const img = p.getByRole('row', { name: new RegExp(`^${name}-img\\b`) })
    await img.waitFor()
    await shot(p, 'image-uploaded')
    p.once('dialog', (d) => void d.accept())
    await img.getByRole('button', { name: 'Delete' }).click()
    await p.getByText('Image deleted.').waitFor()
    await until('the image row to go', async () => (await img.count()) === 0)

    await p.goto(`${skiff.urls.dashboard}/keypairs`)
    await p.getByLabel('Key pair name').first().fill(`${name}-key`)
    await p.getByRole('button', { name: 'Create key pair' }).click()
    await p.getByRole('link', { name: `Download ${name}-key.pem` }).waitFor()
    assert.match(await p.getByLabel('Private key').inputValue(), /PRIVATE KEY/)
    await shot(p, 'keypair-created')
    await p.reload()
    assert.equal(await p.getByLabel('Private key').count(), 0, 'offered once')
    await p.getByRole('row', { name: new RegExp(`^${name}-key\\b`) }).waitFor()
    await p.close()
  })

  test('375 px wide: nothing wider than the screen, the buttons there', T, async () => {
    await page.setViewportSize({ width: 375, height: 812 })
    const wide = await page.evaluate(() => document.documentElement.scrollWidth)
    assert.ok(wide <= 375, `the page is ${wide} px wide`)
    await row(page, name).getByRole('button', { name: 'Rescue', exact: true }).waitFor()
    await shot(page, 'narrow-375')
    await page.setViewportSize({ width: 1280, height: 900 })
  })

  test('delete: the row goes, live; log out', T, async () => {
    const r = row(page, name)
    page.once('dialog', (d) => void d.accept())
    await r.getByRole('button', { name: 'Delete', exact: true }).click()
    await until('the row to go', async () => (await r.count()) === 0)
    await shot(page, 'deleted')
    assert.equal(navigations, 0)
    await page.getByRole('button', { name: 'Log out' }).click()
    await page.getByRole('button', { name: 'Log in' }).waitFor()
    await page.goto(`${skiff.urls.dashboard}/servers`)
    await page.getByRole('button', { name: 'Log in' }).waitFor()
    assert.deepEqual(consoleErrors, [], 'no script errors or Content-Security-Policy violations in the pages')
  })
})
