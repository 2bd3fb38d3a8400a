import { rmSync } from 'node:fs'
import { dirname } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, describe, expect, it } from 'vitest'
import { PeakMemory } from './peakMemory.js'
import { oneTo } from './sessionPeers.js'
import {
  RoomRoutes,
  clientMessages,
  fixtureConfig,
  member,
  openFileLimit,
  openFiles,
  until,
  type Member,
  type MemberOptions,
} from './shardRun.js'
import { useDevServer } from './useDevServer.js'

/**
 * A sharded room (docs/sharding.md) at scale, through a cut and a crash, in
 * one run: CLIENTS session clients of the package's client spread over four
 * leaves, a stream of broadcasts from the server (RPC to the root) and from
 * a client's handler, and client messages. Mid-stream one leaf starts
 * refusing new sockets (the fixture's `shardHasRoom()`) and its clients' TCP
 * connections are dropped: each resumes on another leaf, which claims its
 * session ("Resuming on another leaf"). A few ticks later `wrangler dev` is
 * SIGKILLed and started again on the same state and port. Every client must
 * get every broadcast once, in the root's order, keep its id with no reset,
 * and every client message must be handled once; the moved clients end on
 * the leaves they moved to.
 *
 * The clients dial the runtime workerd's own port (DevServer.runtime()), a
 * new one after the restart, while their session's URL stays the public
 * one. Through wrangler's proxy a socket costs about four more descriptors
 * in the proxy, and the hard open-file limit here (20,000 per process) ends
 * that near 4,600 clients; on the runtime's port a socket costs two there.
 *
 * CLIENTS comes from DWS_E2E_SHARD_CLIENTS (default 5,000: about a minute on
 * two cores; 400 for a quick run).
 */
const CLIENTS = Number(process.env.DWS_E2E_SHARD_CLIENTS ?? '5000')
const LEAVES = 4
const ROOM = 'sharded'
/** Numbered messages each client sends over the run, spread over the ticks. */
const MESSAGES = 3
/** Each tick the Worker broadcasts `{ s }` through the root and the broadcaster asks its leaf for `{ b }`. */
const TICKS = 40
const TICK_MS = 100
/** The tick at which one leaf starts refusing and its sockets are cut. */
const CUT_AT_TICK = 10
/** The tick at which the runtime is SIGKILLed, once every cut client has resumed elsewhere. */
const KILL_AT_TICK = 20
const OPEN_MS = 180_000
const MOVE_MS = 60_000
const SETTLE_MS = 150_000
const RECONNECT = { initialDelay: 100, maxDelay: 3_000 }

/** Opening, every leaf takes about an even share: placement alone would fill them in order. */
const SHARE = Math.ceil((CLIENTS + 1) / LEAVES)
/** Clients opened at once: few enough that a leaf's "room for one more?" is close to its count. */
const WAVE = Math.max(10, Math.min(100, Math.floor(SHARE / 10)))
/** Three leaves hold everyone once the fourth refuses; a few places more for upgrades that race. */
const SOCKETS_PER_LEAF = Math.ceil((CLIENTS + 1) / (LEAVES - 1)) + 10
const config = fixtureConfig(SOCKETS_PER_LEAF)
// Registered before the server's own hooks, so it runs after wrangler stopped (hooks run as a stack).
afterAll(() => rmSync(dirname(config), { recursive: true, force: true }))
const dev = useDevServer({ config, failureOutput: (output) => output.slice(-5_000) })

describe(`a sharded room of ${String(CLIENTS)} session clients over ${String(LEAVES)} leaves, one leaf's connections cut, then the runtime SIGKILLed`, () => {
  it("moves the refusing leaf's sessions to the other leaves and resumes every session after the crash, with every broadcast once in the root's order and every client message handled once", async () => {
    const started = Date.now()
    let stopping = false
    let runtime = await dev().runtime()
    // Node raised its soft limit to the hard one; the runtime inherited it.
    expect(openFileLimit(), "this process's open-file limit, for a socket per client").toBeGreaterThan(
      CLIENTS + 1_000,
    )
    expect(openFileLimit(runtime.pid), "the runtime's, for two per socket").toBeGreaterThan(
      2 * CLIENTS + 1_000,
    )
    const memory = new PeakMemory()
    memory.watch(dev().pgid, runtime.pid)
    const room = new RoomRoutes(() => dev().origin, ROOM)
    const url = `${dev().wsOrigin}/ws/${ROOM}`
    const options: MemberOptions = {
      stopping: () => stopping,
      dial: () => runtime.origin,
      reconnect: RECONNECT,
      maxQueued: 2 * TICKS + 100,
    }
    const members: Member[] = []
    const broadcaster = member('broadcaster', url, options)
    const everyone = [broadcaster]
    try {
      await room.share(SHARE)
      for (let i = 0; i < CLIENTS; i += WAVE) {
        for (let k = i; k < Math.min(i + WAVE, CLIENTS); k++) {
          const m = member(`client ${String(k)}`, url, options)
          members.push(m)
          everyone.push(m)
        }
        await until(
          'every client to open',
          () => everyone.every((m) => m.ids.length > 0),
          OPEN_MS - (Date.now() - started),
          everyone,
          0,
        )
      }
      const openMs = Date.now() - started
      await room.share(0)
      const fdsOpen = openFiles(runtime.pid)

      // The leaf each client opened on; the fullest is the one that refuses and whose sockets are cut.
      const before = await room.openOnLeaves()
      const leafOf = new Map(before.flatMap((ids, leaf) => ids.map((id) => [id, leaf] as const)))
      for (const m of everyone) expect(leafOf.get(m.ids[0] ?? 0), `the leaf of ${m.name}`).toBeDefined()
      const sizes = before.map((ids) => ids.length)
      for (const [leaf, n] of sizes.entries()) expect(n, `sockets on leaf ${String(leaf)}`).toBeGreaterThan(0)
      const refusing = sizes.indexOf(Math.max(...sizes))
      const cut = everyone.filter((m) => leafOf.get(m.ids[0] ?? 0) === refusing)
      const wasCut = new Set(cut)
      const kept = everyone.filter((m) => !wasCut.has(m))

      let cutAt = 0
      let movedMs = 0
      let killedAt = 0
      let backAt = 0
      let restart: Promise<void> | undefined
      const send = clientMessages(members, MESSAGES, TICKS)
      for (let tick = 1; tick <= TICKS; tick++) {
        if (tick === CUT_AT_TICK) {
          await room.refuse(refusing)
          cutAt = Date.now()
          for (const m of cut) m.cut()
        }
        if (tick === KILL_AT_TICK) {
          // The crash comes after the moves: each cut session is on another leaf when the runtime dies.
          await until(
            'every cut client to resume on another leaf',
            () => cut.every((m) => m.ids.length >= 2),
            MOVE_MS,
            everyone,
            0,
          )
          movedMs = Date.now() - cutAt
          // Between two server broadcasts: each one before the kill was answered, none is in doubt.
          killedAt = Date.now()
          restart = (async () => {
            await dev().kill()
            memory.stop()
            await dev.startAgain()
            runtime = await dev().runtime()
            memory.watch(dev().pgid, runtime.pid)
            backAt = Date.now()
          })()
        }
        // The server's own broadcasts wait for the runtime; the clients' messages queue meanwhile.
        if (restart !== undefined && backAt === 0) await restart
        await room.broadcast(tick)
        broadcaster.sent += 1
        if (!broadcaster.client.send({ b: broadcaster.sent }))
          broadcaster.problems.push('a broadcast refused')
        send()
        await sleep(TICK_MS)
      }
      await restart
      expect(backAt).toBeGreaterThan(killedAt)
      // Every socket dropped at the kill, the cut ones at the cut too.
      await until(
        'every client to resume, have every message acknowledged and every broadcast delivered',
        () =>
          everyone.every(
            (m) =>
              m.ids.length >= (wasCut.has(m) ? 3 : 2) &&
              m.client.queued === 0 &&
              m.received.length >= 2 * TICKS,
          ),
        SETTLE_MS,
        everyone,
        2 * TICKS,
      )
      const settledMs = Date.now() - backAt
      // Anything owed would have come by now; a copy delivered twice would come too.
      await sleep(500)

      await room.expectRootOrder(everyone, TICKS)
      for (const m of everyone) {
        expect(new Set(m.ids).size, `${m.name} kept one id`).toBe(1)
        expect(m.resumes, `${m.name} resumed`).toBeGreaterThanOrEqual(wasCut.has(m) ? 2 : 1)
      }

      // Where each socket is now: every cut one on another leaf, the others where they were. The
      // refusal is in the leaf's storage, so it outlived the restart (a leaf being drained stays
      // drained); the moved sessions' tokens name their new leaves, so they went there either way.
      const after = await room.openOnLeaves()
      const leafNow = new Map(after.flatMap((ids, leaf) => ids.map((id) => [id, leaf] as const)))
      expect(after[refusing], 'the sockets left on the refusing leaf').toEqual([])
      for (const m of cut) {
        const now = leafNow.get(m.ids[0] ?? 0)
        expect(now, `the leaf ${m.name} resumed on`).toBeDefined()
        expect(now, `the leaf ${m.name} resumed on`).not.toBe(refusing)
      }
      for (const m of kept)
        expect(leafNow.get(m.ids[0] ?? 0), `the leaf of ${m.name}`).toBe(leafOf.get(m.ids[0] ?? 0))

      const seen = await room.seen()
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
      // One session per client, opened once and then only resumed (the fixture lists opens leaf by
      // leaf, so a moved session's are not in time order); a moved one resumed where it moved to.
      expect(Object.keys(seen.opens).sort()).toEqual(everyone.map(idOf).sort())
      for (const [id, opens] of Object.entries(seen.opens))
        expect(
          opens.filter((resumed) => !resumed),
          `the new opens of session ${id}`,
        ).toHaveLength(1)
      for (const m of cut)
        expect(
          seen.leaves[leafNow.get(m.ids[0] ?? 0) ?? -1],
          `the leaf ${m.name} moved to ran its open`,
        ).toContain(m.ids[0])
      expect(seen.closes).toEqual({})
      memory.stop()

      const landed = new Map<number, number>()
      for (const m of cut) {
        const leaf = leafNow.get(m.ids[0] ?? 0) ?? -1
        landed.set(leaf, (landed.get(leaf) ?? 0) + 1)
      }
      const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`
      console.log(
        [
          `sharded room: ${String(everyone.length)} session clients over ${String(LEAVES)} leaves (${sizes.join(' / ')}) on the runtime's own port, ${String(2 * TICKS)} broadcasts and ${String(CLIENTS * MESSAGES)} client messages`,
          `  first open: ${seconds(openMs)} (runtime then at ${String(fdsOpen)} descriptors)`,
          `  leaf ${String(refusing)} refused, its ${String(cut.length)} connections cut; all resumed in ${seconds(movedMs)}, on ${[...landed].map(([leaf, n]) => `leaf ${String(leaf)}: ${String(n)}`).join(', ')}`,
          `  runtime SIGKILLed, down ${seconds(backAt - killedAt)}; every client resumed and caught up ${seconds(settledMs)} after it was back`,
          `  runtime peak memory: ${memory.describe()}; the whole run ${seconds(Date.now() - started)}`,
        ].join('\n'),
      )
    } finally {
      stopping = true
      memory.stop()
      for (const m of everyone) m.client.close()
    }
  }, 420_000)
})
