import { resolve } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { describe, expect, it } from 'vitest'
import { CHAOS_RETRY, ChaosProxy } from './chaosProxy.js'
import type { Seen } from './fixtures/chaos/protocol.js'
import { expectExactlyOnce, failOnProblems, peer, until, untilSettled } from './sessionPeers.js'
import { useDevServer } from './useDevServer.js'

const CONFIG = resolve(import.meta.dirname, 'fixtures/chaos/wrangler.toml')
const ROOM = 'chaos'

const WORKERS = 50
const MESSAGES = 1_000
const BROADCASTS = 1_000
/** One round of sends (a message from every worker and one broadcast request) this often. */
const SEND_EVERY_MS = 50
/** `wrangler dev` is killed this many times, spread evenly over the sends, and started again on the same state. */
const RESTARTS = [1, 2]
/** A client sends only while fewer of its messages than this wait for the server's acknowledgement. */
const IN_FLIGHT = 50
/** The sends must be done within this time. */
const SEND_MS = 150_000
/** The proxy cuts one of its connections after a random pause of up to this long. */
const CUT_EVERY_MS = 200
const MIN_CUTS = 200
/** How long the clients get, after the last send, to have everything acknowledged and delivered. */
const SETTLE_MS = 45_000

const dev = useDevServer({ config: CONFIG })

describe(`${String(WORKERS)} session clients behind a proxy that cuts connections, with wrangler dev killed twice`, () => {
  it(`hands every client message to the server exactly once and in order, delivers every broadcast to every client exactly once and in order, and resets no session`, async () => {
    const started = Date.now()
    const upstreamPort = Number(new URL(dev().origin).port)
    const proxy = await ChaosProxy.start(upstreamPort)
    let stopping = false
    const url = `ws://127.0.0.1:${String(proxy.port)}/ws/${ROOM}`
    const workers = Array.from({ length: WORKERS }, (_, i) =>
      peer(
        `worker ${String(i)}`,
        url,
        () => stopping,
        MESSAGES,
        (n) => ({ n }),
        CHAOS_RETRY,
      ),
    )
    const broadcaster = peer(
      'broadcaster',
      url,
      () => stopping,
      BROADCASTS,
      (b) => ({ b }),
      CHAOS_RETRY,
    )
    const peers = [...workers, broadcaster]
    let cutter: ReturnType<typeof setTimeout> | undefined
    try {
      // Every session exists before the first broadcast, so each must receive all of them.
      await until('every client to open', () => peers.every((p) => p.ids.length > 0), 30_000, peers)

      let cutting = true
      const cutLater = (): void => {
        cutter = setTimeout(() => {
          if (!cutting) return
          proxy.cut()
          cutLater()
        }, Math.random() * CUT_EVERY_MS)
      }
      cutLater()

      // One after another: a second kill must not land while the first restart is still starting.
      let restarts = Promise.resolve()
      const restart = async (): Promise<void> => {
        await dev().kill()
        await dev.startAgain()
      }
      // Each client keeps at most IN_FLIGHT messages unacknowledged, as an app watching `queued`
      // would: the run then tests delivery, not how deep a backlog a slow machine can pile up.
      const total = WORKERS * MESSAGES + BROADCASTS
      const restartAt = RESTARTS.map((k) => Math.round((k * total) / (RESTARTS.length + 1)))
      const sendUntil = Date.now() + SEND_MS
      for (let sent = 0; sent < total;) {
        for (const p of peers) {
          if (p.sent === p.quota || p.client.queued >= IN_FLIGHT) continue
          p.sent += 1
          sent += 1
          if (!p.client.send(p.message(p.sent))) p.problems.push(`send ${String(p.sent)} refused`)
        }
        if (restartAt[0] !== undefined && sent >= restartAt[0]) {
          restartAt.shift()
          restarts = restarts.then(restart)
        }
        failOnProblems('the sends', peers)
        if (Date.now() > sendUntil)
          throw new Error(`only ${String(sent)} of ${String(total)} messages sent in time`)
        await sleep(SEND_EVERY_MS)
      }
      await restarts
      // Cutting goes on until the minimum is reached, so a fast run still sees every kind of cut.
      await until(`${String(MIN_CUTS)} cuts`, () => proxy.cuts >= MIN_CUTS, 30_000, peers)
      cutting = false

      await untilSettled(peers, BROADCASTS, SETTLE_MS)
      const response = await fetch(`${dev().origin}/rooms/${ROOM}/seen`)
      expect(response.status).toBe(200)
      expectExactlyOnce((await response.json()) as Seen, workers, broadcaster, {
        messages: MESSAGES,
        broadcasts: BROADCASTS,
      })

      const resumes = peers.reduce((sum, p) => sum + p.resumes, 0)
      const seconds = ((Date.now() - started) / 1000).toFixed(1)
      console.log(
        `chaos: ${String(proxy.cuts)} cuts, ${String(RESTARTS.length)} restarts, ${String(WORKERS * MESSAGES)} client messages and ${String(BROADCASTS)} broadcasts to ${String(peers.length)} clients, ${String(resumes)} resumes, in ${seconds} s`,
      )
      expect(proxy.cuts).toBeGreaterThanOrEqual(MIN_CUTS)
      // Each kill drops every socket, so every client resumed at least once per restart.
      expect(resumes).toBeGreaterThanOrEqual(RESTARTS.length * peers.length)
    } finally {
      stopping = true
      if (cutter !== undefined) clearTimeout(cutter)
      for (const p of peers) p.client.close()
      await proxy.close()
    }
  }, 270_000)
})
