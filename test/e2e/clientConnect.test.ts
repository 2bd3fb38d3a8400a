import { createServer, type AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterEach, describe, expect, it } from 'vitest'
import { WebSocketServer, type WebSocket as ServerSocket } from 'ws'
import { connect, type Client, type ClientOptions } from '../../src/client/index.js'
import { wsText } from '../../tools/wsText.js'
import { within } from './client.js'
import { recordEvents } from './clientEvents.js'
import { connectionStatus } from './connectionStatus.js'
import { useDevServer } from './useDevServer.js'

const clients: Client[] = []

/** A client that is closed after the test, whatever happened in it. */
function open<Message = unknown>(
  ...args: Parameters<typeof connect<Message>>
): { client: Client<Message>; events: ReturnType<typeof recordEvents<Message>> } {
  const client = connect<Message>(...args)
  clients.push(client)
  return { client, events: recordEvents(client) }
}

afterEach(() => {
  for (const client of clients.splice(0)) client.close()
})

/** A port nothing listens on: every attempt to it is refused at once. */
function closedPort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo
      server.close(() => resolvePort(port))
    })
  })
}

/** A plain `ws` server in this process, for what wrangler dev cannot be made to do on cue. */
async function localServer(onConnection: (socket: ServerSocket, count: number) => void): Promise<{
  url: string
  connections: () => number
  close: () => Promise<void>
}> {
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0 })
  await new Promise<void>((resolveListening) => server.once('listening', resolveListening))
  let count = 0
  server.on('connection', (socket) => onConnection(socket, ++count))
  const { port } = server.address() as AddressInfo
  return {
    url: `ws://127.0.0.1:${String(port)}`,
    connections: () => count,
    close: () =>
      new Promise((resolveClosed) => {
        for (const socket of server.clients) socket.terminate()
        server.close(() => resolveClosed())
      }),
  }
}

// A bare `ws` server names the first subprotocol offered, so it would seem to speak sessions: these
// tests of reconnecting speak plain WebSocket to it (test/unit/clientSession.test.ts covers sessions).
const fastRetry: ClientOptions = { reconnect: { initialDelay: 20, maxDelay: 50 }, session: false }

describe('a client against a server that misbehaves on cue', () => {
  it('queues while it cannot connect, returns false from send past maxQueued, and gives up after maxAttempts', async () => {
    const port = await closedPort()
    const { client, events } = open(`ws://127.0.0.1:${String(port)}/ws`, {
      maxQueued: 2,
      reconnect: { initialDelay: 10, maxDelay: 20, maxAttempts: 3 },
    })

    expect([client.send({ n: 1 }), client.send({ n: 2 }), client.send({ n: 3 })]).toEqual([true, true, false])
    expect(client.queued).toBe(2)
    const last = await events.next('close', (close) => !close.willReconnect)

    expect(last.code).toBe(1006)
    expect(events.of('reconnecting').map((retry) => retry.attempt)).toEqual([1, 2, 3])
    expect(events.of('close')).toHaveLength(4)
    expect(events.of('open')).toEqual([])
    expect(client.state).toBe('closed')
    expect(client.queued).toBe(0)
    expect(client.send({ n: 4 })).toBe(false)
  })

  it('reconnects after the server drops it with 1011 or without a close frame, and opens with reconnected: true', async () => {
    const server = await localServer((socket, count) => {
      if (count === 1) socket.close(1011, 'Internal Error')
      if (count === 2) socket.terminate()
      if (count === 3) socket.on('message', (data) => socket.send(wsText(data)))
    })
    try {
      const { client, events } = open(server.url, fastRetry)

      expect(await events.next('close')).toMatchObject({ code: 1011, willReconnect: true })
      expect(await events.next('close')).toMatchObject({ code: 1006, wasClean: false, willReconnect: true })
      client.send({ after: 'two drops' })
      expect(await events.next('message')).toEqual({ after: 'two drops' })
      expect(events.of('open')).toEqual([
        { reconnected: false, resumed: false },
        { reconnected: true, resumed: false },
        { reconnected: true, resumed: false },
      ])
      expect(server.connections()).toBe(3)
    } finally {
      await server.close()
    }
  })

  it('does not reconnect after the server closes with 1000 or an application code', async () => {
    const server = await localServer((socket, count) => socket.close(count === 1 ? 1000 : 4001, 'done'))
    try {
      const first = open(server.url, fastRetry)
      expect(await first.events.next('close')).toEqual({
        code: 1000,
        reason: 'done',
        wasClean: true,
        willReconnect: false,
      })
      const second = open(server.url, fastRetry)
      expect(await second.events.next('close')).toMatchObject({ code: 4001, willReconnect: false })
      await sleep(200)
      expect(server.connections()).toBe(2)
      expect(first.client.state).toBe('closed')
    } finally {
      await server.close()
    }
  })

  it('asks shouldReconnect, which can retry any code', async () => {
    const server = await localServer((socket, count) => {
      if (count === 1) socket.close(4001, 'come back')
      else socket.send('"welcome back"')
    })
    try {
      const { events } = open(server.url, { ...fastRetry, shouldReconnect: ({ code }) => code === 4001 })
      expect(await events.next('close')).toMatchObject({ code: 4001, willReconnect: true })
      expect(await events.next('message')).toBe('welcome back')
    } finally {
      await server.close()
    }
  })

  it('closes for good on close(): no retry, the queue is dropped, and a late send returns false', async () => {
    const server = await localServer(() => undefined)
    try {
      const { client, events } = open(server.url, fastRetry)
      await events.next('open')
      client.close(4000, 'bye')
      expect(await events.next('close')).toMatchObject({ code: 4000, reason: 'bye', willReconnect: false })
      expect(client.state).toBe('closed')
      expect(client.send('late')).toBe(false)
      await sleep(200)
      expect(server.connections()).toBe(1)
    } finally {
      await server.close()
    }
  })

  it('close() between attempts ends it at once with a final close event', async () => {
    const port = await closedPort()
    const { client, events } = open(`ws://127.0.0.1:${String(port)}/ws`, {
      reconnect: { initialDelay: 5_000, maxDelay: 5_000 },
    })
    await events.next('reconnecting')
    client.close()
    expect(await events.next('close', (close) => !close.willReconnect)).toMatchObject({ code: 1000 })
    expect(client.state).toBe('closed')
  })

  it('refuses close codes a browser may not send, with ERR_DWS_INVALID_CLOSE', () => {
    const client = connect('ws://127.0.0.1:1/ws', { reconnect: false })
    expect(() => client.close(1001)).toThrow(/1000 or an application code from 3000 to 4999/)
    expect(() => client.close(1000, 'x'.repeat(124))).toThrow(/at most 123 bytes/)
    client.close()
  })

  it('throws ERR_DWS_UNSENDABLE_MESSAGE at send for a value the serializer cannot encode', () => {
    const client = connect('ws://127.0.0.1:1/ws', { reconnect: false })
    try {
      expect(() => client.send(undefined)).toThrow(/could not encode undefined/)
      expect(client.queued).toBe(0)
    } finally {
      client.close()
    }
  })

  it('reports a text frame it cannot decode on error, drops it, and goes on', async () => {
    const server = await localServer((socket) => {
      socket.send('not json')
      socket.send('{"fine":true}')
    })
    try {
      const { events } = open(server.url, fastRetry)
      const error = await events.next('error')
      expect(error.code).toBe('ERR_DWS_MALFORMED_MESSAGE')
      expect(await events.next('message')).toEqual({ fine: true })
      expect(events.of('message')).toHaveLength(1)
    } finally {
      await server.close()
    }
  })

  it('hands binary frames to binary listeners as an ArrayBuffer, and sends bytes untouched', async () => {
    const server = await localServer((socket) =>
      socket.on('message', (data) => socket.send(data, { binary: true })),
    )
    try {
      const { client, events } = open(server.url, fastRetry)
      client.send(new Uint8Array([1, 2, 3]))
      const data = await events.next('binary')
      expect(data).toBeInstanceOf(ArrayBuffer)
      expect([...new Uint8Array(data)]).toEqual([1, 2, 3])
    } finally {
      await server.close()
    }
  })

  it('replaces a connection whose heartbeat goes unanswered', async () => {
    const pings: string[] = []
    const server = await localServer((socket, count) => {
      // The first connection hears pings and never answers, like a peer that is gone.
      if (count === 1) socket.on('message', (data) => pings.push(wsText(data)))
    })
    try {
      const { events } = open(server.url, { ...fastRetry, heartbeat: { interval: 50, timeout: 100 } })
      expect(await events.next('close')).toMatchObject({
        code: 1006,
        reason: 'Heartbeat timeout',
        wasClean: false,
        willReconnect: true,
      })
      await events.next('open', (info) => info.reconnected)
      expect(pings[0]).toBe('ping')
      expect(server.connections()).toBe(2)
    } finally {
      await server.close()
    }
  })

  it('a listener that removes itself hears nothing more', async () => {
    const server = await localServer((socket) => {
      socket.send('1')
      socket.send('2')
    })
    try {
      const { client, events } = open(server.url, fastRetry)
      const heard: unknown[] = []
      const stop = client.on('message', (message) => {
        heard.push(message)
        stop()
      })
      await events.next('message')
      await events.next('message')
      expect(heard).toEqual([1])
    } finally {
      await server.close()
    }
  })
})

describe('a client against wrangler dev', () => {
  const server = useDevServer()

  it('round-trips JSON with the echo at /ws on Node 22, sending what was queued before the open in order', async () => {
    const { client, events } = open(`${server().wsOrigin}/ws`)
    expect(client.state).toBe('connecting')
    client.send({ n: 1 })
    client.send({ n: 2 })
    client.on('open', () => client.send({ n: 0 }))

    expect(await events.next('message')).toEqual({ received: { n: 0 } })
    expect(await events.next('message')).toEqual({ received: { n: 1 } })
    expect(await events.next('message')).toEqual({ received: { n: 2 } })
    expect(client.state).toBe('open')
  })

  it('reaches a room with { url, room } from an http: URL', async () => {
    const { client, events } = open({ url: `${server().origin}/ws`, room: 'client-room' })
    client.send('hello room')
    expect(await events.next('message')).toEqual({ received: 'hello room' })
    const response = await fetch(`${server().origin}/connections/client-room`)
    expect(((await response.json()) as { ids: number[] }).ids).toHaveLength(1)
  })

  it('swallows the pong that answers its heartbeat and keeps the connection', async () => {
    const { client, events } = open(`${server().wsOrigin}/ws`, { heartbeat: 100 })
    await events.next('open')
    await sleep(700)
    client.send('after the pings')
    expect(await events.next('message')).toEqual({ received: 'after the pings' })
    expect(events.of('message')).toHaveLength(1)
    expect(events.of('close')).toEqual([])
  })

  it('does not retry when the server closes it with 1007 Malformed message', async () => {
    const raw = { encode: (text: string) => text, decode: (text: string) => text }
    const { client, events } = open<string>(`${server().wsOrigin}/ws`, { serializer: raw })
    client.send('this is not JSON')
    expect(await events.next('close')).toEqual({
      code: 1007,
      reason: 'Malformed message',
      wasClean: true,
      willReconnect: false,
    })
    expect(client.state).toBe('closed')
  })

  it('reconnects after the dev server is killed and restarted on its port, then sends what was queued meanwhile', async () => {
    const { client, events } = open(`${server().wsOrigin}/ws`, {
      reconnect: { initialDelay: 100, maxDelay: 500 },
    })
    await events.next('open')

    await server().kill()
    expect(await events.next('close')).toMatchObject({ code: 1006, willReconnect: true })
    expect(client.send({ queued: 'while the server was down' })).toBe(true)
    await server.startAgain()

    expect(await events.next('open', (info) => info.reconnected, 30_000)).toMatchObject({ reconnected: true })
    expect(await events.next('message')).toEqual({ received: { queued: 'while the server was down' } })
    expect((await within(connectionStatus(server().origin), 'GET /connections')).ids).toHaveLength(1)
  }, 90_000)
})
