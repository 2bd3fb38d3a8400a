import { describe, expect, it } from 'vitest'
import { evictDurableObject } from 'cloudflare:test'
import { env } from 'cloudflare:workers'
import {
  LOGGED_MESSAGES,
  PER_KEY_MAX,
  QUEUE_LIMIT,
  RATE_LIMIT,
  SEND_WINDOW,
} from './fixture/endpoints/abuse.js'
import { Client, connect, eventually, join, leave, upgrade } from './client.js'
import { closesOf } from './closesOf.js'
import { SessionClient } from './sessionClient.js'

function roomOf<T extends Rpc.DurableObjectBranded | undefined>(
  namespace: DurableObjectNamespace<T>,
  room: string,
): DurableObjectStub<T> {
  return namespace.get(namespace.idFromName(room))
}

describe('maxQueued', () => {
  it(`closes a connection with 1013 once ${String(QUEUE_LIMIT.messages)} messages wait behind a slow handler, and still handles every message it had queued`, async () => {
    const room = 'queue-count'
    const stub = roomOf(env.QUEUED, room)
    const { client: flooder, id } = await join(`/queued/${room}`)
    const { client: bystander } = await join(`/queued/${room}`)

    expect(await flooder.ask('hold:a')).toBe('started a')
    for (let i = 1; i <= QUEUE_LIMIT.messages + 1; i++) flooder.send(`m${String(i)}`)
    expect(await flooder.whenClosed()).toMatchObject({ code: 1013, reason: 'Too many queued messages' })
    expect(await bystander.ask('still here')).toBe('echo:still here')
    await stub.release('a')

    const closes = await closesOf(stub, id)
    expect(closes).toEqual([{ event: 'close', id, code: 1013, reason: 'Too many queued messages' }])
    const handled = (await stub.log())
      .filter((entry) => entry.id === id)
      .map((entry) => entry.message ?? entry.event)
    // Everything queued before the limit was handled, in order, before close; the one over it never was.
    expect(handled).toEqual(['hold:a', 'm1', 'm2', 'm3', 'close'])
    await leave(bystander)
  })

  it(`counts the queued bytes too: past ${String(QUEUE_LIMIT.bytes)} it closes with 1013, and the message that fit is handled`, async () => {
    const room = 'queue-bytes'
    const stub = roomOf(env.QUEUED, room)
    const { client, id } = await join(`/queued/${room}`)

    expect(await client.ask('hold:b')).toBe('started b')
    client.send('x'.repeat(600))
    client.send('y'.repeat(QUEUE_LIMIT.bytes - 599))
    expect(await client.whenClosed()).toMatchObject({ code: 1013 })
    await stub.release('b')

    await closesOf(stub, id)
    const handled = (await stub.log())
      .filter((entry) => entry.id === id)
      .map((entry) => entry.message ?? entry.event)
    expect(handled).toEqual(['hold:b', '600 characters', 'close'])
  })
})

describe('handlerTimeout (the fixture sets it to a short time; nothing measures how long)', () => {
  it('counts a handler still pending after it as failed: 1011, the queue goes on and close runs exactly once', async () => {
    const room = 'hung'
    const stub = roomOf(env.HUNG, room)
    const { client, id } = await join(`/hung/${room}`)
    const { client: bystander } = await join(`/hung/${room}`)

    client.send('hang')
    client.send('behind')
    expect(await client.whenClosed()).toMatchObject({ code: 1011, reason: 'Internal Error' })
    expect(await bystander.ask('hello')).toBe('echo:hello')

    const closes = await closesOf(stub, id)
    expect(closes).toEqual([{ event: 'close', id, code: 1011, reason: 'Internal Error' }])
    // As after any failed handler, what waited behind it is dropped with the connection.
    const messages = (await stub.log()).filter((entry) => entry.id === id && entry.event === 'message')
    expect(messages.map((entry) => entry.message)).toEqual(['hang'])
    await leave(bystander)
  })
})

describe('rateLimit', () => {
  it(`closes a client that sends more than ${String(RATE_LIMIT.messages)} messages at once with 1008, after handling those within the limit; an echo client beside it is not touched`, async () => {
    const room = 'flood'
    const stub = roomOf(env.RATED, room)
    const { client: flooder, id } = await join(`/rated/${room}`)
    const { client: echo } = await join(`/rated/${room}`)

    for (let i = 1; i <= RATE_LIMIT.messages + 2; i++) flooder.send(`f${String(i)}`)
    const replies: string[] = []
    for (let i = 1; i <= RATE_LIMIT.messages; i++) replies.push(await flooder.nextText())
    expect(replies).toEqual(['echo:f1', 'echo:f2', 'echo:f3'])
    expect(await flooder.whenClosed()).toMatchObject({ code: 1008, reason: 'Rate limit exceeded' })
    expect(await echo.ask('e1')).toBe('echo:e1')

    expect(await closesOf(stub, id)).toEqual([
      { event: 'close', id, code: 1008, reason: 'Rate limit exceeded' },
    ])
    const messages = (await stub.log()).filter((entry) => entry.id === id && entry.event === 'message')
    expect(messages.map((entry) => entry.message)).toEqual(['f1', 'f2', 'f3'])
    await leave(echo)
  })
})

describe('maxConnectionsPerKey', () => {
  it('accepts one of two session upgrades that arrive together for the last place of a key, and refuses the other', async () => {
    const path = '/per-key/together?user=dave'
    const first = await connect(path)
    await first.nextText()
    const offer = { 'Sec-WebSocket-Protocol': 'dws.session.v1' }
    const answers = await Promise.all([upgrade(path, offer), upgrade(path, offer)])
    // A session client is turned away after the handshake, with a close its page can read.
    expect(answers.map((answer) => answer.status)).toEqual([101, 101])
    const clients = answers.map((answer) => {
      if (answer.webSocket === null) throw new Error('a 101 without a socket')
      return new Client(answer.webSocket)
    })
    const firsts = await Promise.all(
      clients.map((client) =>
        client.next().then(
          () => 'welcome',
          (error: unknown) => String(error),
        ),
      ),
    )
    expect(firsts.filter((first) => first === 'welcome')).toHaveLength(1)
    const refused = clients[firsts.indexOf('welcome') === 0 ? 1 : 0]
    expect(await refused?.whenClosed()).toMatchObject({ code: 1013, reason: 'retry after 30000 ms' })
    clients[firsts.indexOf('welcome')]?.close(1000)
    await leave(first)
  })

  it('lets a session resume over its own socket that still looks open, though the key is at its limit', async () => {
    const path = '/per-key/resumes?user=carol'
    const session = await SessionClient.open(path)
    expect(await session.nextPayload()).toBe(String(session.id))
    const plain = await connect(path)
    await plain.nextText()
    expect((await upgrade(path)).status).toBe(429)

    // The old socket is still open: the resume takes it over (3901) instead of being refused.
    const back = await session.resume(path)
    expect(back).toMatchObject({ id: session.id, resumed: true })
    expect(await session.whenClosed()).toMatchObject({ code: 3901 })
    expect(await back.nextPayload()).toBe(String(session.id))
    // Still two sockets for carol: a new one is refused as before.
    expect((await upgrade(path)).status).toBe(429)
    back.close(1000)
    await back.whenClosed()
    await leave(plain)
  })

  it(`answers 429 with Retry-After to a key that already holds ${String(PER_KEY_MAX)} sockets, before acceptance, and accepts it again once one closed`, async () => {
    const path = '/per-key/keys?user=alice'
    const first = await connect(path)
    const second = await connect(path)
    expect(await first.nextText()).toBe('1')
    expect(await second.nextText()).toBe('2')

    const refused = await upgrade(path)
    expect(refused.status).toBe(429)
    expect(refused.webSocket).toBeNull()
    expect(refused.headers.get('Retry-After')).toBe('30')
    const bob = await connect('/per-key/keys?user=bob')
    // No id was spent on the refusal.
    expect(await bob.nextText()).toBe('3')

    await leave(first)
    const stub = roomOf(env.PER_KEY, 'keys')
    await eventually(
      () => stub.connectionIds(),
      (ids) => ids.length === 2,
    )
    const again = await connect(path)
    expect(await again.nextText()).toBe('4')
    await leave(second, again, bob)
  })
})

/** A session client by hand (docs/protocol.md), which acknowledges only when the test says so. */
async function sessionClient(room: string): Promise<{ client: Client; head: number }> {
  const client = await connect(`/flow/${room}`, { 'Sec-WebSocket-Protocol': 'dws.session.v1' })
  const welcome = await client.nextJson<{ t: string; last: number }>()
  expect(welcome.t).toBe('welcome')
  return { client, head: welcome.last }
}

/** The next data frame's `g` and payload; the server's own acks in between are skipped. */
async function nextData(client: Client): Promise<[number, string]> {
  for (;;) {
    const frame = await client.nextText()
    if (frame.startsWith('{')) continue
    const space = frame.indexOf(' ')
    expect(space).toBeGreaterThan(0)
    return [Number(frame.slice(0, space)), frame.slice(space + 1)]
  }
}

/**
 * Everything a session socket got before the server's answer to `{"t":"ack"}`
 * (sent after data frame `c`), which the server writes after anything it sent before.
 */
async function framesBeforeAck(client: Client, c: number): Promise<string[]> {
  client.send(`${String(c)} marker`)
  client.sendJson({ t: 'ack' })
  const frames: string[] = []
  for (;;) {
    const frame = await client.nextText()
    if (frame.startsWith('{')) {
      expect(JSON.parse(frame)).toEqual({ t: 'ack', handled: c })
      return frames
    }
    frames.push(frame)
  }
}

describe('sendWindow, for session clients', () => {
  it('asks the client, in the welcome, to acknowledge within a quarter of the window', async () => {
    const client = await connect('/flow/ack-advice', { 'Sec-WebSocket-Protocol': 'dws.session.v1' })
    // SEND_WINDOW frames, and the default 1 MiB.
    expect(await client.nextJson()).toMatchObject({
      t: 'welcome',
      ackEvery: Math.floor(SEND_WINDOW / 4),
      ackBytes: 262_144,
    })
    await leave(client)
  })

  it(`holds live sends to a client with ${String(SEND_WINDOW)} frames unacknowledged, and lets it catch up from the log, in order and once each, as it acknowledges`, async () => {
    const room = 'window'
    const stub = roomOf(env.FLOW, room)
    const { client: stalled, head } = await sessionClient(room)

    await stub.shout(1, 10)
    const g = (i: number): string => `${String(head + i)} m${String(i)}`
    expect(await framesBeforeAck(stalled, 1)).toEqual([g(1), g(2), g(3), g(4)])

    const rest: string[] = []
    let last = head + SEND_WINDOW
    while (rest.length < 6) {
      stalled.sendJson({ t: 'ack', last })
      const batch = []
      for (let i = 0; i < SEND_WINDOW && rest.length + batch.length < 6; i++)
        batch.push(await nextData(stalled))
      rest.push(...batch.map(([seq, payload]) => `${String(seq)} ${payload}`))
      last = batch.at(-1)?.[0] ?? last
    }
    expect(rest).toEqual([g(5), g(6), g(7), g(8), g(9), g(10)])

    // Caught up: the next message goes out live.
    stalled.sendJson({ t: 'ack', last })
    stalled.send('2 sync')
    expect(await nextData(stalled)).toEqual([head + 11, 'synced'])
    await leave(stalled)
  })

  it('keeps holding a client across hibernation, and its catch-up goes on from where it was', async () => {
    const room = 'window-nap'
    const stub = roomOf(env.FLOW, room)
    const { client: stalled, head } = await sessionClient(room)

    await stub.shout(1, 6)
    const g = (i: number): string => `${String(head + i)} m${String(i)}`
    expect(await framesBeforeAck(stalled, 1)).toEqual([g(1), g(2), g(3), g(4)])
    await evictDurableObject(stub, { webSockets: 'hibernate' })
    await stub.shout(7, 1)

    stalled.sendJson({ t: 'ack', last: head + SEND_WINDOW })
    const caughtUp: string[] = []
    for (let i = 0; i < 3; i++) caughtUp.push((await nextData(stalled)).join(' '))
    expect(caughtUp).toEqual([g(5), g(6), g(7)])
    await leave(stalled)
  })

  it('closes a client that stopped acknowledging with 3903 once the log no longer holds what it missed; a client that acknowledges gets every message, and close runs once', async () => {
    const room = 'slow-consumer'
    const stub = roomOf(env.FLOW, room)
    const { client: stalled } = await sessionClient(room)
    const { client: lively } = await sessionClient(room)
    const stalledId = (await stub.connectionIds())[0] ?? 0

    const received: number[] = []
    let c = 0
    let shouted = 0
    // Rounds of one window each, acknowledged by the lively client, until the log has gone past the stalled one.
    while (shouted < LOGGED_MESSAGES * 2) {
      await stub.shout(shouted + 1, SEND_WINDOW - 1)
      shouted += SEND_WINDOW - 1
      for (let i = 0; i < SEND_WINDOW - 1; i++) received.push((await nextData(lively))[0])
      lively.sendJson({ t: 'ack', last: received.at(-1) })
      lively.send(`${String(++c)} sync`)
      const [seq, payload] = await nextData(lively)
      expect(payload).toBe('synced')
      lively.sendJson({ t: 'ack', last: seq })
    }
    expect(received).toHaveLength(shouted)
    expect(received).toEqual([...received].sort((a, b) => a - b))

    expect(await stalled.whenClosed()).toMatchObject({ code: 3903, reason: 'Slow consumer' })
    expect(await closesOf(stub, stalledId)).toEqual([
      { event: 'close', id: stalledId, code: 3903, reason: 'Slow consumer' },
    ])
    await leave(lively)
  })
})
