/**
 * The room's load during the stream, the same at every size: frames of ~1 KB
 * the broadcasts deliver per second, and client messages `{ n }` per second,
 * spread over the clients. *busy*: 10,000 frames a second (10 broadcasts a
 * second to 1,000 clients, 2 to 5,000) and 500 client messages (each of
 * 1,000 clients one every 2 s, each of 5,000 one every 10 s). *quiet*: a
 * tenth of that (1,000 frames and 50 messages a second). One object is one
 * thread: a load that grows with the room (every client sending every 2 s is
 * 2,500 messages a second at 5,000, each a commit, beside 50,000 frames a
 * second) keeps the object past its capacity before anything drops, and then
 * the storm measures the backlog, not the recovery (a run that did that at
 * 5,000 never got its reset call answered within 3 minutes). The two loads
 * part what the recovery itself costs from what the stream that goes on
 * through it takes from the same thread.
 */
export type StormLoad = 'busy' | 'quiet'

export const LOADS: Record<StormLoad, { deliveriesPerS: number; clientMessagesPerS: number }> = {
  busy: { deliveriesPerS: 10_000, clientMessagesPerS: 500 },
  quiet: { deliveriesPerS: 1_000, clientMessagesPerS: 50 },
}

export const STORM_LOADS: readonly StormLoad[] = ['busy', 'quiet']

/** The padding of a broadcast, so that one weighs what a real one does. */
export const PADDING_BYTES = 1_000

const TICK_MS = 100

/** How long the stream runs before the room drops. */
export const STREAM_MS = 3_000
/** The end of the stream over which the runtime's CPU is read: the share of the thread the load takes. */
export const STREAM_CPU_MS = 2_000

/**
 * Runs a load over a room of `clients` until the returned stop: every few
 * ticks one `broadcast()`, and each tick that tick's share of the client
 * messages, `clientMessage(i)` going round the clients in turn. A fraction of
 * a message per tick is carried over, so 50 a second are 50, not 100.
 */
export function startStream(
  clients: number,
  load: StormLoad,
  broadcast: () => void,
  clientMessage: (index: number) => void,
): () => void {
  const { deliveriesPerS, clientMessagesPerS } = LOADS[load]
  const broadcastEvery = Math.max(1, Math.round((clients * 1_000) / deliveriesPerS / TICK_MS))
  const perTick = (clientMessagesPerS * TICK_MS) / 1_000
  let owed = 0
  let ticks = 0
  let next = 0
  const ticker = setInterval(() => {
    owed += perTick
    if (ticks++ % broadcastEvery === 0) broadcast()
    for (; owed >= 1; owed -= 1) clientMessage(next++ % clients)
  }, TICK_MS)
  return () => {
    clearInterval(ticker)
  }
}
