import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { connect, type Client, type ClientEventName, type ClientOptions } from '../../src/client/index.js'
import { fakeWebSockets, memoryStore, type FakeSocket, type FakeWebSockets } from './fakeWebSocket.js'

const SESSION = 'dws.session.v1'
const BATCHES = 'dws.session.batches'
const URL = 'ws://example.test/ws'
const EVENTS: readonly ClientEventName[] = [
  'open',
  'reset',
  'message',
  'binary',
  'close',
  'reconnecting',
  'error',
]

interface Started {
  fake: FakeWebSockets
  client: Client
  /** Every event the client emitted, in order, as [name, value]. */
  events: [ClientEventName, unknown][]
  of: (name: ClientEventName) => unknown[]
}

const clients: Client[] = []

function start(options: ClientOptions = {}): Started {
  const fake = fakeWebSockets()
  const client = connect(URL, {
    WebSocket: fake.WebSocket,
    reconnect: { initialDelay: 10, maxDelay: 10 },
    ...options,
  })
  clients.push(client)
  const events: [ClientEventName, unknown][] = []
  for (const name of EVENTS) client.on(name, (value: unknown) => events.push([name, value]))
  return {
    fake,
    client,
    events,
    of: (name) => events.filter(([event]) => event === name).map(([, value]) => value),
  }
}

function welcome(fields: Record<string, unknown> = {}): string {
  return JSON.stringify({
    t: 'welcome',
    v: 1,
    id: 7,
    token: 'token-1-0123456789abcdef',
    resumed: false,
    handled: 0,
    last: 0,
    window: 120_000,
    ...fields,
  })
}

/** Opens the socket as a session and welcomes it; returns the socket. */
function establish(started: Started, fields: Record<string, unknown> = {}): FakeSocket {
  const socket = started.fake.last()
  socket.accept(SESSION)
  socket.receive(welcome(fields))
  return socket
}

/** The next attempt, after the backoff delay. */
async function nextAttempt(started: Started): Promise<FakeSocket> {
  const before = started.fake.made.length
  await vi.advanceTimersByTimeAsync(20)
  expect(started.fake.made.length).toBe(before + 1)
  return started.fake.last()
}

beforeEach(() => {
  vi.useFakeTimers()
})

afterEach(() => {
  for (const client of clients.splice(0)) client.close()
  vi.useRealTimers()
})

describe('connect(url) negotiates a session', () => {
  it('offers dws.session.v1 first, then that it reads batches, before the app’s protocols', () => {
    const { fake } = start({ protocols: ['dws.auth', 'secret'] })
    expect(fake.last().offered).toEqual([SESSION, BATCHES, 'dws.auth', 'secret'])
  })

  it('offers no resume while it holds no session, and sends nothing until the welcome', () => {
    const started = start()
    started.client.send({ early: 1 })
    const socket = started.fake.last()
    expect(socket.offered).toEqual([SESSION, BATCHES])
    socket.accept(SESSION)
    expect(socket.texts()).toEqual([])
    expect(started.client.state).toBe('connecting')
    expect(started.of('open')).toEqual([])
  })

  it('opens on the welcome with resumed: false, takes its id, and sends what was queued numbered from 1', () => {
    const started = start()
    started.client.send({ early: 1 })
    started.client.send('two')
    const socket = establish(started, { id: 42 })
    expect(started.of('open')).toEqual([{ reconnected: false, resumed: false }])
    expect(started.client.id).toBe(42)
    // The 101 named the session; client.protocol is the app's pick, and the app offered none.
    expect(started.client.protocol).toBe('')
    expect(socket.texts()).toEqual(['1 {"early":1}', '2 "two"'])
    started.client.send([3])
    expect(socket.texts().at(-1)).toBe('3 [3]')
  })

  it("refuses a send over the welcome's maxMessageBytes with ERR_DWS_MESSAGE_TOO_BIG, sends nothing, and stays open", () => {
    const started = start()
    const socket = establish(started, { maxMessageBytes: 16 })
    // 16 bytes of JSON text is the limit; 'é' is two bytes in UTF-8, so 8 of them in quotes are 18.
    expect(() => started.client.send('é'.repeat(8))).toThrow(
      expect.objectContaining({ name: 'ClientError', code: 'ERR_DWS_MESSAGE_TOO_BIG' }) as Error,
    )
    expect(started.client.send('fits')).toBe(true)
    expect(socket.texts()).toEqual(['1 "fits"'])
    expect(started.client.state).toBe('open')
    expect(started.of('error')).toEqual([])
  })

  it("reports the subprotocol the welcome names as the server's pick as client.protocol", () => {
    const started = start()
    establish(started, { protocol: 'dws.auth' })
    expect(started.client.protocol).toBe('dws.auth')
  })

  it('numbers binary frames with an ASCII prefix, and strips it from those it receives', () => {
    const started = start()
    const socket = establish(started)
    started.client.send(new Uint8Array([104, 105]))
    expect(socket.texts().at(-1)).toBe('<bytes:1 hi>')
    socket.receive(new TextEncoder().encode('5 yo').buffer)
    expect(started.of('binary').map((data) => new TextDecoder().decode(data as ArrayBuffer))).toEqual(['yo'])
  })

  it('hands the payload of each data frame to message listeners, decoded', () => {
    const started = start()
    const socket = establish(started)
    socket.receive('3 {"a":1}')
    socket.receive('10 "b"')
    expect(started.of('message')).toEqual([{ a: 1 }, 'b'])
  })

  it('unpacks a batch into its frames, each handed on and counted as if it came alone', () => {
    const started = start()
    const socket = establish(started, { ackEvery: 3 })
    socket.receive(JSON.stringify(['3 {"a":1}', '10 "b"', '11 "c"']))
    socket.receive('12 "d"')
    expect(started.of('message')).toEqual([{ a: 1 }, 'b', 'c', 'd'])
    // The third frame of the batch made the ack due: it names the batch's last number.
    expect(socket.texts()).toEqual(['{"t":"ack","last":11}'])
    expect(started.of('error')).toEqual([])
  })

  it('hands a batch on no further than a listener that closes the client', () => {
    const started = start()
    const socket = establish(started)
    started.client.on('message', (message) => {
      if (message === 'stop') started.client.close()
    })
    socket.receive(JSON.stringify(['1 "go"', '2 "stop"', '3 "after"']))
    expect(started.of('message')).toEqual(['go', 'stop'])
  })

  it('skips a control frame of a type it does not know', () => {
    const started = start()
    const socket = establish(started)
    socket.receive('{"t":"later-feature","x":1}')
    socket.receive('1 "still here"')
    expect(started.of('error')).toEqual([])
    expect(started.of('message')).toEqual(['still here'])
  })
})

describe('acknowledgements', () => {
  it('acknowledges after 32 data frames, not before, when the welcome does not say how often', () => {
    const started = start()
    const socket = establish(started)
    for (let g = 1; g <= 31; g += 1) socket.receive(`${String(g * 2)} ${String(g)}`)
    expect(socket.texts().filter((frame) => frame.includes('"ack"'))).toEqual([])
    socket.receive('64 32')
    expect(socket.texts().filter((frame) => frame.includes('"ack"'))).toEqual(['{"t":"ack","last":64}'])
  })

  it('acknowledges after the welcome’s ackEvery frames', () => {
    const started = start()
    const socket = establish(started, { ackEvery: 3 })
    for (let g = 1; g <= 7; g += 1) socket.receive(`${String(g)} ${String(g)}`)
    expect(socket.texts().filter((frame) => frame.includes('"ack"'))).toEqual([
      '{"t":"ack","last":3}',
      '{"t":"ack","last":6}',
    ])
  })

  it('acknowledges once the welcome’s ackBytes arrived, however few frames that took', () => {
    const started = start()
    const socket = establish(started, { ackEvery: 100, ackBytes: 10 })
    socket.receive('1 "1234"')
    expect(socket.texts().filter((frame) => frame.includes('"ack"'))).toEqual([])
    socket.receive('2 "5678"')
    socket.receive(new Uint8Array([0x33, 0x20, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]).buffer)
    expect(socket.texts().filter((frame) => frame.includes('"ack"'))).toEqual([
      '{"t":"ack","last":2}',
      '{"t":"ack","last":3}',
    ])
  })

  it('acknowledges what arrived after a quiet second, once', async () => {
    const started = start()
    const socket = establish(started)
    socket.receive('5 "x"')
    await vi.advanceTimersByTimeAsync(999)
    expect(socket.texts().filter((frame) => frame.includes('"ack"'))).toEqual([])
    await vi.advanceTimersByTimeAsync(5_000)
    expect(socket.texts().filter((frame) => frame.includes('"ack"'))).toEqual(['{"t":"ack","last":5}'])
  })

  it('asks for the server’s ack every quiet second while something sent is unacknowledged, and stops once it came', async () => {
    const started = start()
    const socket = establish(started)
    started.client.send('a')
    started.client.send('b')
    expect(started.client.queued).toBe(2)
    await vi.advanceTimersByTimeAsync(2_000)
    expect(socket.texts().filter((frame) => frame.includes('"ack"'))).toEqual([
      '{"t":"ack","last":0}',
      '{"t":"ack","last":0}',
    ])
    socket.receive('{"t":"ack","handled":2}')
    expect(started.client.queued).toBe(0)
    await vi.advanceTimersByTimeAsync(5_000)
    expect(socket.texts().filter((frame) => frame.includes('"ack"'))).toHaveLength(2)
  })

  it('counts unacknowledged messages against maxQueued, and frees room when an ack covers them', () => {
    const started = start({ maxQueued: 2 })
    const socket = establish(started)
    expect([started.client.send(1), started.client.send(2), started.client.send(3)]).toEqual([
      true,
      true,
      false,
    ])
    socket.receive('{"t":"ack","handled":1}')
    expect(started.client.send(4)).toBe(true)
    expect(socket.texts()).toEqual(['1 1', '2 2', '3 4'])
  })
})

describe('a resume after a cut', () => {
  it('hellos with the rotated token and its position, resends what the server had not handled with the same numbers, then what waited', async () => {
    const started = start()
    const first = establish(started, { id: 9, token: 'token-1-0123456789abcdef' })
    for (const n of [1, 2, 3]) started.client.send(n)
    first.receive('4 "seen"')
    first.drop(1006)
    expect(started.of('close')).toEqual([{ code: 1006, reason: '', wasClean: false, willReconnect: true }])
    started.client.send('while away')
    const second = await nextAttempt(started)
    expect(second.offered).toEqual([SESSION, 'dws.resume.4.token-1-0123456789abcdef', BATCHES])
    second.accept(SESSION)
    second.receive(welcome({ id: 9, token: 'token-2-0123456789abcdef', resumed: true, handled: 1, last: 4 }))
    expect(second.texts()).toEqual(['2 2', '3 3', '4 "while away"'])
    expect(started.of('open').at(-1)).toEqual({ reconnected: true, resumed: true })
    expect(started.of('reset')).toEqual([])
    expect(started.client.id).toBe(9)
    second.drop(1006)
    const third = await nextAttempt(started)
    expect(third.offered).toEqual([SESSION, 'dws.resume.4.token-2-0123456789abcdef', BATCHES])
  })

  it('acknowledges a resumed welcome at once when it has nothing to resend, so the server retires the token it used', async () => {
    const started = start()
    const first = establish(started, { id: 9, token: 'token-1-0123456789abcdef' })
    first.receive('4 "seen"')
    first.drop(1006)
    const second = await nextAttempt(started)
    second.accept(SESSION)
    second.receive(welcome({ id: 9, token: 'token-2-0123456789abcdef', resumed: true, handled: 0, last: 4 }))
    expect(second.texts()).toEqual(['{"t":"ack","last":4}'])
  })

  it('sends what an open listener sends after the resent messages and before what waited', async () => {
    const started = start()
    const first = establish(started)
    started.client.send('unacked')
    first.drop(1006)
    started.client.send('waited')
    started.client.on('open', () => started.client.send('from open'))
    const second = await nextAttempt(started)
    second.accept(SESSION)
    second.receive(welcome({ resumed: true, handled: 0, token: 'token-2-0123456789abcdef' }))
    expect(second.texts()).toEqual(['1 "unacked"', '2 "from open"', '3 "waited"'])
  })

  it('refuses a data frame whose position is not above the last one, as a protocol error', () => {
    const started = start()
    const socket = establish(started)
    socket.receive('5 "a"')
    socket.receive('5 "a"')
    expect(started.of('message')).toEqual(['a'])
    expect(started.of('error').map((error) => (error as { code: string }).code)).toEqual([
      'ERR_DWS_PROTOCOL_ERROR',
    ])
    expect(socket.closedWith).toEqual({ code: 1000, reason: 'Protocol error' })
    expect(started.client.state).toBe('closed')
  })
})

describe('a server that is down', () => {
  it('costs a close and a reconnecting per failed attempt, no error, and an error only from the attempt after which the client gives up', async () => {
    const started = start({ reconnect: { initialDelay: 10, maxDelay: 10, maxAttempts: 3 } })
    establish(started).drop(1006)
    ;(await nextAttempt(started)).refuse()
    ;(await nextAttempt(started)).refuse()
    expect(started.of('error')).toEqual([])
    expect(started.of('reconnecting')).toHaveLength(3)
    ;(await nextAttempt(started)).refuse()
    expect(started.of('error')).toEqual([expect.objectContaining({ code: 'ERR_DWS_SOCKET_ERROR' })])
    expect(started.of('close').at(-1)).toMatchObject({ code: 1006, willReconnect: false })
  })
})

describe('a reset', () => {
  it('hands every unacknowledged message to reset before open, and starts numbering and position over', async () => {
    const started = start()
    const first = establish(started, { id: 3 })
    started.client.send('sent, never acked')
    first.receive('{"t":"ack","handled":0}')
    first.receive('40 "old"')
    first.drop(1006)
    started.client.send(new Uint8Array([1, 2]))
    const second = await nextAttempt(started)
    second.accept(SESSION)
    expect(second.offered).toEqual([SESSION, 'dws.resume.40.token-1-0123456789abcdef', BATCHES])
    second.receive(welcome({ id: 11, token: 'token-new-0123456789abcd', resumed: false, last: 900 }))
    const resets = started.of('reset') as { unacknowledged: (string | ArrayBuffer)[] }[]
    expect(resets).toHaveLength(1)
    const [text, bytes] = resets[0]?.unacknowledged ?? []
    expect(text).toBe('"sent, never acked"')
    expect([...new Uint8Array(bytes as ArrayBuffer)]).toEqual([1, 2])
    const names = started.events.map(([name]) => name)
    expect(names.lastIndexOf('reset')).toBeLessThan(names.lastIndexOf('open'))
    expect(started.of('open').at(-1)).toEqual({ reconnected: true, resumed: false })
    expect(started.client.id).toBe(11)
    expect(started.client.queued).toBe(0)
    started.client.send('fresh')
    expect(second.texts().at(-1)).toBe('1 "fresh"')
    second.receive('901 "new log"')
    expect(started.of('message').at(-1)).toBe('new log')
    second.drop(1006)
    expect((await nextAttempt(started)).offered).toEqual([
      SESSION,
      'dws.resume.901.token-new-0123456789abcd',
      BATCHES,
    ])
  })

  it('does not reset a client that asked for no session', () => {
    const started = start()
    establish(started)
    expect(started.of('reset')).toEqual([])
  })
})

describe('start(options) with a store', () => {
  it("moves its position to a server ack's last and stores it, so a resume starts past what the log dropped", async () => {
    const store = memoryStore()
    const page = start({ store })
    const socket = establish(page, { id: 5, token: 'token-1-0123456789abcdef', last: 3 })
    socket.receive('{"t":"ack","handled":0,"last":900}')
    // An older position never moves it back.
    socket.receive('{"t":"ack","handled":0,"last":40}')
    socket.drop(1006)
    await vi.advanceTimersByTimeAsync(0)
    const reloaded = start({ store })
    expect(reloaded.fake.last().offered).toEqual([
      SESSION,
      'dws.resume.900.token-1-0123456789abcdef',
      BATCHES,
    ])
  })

  it('keeps the token, the position and the unacknowledged and waiting messages, so a reload resumes', async () => {
    const store = memoryStore()
    const page = start({ store })
    const socket = establish(page, { id: 5, token: 'token-1-0123456789abcdef' })
    page.client.send('one')
    page.client.send(new Uint8Array([255, 0, 7]))
    socket.receive('12 "hi"')
    socket.drop(1006)
    page.client.send('queued')
    await vi.advanceTimersByTimeAsync(0)
    // The page goes away without a word; a new one starts from the store.
    const reloaded = start({ store })
    const next = reloaded.fake.last()
    expect(next.offered).toEqual([SESSION, 'dws.resume.12.token-1-0123456789abcdef', BATCHES])
    next.accept(SESSION)
    next.receive(welcome({ id: 5, token: 'token-2-0123456789abcdef', resumed: true, handled: 0, last: 12 }))
    expect(next.texts()).toEqual([
      '1 "one"',
      '<bytes:2 \u00ff\u0000\u0007>'.replace('\u00ff', '\ufffd'),
      '3 "queued"',
    ])
    expect(reloaded.client.id).toBe(5)
    expect(reloaded.of('open')).toEqual([{ reconnected: false, resumed: true }])
  })

  it('writes the binary frames it keeps byte for byte', async () => {
    const store = memoryStore()
    const page = start({ store })
    establish(page)
    page.client.send(new Uint8Array([255, 0, 7]))
    await vi.advanceTimersByTimeAsync(0)
    const reloaded = start({ store })
    const next = reloaded.fake.last()
    next.accept(SESSION)
    next.receive(welcome({ resumed: true, handled: 0, token: 'token-2-0123456789abcdef' }))
    const resent = new Uint8Array(next.sent[0] as ArrayBuffer)
    expect([...resent]).toEqual([0x31, 0x20, 255, 0, 7])
  })

  it('forgets the session on close(), and when the server ends it with 1000', async () => {
    const store = memoryStore()
    const page = start({ store })
    establish(page)
    await vi.advanceTimersByTimeAsync(0)
    expect(store.size).toBeGreaterThan(0)
    page.client.close()
    expect(store.size).toBe(0)
    const other = start({ store })
    const socket = establish(other)
    await vi.advanceTimersByTimeAsync(0)
    expect(store.size).toBeGreaterThan(0)
    socket.drop(1000, 'bye')
    expect(store.size).toBe(0)
  })

  it('keeps the session when the client gives up on a cut, for a later page', async () => {
    const store = memoryStore()
    const page = start({ store, reconnect: false })
    const socket = establish(page, { token: 'kept-0123456789abcdefghij' })
    page.client.send('unacked')
    socket.drop(1006)
    await vi.advanceTimersByTimeAsync(0)
    expect(page.client.state).toBe('closed')
    const later = start({ store })
    expect(later.fake.last().offered).toEqual([SESSION, 'dws.resume.0.kept-0123456789abcdefghij', BATCHES])
  })

  it('starts a fresh session from a store whose entry it cannot read', () => {
    const store = memoryStore()
    store.setItem(`durable-websocket:${URL}`, '{not json')
    const page = start({ store })
    expect(page.fake.last().offered).toEqual([SESSION, BATCHES])
  })

  it('reports a store that throws on write as ERR_DWS_STORE_FAILED and goes on', async () => {
    const store = memoryStore()
    store.setItem = () => {
      throw new Error('quota')
    }
    const page = start({ store })
    const socket = establish(page)
    await vi.advanceTimersByTimeAsync(0)
    expect(page.of('error').map((error) => (error as { code: string }).code)).toContain(
      'ERR_DWS_STORE_FAILED',
    )
    page.client.send('still works')
    expect(socket.texts().at(-1)).toBe('1 "still works"')
  })
})

describe('falling back to plain WebSocket', () => {
  it('speaks plain frames when the 101 names another subprotocol', () => {
    const started = start({ protocols: ['dws.auth', 'secret'] })
    started.client.send({ a: 1 })
    const socket = started.fake.last()
    socket.accept('dws.auth')
    expect(socket.texts()).toEqual(['{"a":1}'])
    expect(started.of('open')).toEqual([{ reconnected: false, resumed: false }])
    expect(started.client.id).toBeUndefined()
    socket.receive('{"b":2}')
    expect(started.of('message')).toEqual([{ b: 2 }])
  })

  it('tries again at once without the offer when a handshake offering it fails, quietly, and stays plain', async () => {
    const started = start()
    started.fake.last().refuse()
    expect(started.fake.made).toHaveLength(2)
    const plain = started.fake.last()
    expect(plain.offered).toEqual([])
    plain.accept()
    expect(started.events.map(([name]) => name)).toEqual(['open'])
    started.client.send('x')
    expect(plain.texts()).toEqual(['"x"'])
    plain.drop(1006)
    const again = await nextAttempt(started)
    expect(again.offered).toEqual([])
  })

  it('reports the failure as a close and a retry when the plain attempt fails too, and offers the session again next time', async () => {
    const started = start({ protocols: ['chat.v2'] })
    started.fake.last().refuse()
    expect(started.fake.last().offered).toEqual(['chat.v2'])
    started.fake.last().refuse()
    expect(started.events.map(([name]) => name)).toEqual(['close', 'reconnecting'])
    const next = await nextAttempt(started)
    expect(next.offered).toEqual([SESSION, BATCHES, 'chat.v2'])
  })

  it('does not fall back once a server has welcomed it', async () => {
    const started = start()
    establish(started).drop(1006)
    const next = await nextAttempt(started)
    next.refuse()
    // A fallback would have tried again at once; this is the usual retry, after a delay.
    expect(started.fake.made).toHaveLength(2)
    expect(started.of('reconnecting')).toHaveLength(2)
  })

  it('with session: false, offers only the app’s protocols and writes frames as they are', () => {
    const started = start({ session: false, protocols: 'chat.v2' })
    const socket = started.fake.last()
    expect(socket.offered).toEqual(['chat.v2'])
    socket.accept('chat.v2')
    started.client.send('x')
    expect(socket.texts()).toEqual(['"x"'])
    socket.receive('{"t":"welcome"}')
    expect(started.of('message')).toEqual([{ t: 'welcome' }])
  })

  it('with session: false and no protocols, gives the WebSocket constructor no second argument', () => {
    const started = start({ session: false })
    expect(started.fake.last().offered).toEqual([])
  })
})

describe('close codes of a session', () => {
  it('does not reconnect after 3901 Session taken over, even when shouldReconnect says yes', () => {
    const started = start({ shouldReconnect: () => true })
    establish(started).drop(3901, 'Session taken over')
    expect(started.of('close')).toEqual([
      { code: 3901, reason: 'Session taken over', wasClean: true, willReconnect: false },
    ])
    expect(started.client.state).toBe('closed')
  })

  it('reports 1002 from the server as ERR_DWS_PROTOCOL_ERROR and does not reconnect', () => {
    const started = start()
    establish(started).drop(1002, 'Protocol error')
    expect(started.of('error').map((error) => (error as { code: string }).code)).toEqual([
      'ERR_DWS_PROTOCOL_ERROR',
    ])
    expect(started.of('close')).toMatchObject([{ code: 1002, willReconnect: false }])
  })

  it.each([
    [3903, 'Slow consumer'],
    [3905, 'Session too old'],
  ])('reconnects after %i %s', (code, reason) => {
    const started = start()
    establish(started).drop(code, reason)
    expect(started.of('close')).toMatchObject([{ code, willReconnect: true }])
  })

  it('after 3904 (the session is someone else’s), offers no resume again, and takes the new session as a reset', async () => {
    const started = start()
    const socket = establish(started, { token: 'token-1-0123456789abcdef', last: 7 })
    started.client.send('unacked')
    socket.drop(3904, 'Session belongs to another client')
    expect(started.of('close')).toMatchObject([{ code: 3904, willReconnect: true }])
    const next = await nextAttempt(started)
    expect(next.offered).toEqual([SESSION, BATCHES])
    next.accept(SESSION)
    next.receive(welcome({ id: 8, token: 'token-2-0123456789abcdef', resumed: false, last: 9 }))
    expect(started.of('reset')).toEqual([{ unacknowledged: ['"unacked"'] }])
    expect(started.client.id).toBe(8)
  })

  it('waits at least the retry hint of a 1013 from a server shedding load before its next attempt', async () => {
    const started = start()
    establish(started).drop(1013, 'retry after 500 ms')
    expect(started.of('reconnecting')).toMatchObject([{ delay: expect.any(Number) as number }])
    const [scheduled] = started.of('reconnecting') as { delay: number }[]
    expect(scheduled?.delay).toBeGreaterThanOrEqual(500)
    const before = started.fake.made.length
    await vi.advanceTimersByTimeAsync(499)
    expect(started.fake.made.length).toBe(before)
    await vi.advanceTimersByTimeAsync(20)
    expect(started.fake.made.length).toBe(before + 1)
  })

  it.each([
    [1011, 'Internal Error'],
    [1001, 'Idle timeout'],
    [1013, 'Too many queued messages'],
  ])('reconnects to resume after %i %s, which only suspends the session', async (code, reason) => {
    const started = start()
    establish(started, { token: 'token-1-0123456789abcdef', last: 7 }).drop(code, reason)
    expect(started.of('close')).toMatchObject([{ code, willReconnect: true }])
    expect((await nextAttempt(started)).offered).toEqual([
      SESSION,
      'dws.resume.7.token-1-0123456789abcdef',
      BATCHES,
    ])
  })
})

describe('a server that breaks the protocol', () => {
  it.each([
    ['a data frame before the welcome', (socket: FakeSocket) => socket.receive('1 "early"')],
    [
      'a frame that is neither numbered nor a control frame',
      (socket: FakeSocket) => {
        socket.receive(welcome())
        socket.receive('hello')
      },
    ],
    [
      'an ack for a message never sent',
      (socket: FakeSocket) => {
        socket.receive(welcome())
        socket.receive('{"t":"ack","handled":3}')
      },
    ],
    ['a welcome without a token', (socket: FakeSocket) => socket.receive(welcome({ token: undefined }))],
    [
      'a welcome whose token cannot go in a subprotocol name',
      (socket: FakeSocket) => socket.receive(welcome({ token: 'a.b' })),
    ],
    ['a welcome without last', (socket: FakeSocket) => socket.receive(welcome({ last: undefined }))],
    ['a welcome whose ackEvery is 0', (socket: FakeSocket) => socket.receive(welcome({ ackEvery: 0 }))],
    [
      'a welcome whose ackBytes is not a number',
      (socket: FakeSocket) => socket.receive(welcome({ ackBytes: '1 MiB' })),
    ],
    [
      'a second welcome',
      (socket: FakeSocket) => {
        socket.receive(welcome())
        socket.receive(welcome())
      },
    ],
    [
      'a batch before the welcome',
      (socket: FakeSocket) => socket.receive(JSON.stringify(['1 "a"', '2 "b"'])),
    ],
    [
      'a batch of one frame',
      (socket: FakeSocket) => {
        socket.receive(welcome())
        socket.receive(JSON.stringify(['1 "a"']))
      },
    ],
    [
      'a batch that holds a control frame',
      (socket: FakeSocket) => {
        socket.receive(welcome())
        socket.receive(JSON.stringify(['1 "a"', '{"t":"ack","handled":0}']))
      },
    ],
    [
      'a batch whose frames go back in number',
      (socket: FakeSocket) => {
        socket.receive(welcome())
        socket.receive(JSON.stringify(['5 "a"', '4 "b"']))
      },
    ],
    [
      'a resume the client did not ask for',
      (socket: FakeSocket) => socket.receive(welcome({ resumed: true })),
    ],
  ])('is stopped with ERR_DWS_PROTOCOL_ERROR after %s', (_what, misbehave) => {
    const started = start()
    const socket = started.fake.last()
    socket.accept(SESSION)
    misbehave(socket)
    expect(started.of('error').map((error) => (error as { code: string }).code)).toEqual([
      'ERR_DWS_PROTOCOL_ERROR',
    ])
    expect(socket.closedWith).toEqual({ code: 1000, reason: 'Protocol error' })
    expect(started.client.state).toBe('closed')
  })
})

describe('client.request(message, { timeout })', () => {
  it('sends the request marked with ?, and resolves with the decoded reply that names its number', async () => {
    const started = start()
    const socket = establish(started)
    started.client.send('first')
    const reply = started.client.request({ get: 'history' })
    expect(socket.texts()).toEqual(['1 "first"', '2? {"get":"history"}'])
    socket.receive('5=2 {"messages":[]}')
    await expect(reply).resolves.toEqual({ messages: [] })
    expect(started.of('message')).toEqual([])
  })

  it('rejects with the code and message of a failure frame, and with failed when the frame cannot be read', async () => {
    const started = start()
    const socket = establish(started)
    const denied = started.client.request('x')
    const broken = started.client.request('y')
    socket.receive('5!1 {"code":"not-allowed","message":"no"}')
    socket.receive('6!2 nonsense')
    await expect(denied).rejects.toMatchObject({ name: 'RequestError', code: 'not-allowed', message: 'no' })
    await expect(broken).rejects.toMatchObject({ name: 'RequestError', code: 'failed' })
  })

  it('survives a cut: the request is sent again with its number after the resume, and the replayed reply settles it once', async () => {
    const started = start()
    const first = establish(started, { id: 9, token: 'token-1-0123456789abcdef' })
    const reply = started.client.request('once')
    first.drop(1006)
    const second = await nextAttempt(started)
    second.accept(SESSION)
    second.receive(welcome({ id: 9, token: 'token-2-0123456789abcdef', resumed: true, handled: 0, last: 0 }))
    expect(second.texts()).toEqual(['1? "once"'])
    second.receive('3=1 "done"')
    await expect(reply).resolves.toBe('done')
  })

  it('queues a request made while connecting, and gives it its number when the welcome comes', async () => {
    const started = start()
    const reply = started.client.request('early')
    const socket = establish(started)
    expect(socket.texts()).toEqual(['1? "early"'])
    socket.receive('2=1 "ok"')
    await expect(reply).resolves.toBe('ok')
  })

  it('rejects with timeout when no reply comes in time, and drops a late reply', async () => {
    const started = start()
    const socket = establish(started)
    const reply = started.client.request('slow', { timeout: 50 })
    const settled = expect(reply).rejects.toMatchObject({ code: 'timeout' })
    await vi.advanceTimersByTimeAsync(60)
    await settled
    socket.receive('2=1 "late"')
    expect(started.of('message')).toEqual([])
    expect(started.of('error')).toEqual([])
  })

  it('rejects with closed when the client closes, and with closed when a reset loses the session', async () => {
    const started = start()
    const first = establish(started, { id: 9, token: 'token-1-0123456789abcdef' })
    const lost = started.client.request('lost')
    first.drop(1006)
    const second = await nextAttempt(started)
    second.accept(SESSION)
    second.receive(
      welcome({ id: 10, token: 'token-2-0123456789abcdef', resumed: false, handled: 0, last: 0 }),
    )
    await expect(lost).rejects.toMatchObject({ code: 'closed' })
    // A lost request is its promise's business, not a message handed back by reset.
    expect(started.of('reset')).toEqual([{ unacknowledged: [] }])
    const open = started.client.request('open')
    started.client.close()
    await expect(open).rejects.toMatchObject({ code: 'closed' })
  })

  it("refuses past the welcome's maxRequests, and without a session, running nothing", async () => {
    const started = start()
    const socket = establish(started, { maxRequests: 1 })
    void started.client.request('one').catch(() => undefined)
    await expect(started.client.request('two')).rejects.toMatchObject({ code: 'refused' })
    expect(socket.texts()).toEqual(['1? "one"'])
    const plain = start({ session: false })
    plain.fake.last().accept()
    await expect(plain.client.request('x')).rejects.toMatchObject({ code: 'refused' })
  })
})
