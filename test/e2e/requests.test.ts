import { resolve } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import NodeWs from 'ws'
import { describe, expect, it } from 'vitest'
import { connect, type Client, type WebSocketConstructor } from '../../src/client/index.js'
import { CHAOS_RETRY, ChaosProxy } from './chaosProxy.js'
import type { Seen, ToClient, ToServer } from './fixtures/chaos/protocol.js'
import { oneTo } from './sessionPeers.js'
import { useDevServer } from './useDevServer.js'

const CONFIG = resolve(import.meta.dirname, 'fixtures/chaos/wrangler.toml')
const ROOM = 'requests'
const CLIENTS = 10
const REQUESTS = 100
/** Each client keeps this many requests waiting for replies at once. */
const IN_FLIGHT = 5
const CUT_EVERY_MS = 150
const MIN_CUTS = 20

const dev = useDevServer({ config: CONFIG })

describe(`${String(CLIENTS)} session clients making requests behind a proxy that cuts connections`, () => {
  it('gets one reply to every request, and the server ran each request once, in the order it was made', async () => {
    const proxy = await ChaosProxy.start(Number(new URL(dev().origin).port))
    const url = `ws://127.0.0.1:${String(proxy.port)}/ws/${ROOM}`
    const clients: Client<ToClient, ToServer>[] = Array.from({ length: CLIENTS }, () =>
      connect<ToClient, ToServer>(url, {
        WebSocket: NodeWs as unknown as WebSocketConstructor,
        ...CHAOS_RETRY,
      }),
    )
    let cutting = true
    let cutter: ReturnType<typeof setTimeout> | undefined
    const cutLater = (): void => {
      cutter = setTimeout(() => {
        if (!cutting) return
        proxy.cut()
        cutLater()
      }, Math.random() * CUT_EVERY_MS)
    }
    try {
      const resets: number[] = []
      clients.forEach((client, index) => client.on('reset', () => resets.push(index)))
      cutLater()
      const replies = await Promise.all(
        clients.map(async (client) => {
          const got: number[] = []
          let next = 1
          const slot = async (): Promise<void> => {
            while (next <= REQUESTS) {
              const r = next++
              const reply = await client.request({ r }, { timeout: 60_000 })
              got.push('r' in reply ? reply.r / 2 : -1)
              // A moment between requests, so cuts land while requests are in flight.
              await sleep(Math.random() * 20)
            }
          }
          await Promise.all(Array.from({ length: IN_FLIGHT }, slot))
          return got
        }),
      )
      while (proxy.cuts < MIN_CUTS) await sleep(CUT_EVERY_MS)
      cutting = false
      expect(resets).toEqual([])
      for (const got of replies) expect([...got].sort((a, b) => a - b)).toEqual(oneTo(REQUESTS))
      const seen = (await (await fetch(`${dev().origin}/rooms/${ROOM}/seen`)).json()) as Seen
      for (const client of clients) expect(seen.requests[String(client.id)]).toEqual(oneTo(REQUESTS))
      console.log(
        `requests: ${String(CLIENTS * REQUESTS)} requests through ${String(proxy.cuts)} cuts, each run once and answered once`,
      )
    } finally {
      cutting = false
      if (cutter !== undefined) clearTimeout(cutter)
      for (const client of clients) client.close()
      await proxy.close()
    }
  }, 120_000)
})
