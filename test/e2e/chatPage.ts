import { setTimeout as sleep } from 'node:timers/promises'
import type { Page } from 'playwright-core'

const WAIT_MS = 15_000
const POLL_MS = 100

/** A member as the page lists it from the room's presence: a name, and how many connections (tabs) it has. */
export interface Member {
  name: string
  connections: number
}

/** What members() reads of a list item in the page; this program has Node's types, not the DOM's. */
interface ListItem {
  getAttribute(name: string): string | null
}

/** The demo chat at `/`, driven the way a person would: the form, the composer, the Leave button. */
export class ChatPage {
  readonly page: Page
  readonly name: string

  constructor(page: Page, name: string) {
    this.page = page
    this.name = name
  }

  async open(origin: string, room: string): Promise<void> {
    await this.page.goto(`${origin}/?room=${encodeURIComponent(room)}`, { timeout: WAIT_MS })
  }

  async join(): Promise<void> {
    await this.page.fill('#name', this.name, { timeout: WAIT_MS })
    await this.page.click('#join button[type=submit]', { timeout: WAIT_MS })
    await this.waitForState('open')
  }

  async leave(): Promise<void> {
    await this.page.click('#leave', { timeout: WAIT_MS })
    await this.page.locator('#join').waitFor({ state: 'visible', timeout: WAIT_MS })
  }

  async say(text: string): Promise<void> {
    await this.page.fill('#text', text, { timeout: WAIT_MS })
    await this.page.press('#text', 'Enter', { timeout: WAIT_MS })
  }

  /** Waits for a chat line from `from` with this text. */
  async waitForMessage(from: string, text: string, timeout = WAIT_MS): Promise<void> {
    await this.page
      .locator('#log li.said', { hasText: text })
      .filter({ hasText: from })
      .first()
      .waitFor({ state: 'visible', timeout })
  }

  /** How many chat lines show exactly this text: a message shown twice counts 2. */
  async countMessages(text: string): Promise<number> {
    const lines = await this.page.locator('#log li.said').allTextContents()
    return lines.filter((line) => line.endsWith(text)).length
  }

  /** Every status line so far, such as "Bob joined", oldest first. */
  async notes(): Promise<string[]> {
    return this.page.locator('#log li.note').allTextContents()
  }

  /** The connection id the page says it is online with ("online as Alice (#3)"), once it is open. */
  async ownId(): Promise<number> {
    await this.waitForState('open')
    const text = (await this.page.locator('#status').textContent()) ?? ''
    const match = /#(\d+)/.exec(text)
    if (match === null) throw new Error(`${this.name}'s status shows no id: ${JSON.stringify(text)}`)
    return Number(match[1])
  }

  /** Waits for a status line such as "Bob left". */
  async waitForNote(text: string | RegExp, timeout = WAIT_MS): Promise<void> {
    await this.page.locator('#log li.note', { hasText: text }).first().waitFor({ state: 'visible', timeout })
  }

  async waitForState(state: 'open' | 'reconnecting' | 'closed', timeout = WAIT_MS): Promise<void> {
    await this.page.locator(`#status[data-state="${state}"]`).waitFor({ state: 'attached', timeout })
  }

  /** Waits until the member list is current (not greyed out) and shows exactly these names, in any order. */
  async waitForMembers(names: readonly string[], timeout = WAIT_MS): Promise<Member[]> {
    const wanted = JSON.stringify([...names].sort())
    return this.#waitForList(
      (members) => JSON.stringify(members.map((member) => member.name).sort()) === wanted,
      `the members ${wanted}`,
      timeout,
    )
  }

  /** Waits until the current member list shows `name` with this many connections (tabs). */
  async waitForConnections(name: string, connections: number, timeout = WAIT_MS): Promise<Member[]> {
    return this.#waitForList(
      (members) => members.some((member) => member.name === name && member.connections === connections),
      `${name} with ${String(connections)} connections`,
      timeout,
    )
  }

  async #waitForList(done: (members: Member[]) => boolean, what: string, timeout: number): Promise<Member[]> {
    const deadline = Date.now() + timeout
    for (;;) {
      const stale = (await this.page.locator('#members.stale').count()) > 0
      const members = await this.members()
      if (!stale && done(members)) return members
      if (Date.now() > deadline) {
        throw new Error(
          `${this.name}'s page did not show ${what} within ${String(timeout)} ms; it shows ${JSON.stringify(members)}${stale ? ', greyed out' : ''}`,
        )
      }
      await sleep(POLL_MS)
    }
  }

  /** Read in one step in the page: item by item, a list redrawn in between would leave a locator waiting. */
  async members(): Promise<Member[]> {
    return this.page.$$eval('#members li', (items: ListItem[]) =>
      items.map((item) => ({
        name: item.getAttribute('data-name') ?? '',
        connections: Number(item.getAttribute('data-connections')),
      })),
    )
  }
}
