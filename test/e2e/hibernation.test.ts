import { setTimeout as sleep } from 'node:timers/promises'
import { describe, expect, it } from 'vitest'
import { FixtureClient } from './fixtureClient.js'
import { roomStatus, useLoadServer } from './loadServer.js'

/** wrangler dev evicts an object about 10 s after its last event; this leaves it room to. */
const IDLE_MS = 12_000

// The load fixture, not the demo: its object counts its constructor runs, so the test can tell
// an object that was rebuilt from one that merely sat idle in memory.
const dev = useLoadServer()

describe('an idle object', () => {
  it('is rebuilt for the next message of a connection, which keeps its id and data', async () => {
    const room = 'idle'
    const client = await FixtureClient.join(dev().wsOrigin, room, { key: 'sleeper' })
    client.send({ type: 'note', text: 'before the nap' })
    expect(await client.next('noted')).toEqual({ type: 'noted', notes: ['before the nap'] })
    const before = await roomStatus(dev().origin, room)
    expect(before.ids).toEqual([client.id])

    // Nothing reaches the object now: no message, no RPC, no heartbeat.
    await sleep(IDLE_MS)

    client.send({ type: 'inspect' })
    const seen = await client.next('inspect')
    expect(seen).toMatchObject({
      type: 'inspect',
      id: client.id,
      data: { key: 'sleeper', notes: ['before the nap'] },
      connections: [client.id],
    })
    // A new constructor run answered: the object really was evicted in between.
    expect(seen.instance).toBeGreaterThan(before.instance)
    const after = await roomStatus(dev().origin, room)
    expect(after.ids).toEqual(before.ids)
    expect(after.lastId).toBe(before.lastId)
  })
})
