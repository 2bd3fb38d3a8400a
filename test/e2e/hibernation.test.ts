import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, describe, expect, it } from 'vitest'
import { connect, type TestClient } from './client.js'
import { connectionStatus } from './connectionStatus.js'
import { useDevServer } from './useDevServer.js'

/** wrangler dev evicts an object about 10 s after its last event; this leaves it room to. */
const IDLE_MS = 12_000

const dev = useDevServer()
let client: TestClient | undefined

afterAll(() => client?.terminate())

describe('an idle object', () => {
  it('keeps answering a connection after it hibernates, and the connection keeps its id', async () => {
    client = await connect(`${dev().wsOrigin}/ws`)
    client.send({ n: 1 })
    expect(await client.next()).toEqual({ received: { n: 1 } })
    const before = await connectionStatus(dev().origin)
    expect(before.ids).toHaveLength(1)

    await sleep(IDLE_MS)

    client.send({ n: 2 })
    expect(await client.next()).toEqual({ received: { n: 2 } })
    expect(await connectionStatus(dev().origin)).toEqual(before)
  })
})
