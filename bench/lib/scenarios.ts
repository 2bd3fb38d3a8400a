import { setTimeout as sleep } from 'node:timers/promises'
import type WebSocket from 'ws'
import { closeAll, closeSocket, openMany, openSocket, request, type ClientKind } from './client.ts'
import { Span, type Target } from './measure.ts'

/** One server under test, as the client sees it. */
export interface Endpoint extends Target {
  readonly key: string
  /** The WebSocket URL of a room. */
  url(room: string): string
  /** How the scenario's sockets talk to it; plain when not given. */
  readonly client?: ClientKind
}

export interface Timing {
  /** Load runs this long before the span starts, so JIT and caches are warm. */
  warmupMs: number
  /** The measured span. */
  windowMs: number
}

export interface Scenario<State> {
  readonly id: string
  readonly title: string
  /** What one operation is, for the table. */
  readonly unit: string
  /** What the scenario measures, for the method section. */
  readonly description: string
  setup(endpoint: Endpoint): Promise<State>
  run(state: State, span: Span, timing: Timing): Promise<void>
  teardown(state: State): Promise<void>
}

/** The one message every echo sends; the servers answer `{"received":{…}}`. */
export const ECHO_MESSAGE = JSON.stringify({ text: 'hello, durable objects', n: 42 })
export const BROADCAST_TRIGGER = JSON.stringify({ broadcast: 1 })

/**
 * Throws unless the endpoint answers an echo and a one-copy broadcast as
 * every bench server must: no number means anything before they answer alike.
 */
export async function answersAlike(endpoint: Endpoint): Promise<void> {
  const socket = await openSocket(endpoint.url('sanity'), endpoint.client)
  try {
    const reply = await request(socket, ECHO_MESSAGE)
    const expected = JSON.stringify({ received: JSON.parse(ECHO_MESSAGE) as unknown })
    if (reply !== expected) throw new Error(`${endpoint.key} answered ${reply}, not ${expected}`)
    // A request client takes part in echoes only: a broadcast is no request's answer.
    if (endpoint.client === 'request') return
    const copy = await request(socket, BROADCAST_TRIGGER)
    if (copy !== '{"seq":0}') throw new Error(`${endpoint.key} broadcast ${copy}, not {"seq":0}`)
  } finally {
    await closeSocket(socket)
  }
}
const BATCH_TIMEOUT_MS = 30_000

/** Runs `load` for warm-up plus the span, then tells it to stop and waits for it to drain. */
async function bracket(
  span: Span,
  timing: Timing,
  load: (running: () => boolean) => Promise<void>,
): Promise<void> {
  let running = true
  const loading = load(() => running)
  // A failure during the warm-up surfaces when `loading` is awaited below, not as an unhandled rejection.
  loading.catch(() => undefined)
  await sleep(timing.warmupMs)
  span.start()
  await sleep(timing.windowMs)
  span.stop()
  running = false
  await loading
}

interface Sockets {
  sockets: WebSocket[]
}

/** Closed-loop echo: every connection keeps exactly one message in flight. */
export function echo(connections: number): Scenario<Sockets> {
  return {
    id: `echo-${String(connections)}`,
    title: `echo, ${String(connections)} connection${connections === 1 ? '' : 's'}`,
    unit: 'message',
    description: `${String(connections)} connection(s), each sending a small JSON message and waiting for its \`{ received }\` reply before sending the next (one in flight per connection). One operation is one round trip; latency is send to reply.`,
    setup: async (endpoint) => ({
      sockets: await openMany(endpoint.url(`echo-${String(connections)}`), connections, endpoint.client),
    }),
    run: ({ sockets }, span, timing) =>
      bracket(span, timing, (running) =>
        Promise.all(
          sockets.map(
            (socket) =>
              new Promise<void>((resolveLoop) => {
                let sentAt = performance.now()
                const onMessage = (): void => {
                  const now = performance.now()
                  span.done(1, now - sentAt)
                  if (!running()) {
                    socket.off('message', onMessage)
                    resolveLoop()
                    return
                  }
                  sentAt = now
                  socket.send(ECHO_MESSAGE)
                }
                socket.on('message', onMessage)
                socket.send(ECHO_MESSAGE)
              }),
          ),
        ).then(() => undefined),
      ),
    teardown: ({ sockets }) => closeAll(sockets),
  }
}

/** Connect, open handler, close: `concurrency` clients doing it over and over. */
export function connectClose(concurrency: number): Scenario<Endpoint> {
  return {
    id: 'connect',
    title: `connect + open + close, ${String(concurrency)} at a time`,
    unit: 'connection',
    description: `${String(concurrency)} clients in parallel, each opening a WebSocket (the Worker routes it, the object assigns the next id from its durable counter and runs its open handler, which stores per-connection data in the attachment), then closing it and waiting for the server's close frame, over and over. One operation is one whole connection; latency is from the handshake request to the close frame back.`,
    setup: (endpoint) => Promise.resolve(endpoint),
    run: (endpoint, span, timing) =>
      bracket(span, timing, async (running) => {
        const url = endpoint.url('connect')
        const client = async (): Promise<void> => {
          while (running()) {
            const startedAt = performance.now()
            const socket = await openSocket(url, endpoint.client)
            await closeSocket(socket)
            span.done(1, performance.now() - startedAt)
          }
        }
        await Promise.all(Array.from({ length: concurrency }, client))
      }),
    teardown: () => Promise.resolve(),
  }
}

/**
 * One sender asks the object to broadcast; the batch is done when every
 * socket in the room (the sender too) has its copy.
 */
export function broadcast(sockets: number): Scenario<Sockets> {
  return {
    id: `broadcast-${String(sockets)}`,
    title: `broadcast to ${sockets.toLocaleString('en-US')} sockets`,
    unit: 'delivery',
    description: `${sockets.toLocaleString('en-US')} sockets in one room; one of them sends \`{ "broadcast": 1 }\`, and the object encodes one message and sends it to every socket in the room. The next trigger goes once all ${sockets.toLocaleString('en-US')} copies have arrived. One operation is one delivery (so the throughput is deliveries per second); latency is per batch, from the trigger to the last copy.`,
    setup: async (endpoint) => ({
      sockets: await openMany(endpoint.url(`fanout-${String(sockets)}`), sockets, endpoint.client),
    }),
    run: (state, span, timing) => fanOut(state.sockets, span, timing),
    teardown: ({ sockets }) => closeAll(sockets),
  }
}

export async function fanOut(sockets: readonly WebSocket[], span: Span, timing: Timing): Promise<void> {
  const sender = sockets[0]
  if (sender === undefined) throw new Error('a broadcast needs at least one socket')
  let remaining = 0
  let batchDone: (() => void) | undefined
  // Each delivery counts as it arrives, not when its batch completes: a span then holds no
  // whole-batch step (1,000 deliveries, a few percent of a short span) in its count.
  const onMessage = (): void => {
    remaining--
    span.done(1)
    if (remaining === 0) batchDone?.()
  }
  for (const socket of sockets) socket.on('message', onMessage)
  try {
    await bracket(span, timing, async (running) => {
      while (running()) {
        remaining = sockets.length
        const startedAt = performance.now()
        await new Promise<void>((resolveBatch, reject) => {
          const timer = setTimeout(
            () =>
              reject(new Error(`a broadcast batch still missed ${String(remaining)} deliveries after 30 s`)),
            BATCH_TIMEOUT_MS,
          )
          batchDone = () => {
            clearTimeout(timer)
            resolveBatch()
          }
          sender.send(BROADCAST_TRIGGER)
        })
        span.latency(performance.now() - startedAt)
      }
    })
  } finally {
    for (const socket of sockets) socket.off('message', onMessage)
  }
}

export async function measure<State>(
  scenario: Scenario<State>,
  state: State,
  target: Target,
  timing: Timing,
): Promise<Span> {
  const span = new Span(target)
  await scenario.run(state, span, timing)
  return span
}
