import { env } from 'cloudflare:workers'
import { evictDurableObject } from 'cloudflare:test'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { DEFAULT_MAX_MESSAGE_BYTES, DurableWebSocketError, websocket } from '../../src/index.js'
import { RUNTIME_MAX_MESSAGE_BYTES } from '../../src/options.js'
import {
  MAX_CONNECTIONS,
  SMALL_MESSAGE_LIMIT,
  capped,
  sized,
  sizedByDefault,
} from './fixture/endpoints/limits.js'
import type { FixtureObject } from './fixture/record.js'
import { Client, eventually, join, leave, upgrade } from './client.js'
import { closesOf } from './closesOf.js'
import { SESSION_PROTOCOL, SessionClient } from './sessionClient.js'
import { thrownBy } from './thrownBy.js'

const utf8 = new TextEncoder()

afterEach(() => {
  vi.restoreAllMocks()
})

/** Text of exactly `bytes` bytes of UTF-8, made of `unit` (1 to 4 bytes) and ASCII padding. */
function textOf(bytes: number, unit: string): string {
  const unitBytes = utf8.encode(unit).byteLength
  const text = unit.repeat(Math.floor(bytes / unitBytes)) + 'a'.repeat(bytes % unitBytes)
  expect(utf8.encode(text).byteLength).toBe(bytes)
  return text
}

describe('maxConnections', () => {
  it('refuses the upgrade past the limit with 503, Retry-After and no socket, and the earlier connections go on', async () => {
    const room = capped.room<FixtureObject>(env, 'cap-full')
    const joined = [await join('/capped/cap-full'), await join('/capped/cap-full')]
    expect(await room.count()).toBe(MAX_CONNECTIONS)
    const refused = await upgrade('/capped/cap-full')
    expect(refused.status).toBe(503)
    expect(refused.webSocket).toBeNull()
    expect(refused.headers.get('Retry-After')).toMatch(/^[1-9]\d*$/)
    expect(await refused.text()).toMatch(/room is full/)
    for (const { client } of joined) expect(await client.ask('still here')).toBe('text 10')
    expect(await room.ids()).toEqual(joined.map(({ id }) => id))
    await leave(...joined.map(({ client }) => client))
  })

  it('counts per room, and takes a connection again once one has left, with the next id', async () => {
    const room = capped.room<FixtureObject>(env, 'cap-again')
    const [first, second] = [await join('/capped/cap-again'), await join('/capped/cap-again')]
    const elsewhere = await join('/capped/cap-elsewhere')
    expect(elsewhere.id).toBe(1)
    expect((await upgrade('/capped/cap-again')).status).toBe(503)
    await leave(first.client)
    await eventually(
      () => room.count(),
      (count) => count < MAX_CONNECTIONS,
    )
    const third = await join('/capped/cap-again')
    // The refused upgrade spent no id.
    expect(third.id).toBe(second.id + 1)
    await leave(second.client, third.client, elsewhere.client)
  })

  it('lets a session resume over its own socket that still looks open in a full room, and still refuses a newcomer', async () => {
    const room = capped.room<FixtureObject>(env, 'cap-resume')
    const session = await SessionClient.open('/capped/cap-resume')
    expect(await session.nextPayload()).toBe(String(session.id))
    const other = await join('/capped/cap-resume')
    expect(await room.count()).toBe(MAX_CONNECTIONS)
    const back = await session.resume('/capped/cap-resume')
    expect(back).toMatchObject({ id: session.id, resumed: true })
    expect(await session.whenClosed()).toMatchObject({ code: 3901 })
    expect(await room.count()).toBe(MAX_CONNECTIONS)
    expect((await upgrade('/capped/cap-resume')).status).toBe(503)
    // A session newcomer gets the same refusal as a close it can read, with when to come back.
    const shed = await upgrade('/capped/cap-resume', { 'Sec-WebSocket-Protocol': SESSION_PROTOCOL })
    expect(shed.status).toBe(101)
    if (shed.webSocket === null) throw new Error('a 101 without a socket')
    expect(await new Client(shed.webSocket).whenClosed()).toMatchObject({
      code: 1013,
      reason: 'retry after 5000 ms',
    })
    expect(await room.count()).toBe(MAX_CONNECTIONS)
    back.close(1000)
    await back.whenClosed()
    await leave(other.client)
  })
})

describe('maxMessageBytes', () => {
  const room = sized.room<FixtureObject>(env, 'size-small')

  it('handles a message of exactly the limit, counted in UTF-8 bytes for text', async () => {
    const { client } = await join('/sized/size-small')
    for (const unit of ['a', '\u00e9', '\u20ac', '\u{1F600}']) {
      const text = textOf(SMALL_MESSAGE_LIMIT, unit)
      expect(await client.ask(text)).toBe(`text ${String(text.length)}`)
    }
    client.send(new Uint8Array(SMALL_MESSAGE_LIMIT))
    expect(await client.nextText()).toBe(`binary ${String(SMALL_MESSAGE_LIMIT)}`)
    await leave(client)
  })

  it('closes the connection with 1009 "Message too big" for one byte over, and only that connection', async () => {
    const bystander = await join('/sized/size-small')
    const warned = vi.spyOn(console, 'warn')
    const overs: (string | Uint8Array)[] = [
      textOf(SMALL_MESSAGE_LIMIT + 1, 'a'),
      textOf(SMALL_MESSAGE_LIMIT + 1, '\u00e9'),
      textOf(SMALL_MESSAGE_LIMIT + 1, '\u20ac'),
      textOf(SMALL_MESSAGE_LIMIT + 1, '\u{1F600}'),
      // Fewer UTF-16 units than the limit, more bytes.
      '\u20ac'.repeat(6),
      new Uint8Array(SMALL_MESSAGE_LIMIT + 1),
    ]
    for (const over of overs) {
      const { client, id } = await join('/sized/size-small')
      client.send(over)
      expect(await client.whenClosed()).toMatchObject({ code: 1009, reason: 'Message too big' })
      expect(await closesOf(room, id)).toEqual([
        { event: 'close', id, code: 1009, reason: 'Message too big' },
      ])
      expect(warned.mock.calls.map(([line]) => String(line))).toContainEqual(
        expect.stringContaining(
          `connection ${String(id)} in room size-small sent a message over ${String(SMALL_MESSAGE_LIMIT)} bytes`,
        ),
      )
    }
    expect(await bystander.client.ask('unaffected')).toBe('text 10')
    await leave(bystander.client)
  })

  it(`defaults to ${String(DEFAULT_MAX_MESSAGE_BYTES)} bytes (1 MiB)`, async () => {
    expect(DEFAULT_MAX_MESSAGE_BYTES).toBe(1024 * 1024)
    const roomByDefault = sizedByDefault.room<FixtureObject>(env, 'size-default')
    const { client } = await join('/sized-default/size-default')
    client.send(new Uint8Array(DEFAULT_MAX_MESSAGE_BYTES))
    expect(await client.nextText()).toBe(`binary ${String(DEFAULT_MAX_MESSAGE_BYTES)}`)
    expect(await client.ask(textOf(DEFAULT_MAX_MESSAGE_BYTES, '\u00e9'))).toBe(
      `text ${String(DEFAULT_MAX_MESSAGE_BYTES / 2)}`,
    )

    for (const over of [
      textOf(DEFAULT_MAX_MESSAGE_BYTES + 1, '\u00e9'),
      new Uint8Array(DEFAULT_MAX_MESSAGE_BYTES + 1),
    ]) {
      const joined = await join('/sized-default/size-default')
      joined.client.send(over)
      expect(await joined.client.whenClosed()).toMatchObject({ code: 1009, reason: 'Message too big' })
      expect(await closesOf(roomByDefault, joined.id)).toHaveLength(1)
    }
    expect(await client.ask('unaffected')).toBe('text 10')
    await leave(client)
  })
})

describe('after a forced hibernation of the object', () => {
  it('still refuses the upgrade past maxConnections, and the earlier connections go on', async () => {
    const room = capped.room<FixtureObject>(env, 'cap-nap')
    const joined = [await join('/capped/cap-nap'), await join('/capped/cap-nap')]
    await evictDurableObject(room, { webSockets: 'hibernate' })
    expect((await upgrade('/capped/cap-nap')).status).toBe(503)
    for (const { client } of joined) expect(await client.ask('after nap')).toBe('text 9')
    expect(await room.ids()).toEqual(joined.map(({ id }) => id))
    await leave(...joined.map(({ client }) => client))
  })

  it('still handles a message at maxMessageBytes and closes one byte over with 1009', async () => {
    const room = sized.room<FixtureObject>(env, 'size-nap')
    const { client, id } = await join('/sized/size-nap')
    await evictDurableObject(room, { webSockets: 'hibernate' })
    const atLimit = textOf(SMALL_MESSAGE_LIMIT, '\u00e9')
    expect(await client.ask(atLimit)).toBe(`text ${String(atLimit.length)}`)
    await evictDurableObject(room, { webSockets: 'hibernate' })
    client.send(textOf(SMALL_MESSAGE_LIMIT + 1, '\u00e9'))
    expect(await client.whenClosed()).toMatchObject({ code: 1009, reason: 'Message too big' })
    expect(await closesOf(room, id)).toHaveLength(1)
  })
})

describe('websocket(options): limit options', () => {
  const bad: [option: string, values: unknown[]][] = [
    ['maxConnections', [0, -1, 1.5, '2', Number.NaN, Number.POSITIVE_INFINITY]],
    ['maxMessageBytes', [0, -1, 1.5, '1024', RUNTIME_MAX_MESSAGE_BYTES + 1]],
    ['idleTimeout', [0, -200, 0.5, '1000']],
    ['heartbeat', [{ request: '', response: 'pong' }, { request: 'ping' }, 'ping', true, null]],
    ['room', ['lobby', 42]],
    ['tags', [['red'], 'red']],
  ]

  it('throws ERR_DWS_INVALID_OPTIONS, naming the option, for a value that makes no sense', () => {
    for (const [option, values] of bad) {
      for (const value of values) {
        const error = thrownBy(() => websocket({ binding: 'LIMITS_TEST', [option]: value }))
        expect(error).toBeInstanceOf(DurableWebSocketError)
        expect(error).toMatchObject({ code: 'ERR_DWS_INVALID_OPTIONS' })
        expect((error as Error).message).toContain(`options.${option}`)
      }
    }
  })

  it('accepts the values at the edges', () => {
    const smallest = websocket({
      binding: 'LIMITS_TEST',
      maxConnections: 1,
      maxMessageBytes: 1,
      idleTimeout: 1,
    })
    expect(smallest.limits).toMatchObject({ maxConnections: 1, maxMessageBytes: 1, idleTimeout: 1 })
    const largest = websocket({ binding: 'LIMITS_TEST', maxMessageBytes: RUNTIME_MAX_MESSAGE_BYTES })
    expect(largest.limits.maxMessageBytes).toBe(32 * 1024 * 1024)
    const quiet = websocket({ binding: 'LIMITS_TEST', heartbeat: { request: 'hb', response: '' } })
    expect(quiet.limits.heartbeat).toEqual({ request: 'hb', response: '' })
  })
})
