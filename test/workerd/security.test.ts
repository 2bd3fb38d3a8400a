import { env } from 'cloudflare:workers'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { AUTH_PROTOCOL, authed, signToken, type AuthObject } from './fixture/endpoints/auth.js'
import { BROKEN_ROOM, broken, type BrokenObject } from './fixture/endpoints/broken.js'
import { Client, connect, leave, request, upgrade } from './client.js'

const BARE_500 = 'Internal Server Error\n'

/**
 * What a stack trace or an error's own text would put in a response body or
 * a close reason: the thrown message (the fixture's all say SECRET), an
 * error class name, a stack frame, a file path, a package error code.
 */
function expectNothingInternal(text: string): void {
  expect(text).not.toContain('SECRET')
  expect(text).not.toMatch(/\w+Error\b/)
  expect(text).not.toMatch(/\bat\s/)
  expect(text).not.toMatch(/\.ts\b|\/srv\/|:\d+:\d+/)
  expect(text).not.toContain('ERR_DWS_')
}

interface AfterAccept {
  /** The room is the path's second segment, so each case has a room of its own. */
  path: string
  send?: string
  code: number
  reason: string
}

const INTERNAL_ERROR = { code: 1011, reason: 'Internal Error' }
const MALFORMED = { code: 1007, reason: 'Malformed message' }

/** Every way this package closes a connection on its own, after the 101. */
const AFTER_ACCEPT: Record<string, AfterAccept> = {
  'open throws': { path: '/faulty/sec-open?fail=sync', ...INTERNAL_ERROR },
  'open rejects': { path: '/faulty/sec-open-async?fail=async', ...INTERNAL_ERROR },
  'message throws': { path: '/faulty/sec-message', send: 'throw', ...INTERNAL_ERROR },
  'message rejects': { path: '/faulty/sec-reject', send: 'reject', ...INTERNAL_ERROR },
  'a handler lets an invalid close escape': {
    path: '/careless/sec-close',
    send: JSON.stringify({ op: 'close', code: 999 }),
    ...INTERNAL_ERROR,
  },
  'a handler lets oversized data escape': {
    path: '/careless/sec-data',
    send: JSON.stringify({ op: 'data', bytes: 20_000 }),
    ...INTERNAL_ERROR,
  },
  'a handler sends what cannot be encoded': {
    path: '/careless/sec-send',
    send: JSON.stringify({ op: 'send', value: 'bigint' }),
    ...INTERNAL_ERROR,
  },
  'a message fails validate': { path: '/shaped-strict/sec-shape', send: '{"SECRET":true}', ...MALFORMED },
  'a message cannot be decoded': { path: '/shaped-strict/sec-decode', send: '{SECRET', ...MALFORMED },
  'a message is too big': {
    path: '/sized/sec-big',
    send: 'SECRET'.repeat(10),
    code: 1009,
    reason: 'Message too big',
  },
}

afterEach(() => {
  vi.restoreAllMocks()
})

/** Every line logged with console.error or console.warn since the spies were set, details included. */
function spyOnLogs(): () => string[] {
  const error = vi.spyOn(console, 'error')
  const warn = vi.spyOn(console, 'warn')
  return () =>
    [...error.mock.calls, ...warn.mock.calls].map((call) =>
      call.map((part) => (part instanceof Error ? `${part.name}: ${part.message}` : String(part))).join(' '),
    )
}

describe('a token in Sec-WebSocket-Protocol (the auth example of docs/bad-input.md)', () => {
  const room = authed.room<AuthObject>(env)

  it(`opens the connection for a valid token, puts the user in locals, and the 101 names "${AUTH_PROTOCOL}", never the token`, async () => {
    const token = await signToken('alice', env.AUTH_SECRET)
    for (const offered of [`${AUTH_PROTOCOL}, ${token}`, `chat.v2, ${AUTH_PROTOCOL}, ${token}`]) {
      const response = await upgrade('/auth', { 'Sec-WebSocket-Protocol': offered })
      expect(response.status).toBe(101)
      expect(response.headers.get('Sec-WebSocket-Protocol')).toBe(AUTH_PROTOCOL)
      expect([...response.headers].flat().join('\n')).not.toContain(token)
      const client = new Client(response.webSocket!)
      expect(await client.nextJson()).toEqual({ id: expect.any(Number) as number, user: 'alice' })
      client.close(1000)
      await client.whenClosed()
    }
  })

  it('refuses a missing, forged or misplaced token with 401 before the object is reached', async () => {
    const alice = await signToken('alice', env.AUTH_SECRET)
    const signature = alice.slice('alice.'.length)
    const fetchesBefore = await room.fetches()
    const refused: [label: string, headers: Record<string, string>, path?: string][] = [
      ['no header', {}],
      ['the marker alone', { 'Sec-WebSocket-Protocol': AUTH_PROTOCOL }],
      ['a token without the marker', { 'Sec-WebSocket-Protocol': alice }],
      ['the token before the marker', { 'Sec-WebSocket-Protocol': `${alice}, ${AUTH_PROTOCOL}` }],
      ['garbage', { 'Sec-WebSocket-Protocol': `${AUTH_PROTOCOL}, not-a-token` }],
      ['no user', { 'Sec-WebSocket-Protocol': `${AUTH_PROTOCOL}, .${signature}` }],
      [
        "another user with alice's signature",
        { 'Sec-WebSocket-Protocol': `${AUTH_PROTOCOL}, mallory.${signature}` },
      ],
      ['a signature that is not base64url', { 'Sec-WebSocket-Protocol': `${AUTH_PROTOCOL}, alice.*!*` }],
      [
        'a token signed with another key',
        { 'Sec-WebSocket-Protocol': `${AUTH_PROTOCOL}, ${await signToken('alice', 'guessed key')}` },
      ],
      ['the token in the query string', {}, `/auth?token=${encodeURIComponent(alice)}`],
      ['the token as a bearer header', { Authorization: `Bearer ${alice}` }],
    ]
    for (const [label, headers, path = '/auth'] of refused) {
      const response = await upgrade(path, headers)
      expect(response.status, label).toBe(401)
      expect(response.webSocket, label).toBeNull()
      expect(response.headers.get('Sec-WebSocket-Protocol'), label).toBeNull()
      expect(await response.text(), label).toBe('Unauthorized\n')
    }
    expect(await room.fetches()).toBe(fetchesBefore)
  })
})

describe('the protocol option: (offered, request, locals) => string | undefined', () => {
  const room = broken.room<BrokenObject>(env, BROKEN_ROOM)

  it('answers with the subprotocol it picks, and names none when the client offered none', async () => {
    const picked = await upgrade('/broken', { 'Sec-WebSocket-Protocol': 'first.v1, second.v1' })
    expect(picked.status).toBe(101)
    expect(picked.headers.get('Sec-WebSocket-Protocol')).toBe('first.v1')
    const none = await upgrade('/broken')
    expect(none.status).toBe(101)
    expect(none.headers.get('Sec-WebSocket-Protocol')).toBeNull()
    for (const response of [picked, none]) {
      const client = new Client(response.webSocket!)
      expect(await client.nextText()).toMatch(/^\d+$/)
      await leave(client)
    }
  })

  it('never sees an offered name that is not an RFC 7230 token, so the 101 cannot echo one', async () => {
    const offer = 'a b, "quoted", chat/v1, x;y, second.v1'
    const picked = await upgrade('/broken', { 'Sec-WebSocket-Protocol': offer })
    expect(picked.status).toBe(101)
    expect(picked.headers.get('Sec-WebSocket-Protocol')).toBe('second.v1')
    const onlyInvalid = await upgrade('/broken', { 'Sec-WebSocket-Protocol': 'a b, "quoted"' })
    expect(onlyInvalid.status).toBe(101)
    expect(onlyInvalid.headers.get('Sec-WebSocket-Protocol')).toBeNull()
    for (const response of [picked, onlyInvalid]) await leave(new Client(response.webSocket!))
  })

  it('fails the upgrade with a bare 500 when it picks one the client did not offer, logs the pick and the room but not the offer, and spends no id', async () => {
    const logs = spyOnLogs()
    const lastId = await room.lastId()
    const offer = `${AUTH_PROTOCOL}, token-that-must-not-be-logged`
    const response = await upgrade('/broken?fail=protocol-unoffered', { 'Sec-WebSocket-Protocol': offer })
    expect(response.status).toBe(500)
    expect(response.webSocket).toBeNull()
    expect(await response.text()).toBe(BARE_500)
    expect(logs()).toContain(
      `[durable-websocket] refusing an upgrade to room ${BROKEN_ROOM}: DurableWebSocketError: the protocol option chose "SECRET-never-offered", which is not among the 2 subprotocols the client offered.`,
    )
    expect(logs().join('\n')).not.toContain('token-that-must-not-be-logged')
    expect(await room.lastId()).toBe(lastId)
  })
})

describe('no stack trace or internal error text ever reaches a client', () => {
  const room = broken.room<BrokenObject>(env, BROKEN_ROOM)

  it.each([
    ['the middleware throws', '/broken?fail=middleware', true],
    ['the middleware rejects', '/broken?fail=middleware-async', true],
    ['the room function throws', '/broken?fail=room', true],
    ['the error handler throws', '/broken', false],
    ['the binding is missing', '/unbound', true],
  ])(
    'in the Worker, when %s: a bare 500, the error logged with the path, no object reached',
    async (_when, path, isUpgrade) => {
      const logs = spyOnLogs()
      const fetchesBefore = await room.fetches()
      const response = isUpgrade ? await upgrade(path) : await request(path)
      expect(response.status).toBe(500)
      expect(response.webSocket).toBeNull()
      const body = await response.text()
      expect(body).toBe(BARE_500)
      expectNothingInternal(body)
      expectNothingInternal([...response.headers].flat().join('\n'))
      const pathname = new URL(path, 'http://x').pathname
      expect(logs()).toContainEqual(
        expect.stringContaining(`[durable-websocket] the upgrade request for ${pathname} failed:`),
      )
      expect(await room.fetches()).toBe(fetchesBefore)
    },
  )

  it.each([
    ['the tags function returns an invalid tag', '/broken?fail=tags', 'each tag must be a string'],
    ['the protocol function throws', '/broken?fail=protocol', 'SECRET protocol function threw'],
    [
      'the protocol function picks what was not offered',
      '/broken?fail=protocol-unoffered',
      'SECRET-never-offered',
    ],
  ])(
    'in the object, before the socket is accepted, when %s: a bare 500, the error logged with the room, no id spent',
    async (_when, path, logged) => {
      const logs = spyOnLogs()
      const lastId = await room.lastId()
      const response = await upgrade(path, { 'Sec-WebSocket-Protocol': 'a' })
      expect(response.status).toBe(500)
      const body = await response.text()
      expect(body).toBe(BARE_500)
      expectNothingInternal(body)
      const line = logs().find((text) =>
        text.startsWith(`[durable-websocket] refusing an upgrade to room ${BROKEN_ROOM}:`),
      )
      expect(line).toContain(logged)
      expect(await room.lastId()).toBe(lastId)
    },
  )

  it.each(Object.entries(AFTER_ACCEPT))(
    'after the socket is accepted, when %s: a fixed close reason, and the log names the connection and its room',
    async (_when, { path, send, code, reason }) => {
      const logs = spyOnLogs()
      const room = new URL(path, 'http://x').pathname.split('/')[2] ?? ''
      const client = await connect(path)
      if (send !== undefined) client.send(send)
      const closed = await client.whenClosed()
      expect(closed).toMatchObject({ code, reason })
      expectNothingInternal(closed.reason)
      expect(logs()).toContainEqual(expect.stringMatching(new RegExp(`connection \\d+ in room ${room}\\b`)))
    },
  )
})
