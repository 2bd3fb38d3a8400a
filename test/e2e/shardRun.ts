import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import NodeWs from 'ws'
import { expect } from 'vitest'
import { connect, type Client, type ClientOptions } from '../../src/client/index.js'
import type { Logged, Seen, ToClient, ToServer } from './fixtures/shards/protocol.js'
import { dialingRuntime } from '../../tools/wranglerWorkerd.js'
import { oneTo } from './sessionPeers.js'

// The clients of test/e2e/shards.test.ts and the fixture's HTTP routes it reads the room through
// (test/e2e/fixtures/shards/worker.ts).

/** One client of the run and everything it saw. */
export interface Member {
  readonly name: string
  readonly client: Client<ToClient, ToServer>
  /** Every broadcast received, in order, as `b3` or `s7`. */
  readonly received: string[]
  /** `client.id` at every open. */
  readonly ids: (number | undefined)[]
  resumes: number
  readonly problems: string[]
  sent: number
  /** Drops the client's TCP connection with no close frame, as a network would; the client resumes by itself. */
  readonly cut: () => void
}

export interface MemberOptions {
  /** Whether the run is over, so a close is expected. */
  stopping: () => boolean
  /** The origin every socket dials now (the runtime's own port, a new one after a restart). */
  dial: () => string
  reconnect: NonNullable<ClientOptions<ToClient, ToServer>['reconnect']>
  maxQueued: number
}

/**
 * A session client given `url`, which stays its session's key, whose
 * sockets go to `dial()` instead: the port a socket dials may change between
 * two of them, the session does not.
 */
export function member(name: string, url: string, options: MemberOptions): Member {
  let socket: NodeWs | undefined
  // The client makes its sockets itself: each goes to the current origin, and the latest is kept for `cut`.
  const Dialled = dialingRuntime(options.dial, (made) => {
    socket = made
  })
  const client = connect<ToClient, ToServer>(url, {
    reconnect: options.reconnect,
    WebSocket: Dialled,
    maxQueued: options.maxQueued,
  })
  const state: Member = {
    name,
    client,
    received: [],
    ids: [],
    resumes: 0,
    problems: [],
    sent: 0,
    cut: () => socket?.terminate(),
  }
  client.on('open', ({ resumed }) => {
    state.ids.push(client.id)
    if (resumed) state.resumes += 1
  })
  client.on('reset', () => state.problems.push('reset'))
  client.on('message', (message) => {
    state.received.push('b' in message ? `b${String(message.b)}` : `s${String(message.s)}`)
  })
  client.on('error', (error) => {
    // A dropped socket, or an upgrade refused while a leaf was full or the runtime restarting, is
    // what the run is about; the client tries again by itself.
    if (error.code !== 'ERR_DWS_SOCKET_ERROR') state.problems.push(`${error.code}: ${error.message}`)
  })
  client.on('close', ({ code, willReconnect }) => {
    if (!willReconnect && !options.stopping()) state.problems.push(`gave up after close ${String(code)}`)
  })
  return state
}

/** Polls `done`; fails at once on any member's problem, and at the deadline with the members behind. */
export async function until(
  what: string,
  done: () => boolean,
  ms: number,
  members: readonly Member[],
  broadcasts: number,
): Promise<void> {
  const deadline = Date.now() + ms
  for (;;) {
    const problems = members.flatMap((m) => m.problems.map((p) => `${m.name}: ${p}`))
    if (problems.length > 0) throw new Error(`waiting for ${what}: ${problems.slice(0, 5).join('; ')}`)
    if (done()) return
    if (Date.now() > deadline) {
      const behind = members
        .filter((m) => m.client.queued > 0 || m.received.length < broadcasts || m.ids.length === 0)
        .slice(0, 5)
        .map(
          (m) =>
            `${m.name}: ${String(m.ids.length)} opens, ${String(m.received.length)} received, ${String(m.client.queued)} queued, ${m.client.state}`,
        )
      throw new Error(`timed out waiting for ${what}: ${behind.join('; ')}`)
    }
    await sleep(50)
  }
}

/** Each call sends the next share of `messages` numbered messages per member, spread over `ticks` calls. */
export function clientMessages(members: readonly Member[], messages: number, ticks: number): () => void {
  const perTick = Math.ceil((members.length * messages) / ticks)
  let next = 0
  return () => {
    for (let k = 0; k < perTick; k++) {
      const m = members[next % members.length]
      next += 1
      if (m === undefined || m.sent === messages) continue
      m.sent += 1
      if (!m.client.send({ n: m.sent })) m.problems.push(`send ${String(m.sent)} refused`)
    }
  }
}

/** The fixture's routes for one room, through wrangler's public port. */
export class RoomRoutes {
  readonly #origin: () => string
  readonly #room: string

  constructor(origin: () => string, room: string) {
    this.#origin = origin
    this.#room = room
  }

  /** The server's stream: one RPC broadcast through the root, answered before the next. */
  async broadcast(s: number): Promise<void> {
    const response = await fetch(`${this.#base()}/broadcast/${String(s)}`, { method: 'POST' })
    expect(response.status, `the server's broadcast ${String(s)}`).toBe(200)
  }

  /** Per leaf, the ids of the sockets open on it now. */
  async openOnLeaves(): Promise<number[][]> {
    const response = await fetch(`${this.#base()}/leaves`)
    expect(response.status, `the open sockets of the leaves of ${this.#room}`).toBe(200)
    return (await response.json()) as number[][]
  }

  /** Every leaf says it has no room once it holds `share` sockets; 0 lifts it. */
  async share(share: number): Promise<void> {
    const response = await fetch(`${this.#base()}/share/${String(share)}`, { method: 'POST' })
    expect(response.status, `the share of ${String(share)} sockets per leaf`).toBe(200)
  }

  /** From now on the leaf refuses new sockets, its own sessions' resumes included. */
  async refuse(leaf: number): Promise<void> {
    const response = await fetch(`${this.#base()}/leaves/${String(leaf)}/refuse`, { method: 'POST' })
    expect(response.status, `leaf ${String(leaf)} made to refuse`).toBe(200)
  }

  async seen(): Promise<Seen> {
    return (await (await fetch(`${this.#base()}/seen`)).json()) as Seen
  }

  /**
   * The root's log holds each of the `ticks` broadcasts of both streams once
   * (the server's in the order sent, the broadcaster's likewise), and every
   * member received exactly that order.
   */
  async expectRootOrder(members: readonly Member[], ticks: number): Promise<void> {
    const log = (await (await fetch(`${this.#base()}/log`)).json()) as Logged[]
    const order = log.filter((row) => row.target === null).map((row) => row.message)
    expect(order).toHaveLength(2 * ticks)
    expect(order.filter((m) => m.startsWith('s'))).toEqual(oneTo(ticks).map((s) => `s${String(s)}`))
    expect(order.filter((m) => m.startsWith('b'))).toEqual(oneTo(ticks).map((b) => `b${String(b)}`))
    for (const m of members)
      expect(m.received, `what ${m.name} received, against the root's order`).toEqual(order)
  }

  #base(): string {
    return `${this.#origin()}/rooms/${this.#room}`
  }
}

/** The soft open-file limit of a process (this one by default), from /proc/<pid>/limits. */
export function openFileLimit(pid: number | 'self' = 'self'): number {
  const limits = readFileSync(`/proc/${String(pid)}/limits`, 'utf8')
  const soft = /^Max open files\s+(\S+)/m.exec(limits)?.[1]
  return soft === undefined || soft === 'unlimited' ? Infinity : Number(soft)
}

/** How many descriptors a process holds now. */
export function openFiles(pid: number): number {
  return readdirSync(`/proc/${String(pid)}/fd`).length
}

/** A copy of the fixture's wrangler.toml with its `main` made absolute and SOCKETS_PER_LEAF set. */
export function fixtureConfig(socketsPerLeaf: number): string {
  const dir = resolve(import.meta.dirname, 'fixtures/shards')
  const text = readFileSync(join(dir, 'wrangler.toml'), 'utf8')
    .replace(/^main = ".+"$/m, `main = ${JSON.stringify(join(dir, 'worker.ts'))}`)
    .replace(/^SOCKETS_PER_LEAF = ".+"$/m, `SOCKETS_PER_LEAF = "${String(socketsPerLeaf)}"`)
  const path = join(mkdtempSync(join(tmpdir(), 'durable-websocket-e2e-shards-')), 'wrangler.toml')
  writeFileSync(path, text)
  return path
}
