import { afterEach, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { connectMany, within, type TestClient } from './client.js'
import { connectionStatus, newIds, waitForStatus } from './connectionStatus.js'
import { useDevServer } from './useDevServer.js'

const dev = useDevServer()
const opened: TestClient[] = []

async function open(count: number): Promise<TestClient[]> {
  const clients = await connectMany(`${dev().wsOrigin}/ws`, count)
  opened.push(...clients)
  return clients
}

// Each test starts with no connection open, so any id that appears during a test is its own.
afterEach(async () => {
  for (const client of opened.splice(0)) client.terminate()
  await waitForStatus(dev().origin, 'every connection to leave', (status) => status.ids.length === 0)
})

describe('GET /ws with a WebSocket client', () => {
  it('ten clients connected at once each get their own id and their replies in order, then close cleanly with 1000', async () => {
    const clients = await open(10)
    const status = await connectionStatus(dev().origin)
    expect(new Set(status.ids).size).toBe(10)

    const perClient = 5
    clients.forEach((client, c) => {
      for (let seq = 0; seq < perClient; seq++) client.send({ client: c, seq })
    })
    const replies = await Promise.all(
      clients.map(async (client) => {
        const received: unknown[] = []
        for (let seq = 0; seq < perClient; seq++) received.push(await client.next())
        return received
      }),
    )
    replies.forEach((received, c) => {
      expect(received).toEqual(
        Array.from({ length: perClient }, (_, seq) => ({ received: { client: c, seq } })),
      )
    })

    const closes = await Promise.all(clients.map((client) => client.close(1000)))
    expect(closes.map((closed) => closed.code)).toEqual(Array<number>(10).fill(1000))
  })

  it('a client that drops its TCP connection without a close frame leaves /connections, and the others stay', async () => {
    const empty = await connectionStatus(dev().origin)
    const [staying] = await open(1)
    const withStaying = await connectionStatus(dev().origin)
    const [dropping] = await open(1)
    const withBoth = await connectionStatus(dev().origin)
    const [stayingId] = newIds(empty, withStaying)
    const [droppingId] = newIds(withStaying, withBoth)
    expect(stayingId).toBeTypeOf('number')
    expect(droppingId).toBeTypeOf('number')

    dropping!.terminate()
    const after = await waitForStatus(
      dev().origin,
      `connection ${String(droppingId)} to leave`,
      (status) => !status.ids.includes(droppingId!),
    )

    expect(after.ids).toEqual([stayingId])
    staying!.send('still here')
    expect(await staying!.next()).toEqual({ received: 'still here' })
  })

  it('a text message that is not JSON closes only its own connection, with 1007 Malformed message', async () => {
    const [sender, bystander] = await open(2)

    sender!.sendText('this is not JSON')
    const closed = await within(sender!.closed, 'the malformed sender to be closed')

    expect(closed).toEqual({ code: 1007, reason: 'Malformed message' })
    bystander!.send({ after: 'the malformed message' })
    expect(await bystander!.next()).toEqual({ received: { after: 'the malformed message' } })
    expect(bystander!.socket.readyState).toBe(WebSocket.OPEN)
  })
})

describe('the app beside the mount', () => {
  it('still answers its routes while a socket is open', async () => {
    const [client] = await open(1)
    client!.send('before')
    expect(await client!.next()).toEqual({ received: 'before' })

    const hello = await fetch(`${dev().origin}/hello`)
    expect(hello.status).toBe(200)
    expect(await hello.text()).toBe('hi\n')
    const home = await fetch(`${dev().origin}/`)
    expect(home.status).toBe(200)
    expect(home.headers.get('Content-Type')).toMatch(/^text\/html/)
    expect(await home.text()).toContain('<title>durable-websocket chat</title>')
    const unknown = await fetch(`${dev().origin}/no-such-route`)
    expect(unknown.status).toBe(404)

    client!.send('after')
    expect(await client!.next()).toEqual({ received: 'after' })
  })

  // The Worker sets `Upgrade: websocket` on this 426, but workerd drops hop-by-hop headers
  // (Upgrade, Connection) from every HTTP/1.1 response, so no client over the network sees it.
  it('GET /ws without an upgrade answers 426 Upgrade Required', async () => {
    const response = await fetch(`${dev().origin}/ws`)

    expect(response.status).toBe(426)
  })

  it('GET /connections/<not a room> answers 400 with a plain message, never the error’s name or code', async () => {
    const response = await fetch(`${dev().origin}/connections/a..b`)

    expect(response.status).toBe(400)
    expect(await response.text()).toBe('Bad Request: not a room name.\n')
  })

  it('POST /ws answers 405 and allows only GET', async () => {
    const response = await fetch(`${dev().origin}/ws`, { method: 'POST', body: 'hello' })

    expect(response.status).toBe(405)
    expect(response.headers.get('Allow')).toBe('GET')
  })
})
