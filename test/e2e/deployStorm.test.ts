import { resolve } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { describe, expect, it } from 'vitest'
import type { Seen } from './fixtures/chaos/protocol.js'
import { PeakMemory } from './peakMemory.js'
import { expectExactlyOnce, failOnProblems, peer, until, untilSettled, type Peer } from './sessionPeers.js'
import { useDevServer } from './useDevServer.js'

/**
 * A deploy, as a room's clients meet it: every socket drops at once while the
 * room is busy, and everyone comes back together. Two ways: the room's object
 * is reset mid-stream with the runtime up (what a deploy or a runtime update
 * does to an object on Cloudflare), and `wrangler dev` is SIGKILLed
 * mid-stream and started again on the same state and port. The package's own
 * client, with its default backoff, does the rest.
 */

const CONFIG = resolve(import.meta.dirname, 'fixtures/chaos/wrangler.toml')

type Restart = 'object' | 'runtime'
const TITLES: Record<Restart, string> = {
  object: "the room's object reset mid-stream (a deploy)",
  runtime: 'the runtime SIGKILLed mid-stream',
}

const CLIENTS = 1_000
/** What each client sends over the run, spread over the ticks. */
const MESSAGES = 6
/** One broadcast per tick, each with about 1 KB of padding, to every client. */
const TICKS = 120
const TICK_MS = 100
const PADDING = 'x'.repeat(1_000)
/** The room drops after this many ticks, and the stream goes on through the restart. */
const KILL_AT_TICK = 40
const OPEN_MS = 90_000
const SETTLE_MS = 90_000

const dev = useDevServer({ config: CONFIG })

describe.each(['object', 'runtime'] as const)('a deploy storm (%s)', (restartKind: Restart) => {
  const ROOM = `storm-${restartKind}`
  it(`${String(CLIENTS)} session clients in one busy room, ${TITLES[restartKind]}: resumes every session, with every broadcast delivered once and in order and every client message handled once and in order, resetting none`, async () => {
    let stopping = false
    const url = `${dev().wsOrigin}/ws/${ROOM}`
    const memory = new PeakMemory()
    const peers: Peer[] = []
    const openStarted = Date.now()
    try {
      for (let i = 0; i < CLIENTS; i++) {
        peers.push(
          peer(
            `client ${String(i)}`,
            url,
            () => stopping,
            MESSAGES,
            (n) => ({ n }),
          ),
        )
      }
      const broadcaster = peer(
        'broadcaster',
        url,
        () => stopping,
        TICKS,
        (b) => ({ b, p: PADDING }),
      )
      const everyone = [...peers, broadcaster]
      // Every session exists before the first broadcast, so each must receive all of them.
      await until('every client to open', () => everyone.every((p) => p.ids.length > 0), OPEN_MS, everyone)
      const openMs = Date.now() - openStarted
      memory.watch(dev().pgid)

      let killedAt = 0
      let backAt = 0
      let restart: Promise<void> = Promise.resolve()
      const perTick = Math.ceil((CLIENTS * MESSAGES) / TICKS)
      let next = 0
      for (let tick = 1; tick <= TICKS; tick++) {
        if (tick === KILL_AT_TICK) {
          killedAt = Date.now()
          restart =
            restartKind === 'object'
              ? (async () => {
                  const reset = await fetch(`${dev().origin}/rooms/${ROOM}/restart`, { method: 'POST' })
                  expect(reset.status).toBe(204)
                  // The runtime never went away: the clock runs from the reset's request.
                  backAt = killedAt
                })()
              : (async () => {
                  await dev().kill()
                  memory.stop()
                  await dev.startAgain()
                  backAt = Date.now()
                  memory.watch(dev().pgid)
                })()
        }
        broadcaster.sent += 1
        if (!broadcaster.client.send(broadcaster.message(broadcaster.sent)))
          broadcaster.problems.push(`broadcast ${String(broadcaster.sent)} refused`)
        for (let k = 0; k < perTick; k++) {
          const p = peers[next % CLIENTS]
          next += 1
          if (p === undefined || p.sent === p.quota) continue
          p.sent += 1
          if (!p.client.send(p.message(p.sent))) p.problems.push(`send ${String(p.sent)} refused`)
        }
        failOnProblems('the stream', everyone)
        await sleep(TICK_MS)
      }
      await restart
      expect(backAt).toBeGreaterThanOrEqual(killedAt)

      // Every socket dropped: each client is back once it opened a second time.
      await until(
        'every session to resume',
        () => everyone.every((p) => p.ids.length >= 2),
        SETTLE_MS,
        everyone,
      )
      const resumedMs = Date.now() - backAt
      await untilSettled(everyone, TICKS, SETTLE_MS)
      const caughtUpMs = Date.now() - backAt
      memory.stop()

      const response = await fetch(`${dev().origin}/rooms/${ROOM}/seen`)
      expect(response.status).toBe(200)
      expectExactlyOnce((await response.json()) as Seen, peers, broadcaster, {
        messages: MESSAGES,
        broadcasts: TICKS,
      })
      // Every socket dropped: each session came back at least once.
      for (const p of everyone) expect(p.resumes, `${p.name} resumed`).toBeGreaterThanOrEqual(1)

      const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`
      console.log(
        [
          `deploy storm: ${String(everyone.length)} session clients, ${String(TICKS)} broadcasts of ~1 KB and ${String(CLIENTS * MESSAGES)} client messages`,
          `  first open of the room: ${seconds(openMs)}`,
          restartKind === 'object'
            ? `  the room's object reset at tick ${String(KILL_AT_TICK)}, the runtime up`
            : `  runtime down for ${seconds(backAt - killedAt)} (SIGKILL to ready again)`,
          `  every session resumed ${seconds(resumedMs)} after the ${restartKind === 'object' ? 'reset' : 'runtime was back'} (${(resumedMs / openMs).toFixed(2)}x the first open)`,
          `  every client caught up ${seconds(caughtUpMs)} after the ${restartKind === 'object' ? 'reset' : 'runtime was back'}`,
          `  runtime peak memory: ${memory.describe()}`,
        ].join('\n'),
      )
    } finally {
      stopping = true
      memory.stop()
      for (const p of peers) p.client.close()
    }
  }, 300_000)
})
