import {existsSync, mkdirSync} from 'node:fs'
import {join} from 'node:path'

import {type Browser, type BrowserContextOptions, type Page, chromium} from 'playwright-core'

import {ROOT} from './cli.js'

/**
 * A real headless Chromium for the web tests: Debian's (`apt-get install chromium`, which .ci/run does), never
 * a download. CHROMIUM names another binary. Screenshots go to test-output/web/ (kept out of git).
 */

export const SCREENSHOTS = join(ROOT, 'test-output', 'web')

export function chromiumPath(): string {
  const candidates = [process.env.CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser'].filter((p): p is string => Boolean(p))
  const found = candidates.find((p) => existsSync(p))
  if (!found) throw new Error(`no Chromium at ${candidates.join(', ')}: apt-get install chromium (or set CHROMIUM)`)
  return found
}

export function launch(): Promise<Browser> {
  // As root (CI), Chromium's sandbox cannot start: the pages are our own, on loopback.
  return chromium.launch({executablePath: chromiumPath(), args: process.getuid?.() === 0 ? ['--no-sandbox'] : []})
}

/** A page that records console errors and uncaught exceptions, and accepts confirm() dialogs. */
export async function openPage(browser: Browser, o: BrowserContextOptions = {}): Promise<{page: Page; errors: string[]; close: () => Promise<void>}> {
  const context = await browser.newContext({viewport: {width: 1280, height: 900}, ...o})
  const page = await context.newPage()
  const errors: string[] = []
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text())
  })
  page.on('pageerror', (e) => errors.push(String(e)))
  page.on('dialog', (d) => void d.accept())
  return {page, errors, close: () => context.close()}
}

export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(SCREENSHOTS, {recursive: true})
  await page.screenshot({path: join(SCREENSHOTS, `${name}.png`), fullPage: true})
}
