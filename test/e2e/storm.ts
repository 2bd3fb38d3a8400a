import type { FixtureClient } from './fixtureClient.js'

/** How a storm connection ends, if it does. */
export type Fate = 'stay' | 'client-close' | 'server-close' | 'terminate' | 'both-close'

const WEIGHTS: readonly (readonly [Fate, number])[] = [
  ['stay', 30],
  ['client-close', 20],
  ['server-close', 20],
  ['terminate', 20],
  ['both-close', 10],
]
/** What a connection asks the server to close it with. */
const SERVER_CLOSE_CODE = 4000
/** A close waits up to this long after the greeting, so closes land among the messages. */
const MAX_DELAY_MS = 20

type Leaving = Exclude<Fate, 'stay'>

/** The codes `close` may run with on the server for each way of leaving. */
export const serverCodes: Record<Leaving, readonly number[]> = {
  'client-close': [1000],
  'server-close': [SERVER_CLOSE_CODE],
  terminate: [1006],
  // Whichever close reaches the other side first wins; either way `close` runs once.
  'both-close': [1000, SERVER_CLOSE_CODE],
}

/** The codes the client may see for each way of leaving. */
export const clientCodes: Record<Leaving, readonly number[]> = serverCodes

/** mulberry32: a seeded generator, so the seed in a failure message names the storm that failed. */
function generator(seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

export interface Storm {
  seed: number
  fates: Fate[]
  delays: number[]
}

/** A fate and a delay for each of `count` connections, from `STORM_SEED` or a fresh seed. */
export function randomStorm(count: number): Storm {
  const seed = Number(process.env.STORM_SEED ?? Math.floor(Math.random() * 2 ** 32))
  const random = generator(seed)
  const total = WEIGHTS.reduce((sum, [, weight]) => sum + weight, 0)
  const fates: Fate[] = []
  const delays: number[] = []
  for (let i = 0; i < count; i++) {
    let pick = random() * total
    const fate = WEIGHTS.find(([, weight]) => (pick -= weight) < 0)?.[0] ?? 'stay'
    fates.push(fate)
    delays.push(Math.floor(random() * MAX_DELAY_MS))
  }
  return { seed, fates, delays }
}

/** Sets the connection's fate going, after `delay` ms, without waiting for it. */
export function act(client: FixtureClient, fate: Fate, delay: number): void {
  if (fate === 'stay') return
  setTimeout(() => {
    if (!client.isOpen) return
    switch (fate) {
      case 'client-close':
        client.socket.close(1000)
        return
      case 'server-close':
        client.send({ type: 'bye', code: SERVER_CLOSE_CODE })
        return
      case 'terminate':
        client.socket.terminate()
        return
      case 'both-close':
        client.send({ type: 'bye', code: SERVER_CLOSE_CODE })
        client.socket.close(1000)
        return
    }
  }, delay)
}

/** One line: how many connections went which way. */
export function stormReport(seed: number, fates: readonly Fate[], echoes: number): string {
  const counts = new Map<Fate, number>()
  for (const fate of fates) counts.set(fate, (counts.get(fate) ?? 0) + 1)
  const parts = WEIGHTS.map(([fate]) => `${String(counts.get(fate) ?? 0)} ${fate}`)
  return `storm (seed ${String(seed)}): ${String(fates.length)} opens, ${parts.join(', ')}, ${String(echoes)} echoes`
}
