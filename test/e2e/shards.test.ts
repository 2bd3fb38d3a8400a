import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import NodeWs from 'ws'
import { afterAll, describe, expect, it } from 'vitest'
import {
  connect,
  type Client,
  type ClientOptions,
  type WebSocketConstructor,
} from '../../src/client/index.js'
import { CHAOS_RETRY } from './chaosProxy.js'
import type { Logged, Seen, ToClient, ToServer } from './fixtures/shards/protocol.js'
import { oneTo } from './sessionPeers.js'
import { useDevServer } from './useDevServer.js'

/**
 * A sharded room (docs/sharding.md) through a crash: session clients of the
 * package's client spread over four leaves, a stream of broadcasts from the
 * server (RPC to the root) and from a client's handler, client messages, and
 * `wrangler dev` SIGKILLed mid-stream and started again on the same state
 * and port. Every client must get every broadcast once, in the root's order,
 * and every client message must be handled once.
 *
 * Then the same checks in a second room, where one leaf refuses new sockets
 * (the fixture's `shardHasRoom()`) and its clients' TCP connections are
 * dropped mid-stream: each resumes on another leaf, which claims its session
 * (docs/sharding.md, "Resuming on another leaf").
 *
 * CLIENTS comes from DWS_E2E_SHARD_CLIENTS (default 1,000, about a minute
 * here). Past about 5,000 the machine's open-file limit breaks: every socket
 * costs two descriptors in wrangler's proxy, one process, besides the
 * client's own in this one.
 */
const CLIENTS = Number(process.env.DWS_E2E_SHARD_CLIENTS ?? '1000')
const LEAVES = 4
const ROOM = 'sharded'
/** Numbered messages each client sends over the run, spread over the ticks. */
const MESSAGES = 3
/** Each tick the Worker broadcasts `{ s }` through the root and the broadcaster asks its leaf for `{ b }`. */
const TICKS = 40
const TICK_MS = 100
const KILL_AT_TICK = 15
const OPEN_MS = 120_000
const SETTLE_MS = 120_000

/**
 * The second run's room: fewer clients than places, so when one leaf refuses, the others take its
 * sessions. At about a leaf and a half of them, placement in order fills one leaf and half another.
 */
const MOVED_ROOM = 'moved'
const MOVED_CLIENTS = Math.ceil((CLIENTS * 3) / 8)
/** The tick at which the second run makes one leaf refuse and cuts its sockets. */
const CUT_AT_TICK = 15

// One place more per leaf than an even share: every socket finds one, and each leaf gets some.
const SOCKETS_PER_LEAF = Math.ceil((CLIENTS + 1) / LEAVES) + 1
const config = fixtureConfig(SOCKETS_PER_LEAF)
// Registered before the server's own hooks, so it runs after wrangler stopped (hooks run as a stack).
afterAll(() => rmSync(dirname(config), { recursive: true, force: true }))
const dev = useDevServer({ config, failureOutput: (output) => output.slice(-5_000) })

/** One client of the run and everything it saw. */
interface Member {
  readonly name: string
  readonly client: Client<ToClient, ToServer>
  /** Every broadcast received, in order, as `b3` or `s7`. */
  readonly received: string[]
  readonly ids: (number | undefined)[]
  resumes: number
  readonly problems: string[]
  sent: number
  /** Drops the client's TCP connection with no close frame, as a network would; the client resumes by itself. */
  readonly cut: () => void
}

function member(
  name: string,
  url: string,
  stopping: () => boolean,
  options: Pick<ClientOptions<ToClient, ToServer>, 'reconnect'> = {},
): Member {
  let socket: NodeWs | undefined
  // The client makes its sockets itself: this keeps the latest, for `cut`.
  const Tracked = new Proxy(NodeWs, {
    construct(target, args: ConstructorParameters<typeof NodeWs>) {
      socket = new target(...args)
      return socket
    },
  })
  const client = connect<ToClient, ToServer>(url, {
    ...options,
    WebSocket: Tracked as unknown as WebSocketConstructor,
    maxQueued: 2 * TICKS + 100,
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
    if (!willReconnect && !stopping()) state.problems.push(`gave up after close ${String(code)}`)
  })
  return state
}

async function until(
  what: string,
  done: () => boolean,
  ms: number,
  members: readonly Member[],
): Promise<void> {
  const deadline = Date.now() + ms
  for (;;) {
    const problems = members.flatMap((m) => m.problems.map((p) => `${m.name}: ${p}`))
    if (problems.length > 0) throw new Error(`waiting for ${what}: ${problems.slice(0, 5).join('; ')}`)
    if (done()) return
    if (Date.now() > deadline) {
      const behind = members
        .filter((m) => m.client.queued > 0 || m.received.length < 2 * TICKS || m.ids.length === 0)
        .slice(0, 5)
        .map(
          (m) =>
            `${m.name}: ${String(m.received.length)} received, ${String(m.client.queued)} queued, ${m.client.state}`,
        )
      throw new Error(`timed out waiting for ${what}: ${behind.join('; ')}`)
    }
    await sleep(50)
  }
}

/** The server's stream: one RPC broadcast through the root, answered before the next, so none is in doubt at the kill. */
async function serverBroadcast(room: string, s: number): Promise<void> {
  const response = await fetch(`${dev().origin}/rooms/${room}/broadcast/${String(s)}`, { method: 'POST' })
  expect(response.status, `the server's broadcast ${String(s)}`).toBe(200)
}

/** The clients' own stream: each call sends the next share, so each client sends MESSAGES over the TICKS calls. */
function clientMessages(members: readonly Member[]): () => void {
  const perTick = Math.ceil((members.length * MESSAGES) / TICKS)
  let next = 0
  return () => {
    for (let k = 0; k < perTick; k++) {
      const m = members[next % members.length]
      next += 1
      if (m === undefined || m.sent === MESSAGES) continue
      m.sent += 1
      if (!m.client.send({ n: m.sent })) m.problems.push(`send ${String(m.sent)} refused`)
    }
  }
}

/** Per leaf, the ids of the sockets open on it now. */
/**
 * The root's log holds each broadcast once (the server's in the order sent,
 * the broadcaster's likewise), and every member received exactly that order.
 */
async function expectRootOrder(room: string, members: readonly Member[]): Promise<void> {
  const log = (await (await fetch(`${dev().origin}/rooms/${room}/log`)).json()) as Logged[]
  const order = log.filter((row) => row.target === null).map((row) => row.message)
  expect(order).toHaveLength(2 * TICKS)
  expect(order.filter((m) => m.startsWith('s'))).toEqual(oneTo(TICKS).map((s) => `s${String(s)}`))
  expect(order.filter((m) => m.startsWith('b'))).toEqual(oneTo(TICKS).map((b) => `b${String(b)}`))
  for (const m of members)
    expect(m.received, `what ${m.name} received, against the root's order`).toEqual(order)
}

async function openOnLeaves(room: string): Promise<number[][]> {
  const response = await fetch(`${dev().origin}/rooms/${room}/leaves`)
  expect(response.status, `the open sockets of the leaves of ${room}`).toBe(200)
  return (await response.json()) as number[][]
}

describe(`a sharded room of ${String(CLIENTS)} session clients over ${String(LEAVES)} leaves, the runtime SIGKILLed mid-stream`, () => {
  it("delivers every broadcast to every client once, in the root's order, and handles every client message once", async () => {
    let stopping = false
    const url = `${dev().wsOrigin}/ws/${ROOM}`
    const members: Member[] = []
    try {
      for (let i = 0; i < CLIENTS; i++) members.push(member(`client ${String(i)}`, url, () => stopping))
      const broadcaster = member('broadcaster', url, () => stopping)
      const everyone = [...members, broadcaster]
      const openStarted = Date.now()
      await until('every client to open', () => everyone.every((m) => m.ids.length > 0), OPEN_MS, everyone)
      const openMs = Date.now() - openStarted

      let killedAt = 0
      let backAt = 0
      let restart: Promise<void> | undefined
      const send = clientMessages(members)
      for (let tick = 1; tick <= TICKS; tick++) {
        if (tick === KILL_AT_TICK) {
          // Between two server broadcasts: each one before the kill was answered, none is in doubt.
          killedAt = Date.now()
          restart = (async () => {
            await dev().kill()
            await dev.startAgain()
            backAt = Date.now()
          })()
        }
        // The server's own broadcasts wait for the runtime; the clients' messages queue meanwhile.
        if (restart !== undefined && backAt === 0) await restart
        await serverBroadcast(ROOM, tick)
        broadcaster.sent += 1
        if (!broadcaster.client.send({ b: broadcaster.sent }))
          broadcaster.problems.push('a broadcast refused')
        send()
        await sleep(TICK_MS)
      }
      await restart
      expect(backAt).toBeGreaterThan(killedAt)
      await until(
        'every client to resume, have every message acknowledged and every broadcast delivered',
        () =>
          everyone.every((m) => m.ids.length >= 2 && m.client.queued === 0 && m.received.length >= 2 * TICKS),
        SETTLE_MS,
        everyone,
      )
      const settledMs = Date.now() - backAt
      // Anything owed would have come by now; a copy delivered twice would come too.
      await sleep(500)

      await expectRootOrder(ROOM, everyone)
      for (const m of everyone) {
        expect(m.resumes, `${m.name} resumed`).toBeGreaterThanOrEqual(1)
        expect(new Set(m.ids).size, `${m.name} kept one id`).toBe(1)
      }

      const seen = (await (await fetch(`${dev().origin}/rooms/${ROOM}/seen`)).json()) as Seen
      const idOf = (m: Member): string => String(m.ids[0])
      for (const m of members)
        expect(seen.messages[idOf(m)], `what the room handled from ${m.name}`).toEqual({
          n: oneTo(MESSAGES),
          b: [],
        })
      expect(seen.messages[idOf(broadcaster)], 'what the room handled from the broadcaster').toEqual({
        n: [],
        b: oneTo(TICKS),
      })
      // One session per client, opened once and then only resumed, on the leaf it started on.
      expect(Object.keys(seen.opens).sort()).toEqual(everyone.map(idOf).sort())
      for (const [id, opens] of Object.entries(seen.opens)) {
        expect(opens[0], `the first open of session ${id}`).toBe(false)
        expect(opens.slice(1).every(Boolean), `every later open of session ${id} resumed`).toBe(true)
      }
      expect(seen.closes).toEqual({})
      expect(seen.leaves.filter((ids) => ids.length > 0)).toHaveLength(LEAVES)
      for (const [leaf, ids] of seen.leaves.entries())
        for (const id of ids) expect((id - 1) % LEAVES, `the leaf of id ${String(id)}`).toBe(leaf)

      console.log(
        [
          `sharded room: ${String(everyone.length)} session clients over ${String(LEAVES)} leaves (${seen.leaves.map((ids) => ids.length).join(' / ')}), ${String(2 * TICKS)} broadcasts and ${String(CLIENTS * MESSAGES)} client messages`,
          `  first open: ${(openMs / 1000).toFixed(1)} s; runtime down ${((backAt - killedAt) / 1000).toFixed(1)} s`,
          `  every client resumed and caught up ${(settledMs / 1000).toFixed(1)} s after the runtime was back`,
        ].join('\n'),
      )
    } finally {
      stopping = true
      for (const m of members) m.client.close()
    }
  }, 300_000)
})

describe(`a sharded room of ${String(MOVED_CLIENTS + 1)} session clients, one leaf refusing new sockets and its connections cut`, () => {
  it("moves a refusing leaf's sessions to other leaves when their connections drop, with every broadcast once in the root's order and every message handled once", async () => {
    let stopping = false
    const url = `${dev().wsOrigin}/ws/${MOVED_ROOM}`
    const members: Member[] = []
    for (let i = 0; i < MOVED_CLIENTS; i++)
      members.push(member(`client ${String(i)}`, url, () => stopping, CHAOS_RETRY))
    const broadcaster = member('broadcaster', url, () => stopping, CHAOS_RETRY)
    const everyone = [...members, broadcaster]
    try {
      await until('every client to open', () => everyone.every((m) => m.ids.length > 0), OPEN_MS, everyone)

      // The leaf each client opened on; the fullest is the one whose sockets are cut.
      const before = await openOnLeaves(MOVED_ROOM)
      const leafOf = new Map(before.flatMap((ids, leaf) => ids.map((id) => [id, leaf] as const)))
      for (const m of everyone) expect(leafOf.get(m.ids[0] ?? 0), `the leaf of ${m.name}`).toBeDefined()
      const sizes = before.map((ids) => ids.length)
      const refusing = sizes.indexOf(Math.max(...sizes))
      const cut = everyone.filter((m) => leafOf.get(m.ids[0] ?? 0) === refusing)
      const kept = everyone.filter((m) => !cut.includes(m))
      // The other leaves have places for every socket of the refusing one.
      expect(
        sizes.reduce((free, n, leaf) => (leaf === refusing ? free : free + SOCKETS_PER_LEAF - n), 0),
      ).toBeGreaterThanOrEqual(cut.length)

      const send = clientMessages(members)
      let cutAt = 0
      for (let tick = 1; tick <= TICKS; tick++) {
        if (tick === CUT_AT_TICK) {
          const refused = await fetch(
            `${dev().origin}/rooms/${MOVED_ROOM}/leaves/${String(refusing)}/refuse`,
            {
              method: 'POST',
            },
          )
          expect(refused.status, 'the leaf made to refuse').toBe(200)
          cutAt = Date.now()
          for (const m of cut) m.cut()
        }
        await serverBroadcast(MOVED_ROOM, tick)
        broadcaster.sent += 1
        if (!broadcaster.client.send({ b: broadcaster.sent }))
          broadcaster.problems.push('a broadcast refused')
        send()
        await sleep(TICK_MS)
      }
      await until(
        'every cut client to resume, have every message acknowledged and every broadcast delivered',
        () =>
          cut.every((m) => m.ids.length >= 2) &&
          everyone.every((m) => m.client.queued === 0 && m.received.length >= 2 * TICKS),
        SETTLE_MS,
        everyone,
      )
      const settledMs = Date.now() - cutAt
      // Anything owed would have come by now; a copy delivered twice would come too.
      await sleep(500)

      await expectRootOrder(MOVED_ROOM, everyone)
      for (const m of everyone) {
        expect(new Set(m.ids).size, `${m.name} kept one id`).toBe(1)
      }
      for (const m of cut) expect(m.resumes, `${m.name}, cut, resumed`).toBeGreaterThanOrEqual(1)
      for (const m of kept) expect(m.ids, `${m.name}, not cut, stayed on its socket`).toHaveLength(1)

      // Where each socket is now: every cut one on another leaf, the others where they were.
      const after = await openOnLeaves(MOVED_ROOM)
      const leafNow = new Map(after.flatMap((ids, leaf) => ids.map((id) => [id, leaf] as const)))
      expect(after[refusing], 'the sockets left on the refusing leaf').toEqual([])
      for (const m of cut) {
        const now = leafNow.get(m.ids[0] ?? 0)
        expect(now, `the leaf ${m.name} resumed on`).toBeDefined()
        expect(now, `the leaf ${m.name} resumed on`).not.toBe(refusing)
      }
      for (const m of kept)
        expect(leafNow.get(m.ids[0] ?? 0), `the leaf of ${m.name}`).toBe(leafOf.get(m.ids[0] ?? 0))

      const seen = (await (await fetch(`${dev().origin}/rooms/${MOVED_ROOM}/seen`)).json()) as Seen
      const idOf = (m: Member): string => String(m.ids[0])
      // A moved session's messages were handled on two leaves; the fixture lists them leaf by leaf.
      const sorted = (handled: { n: number[]; b: number[] } | undefined): { n: number[]; b: number[] } => ({
        n: [...(handled?.n ?? [])].sort((x, y) => x - y),
        b: [...(handled?.b ?? [])].sort((x, y) => x - y),
      })
      for (const m of members)
        expect(sorted(seen.messages[idOf(m)]), `what the room handled from ${m.name}`).toEqual({
          n: oneTo(MESSAGES),
          b: [],
        })
      expect(sorted(seen.messages[idOf(broadcaster)]), 'what the room handled from the broadcaster').toEqual({
        n: [],
        b: oneTo(TICKS),
      })
      // One session per client, opened once; a moved one resumed on the leaf it moved to.
      expect(Object.keys(seen.opens).sort()).toEqual(everyone.map(idOf).sort())
      for (const [id, opens] of Object.entries(seen.opens))
        expect(
          opens.filter((resumed) => !resumed),
          `the new opens of session ${id}`,
        ).toHaveLength(1)
      for (const m of cut) {
        const opens = seen.opens[idOf(m)] ?? []
        expect(opens.filter(Boolean).length, `the resumes of ${m.name}`).toBeGreaterThanOrEqual(1)
        expect(
          seen.leaves[leafNow.get(m.ids[0] ?? 0) ?? -1],
          `the leaf ${m.name} moved to ran its open`,
        ).toContain(m.ids[0])
      }
      expect(seen.closes).toEqual({})

      const landed = new Map<number, number>()
      for (const m of cut) {
        const leaf = leafNow.get(m.ids[0] ?? 0) ?? -1
        landed.set(leaf, (landed.get(leaf) ?? 0) + 1)
      }
      console.log(
        [
          `sharded room, moved sessions: ${String(everyone.length)} session clients over ${String(LEAVES)} leaves (${sizes.join(' / ')}), ${String(2 * TICKS)} broadcasts and ${String(MOVED_CLIENTS * MESSAGES)} client messages`,
          `  leaf ${String(refusing)} refused, its ${String(cut.length)} connections cut; they resumed on ${[...landed].map(([leaf, n]) => `leaf ${String(leaf)}: ${String(n)}`).join(', ')}`,
          `  every client caught up ${(settledMs / 1000).toFixed(1)} s after the cut`,
        ].join('\n'),
      )
    } finally {
      stopping = true
      for (const m of everyone) m.client.close()
    }
  }, 300_000)
})

/** A copy of the fixture's wrangler.toml with its `main` made absolute and SOCKETS_PER_LEAF set. */
function fixtureConfig(socketsPerLeaf: number): string {
  const dir = resolve(import.meta.dirname, 'fixtures/shards')
  const text = readFileSync(join(dir, 'wrangler.toml'), 'utf8')
    .replace(/^main = ".+"$/m, `main = ${JSON.stringify(join(dir, 'worker.ts'))}`)
    .replace(/^SOCKETS_PER_LEAF = ".+"$/m, `SOCKETS_PER_LEAF = "${String(socketsPerLeaf)}"`)
  const path = join(mkdtempSync(join(tmpdir(), 'durable-websocket-e2e-shards-')), 'wrangler.toml')
  writeFileSync(path, text)
  return path
}
