import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import NodeWs from 'ws'
import { afterAll, describe, expect, it } from 'vitest'
import { connect, type Client, type WebSocketConstructor } from '../../src/client/index.js'
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

// One place more per leaf than an even share: every socket finds one, and each leaf gets some.
const config = fixtureConfig(Math.ceil((CLIENTS + 1) / LEAVES) + 1)
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
}

function member(name: string, url: string, stopping: () => boolean): Member {
  const client = connect<ToClient, ToServer>(url, {
    WebSocket: NodeWs as unknown as WebSocketConstructor,
    maxQueued: 2 * TICKS + 100,
  })
  const state: Member = { name, client, received: [], ids: [], resumes: 0, problems: [], sent: 0 }
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
async function serverBroadcast(s: number): Promise<void> {
  const response = await fetch(`${dev().origin}/rooms/${ROOM}/broadcast/${String(s)}`, { method: 'POST' })
  expect(response.status, `the server's broadcast ${String(s)}`).toBe(200)
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
      const perTick = Math.ceil((CLIENTS * MESSAGES) / TICKS)
      let next = 0
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
        await serverBroadcast(tick)
        broadcaster.sent += 1
        if (!broadcaster.client.send({ b: broadcaster.sent }))
          broadcaster.problems.push('a broadcast refused')
        for (let k = 0; k < perTick; k++) {
          const m = members[next % CLIENTS]
          next += 1
          if (m === undefined || m.sent === MESSAGES) continue
          m.sent += 1
          if (!m.client.send({ n: m.sent })) m.problems.push(`send ${String(m.sent)} refused`)
        }
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

      const log = (await (await fetch(`${dev().origin}/rooms/${ROOM}/log`)).json()) as Logged[]
      const order = log.filter((row) => row.target === null).map((row) => row.message)
      // The root's log holds each broadcast once: the server's in the order sent, the broadcaster's likewise.
      expect(order).toHaveLength(2 * TICKS)
      expect(order.filter((m) => m.startsWith('s'))).toEqual(oneTo(TICKS).map((s) => `s${String(s)}`))
      expect(order.filter((m) => m.startsWith('b'))).toEqual(oneTo(TICKS).map((b) => `b${String(b)}`))
      for (const m of everyone) {
        expect(m.received, `what ${m.name} received, against the root's order`).toEqual(order)
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

  // Resuming onto another leaf than the one a session started on (a leaf count that shrank, or an app
  // forwarding by hand) is being built: docs/sharding.md, "What does not work yet". When it lands,
  // a second restart here sends a share of the resumes elsewhere and the same checks apply.
  it.todo('resumes a session on a leaf other than its own after the restart, with the same checks')
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
