import { mkdir } from 'node:fs/promises'
import { createConnection, createServer, type AddressInfo, type Socket } from 'node:net'
import { join, resolve } from 'node:path'
import type { Browser, BrowserContext, Page } from 'playwright-core'
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
  logConsole(page, name)
  return new ChatPage(page, name)
}

/** Another tab of the same person: a page in `chat`'s context (its localStorage, its own sessionStorage). */
async function secondTab(chat: ChatPage): Promise<ChatPage> {
  const page = await chat.page.context().newPage()
  logConsole(page, `${chat.name}, tab 2`)
  return new ChatPage(page, chat.name)
}

function logConsole(page: Page, label: string): void {
  page.on('console', (message) => consoleLines.push(`[${label}] ${message.type()}: ${message.text()}`))
  page.on('pageerror', (error) => consoleLines.push(`[${label}] page error: ${String(error)}`))
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

/**
 * Alice and Bob, each in a page of their own, joined to `room` and seeing each other there. Alice
 * reaches the server at `aliceOrigin` (a proxy the test can cut), Bob directly.
 */
async function joinedPair(
  room: string,
  aliceOrigin = server().origin,
): Promise<{ alice: ChatPage; bob: ChatPage; members: Member[] }> {
  const alice = await chatPage('Alice', { width: 1100, height: 720 })
  const bob = await chatPage('Bob', { width: 390, height: 844 })
  await alice.open(aliceOrigin, room)
  await alice.join()
  await bob.open(server().origin, room)
  await bob.join()
  const members = await alice.waitForMembers(['Alice', 'Bob'])
  await bob.waitForMembers(['Alice', 'Bob'])
  return { alice, bob, members }
}

/** A status line that says someone joined or left, as the page notes presence changes. */
const PRESENCE_NOTE = / (joined|left)$/

function presenceNotes(notes: readonly string[]): string[] {
  return notes.filter((note) => PRESENCE_NOTE.test(note))
}

// Each test opens its own pages in a room of its own, so any one of them can run alone.
describe('the chat at / in headless Chromium', () => {
  it('two pages that join one room under different names see each other, one member each with one connection', async () => {
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

    // One presence list, in the order the members joined.
    expect(seenByAlice).toEqual([
      { name: 'Alice', connections: 1 },
      { name: 'Bob', connections: 1 },
    ])
    expect(seenByBob).toEqual(seenByAlice)
    await alice.waitForNote('Bob joined')
    // The list a page gets on joining is who was already here, not news.
    expect(presenceNotes(await bob.notes())).toEqual([])
    expect(await alice.ownId()).not.toBe(await bob.ownId())
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
    const { alice, bob } = await joinedPair(`${ROOM}-leave`)
    const bobId = await bob.ownId()
    await bob.leave()
    await alice.waitForMembers(['Alice'])
    await alice.waitForNote('Bob left')
    await screenshot(alice, '3-bob-left')

    await bob.join()
    await alice.waitForMembers(['Alice', 'Bob'])
    await bob.waitForMembers(['Alice', 'Bob'])
    expect(presenceNotes(await alice.notes())).toEqual(['Bob joined', 'Bob left', 'Bob joined'])
    // Joining again is a new connection (a new id), but the same name: the same member key.
    expect(await bob.ownId()).toBeGreaterThan(bobId)
  })

  it('a second tab under the same name is the same member, with 2 connections, and no join for the others', async () => {
    const { alice, bob } = await joinedPair(`${ROOM}-tabs`)
    const aliceAgain = await secondTab(alice)
    await aliceAgain.open(server().origin, `${ROOM}-tabs`)
    await aliceAgain.join()

    const seenByBob = await bob.waitForConnections('Alice', 2)
    expect(seenByBob).toEqual([
      { name: 'Alice', connections: 2 },
      { name: 'Bob', connections: 1 },
    ])
    await alice.waitForConnections('Alice', 2)
    expect(await aliceAgain.waitForConnections('Alice', 2)).toEqual(seenByBob)
    expect(await aliceAgain.ownId()).not.toBe(await alice.ownId())
    expect(presenceNotes(await bob.notes())).toEqual([])
    await screenshot(bob, '4-two-tabs')

    // Either tab speaks as Alice.
    await aliceAgain.say('From my other tab')
    await bob.waitForMessage('Alice', 'From my other tab')
  })

  it('closing one of two tabs keeps the member with 1 connection; closing the last one leaves', async () => {
    const { alice, bob } = await joinedPair(`${ROOM}-close`)
    const aliceAgain = await secondTab(alice)
    await aliceAgain.open(server().origin, `${ROOM}-close`)
    await aliceAgain.join()
    await bob.waitForConnections('Alice', 2)

    // A closed tab's session waits out the server's resume window (a reload would come back in it).
    await aliceAgain.page.close()
    expect(await bob.waitForConnections('Alice', 1, 40_000)).toEqual([
      { name: 'Alice', connections: 1 },
      { name: 'Bob', connections: 1 },
    ])
    expect(presenceNotes(await bob.notes())).toEqual([])

    await alice.page.close()
    await bob.waitForMembers(['Bob'], 40_000)
    await bob.waitForNote('Alice left')
    expect(presenceNotes(await bob.notes())).toEqual(['Alice left'])
    await screenshot(bob, '5-alice-closed')
  }, 120_000)

  it('a page whose connection is cut resumes its session: what was said meanwhile shows once, and the other page sees no leave or join', async () => {
    const proxy = await cuttableProxy(Number(new URL(server().origin).port))
    try {
      const { alice, bob, members: before } = await joinedPair(`${ROOM}-cut`, proxy.origin)
      const aliceId = await alice.ownId()
      const bobNotesBefore = await bob.notes()

      proxy.cut()
      await alice.waitForState('reconnecting')
      const missed = ['While you were away, 1', 'While you were away, 2', 'While you were away, 3']
      for (const text of missed) await bob.say(text)
      for (const text of missed) await bob.waitForMessage('Bob', text)
      // Alice's dropped session still counts as her connection: Bob's list has not changed.
      expect(await bob.members()).toEqual(before)
      await alice.say('Typed while offline')
      await screenshot(alice, '6-cut')
      proxy.restore()

      await alice.waitForState('open', 30_000)
      // Replayed messages come before anything newer, so once this arrives every copy is in.
      await bob.say('After the cut')
      await alice.waitForMessage('Bob', 'After the cut', 30_000)
      await bob.waitForMessage('Alice', 'Typed while offline')
      for (const text of [...missed, 'After the cut']) expect(await alice.countMessages(text)).toBe(1)
      expect(await bob.countMessages('Typed while offline')).toBe(1)

      // The same session: the same id, the same members on both pages, and Bob saw Alice neither leave nor join.
      expect(await alice.ownId()).toBe(aliceId)
      expect(await bob.waitForMembers(['Alice', 'Bob'])).toEqual(before)
      expect(await alice.waitForMembers(['Alice', 'Bob'])).toEqual(before)
      expect(await bob.notes()).toEqual(bobNotesBefore)
      await alice.waitForNote('reconnected, nothing missed')
      expect(presenceNotes(await alice.notes())).toEqual(['Bob joined'])
      await screenshot(alice, '7-resumed')
    } finally {
      await proxy.close()
    }
  }, 90_000)

  it('a reloaded page resumes its session from sessionStorage: the same id, the member list again, and no leave or join for the other page', async () => {
    const { alice, bob, members: before } = await joinedPair(`${ROOM}-reload`)
    const aliceId = await alice.ownId()
    const bobNotesBefore = await bob.notes()

    await alice.page.reload()
    expect(await alice.ownId()).toBe(aliceId)
    expect(await alice.waitForMembers(['Alice', 'Bob'])).toEqual(before)
    await bob.say('Welcome back, same Alice')
    await alice.waitForMessage('Bob', 'Welcome back, same Alice')
    await alice.say('Same me')
    await bob.waitForMessage('Alice', 'Same me')
    expect(await bob.waitForMembers(['Alice', 'Bob'])).toEqual(before)
    expect(await bob.notes()).toEqual(bobNotesBefore)
  })

  it('a page whose session cannot be resumed gets a reset: a new session of the same member, so the other page sees no leave or join', async () => {
    const { alice, bob } = await joinedPair(`${ROOM}-reset`)
    const aliceId = await alice.ownId()
    const bobNotesBefore = await bob.notes()
    // A token the server never issued, as a session that is gone would present: the resume must fail.
    await alice.page.evaluate(() => {
      for (const key of Object.keys(sessionStorage)) {
        if (!key.startsWith('durable-websocket:') || key.endsWith(':messages')) continue
        const position = JSON.parse(sessionStorage.getItem(key) ?? '{}') as { token?: string }
        sessionStorage.setItem(key, JSON.stringify({ ...position, token: 'A'.repeat(43) }))
      }
    })
    await alice.page.reload()

    await alice.waitForNote('away too long: messages sent meanwhile are missing')
    expect(await alice.ownId()).toBeGreaterThan(aliceId)
    await alice.waitForNote('joined room browser-test-reset as Alice')
    await alice.waitForMembers(['Alice', 'Bob'])
    await alice.say('New session, same room')
    await bob.waitForMessage('Alice', 'New session, same room')
    // Until then the old session, dropped by the reload, still counts: one member, 2 connections.
    expect(await bob.members()).toEqual([
      { name: 'Alice', connections: 2 },
      { name: 'Bob', connections: 1 },
    ])
    // The old session waits out its resume window and then ends: Alice keeps her new connection.
    expect(await bob.waitForConnections('Alice', 1, 40_000)).toEqual([
      { name: 'Alice', connections: 1 },
      { name: 'Bob', connections: 1 },
    ])
    expect(await bob.notes()).toEqual(bobNotesBefore)
  }, 90_000)

  it('both pages resume their sessions after wrangler dev is killed and started again on the same state, and show what was said while it was down once', async () => {
    const { alice, bob, members: before } = await joinedPair(`${ROOM}-restart`)
    const ids = { alice: await alice.ownId(), bob: await bob.ownId() }
    const notesBefore = { alice: await alice.notes(), bob: await bob.notes() }
    await server().kill()
    await Promise.all([alice.waitForState('reconnecting'), bob.waitForState('reconnecting')])
    await alice.say('Said while the server was down')
    await screenshot(bob, '8-reconnecting')
    await server.startAgain()

    await Promise.all([alice.waitForState('open', 30_000), bob.waitForState('open', 30_000)])
    await bob.waitForMessage('Alice', 'Said while the server was down', 30_000)
    await bob.say('Yes, resumed by myself.')
    await alice.waitForMessage('Bob', 'Yes, resumed by myself.')
    await alice.say('Still there after the restart?')
    await bob.waitForMessage('Alice', 'Still there after the restart?')
    expect(await bob.countMessages('Said while the server was down')).toBe(1)
    expect(await alice.countMessages('Said while the server was down')).toBe(1)

    // The objects' sessions and presence outlived the process: the same ids and members, and nobody left or joined.
    expect({ alice: await alice.ownId(), bob: await bob.ownId() }).toEqual(ids)
    expect(await alice.waitForMembers(['Alice', 'Bob'], 30_000)).toEqual(before)
    expect(await bob.waitForMembers(['Alice', 'Bob'], 30_000)).toEqual(before)
    const notesAfter = { alice: await alice.notes(), bob: await bob.notes() }
    for (const [name, notes] of Object.entries(notesAfter)) {
      expect(presenceNotes(notes), name).toEqual(presenceNotes(notesBefore[name as keyof typeof notesBefore]))
    }
    await screenshot(alice, '9-after-restart')
    await screenshot(bob, '9-after-restart')
  }, 90_000)
})

/**
 * A TCP relay on 127.0.0.1 in front of wrangler dev, for one page: `cut()` drops every connection
 * through it without a close frame, as a lost network does, and refuses new ones until `restore()`.
 */
async function cuttableProxy(targetPort: number): Promise<{
  origin: string
  cut: () => void
  restore: () => void
  close: () => Promise<void>
}> {
  const open = new Set<Socket>()
  let down = false
  const relay = createServer((inbound) => {
    if (down) return inbound.resetAndDestroy()
    const outbound = createConnection({ host: '127.0.0.1', port: targetPort })
    for (const socket of [inbound, outbound]) {
      open.add(socket)
      socket.on('error', () => undefined)
      socket.on('close', () => {
        open.delete(socket)
        inbound.destroy()
        outbound.destroy()
      })
    }
    inbound.pipe(outbound)
    outbound.pipe(inbound)
  })
  await new Promise<void>((resolveListening) => relay.listen(0, '127.0.0.1', resolveListening))
  const { port } = relay.address() as AddressInfo
  return {
    origin: `http://127.0.0.1:${String(port)}`,
    cut: () => {
      down = true
      for (const socket of open) socket.resetAndDestroy()
    },
    restore: () => {
      down = false
    },
    close: () =>
      new Promise((resolveClosed) => {
        for (const socket of open) socket.destroy()
        relay.close(() => resolveClosed())
      }),
  }
}
