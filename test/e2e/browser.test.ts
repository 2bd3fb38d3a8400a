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

/** Alice and Bob, each in a page of their own, joined to `room` and seeing each other there. */
async function joinedPair(room: string): Promise<{ alice: ChatPage; bob: ChatPage; members: Member[] }> {
  const alice = await chatPage('Alice', { width: 1100, height: 720 })
  const bob = await chatPage('Bob', { width: 390, height: 844 })
  await alice.open(server().origin, room)
  await alice.join()
  await bob.open(server().origin, room)
  await bob.join()
  const members = await alice.waitForMembers(['Alice', 'Bob'])
  await bob.waitForMembers(['Alice', 'Bob'])
  return { alice, bob, members }
}

// Each test opens its own pages in a room of its own, so any one of them can run alone.
describe('the chat at / in headless Chromium', () => {
  it('two pages that join one room under different names see each other, with their connection ids', async () => {
    const alice = await chatPage('Alice', { width: 1100, height: 720 })
    const bob = await chatPage('Bob', { width: 390, height: 844 })
    await alice.open(server().origin, `${ROOM}-join`)
    await screenshot(alice, '1-join-form')
    await alice.join()
    await bob.open(server().origin, `${ROOM}-join`)
    await screenshot(bob, '1-join-form')
    await bob.join()

    const seenByAlice = await alice.waitForMembers(['Alice', 'Bob'])
    const seenByBob = await bob.waitForMembers(['Alice', 'Bob'])

    expect(seenByBob).toEqual(seenByAlice)
    expect(seenByAlice.every((member) => Number.isInteger(member.id) && member.id > 0)).toBe(true)
    expect(new Set(seenByAlice.map((member) => member.id)).size).toBe(2)
    await alice.waitForNote(/^Bob \(#\d+\) joined$/)
  })

  it('a message sent in one page shows up in the other', async () => {
    const { alice, bob } = await joinedPair(`${ROOM}-say`)
    await alice.say('Hello Bob, can you read me?')
    await bob.waitForMessage('Alice', 'Hello Bob, can you read me?')
    await bob.say('Loud and clear, Alice.')
    await alice.waitForMessage('Bob', 'Loud and clear, Alice.')

    await screenshot(alice, '2-chatting')
    await screenshot(bob, '2-chatting')
  })

  it('the member list drops a page that leaves, and takes it back when it joins again', async () => {
    const { alice, bob, members } = await joinedPair(`${ROOM}-leave`)
    await bob.leave()
    await alice.waitForMembers(['Alice'])
    await alice.waitForNote(/^Bob \(#\d+\) left$/)
    await screenshot(alice, '3-bob-left')

    await bob.join()
    const again = await alice.waitForMembers(['Alice', 'Bob'])
    await bob.waitForMembers(['Alice', 'Bob'])
    // Joining again is a new connection: Bob comes back with a new id.
    const bobBefore = members.find((member) => member.name === 'Bob')
    const bobAgain = again.find((member) => member.name === 'Bob')
    expect(bobAgain?.id).toBeGreaterThan(bobBefore?.id ?? Number.POSITIVE_INFINITY)
  })

  it('both pages reconnect by themselves after wrangler dev restarts on the same state and port, and chat again', async () => {
    const { alice, bob, members: before } = await joinedPair(`${ROOM}-restart`)
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
