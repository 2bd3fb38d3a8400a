import { resolve } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { wsText } from '../../tools/wsText.js'
import type { ScaleMessage } from './fixtures/scale/protocol.js'
import { useDevServer } from './useDevServer.js'

const CONFIG = resolve(import.meta.dirname, 'fixtures/scale/wrangler.toml')
const ROOMS = 20
const PER_ROOM = 100
const MESSAGES_PER_ROOM = 6
/** Handshakes in flight at once: enough to keep both cores busy, few enough that none times out. */
const OPEN_CONCURRENCY = 50
const HANDSHAKE_MS = 30_000
const OPEN_BOUND_MS = 90_000
const DELIVERY_BOUND_MS = 120_000
const CLOSE_BOUND_MS = 30_000
const COUNT_BOUND_MS = 15_000
const POLL_MS = 100
/** wrangler's log line for a request that went well. */
const ANSWERED = /^\[wrangler:info\] (GET|POST) \S+ (101|200) /

/**
 * How a room's broadcasts are started: by one of its clients sending `say`
 * (the handler broadcasts), by a Worker route calling the object over RPC,
 * or alternating between the two.
 */
type Trigger = 'client' | 'rpc' | 'mixed'
const TRIGGERS: readonly Trigger[] = ['client', 'rpc', 'mixed']

interface Room {
  readonly name: string
  readonly trigger: Trigger
  readonly members: Member[]
}

interface Member {
  readonly room: Room
  readonly socket: WebSocket
  /** Every frame in arrival order, JSON-decoded; a binary frame is kept as a marker. */
  readonly received: (ScaleMessage | { type: 'binary' })[]
  readonly closed: Promise<{ code: number; reason: string }>
}

const rooms: Room[] = Array.from({ length: ROOMS }, (_, n) => ({
  name: `room-${String(n)}`,
  trigger: TRIGGERS[n % TRIGGERS.length] ?? 'client',
  members: [],
}))
const members = (): Member[] => rooms.flatMap((room) => room.members)

/** Which way message `seq` of a room goes out; the order every member must see. */
function via(room: Room, seq: number): 'client' | 'rpc' {
  if (room.trigger === 'mixed') return seq % 2 === 1 ? 'client' : 'rpc'
  return room.trigger
}

const server = useDevServer({
  config: CONFIG,
  // Thousands of request lines would bury a reload, an exception or a log from the object.
  failureOutput: (output) => {
    const lines = output.split('\n').filter((line) => !ANSWERED.test(line))
    return `(less the requests answered)\n${lines.slice(-60).join('\n')}`
  },
})

// Runs before useDevServer's afterAll, which stops the server (vitest runs afterAll hooks last-registered first).
afterAll(() => {
  // After a failure some sockets may still be open; drop them so nothing waits on them.
  for (const member of members()) member.socket.terminate()
})

function join(room: Room): Promise<Member> {
  const url = `${server().wsOrigin}/ws/${room.name}`
  const socket = new WebSocket(url, { perMessageDeflate: false, handshakeTimeout: HANDSHAKE_MS })
  const member: Member = {
    room,
    socket,
    received: [],
    closed: new Promise((resolveClosed) => {
      socket.once('close', (code, reason) => resolveClosed({ code, reason: reason.toString() }))
    }),
  }
  socket.on('message', (data, isBinary) => {
    member.received.push(isBinary ? { type: 'binary' } : (JSON.parse(wsText(data)) as ScaleMessage))
  })
  let lastError: Error | undefined
  socket.on('error', (error) => (lastError = error))
  return new Promise((resolveOpen, reject) => {
    socket.once('open', () => resolveOpen(member))
    void member.closed.then(({ code }) =>
      reject(new Error(`${url} closed (${String(code)}) before it opened: ${String(lastError)}`)),
    )
  })
}

/** Opens PER_ROOM sockets in every room, a bounded number of handshakes at a time, rooms interleaved. */
async function openAll(): Promise<void> {
  const queue = Array.from({ length: ROOMS * PER_ROOM }, (_, i) => rooms[i % ROOMS]!)
  const worker = async (): Promise<void> => {
    for (let room = queue.shift(); room !== undefined; room = queue.shift()) {
      room.members.push(await join(room))
    }
  }
  await within(
    Promise.all(Array.from({ length: OPEN_CONCURRENCY }, worker)),
    OPEN_BOUND_MS,
    () => `opening ${String(ROOMS * PER_ROOM)} sockets (${String(members().length)} open)`,
  )
}

/** Polls `done` until it holds; past the deadline, fails with what `missing` reports. */
async function waitFor(deadline: number, done: () => boolean, missing: () => string): Promise<void> {
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`gave up: ${missing()}`)
    await sleep(POLL_MS)
  }
}

function within<T>(promise: Promise<T>, ms: number, what: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`gave up after ${String(ms)} ms: ${what()}`)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

/** The room's broadcasts a member has received so far (its greeting and anything else left out). */
const broadcastsSeen = (member: Member): number =>
  member.received.filter((message) => message.type === 'broadcast').length

async function broadcastOverRpc(room: Room, seq: number): Promise<number> {
  const response = await fetch(`${server().origin}/rooms/${room.name}/broadcast/${String(seq)}`, {
    method: 'POST',
  })
  if (!response.ok) {
    throw new Error(`broadcast ${String(seq)} to ${room.name} answered ${String(response.status)}`)
  }
  return ((await response.json()) as { sent: number }).sent
}

/**
 * Sends the room's messages 1..MESSAGES_PER_ROOM, in that order. A client's
 * `say` messages keep their order on its socket, and RPC calls are awaited one
 * by one; when the two ways alternate, each message waits until the previous
 * one has reached the sender, since the two paths into the object do not
 * order against each other. Returns what each RPC broadcast reported as sent.
 */
async function broadcastIn(room: Room, deadline: number): Promise<number[]> {
  const sender = room.members[0]!
  const sentCounts: number[] = []
  for (let seq = 1; seq <= MESSAGES_PER_ROOM; seq++) {
    if (room.trigger === 'mixed' && seq > 1) {
      await waitFor(
        deadline,
        () => broadcastsSeen(sender) >= seq - 1,
        () => `${room.name}: message ${String(seq - 1)} never reached its sender`,
      )
    }
    if (via(room, seq) === 'client') sender.socket.send(JSON.stringify({ type: 'say', seq }))
    else sentCounts.push(await broadcastOverRpc(room, seq))
  }
  return sentCounts
}

function missingReport(): string {
  const short = members().filter((member) => broadcastsSeen(member) < MESSAGES_PER_ROOM)
  const missing = short.reduce((sum, member) => sum + MESSAGES_PER_ROOM - broadcastsSeen(member), 0)
  const inRooms = [...new Set(short.map((member) => member.room.name))]
  return `${String(missing)} of ${String(ROOMS * PER_ROOM * MESSAGES_PER_ROOM)} broadcast messages missing, at ${String(short.length)} clients in ${inRooms.join(', ') || 'no room'}`
}

/** `room-3#2/rpc`: enough to tell the test's messages apart in a failure; ids are checked on their own. */
function label(message: ScaleMessage | { type: 'binary' }): string {
  switch (message.type) {
    case 'hello':
      return `hello ${message.room}`
    case 'broadcast':
      return `${message.room}#${String(message.seq)}/${message.via}`
    default:
      return message.type
  }
}

/** How what a member received differs from its greeting and then its room's messages 1..N in order. */
function problemOf(member: Member): string | undefined {
  const { room, received } = member
  const [hello, ...rest] = received
  const expected = Array.from(
    { length: MESSAGES_PER_ROOM },
    (_, i) => `${room.name}#${String(i + 1)}/${via(room, i + 1)}`,
  )
  const got = rest.map(label)
  if (hello?.type === 'hello' && hello.room === room.name && got.join(' ') === expected.join(' ')) {
    return undefined
  }
  return `in ${room.name}: ${received.map(label).join(' ')}`
}

/** Identical problems counted once each, so 100 clients of one room make one line. */
function summarize(problems: (string | undefined)[]): string[] {
  const counted = new Map<string, number>()
  for (const problem of problems) {
    if (problem !== undefined) counted.set(problem, (counted.get(problem) ?? 0) + 1)
  }
  return [...counted].slice(0, 20).map(([problem, clients]) => `${String(clients)} clients ${problem}`)
}

async function countIn(room: Room): Promise<number> {
  const response = await fetch(`${server().origin}/rooms/${room.name}/count`)
  if (!response.ok) throw new Error(`count of ${room.name} answered ${String(response.status)}`)
  return ((await response.json()) as { count: number }).count
}

describe(`${String(ROOMS * PER_ROOM)} sockets over ${String(ROOMS)} rooms on one wrangler dev`, () => {
  it(
    `every client gets an id from 1 to ${String(PER_ROOM)} in its room, then exactly its own room’s broadcasts, each once and in order, and every room is empty after all close`,
    async () => {
      const started = Date.now()

      await openAll()
      const opened = Date.now()
      await waitFor(
        opened + HANDSHAKE_MS,
        () => members().every((member) => member.received.length > 0),
        () =>
          `${String(members().filter((m) => m.received.length === 0).length)} clients never got a greeting`,
      )
      for (const room of rooms) {
        const ids = room.members.map(({ received: [hello] }) => (hello?.type === 'hello' ? hello.id : -1))
        expect(
          ids.sort((a, b) => a - b),
          `ids greeted in ${room.name}`,
        ).toEqual(Array.from({ length: PER_ROOM }, (_, i) => i + 1))
      }

      const broadcasting = Date.now()
      const deadline = broadcasting + DELIVERY_BOUND_MS
      const sentCounts = await Promise.all(rooms.map((room) => broadcastIn(room, deadline)))
      await waitFor(
        deadline,
        () => members().every((m) => broadcastsSeen(m) >= MESSAGES_PER_ROOM),
        () => missingReport(),
      )
      const delivered = Date.now()
      const rpcBroadcasts = rooms.flatMap((room) =>
        Array.from({ length: MESSAGES_PER_ROOM }, (_, i) => via(room, i + 1)).filter((way) => way === 'rpc'),
      )
      expect(sentCounts.flat(), 'what each RPC broadcast() returned').toEqual(
        rpcBroadcasts.map(() => PER_ROOM),
      )

      // Anything a room sent before the close handshake arrives before the close frame, so late
      // duplicates or strays are in `received` once every socket has closed.
      for (const member of members()) member.socket.close(1000)
      const closes = await within(
        Promise.all(members().map((member) => member.closed)),
        CLOSE_BOUND_MS,
        () => 'the closing handshakes',
      )
      expect(
        closes.filter(({ code }) => code !== 1000),
        'closes other than 1000',
      ).toEqual([])
      expect(summarize(members().map(problemOf)), 'clients that got other messages').toEqual([])

      const countDeadline = Date.now() + COUNT_BOUND_MS
      let counts = await Promise.all(rooms.map(countIn))
      while (counts.some((count) => count !== 0) && Date.now() < countDeadline) {
        await sleep(POLL_MS)
        counts = await Promise.all(rooms.map(countIn))
      }
      expect(counts, 'count() of every room after all closed').toEqual(Array<number>(ROOMS).fill(0))

      const seconds = (ms: number): string => (ms / 1000).toFixed(1)
      const total = members().reduce((sum, member) => sum + broadcastsSeen(member), 0)
      console.log(
        `scale: ${String(members().length)} sockets, ${String(ROOMS)} rooms, ${String(total)} broadcast messages delivered; opened in ${seconds(opened - started)} s, delivered in ${seconds(delivered - broadcasting)} s, ${seconds(Date.now() - started)} s in all`,
      )
    },
    OPEN_BOUND_MS + HANDSHAKE_MS + DELIVERY_BOUND_MS + CLOSE_BOUND_MS + COUNT_BOUND_MS,
  )
})
