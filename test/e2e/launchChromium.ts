import { chromium, type Browser } from 'playwright-core'

/** Debian's `chromium` package; .ci/run installs it. */
const CHROMIUM = '/usr/bin/chromium'

/**
 * Headless Chromium for a test file: a fresh temporary profile (user-data-dir)
 * that close() removes, and no background networking, component updates or
 * sync beside the test's own pages.
 */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    timeout: 30_000,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  })
}
