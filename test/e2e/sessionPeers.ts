import { setTimeout as sleep } from 'node:timers/promises'
import NodeWs from 'ws'
import {
  connect,
  type Client,
  type ClientOptions,
  type WebSocketConstructor,
} from '../../src/client/index.js'
import { expect } from 'vitest'
import type { Seen, ToClient, ToServer } from './fixtures/chaos/protocol.js'

// Session clients of the package's own client, as the chaos and deploy-storm runs drive them: what
// each one sent and saw, and anything that must not happen.

/** 1, 2, …, count: what every list of numbers must be at the end. */
export function oneTo(count: number): number[] {
  return Array.from({ length: count }, (_, index) => index + 1)
}

/** One client of the run and everything it saw. */
export interface Peer {
  readonly name: string
  readonly client: Client<ToClient, ToServer>
  /** The `b` of every broadcast received, in order. */
  readonly broadcasts: number[]
  /** `client.id` at every open. */
  readonly ids: (number | undefined)[]
  resumes: number
  resets: number
  /** How many messages it sent so far, of `quota`, each made by `message`. */
  sent: number
  readonly quota: number
  readonly message: (k: number) => ToServer
  /** Anything that must not happen: a protocol error, a client that gave up, a send refused. */
  readonly problems: string[]
}

export function peer(
  name: string,
  url: string,
  stopping: () => boolean,
  quota: number,
  message: (k: number) => ToServer,
  options: ClientOptions<ToClient, ToServer> = {},
): Peer {
  const client = connect<ToClient, ToServer>(url, {
    WebSocket: NodeWs as unknown as WebSocketConstructor,
    // Room for every message of the run: a restart must queue them, never refuse one.
    maxQueued: 2 * quota + 100,
    ...options,
  })
  const state: Peer = {
    name,
    client,
    broadcasts: [],
    ids: [],
    resumes: 0,
    resets: 0,
    problems: [],
    sent: 0,
    quota,
    message,
  }
  client.on('open', ({ resumed }) => {
    state.ids.push(client.id)
    if (resumed) state.resumes += 1
  })
  client.on('reset', () => {
    state.resets += 1
    state.problems.push('reset')
  })
  client.on('message', (message) => {
    if ('b' in message) state.broadcasts.push(message.b)
    else state.problems.push('a reply delivered as a message')
  })
  client.on('error', (error) => {
    // A socket that failed (a cut, a refused handshake while wrangler restarts) is what the run is about.
    if (error.code !== 'ERR_DWS_SOCKET_ERROR') state.problems.push(`${error.code}: ${error.message}`)
  })
  client.on('close', ({ code, willReconnect }) => {
    if (!willReconnect && !stopping()) state.problems.push(`gave up after close ${String(code)}`)
  })
  return state
}

export function failOnProblems(during: string, peers: readonly Peer[]): void {
  const problems = peers.flatMap((p) => p.problems.map((problem) => `${p.name}: ${problem}`))
  if (problems.length > 0) throw new Error(`during ${during}: ${problems.slice(0, 5).join('; ')}`)
}

/** Polls until `done` holds, failing with `what` and `detail()` after `ms`; fails at once on a problem. */
export async function until(
  what: string,
  done: () => boolean,
  ms: number,
  peers: readonly Peer[],
  detail: () => string = () => '',
): Promise<void> {
  const deadline = Date.now() + ms
  for (;;) {
    failOnProblems(`waiting for ${what}`, peers)
    if (done()) return
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} ${detail()}`)
    await sleep(50)
  }
}

/** Waits until every peer has all its messages acknowledged and `broadcasts` broadcasts delivered. */
export async function untilSettled(peers: readonly Peer[], broadcasts: number, ms: number): Promise<void> {
  const behind = (): string =>
    peers
      .filter((p) => p.client.queued > 0 || p.broadcasts.length < broadcasts)
      .slice(0, 5)
      .map(
        (p) =>
          `${p.name}: ${String(p.client.queued)} unacknowledged, ${String(p.broadcasts.length)} broadcasts, ${p.client.state}`,
      )
      .join('; ')
  await until(
    'every message acknowledged and every broadcast delivered',
    () => peers.every((p) => p.client.queued === 0 && p.broadcasts.length >= broadcasts),
    ms,
    peers,
    behind,
  )
}

/**
 * Checks a run against what the room's handlers recorded (`GET /rooms/<room>/seen`):
 * each worker's `messages` handled once and in order, the broadcaster's
 * `broadcasts` likewise and each delivered once and in order to everyone, one
 * session per peer that was only ever resumed after its first open, none reset,
 * none ended.
 */
export function expectExactlyOnce(
  seen: Seen,
  workers: readonly Peer[],
  broadcaster: Peer,
  counts: { messages: number; broadcasts: number },
): void {
  const peers = [...workers, broadcaster]
  for (const p of peers) {
    expect(p.resets, `${p.name} reset`).toBe(0)
    expect(new Set(p.ids).size, `${p.name} kept one id`).toBe(1)
    expect(p.broadcasts, `the broadcasts ${p.name} received`).toEqual(oneTo(counts.broadcasts))
  }
  const idOf = (p: Peer): string => String(p.ids[0])
  for (const worker of workers) {
    expect(seen.messages[idOf(worker)], `what the server handled from ${worker.name}`).toEqual({
      n: oneTo(counts.messages),
      b: [],
    })
  }
  expect(seen.messages[idOf(broadcaster)], 'what the server handled from the broadcaster').toEqual({
    n: [],
    b: oneTo(counts.broadcasts),
  })
  expect(Object.keys(seen.opens).sort()).toEqual(peers.map(idOf).sort())
  for (const [id, opens] of Object.entries(seen.opens)) {
    expect(opens[0], `the first open of session ${id}`).toBe(false)
    expect(opens.slice(1).every(Boolean), `every later open of session ${id} resumed`).toBe(true)
  }
  expect(seen.closes).toEqual({})
}
