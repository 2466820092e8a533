// The dashboard in a real browser: Debian's chromium, headless, driven by playwright-core through
// accessible names and labels (what a screen reader user has). Shared by the browser tests.
import { existsSync } from 'node:fs'
import type { Browser, Page } from 'playwright-core'

export const CHROMIUM = '/usr/bin/chromium'

/** Why the browser tests cannot run here, or false. */
export function chromiumSkipReason(): string | false {
  return existsSync(CHROMIUM)
    ? false
    : `Debian's chromium is not installed (${CHROMIUM}; apt-get install chromium, see .ci/run): the dashboard needs a real browser`
}

export async function launchChromium(): Promise<Browser> {
  const { chromium } = await import('playwright-core')
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-dev-shm-usage'] })
}

/** Poll `check` until it is true; fail after `ms`. No sleeps: a short poll. Answers how long it took. */
export async function until(what: string, check: () => Promise<boolean>, ms = 10_000, intervalMs = 10): Promise<number> {
  const t0 = Date.now()
  for (;;) {
    if (await check().catch(() => false)) return Date.now() - t0
    if (Date.now() - t0 > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    await new Promise((r) => setTimeout(r, intervalMs))
  }
}

/** The login form, filled by its labels. */
export async function logIn(p: Page, dashboard: string, user: string, password: string, project: string): Promise<void> {
  await p.goto(dashboard)
  await p.getByLabel('User name').fill(user)
  await p.getByLabel('Password').fill(password)
  await p.getByLabel('Project').fill(project)
  await p.getByRole('button', { name: 'Log in' }).click()
}

/** What the console tab's terminal shows: xterm.js's rows as rendered (no-break spaces as spaces, no trailing blanks). */
export async function terminalText(p: Page): Promise<string> {
  const text = await p.locator('.xterm-rows').innerText()
  return text.replace(/\u00a0/g, ' ').replace(/ +$/gm, '')
}

/**
 * A full-page screenshot. The caret is left alone: hiding it, playwright sets a style attribute
 * on the focused field, which htmx copies onto the field's successor in a live update, and the
 * pages' Content-Security-Policy then (rightly) refuses that inline style.
 */
export async function screenshot(p: Page, file: string): Promise<void> {
  await p.screenshot({ path: file, fullPage: true, caret: 'initial' })
}
