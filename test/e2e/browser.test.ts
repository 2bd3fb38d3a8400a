import { mkdir } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import type { Browser, BrowserContext } from 'playwright-core'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { ChatPage, type Member } from './chatPage.js'
import { launchChromium } from './launchChromium.js'
import { useDevServer } from './useDevServer.js'

const SCREENSHOTS = resolve(import.meta.dirname, '../../test-results/browser')
const ROOM = 'browser-test'

// First, so that its afterAll (hooks run last-registered first) stops wrangler dev after Chromium.
const server = useDevServer()
let browser: Browser | undefined
const contexts: BrowserContext[] = []
const consoleLines: string[] = []

/** A page in its own context (its own storage, as a second person would have), logging to consoleLines. */
async function chatPage(name: string, viewport: { width: number; height: number }): Promise<ChatPage> {
  if (browser === undefined) throw new Error('Chromium is not running')
  const context = await browser.newContext({ viewport })
  contexts.push(context)
  const page = await context.newPage()
  page.on('console', (message) => consoleLines.push(`[${name}] ${message.type()}: ${message.text()}`))
  page.on('pageerror', (error) => consoleLines.push(`[${name}] page error: ${String(error)}`))
  return new ChatPage(page, name)
}

async function screenshot(chat: ChatPage, step: string): Promise<void> {
  await chat.page.screenshot({ path: join(SCREENSHOTS, `${step}-${chat.name.toLowerCase()}.png`) })
}

beforeAll(async () => {
  await mkdir(SCREENSHOTS, { recursive: true })
  browser = await launchChromium()
})
afterAll(async () => {
  for (const context of contexts) await context.close().catch(() => undefined)
  await browser?.close()
})
beforeEach(({ onTestFailed }) => {
  onTestFailed(() => {
    console.log(`browser console:\n${consoleLines.join('\n')}`)
  })
})

describe('the chat at / in headless Chromium', () => {
  let alice: ChatPage
  let bob: ChatPage
  let before: Member[] = []

  it('two pages that join one room under different names see each other, with their connection ids', async () => {
    alice = await chatPage('Alice', { width: 1100, height: 720 })
    bob = await chatPage('Bob', { width: 390, height: 844 })
    await alice.open(server().origin, ROOM)
    await screenshot(alice, '1-join-form')
    await alice.join()
    await bob.open(server().origin, ROOM)
    await screenshot(bob, '1-join-form')
    await bob.join()

    const seenByAlice = await alice.waitForMembers(['Alice', 'Bob'])
    const seenByBob = await bob.waitForMembers(['Alice', 'Bob'])

    expect(seenByBob).toEqual(seenByAlice)
    expect(seenByAlice.every((member) => Number.isInteger(member.id) && member.id > 0)).toBe(true)
    await alice.waitForNote(/^Bob \(#\d+\) joined$/)
  })

  it('a message sent in one page shows up in the other', async () => {
    await alice.say('Hello Bob, can you read me?')
    await bob.waitForMessage('Alice', 'Hello Bob, can you read me?')
    await bob.say('Loud and clear, Alice.')
    await alice.waitForMessage('Bob', 'Loud and clear, Alice.')

    await screenshot(alice, '2-chatting')
    await screenshot(bob, '2-chatting')
  })

  it('the member list drops a page that leaves, and takes it back when it joins again', async () => {
    await bob.leave()
    await alice.waitForMembers(['Alice'])
    await alice.waitForNote(/^Bob \(#\d+\) left$/)
    await screenshot(alice, '3-bob-left')

    await bob.join()
    before = await alice.waitForMembers(['Alice', 'Bob'])
    await bob.waitForMembers(['Alice', 'Bob'])
  })

  it('both pages reconnect by themselves after wrangler dev restarts on the same state and port, and chat again', async () => {
    await server().stop()
    await Promise.all([alice.waitForState('reconnecting'), bob.waitForState('reconnecting')])
    await screenshot(bob, '4-reconnecting')
    await server.startAgain()

    const after = await alice.waitForMembers(['Alice', 'Bob'], 30_000)
    await bob.waitForMembers(['Alice', 'Bob'], 30_000)
    // New connections in the same room's object: new ids, above every id it handed out before.
    const highestBefore = Math.max(...before.map((member) => member.id))
    expect(after.every((member) => member.id > highestBefore)).toBe(true)

    await alice.say('Still there after the restart?')
    await bob.waitForMessage('Alice', 'Still there after the restart?')
    await bob.say('Yes, reconnected by myself.')
    await alice.waitForMessage('Bob', 'Yes, reconnected by myself.')
    await screenshot(alice, '5-after-restart')
    await screenshot(bob, '5-after-restart')
  }, 90_000)
})
