import { setTimeout as sleep } from 'node:timers/promises'
import NodeWs from 'ws'
import {
  connect,
  type Client,
  type ClientOptions,
  type WebSocketConstructor,
} from '../../src/client/index.js'
import type { ToClient, ToServer } from './fixtures/chaos/protocol.js'

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
  client.on('message', (message) => state.broadcasts.push(message.b))
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
