import { resolve } from 'node:path'
import type { Browser } from 'playwright-core'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import type * as ClientModule from '../../src/client/index.js'
import { TOKEN_PROTOCOL } from './fixtures/protocols/tokens.js'
import type { Greeting, ToServer } from './fixtures/protocols/protocol.js'
import { launchChromium } from './launchChromium.js'
import { createWorkspace, startDev, type DevServer, type Workspace } from './wranglerDev.js'

const PROTOCOLS_CONFIG = resolve(import.meta.dirname, 'fixtures/protocols/wrangler.toml')

const workspaces: Workspace[] = []
/** The demo worker: it serves the client, bundled, at /chat/client.js, for the page to import. */
let demo: DevServer | undefined
/** The fixture whose mount picks the token marker (see clientProtocols.test.ts). */
let fixture: DevServer | undefined
let browser: Browser | undefined
const consoleLines: string[] = []

beforeAll(async () => {
  // A workspace each, so the two never share persisted state.
  const [forDemo, forFixture] = [await createWorkspace(), await createWorkspace()]
  workspaces.push(forDemo, forFixture)
  demo = await startDev(forDemo)
  fixture = await startDev(forFixture, { config: PROTOCOLS_CONFIG })
  browser = await launchChromium()
})
afterAll(async () => {
  await browser?.close()
  await fixture?.stop()
  await demo?.stop()
  for (const workspace of workspaces) await workspace.remove()
})
beforeEach(({ onTestFailed }) => {
  onTestFailed(() => {
    console.log(`browser console:\n${consoleLines.join('\n')}`)
    console.log(`fixture's wrangler dev output:\n${fixture?.output() ?? '(not running)'}`)
  })
})

interface Seen {
  offers: string[][]
  protocols: string[]
  calls: number
  reconnected: boolean[]
}

describe('connect(url, { protocols }) in headless Chromium, where a page can set no other handshake header', () => {
  it('offers a fresh token from the function on each connection, and reports the subprotocol the server picked', async () => {
    if (browser === undefined || demo === undefined || fixture === undefined) throw new Error('not started')
    const page = await browser.newPage()
    page.on('console', (message) => consoleLines.push(`${message.type()}: ${message.text()}`))
    page.on('pageerror', (error) => consoleLines.push(`page error: ${String(error)}`))
    await page.goto(`${demo.origin}/hello`)
    // A module script, not import() inside evaluate: vitest rewrites import() in this file's functions.
    await page.addScriptTag({
      type: 'module',
      content: "import { connect } from '/chat/client.js'; globalThis.connect = connect",
    })
    await page.waitForFunction(() => 'connect' in globalThis)

    // Runs in the page: only its arguments come along, nothing from this file's scope.
    const seen = await page.evaluate(
      async ([url, marker]) => {
        const { connect } = globalThis as unknown as { connect: typeof ClientModule.connect }
        const result: Seen = { offers: [], protocols: [], calls: 0, reconnected: [] }
        const client = connect<Greeting, ToServer>(url, {
          reconnect: { initialDelay: 20, maxDelay: 50 },
          protocols: () => {
            result.calls += 1
            return Promise.resolve([marker, `browser-token-${String(result.calls)}`])
          },
        })
        client.on('open', ({ reconnected }) => result.reconnected.push(reconnected))
        await new Promise<void>((done) => {
          client.on('message', ({ offered }) => {
            result.offers.push(offered)
            result.protocols.push(client.protocol)
            if (result.offers.length === 1) client.send({ op: 'restart' })
            else done()
          })
        })
        client.close()
        return result
      },
      [`${fixture.wsOrigin}/ws`, TOKEN_PROTOCOL] as const,
    )

    expect(seen).toEqual({
      // The client offers its session first, and on the reconnect asks to resume it; the server's
      // pick among the app's own offers comes in the session's welcome.
      offers: [
        ['dws.session.v1', 'dws.session.batches', TOKEN_PROTOCOL, 'browser-token-1'],
        [
          'dws.session.v1',
          expect.stringMatching(/^dws\.resume\.\d+\.[A-Za-z0-9_-]{43}$/) as string,
          'dws.session.batches',
          TOKEN_PROTOCOL,
          'browser-token-2',
        ],
      ],
      protocols: [TOKEN_PROTOCOL, TOKEN_PROTOCOL],
      calls: 2,
      reconnected: [false, true],
    } satisfies Seen)
    await page.close()
  })
})
