// The serial console in the browser, on a real VM: `skiff serve --driver qemu`, the dashboard in
// Debian's chromium (playwright-core, by labels and roles). Create a server whose user data
// writes a marker file on its disk, rescue it from the dialog with a generated password, open the
// console tab from the rescue's answer, log in at the rescue system's login prompt as root with
// the password the dialog showed, and read out of the terminal that the server's own disk, with
// the marker, is the rescue system's second disk.
// Skipped where chromium, QEMU or the guest packages are absent, except in CI (.ci/run installs them).
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import type { Browser, Page } from 'playwright-core'
import { guestSkipReason } from '../helpers/qemu.ts'
import { chromiumSkipReason, launchChromium, logIn, screenshot, terminalText, until } from './helpers/browser.ts'
import { startQemuSkiff, type QemuSkiff } from './helpers/qemu-skiff.ts'
import type { SkiffProcess } from './helpers/skiff-process.ts'

const skip = chromiumSkipReason() || guestSkipReason()
const BOOT_MS = 300_000
const SHELL_MS = 120_000

describe('qemu driver: the rescue system logged in to through the dashboard’s console tab', { skip, timeout: 15 * 60_000 }, () => {
  let vm: QemuSkiff
  let skiff: SkiffProcess
  let browser: Browser
  let page: Page
  let shots = ''
  let step = 0
  const consoleErrors: string[] = []
  const shot = (what: string) => screenshot(page, path.join(shots, `${String(++step).padStart(2, '0')}-${what}.png`))

  before(async () => {
    shots = process.env.SKIFF_SCREENSHOTS ?? mkdtempSync(path.join(tmpdir(), 'skiff-console-shots-'))
    mkdirSync(shots, { recursive: true })
    console.log(`# screenshots: ${shots}`)
    vm = await startQemuSkiff({ sshPorts: '23650-23699' })
    skiff = vm.skiff
    browser = await launchChromium()
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } })
    context.on('console', (m) => {
      if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) consoleErrors.push(`${m.page()?.url()}: ${m.text()}`)
    })
    page = await context.newPage()
  })

  after(async () => {
    await browser?.close()
    await vm?.stop()
  })

  test('rescue from the dialog, the console tab, root with the rescue password, the server’s disk second', async () => {
    const name = `console-${randomBytes(3).toString('hex')}`
    const marker = `marker-${randomBytes(6).toString('hex')}`
    await logIn(page, skiff.urls.dashboard!, 'demo', skiff.openrcEnv('demo').OS_PASSWORD!, 'demo')
    await page.getByRole('heading', { name: 'Servers' }).waitFor()

    // A server whose first boot writes the marker on its own disk.
    await page.getByLabel('Name', { exact: true }).fill(name)
    await page.getByLabel('Image', { exact: true }).selectOption({ label: 'skiff-base' })
    const tiny = await page.getByLabel('Flavor').locator('option', { hasText: 'm1.tiny' }).getAttribute('value')
    await page.getByLabel('Flavor').selectOption(tiny!)
    await page.getByLabel('User data').fill(`#!/bin/sh\necho ${marker} > /root/marker\nsync\n`)
    await page.getByRole('button', { name: 'Create server' }).click()
    await page.getByText(`Server ${name} is being created.`).waitFor()
    const row = page.getByRole('row', { name: new RegExp(`^${name}\\b`) })
    let t = Date.now()
    await until('the server ACTIVE', async () => (await row.getAttribute('data-status')) === 'ACTIVE', BOOT_MS, 500)
    console.log(`# create → ACTIVE: ${((Date.now() - t) / 1000).toFixed(1)} s`)
    const id = String(await row.getAttribute('id')).replace('server-', '')

    // The user data runs in the background after boot: its end shows in the console log.
    await page.goto(`${skiff.urls.dashboard}/servers/${id}`)
    const log = page.getByRole('region', { name: 'Console log' })
    await until(
      'the user data script to have run',
      async () => {
        await log.getByRole('button', { name: 'Refresh console log' }).click()
        return /user data script ran, exit 0/.test((await log.getByLabel('Console log').textContent()) ?? '')
      },
      SHELL_MS,
      1000,
    )

    // Rescue from the dialog, a generated password.
    await page.goto(`${skiff.urls.dashboard}/servers`)
    await row.getByRole('button', { name: 'Rescue', exact: true }).click()
    const dialog = page.getByRole('dialog', { name: `Rescue ${name}` })
    await dialog.getByRole('button', { name: 'Rescue', exact: true }).click()
    const done = page.getByRole('dialog', { name: `Rescue of ${name} started` })
    await done.waitFor()
    const password = await done.getByLabel('Rescue password (shown once)').inputValue()
    await shot('rescue-password')
    t = Date.now()
    await until('RESCUE in the list', async () => (await row.getAttribute('data-status')) === 'RESCUE', BOOT_MS, 500)
    console.log(`# rescue → RESCUE: ${((Date.now() - t) / 1000).toFixed(1)} s`)

    // The console tab, from the rescue's answer.
    await done.getByRole('link', { name: 'Log in to the rescue system in the browser' }).click()
    await page.getByRole('link', { name: 'Console' }).and(page.locator('[aria-current="page"]')).waitFor()
    await page.getByText('Connected. Press Enter for a prompt.').waitFor()
    const terminal = page.getByRole('region', { name: `Serial console of ${name}` })
    await terminal.click()
    const lastLine = async () => (await terminalText(page)).trimEnd().split('\n').pop() ?? ''
    // getty prints its prompt again for an empty line; the first Enter may come before getty runs.
    t = Date.now()
    let entered = 0
    await until(
      'a login prompt',
      async () => {
        if (/login:$/.test(await lastLine())) return true
        if (Date.now() - entered > 3000) {
          entered = Date.now()
          await page.keyboard.press('Enter')
        }
        return false
      },
      SHELL_MS,
      100,
    )
    console.log(`# login prompt in the terminal ${Date.now() - t} ms after connecting`)
    await shot('login-prompt')
    await page.keyboard.type('root')
    await page.keyboard.press('Enter')
    await until('the password prompt', async () => /Password:$/.test(await lastLine()), SHELL_MS, 100)
    await page.keyboard.type(password)
    await page.keyboard.press('Enter')
    await until('a root shell', async () => /#$/.test(await lastLine()), SHELL_MS, 100)
    assert.doesNotMatch(await terminalText(page), new RegExp(password), 'the password is not echoed')

    // The server's own disk is the second one: its marker is there.
    await page.keyboard.type(
      'mkdir -p /mnt/s && mount /dev/vdb /mnt/s && cat /mnt/s/root/marker && cat /sys/block/vdb/serial && echo; umount /mnt/s',
    )
    await page.keyboard.press('Enter')
    await until('the marker read from /dev/vdb', async () => new RegExp(`^${marker}$`, 'm').test(await terminalText(page)), SHELL_MS, 100)
    const lines = (await terminalText(page)).split('\n')
    const at = lines.indexOf(marker)
    await until('the disk serial', async () => (await terminalText(page)).split('\n')[at + 1] === 'vdb', SHELL_MS, 100)
    await shot('rescue-shell')
    assert.deepEqual(consoleErrors, [], 'no script errors or Content-Security-Policy violations in the pages')
  })
})
