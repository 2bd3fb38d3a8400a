import { resolve } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { connect, type Client } from '../../src/client/index.js'
import { recordEvents } from './clientEvents.js'
import { IDLE_TIMEOUT_MS } from './fixtures/idle/timeout.js'
import { useDevServer } from './useDevServer.js'

const clients: Client[] = []

afterEach(() => {
  for (const client of clients.splice(0)) client.close()
  vi.restoreAllMocks()
})

/**
 * A close the object starts from its alarm reaches the client through
 * wrangler dev's proxy 10 to 12 s later (see /work TOOLCHAIN notes), so a reap takes that long to see.
 */
const REAP_SEEN_MS = IDLE_TIMEOUT_MS + 20_000

function open(url: string, heartbeat: number | false) {
  const client = connect<{ id: number; ids?: number[] }>(url, { heartbeat })
  clients.push(client)
  return { client, events: recordEvents(client) }
}

describe("the client's heartbeat against the server's idleTimeout", () => {
  const server = useDevServer({ config: resolve(import.meta.dirname, 'fixtures/idle/wrangler.toml') })

  it(
    'without a heartbeat, is reaped with 1001, warns once that it needs one, and comes back, resuming its session (an idle close only suspends it)',
    {
      timeout: 3 * REAP_SEEN_MS,
    },
    async () => {
      const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined)
      const { events } = open(`${server().wsOrigin}/ws/quiet`, false)
      const first = await events.next('message')
      expect(await events.next('close', () => true, REAP_SEEN_MS)).toMatchObject({
        code: 1001,
        reason: 'Idle timeout',
        willReconnect: true,
      })
      const second = await events.next('message')
      expect(second.id).toBe(first.id)
      expect(events.of('open').at(-1)).toEqual({ reconnected: true, resumed: true })
      expect(await events.next('close', () => true, REAP_SEEN_MS)).toMatchObject({
        code: 1001,
        reason: 'Idle timeout',
      })
      expect(warn).toHaveBeenCalledTimes(1)
      expect(String(warn.mock.calls[0]?.[0])).toMatch(/heartbeat: N.*below the server's idleTimeout/)
    },
  )

  it('with a heartbeat below idleTimeout, keeps one connection and one id, and warns about nothing', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined)
    const { client, events } = open(`${server().wsOrigin}/ws/pinging`, IDLE_TIMEOUT_MS / 3)
    expect(await events.next('message')).toEqual({ id: 1 })
    await sleep(3 * IDLE_TIMEOUT_MS)
    // A reaped connection has left the object's list at once, though its close reaches us late.
    client.send({ id: 0 })
    expect(await events.next('message')).toEqual({ id: 1, ids: [1] })
    expect(events.of('close')).toEqual([])
    expect(client.state).toBe('open')
    expect(warn).not.toHaveBeenCalled()
  })
})
