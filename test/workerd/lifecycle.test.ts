import { env } from 'cloudflare:workers'
import { evictDurableObject, runInDurableObject } from 'cloudflare:test'
import { describe, expect, it } from 'vitest'
import { pending, type PendingObject } from './fixture/endpoints/pending.js'
import type { Entry } from './fixture/record.js'
import { closesDelivered, closesOf as closesOfIn } from './closesOf.js'
import { lifecycle as lifecycleModule, type LifecycleObject } from './fixture/endpoints/lifecycle.js'
import { connect, eventually, join, leave, request, sleep, stubOf, upgrade, type Client } from './client.js'

const lifecycle = stubOf(env.LIFECYCLE)

async function opened(client: Client): Promise<{ id: number } & Record<string, unknown>> {
  return client.nextJson<{ id: number } & Record<string, unknown>>()
}

async function entriesFor(id: number, event: string): Promise<Entry[]> {
  const log = await lifecycle.log()
  return log.filter((entry) => entry.id === id && entry.event === event)
}

/** Waits for the close handler of `id` and every later event of the object, and returns every close it recorded. */
function closesOf(id: number): Promise<Entry[]> {
  return closesOfIn(lifecycle, id)
}

describe('open(conn, request, locals)', () => {
  it('runs once when a connection is established, with the upgrade request and empty locals', async () => {
    const client = await connect('/lifecycle?room=kitchen', { 'x-client': 'vitest' })
    const hello = await opened(client)
    expect(hello).toEqual({
      id: hello.id,
      path: '/lifecycle',
      room: 'kitchen',
      client: 'vitest',
      upgrade: 'websocket',
      locals: {},
    })
    expect(await entriesFor(hello.id, 'open')).toHaveLength(1)
    await leave(client)
  })

  it('never receives locals that the client forged in a header', async () => {
    const client = await connect('/lifecycle', {
      'x-durable-websocket-locals': JSON.stringify({ user: 'mallory', admin: true }),
    })
    expect((await opened(client)).locals).toEqual({})
    await leave(client)
  })
})

describe('message(conn, message)', () => {
  it('runs once per message, in the order the messages were sent', async () => {
    const client = await connect('/lifecycle')
    const { id } = await opened(client)
    for (const text of ['one', 'two', 'three']) client.send(text)
    expect([await client.nextText(), await client.nextText(), await client.nextText()]).toEqual([
      'echo:one',
      'echo:two',
      'echo:three',
    ])
    expect((await entriesFor(id, 'message')).map((entry) => entry.message)).toEqual(['one', 'two', 'three'])
    await leave(client)
  })

  it('reaches the same connection after the object hibernated, without running open again', async () => {
    const client = await connect('/lifecycle')
    const { id } = await opened(client)
    await evictDurableObject(lifecycle, { webSockets: 'hibernate' })
    expect(await client.ask('after the nap')).toBe('echo:after the nap')
    expect((await entriesFor(id, 'message')).map((entry) => entry.message)).toEqual(['after the nap'])
    expect(await entriesFor(id, 'open')).toHaveLength(1)
    await leave(client)
  })
})

describe('close(conn, code, reason)', () => {
  it("runs once, with the client's code and reason, when the client closes", async () => {
    const client = await connect('/lifecycle')
    const { id } = await opened(client)
    client.close(4321, 'client leaving')
    await client.whenClosed()
    expect(await closesOf(id)).toEqual([{ event: 'close', id, code: 4321, reason: 'client leaving' }])
  })

  it('runs once with 1005, and the close is answered, when the client closes without a code', async () => {
    const client = await connect('/lifecycle')
    const { id } = await opened(client)
    client.close()
    expect(await client.whenClosed()).toMatchObject({ code: 1005, reason: '' })
    expect(await closesOf(id)).toEqual([{ event: 'close', id, code: 1005, reason: '' }])
  })

  it('runs once when the server closes the connection with conn.close()', async () => {
    const client = await connect('/lifecycle')
    const { id } = await opened(client)
    client.send('close-me')
    expect(await client.whenClosed()).toMatchObject({ code: 4000, reason: 'server says bye' })
    expect(await closesOf(id)).toEqual([{ event: 'close', id, code: 4000, reason: 'server says bye' }])
  })

  it('runs once, with 1011, when a handler of the connection throws', async () => {
    const client = await connect('/lifecycle')
    const { id } = await opened(client)
    client.send('throw')
    expect(await client.whenClosed()).toMatchObject({ code: 1011, reason: 'Internal Error' })
    expect(await closesOf(id)).toEqual([{ event: 'close', id, code: 1011, reason: 'Internal Error' }])
  })

  it('runs once, on the woken object, when a hibernated connection is closed by its client', async () => {
    const client = await connect('/lifecycle')
    const { id } = await opened(client)
    await evictDurableObject(lifecycle, { webSockets: 'hibernate' })
    client.close(1000, 'bye after the nap')
    await client.whenClosed()
    expect(await closesOf(id)).toEqual([{ event: 'close', id, code: 1000, reason: 'bye after the nap' }])
  })

  it('runs once, with 1006, when the runtime reports a socket error, even if a close event follows', async () => {
    // workerd cannot cut an in-process peer, so the test makes the runtime's two
    // callbacks itself, on the object's real socket, in the order a dropped peer produces them.
    // A room of its own, so the one socket there is this client's.
    const room = lifecycleModule.room<LifecycleObject>(env, 'socket-error')
    const client = await connect('/lifecycle/socket-error')
    const { id } = await opened(client)
    await runInDurableObject(room, async (instance, state) => {
      const sockets = state.getWebSockets()
      expect(sockets).toHaveLength(1)
      const socket = sockets[0]!
      await instance.webSocketError(socket, new Error('peer vanished'))
      await instance.webSocketClose(socket, 1006, 'peer vanished')
      expect(instance.connectionIds()).not.toContain(id)
    })
    const closes = async (): Promise<Entry[]> =>
      (await room.log()).filter((entry) => entry.id === id && entry.event === 'close')
    expect(await closesOfIn(room, id)).toEqual([{ event: 'close', id, code: 1006, reason: '' }])
    client.close()
    await client.whenClosed()
    await closesDelivered(room)
    expect(await closes()).toHaveLength(1)
  })
})

describe('close(conn, code, reason) after pending handlers', () => {
  /** What the /pending room recorded for connection `id`, without the runtime's own events. */
  async function eventsOf(room: DurableObjectStub<PendingObject>, id: number): Promise<string[]> {
    const log = await room.log()
    return log
      .filter((entry) => entry.id === id)
      .map((entry) =>
        entry.event === 'close'
          ? `close ${String(entry.code)}`
          : `${String(entry.event)} ${String(entry.message)}`,
      )
  }

  it('runs only after the async message handler that was running when the client closed has finished', async () => {
    const room = pending.room<PendingObject>(env, 'close-waits')
    const { client, id } = await join('/pending/close-waits')
    expect(await client.ask('hold:slow')).toBe('started slow')
    client.close(1000, 'leaving mid-handler')
    // The server answers the close at once; `close` itself has to wait for the handler.
    expect(await client.whenClosed()).toMatchObject({ code: 1000 })
    expect(await eventsOf(room, id)).toEqual(['start hold:slow'])
    await room.release('slow')
    expect(
      await eventually(
        () => eventsOf(room, id),
        (events) => events.length === 3,
      ),
    ).toEqual(['start hold:slow', 'end hold:slow', 'close 1000'])
  })

  it('runs after every message the client sent before its close frame has been handled', async () => {
    const room = pending.room<PendingObject>(env, 'close-drains')
    const { client, id } = await join('/pending/close-drains')
    client.send('hold:first')
    for (const text of ['two', 'three', 'four', 'five']) client.send(text)
    client.close(1000, 'sent five')
    expect(await client.whenClosed()).toMatchObject({ code: 1000 })
    await room.release('first')
    expect(
      await eventually(
        () => eventsOf(room, id),
        (events) => events.includes('close 1000'),
      ),
    ).toEqual([
      'start hold:first',
      'end hold:first',
      'message two',
      'message three',
      'message four',
      'message five',
      'close 1000',
    ])
  })

  it('handles no message that was still queued when the server closed the connection', async () => {
    const room = pending.room<PendingObject>(env, 'server-closes')
    const { client, id } = await join('/pending/server-closes')
    expect(await client.ask('hold:first')).toBe('started first')
    client.send('close-me')
    client.send('after the close')
    await sleep(20)
    await room.release('first')
    expect(await client.whenClosed()).toMatchObject({ code: 4001, reason: 'server closes' })
    expect(
      await eventually(
        () => eventsOf(room, id),
        (events) => events.includes('close 4001'),
      ),
    ).toEqual(['start hold:first', 'end hold:first', 'close 4001'])
  })

  it('runs once when the server closed and the client answers only after the object was rebuilt', async () => {
    const room = pending.room<PendingObject>(env, 'answer-after-rebuild')
    // This client leaves the server's close frame unanswered until the test answers it.
    const client = await connect('/pending/answer-after-rebuild', {}, { allowHalfOpen: true })
    const id = Number(await client.nextText())
    client.send('close-me')
    expect(await client.whenClosed()).toMatchObject({ code: 4001, reason: 'server closes' })
    await evictDurableObject(room, { webSockets: 'hibernate' })
    client.close(4001, 'answering')
    const log = await eventually(
      () => room.log(),
      (entries) => entries.some((entry) => entry.event === 'webSocketClose'),
    )
    expect(await eventsOf(room, id)).toEqual(['close 4001'])
    // The runtime handed the answer to a rebuilt instance, not to the one that closed.
    expect(log.filter((entry) => entry.event !== 'close').map((entry) => entry.event)).toEqual([
      'constructed',
      'constructed',
      'webSocketClose',
    ])
    await evictDurableObject(room, { webSockets: 'hibernate' })
    expect(await eventsOf(room, id)).toEqual(['close 4001'])
  })
})

describe('error(request, env)', () => {
  it("answers a request to the mount path that is not an upgrade with the handler's Response", async () => {
    const get = await request('/lifecycle')
    expect(get.status).toBe(400)
    expect(get.headers.get('x-answered-by')).toBe('error handler')
    expect(await get.text()).toBe(`not a WebSocket upgrade: GET (${env.FIXTURE_VAR})`)

    const post = await request('/lifecycle', { method: 'POST', body: 'x' })
    expect(post.status).toBe(400)
    expect(await post.text()).toContain('POST')
  })

  it('defaults to 426 with Upgrade: websocket for a GET without an upgrade', async () => {
    const response = await request('/ids')
    expect(response.status).toBe(426)
    expect(response.headers.get('Upgrade')).toBe('websocket')
    expect(response.webSocket).toBeNull()
  })

  it('defaults to 405 with Allow: GET for any other method', async () => {
    // A fetch carrying Upgrade: websocket always arrives as a GET (see runtime.test.ts), so these carry none.
    for (const method of ['POST', 'PUT', 'DELETE', 'HEAD']) {
      const response = await request('/ids', { method })
      expect(response.status).toBe(405)
      expect(response.headers.get('Allow')).toBe('GET')
    }
  })

  it('defaults to 426 naming version 13 for another WebSocket version, and 400 for a malformed key', async () => {
    const version = await upgrade('/ids', { 'Sec-WebSocket-Version': '8' })
    expect(version.status).toBe(426)
    expect(version.headers.get('Sec-WebSocket-Version')).toBe('13')

    const key = await upgrade('/ids', { 'Sec-WebSocket-Key': 'not a key' })
    expect(key.status).toBe(400)
  })
})
