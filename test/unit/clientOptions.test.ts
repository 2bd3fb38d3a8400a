import { describe, expect, it } from 'vitest'
import { ClientError, connect, isClientError, type ProtocolsOption } from '../../src/client/index.js'
import { backoffDelay } from '../../src/client/backoff.js'
import { roomNameProblem } from '../../src/shared/roomName.js'
import { memoryStore } from './fakeWebSocket.js'

describe('connect(target, options?) checks its options before connecting', () => {
  it.each<[string, Parameters<typeof connect>[1], RegExp]>([
    ['a negative initialDelay', { reconnect: { initialDelay: -1 } }, /reconnect\.initialDelay/],
    ['a maxDelay below initialDelay', { reconnect: { initialDelay: 500, maxDelay: 100 } }, /maxDelay/],
    ['a fractional maxAttempts', { reconnect: { maxAttempts: 1.5 } }, /maxAttempts/],
    ['a negative maxQueued', { maxQueued: -1 }, /maxQueued/],
    ['a heartbeat of 0 ms', { heartbeat: 0 }, /heartbeat\.interval/],
    ['a heartbeat without an interval', { heartbeat: {} as { interval: number } }, /heartbeat\.interval/],
    ['an unknown serializer', { serializer: 'xml' as 'json' }, /serializer/],
    ['a shouldReconnect that is no function', { shouldReconnect: true as never }, /shouldReconnect/],
    ['a WebSocket that is no class', { WebSocket: 'ws' as never }, /options\.WebSocket/],
  ])('refuses %s with ERR_DWS_INVALID_OPTIONS naming the option', (_what, options, message) => {
    const attempt = (): unknown => connect('ws://127.0.0.1:1/ws', options)
    expect(attempt).toThrow(ClientError)
    expect(attempt).toThrow(message)
    try {
      attempt()
    } catch (error) {
      expect(isClientError(error) && error.code).toBe('ERR_DWS_INVALID_OPTIONS')
    }
  })

  it.each([
    ['an ftp: URL', 'ftp://127.0.0.1/ws', /ws:, wss:, http: or https:/],
    ['a relative URL outside a browser', '/ws', /outside a browser give a full one/],
    ['no URL at all', 42 as unknown as string, /takes a URL or \{ url, room \}/],
  ])('refuses %s', (_what, url, message) => {
    expect(() => connect(url)).toThrow(message)
  })

  it('accepts exactly the room names the mount accepts', () => {
    const names = [
      'lobby',
      'a',
      'a.b',
      'a_b-c',
      'x'.repeat(64),
      'x'.repeat(65),
      '',
      '.a',
      'a.',
      'a..b',
      'a/b',
    ]
    names.push('a b', 'é', '%2F', '-', '_')
    for (const room of names) {
      const server = roomNameProblem(room) === undefined
      let client = true
      try {
        connect({ url: 'ws://127.0.0.1:1/ws', room }, { reconnect: false }).close()
      } catch (error) {
        expect(isClientError(error) && error.code).toBe('ERR_DWS_INVALID_OPTIONS')
        client = false
      }
      expect({ room, accepted: client }).toEqual({ room, accepted: server })
    }
  })

  it('turns http: into ws:, appends the room to the path and keeps the query', () => {
    const client = connect(
      { url: 'http://127.0.0.1:1/chat/ws/?token=t#top', room: 'lobby' },
      { reconnect: false },
    )
    client.close()
    expect(client.url).toBe('ws://127.0.0.1:1/chat/ws/lobby?token=t')
  })
})

describe('backoffDelay(step, initialDelay, maxDelay, random)', () => {
  it('draws from zero up to initialDelay doubled per step, capped at maxDelay (full jitter)', () => {
    expect([0, 1, 2, 3, 10].map((step) => backoffDelay(step, 100, 1_000, () => 1))).toEqual([
      100, 200, 400, 800, 1_000,
    ])
    expect(backoffDelay(5, 100, 1_000, () => 0)).toBe(0)
    expect(backoffDelay(1, 100, 1_000, () => 0.5)).toBe(100)
    expect(backoffDelay(2_000, 100, 1_000, () => 1)).toBe(1_000)
  })
})

/** The error connect() throws for these options, which must be ERR_DWS_INVALID_OPTIONS. */
function refusal(protocols: unknown): ClientError {
  try {
    connect('ws://127.0.0.1:1/ws', { reconnect: false, protocols: protocols as ProtocolsOption }).close()
  } catch (error) {
    expect(error).toBeInstanceOf(ClientError)
    expect(isClientError(error) && error.code).toBe('ERR_DWS_INVALID_OPTIONS')
    return error as ClientError
  }
  throw new Error('connect() accepted the options')
}

describe('connect(target, { protocols }) checks the offer before connecting', () => {
  it.each<[string, unknown, RegExp]>([
    ['an empty name', '', /options\.protocols is empty/],
    ['a name with a space', 'chat v2', /options\.protocols holds " "/],
    ['a padded base64 token', ['dws.auth', 'secret-token=='], /options\.protocols\[1\] holds "="/],
    [
      'a name offered twice',
      ['a.v1', 'b.v1', 'a.v1'],
      /options\.protocols\[2\] repeats options\.protocols\[0\]/,
    ],
    [
      'an entry that is no string',
      ['dws.auth', 42],
      /options\.protocols\[1\] must be a string, got a number\./,
    ],
    ['null', null, /must be a subprotocol name, an array of them, or a function/],
    ['an object', { name: 'dws.auth' }, /must be a subprotocol name, an array of them, or a function/],
  ])('refuses %s with ERR_DWS_INVALID_OPTIONS naming the entry', (_what, protocols, message) => {
    expect(refusal(protocols).message).toMatch(message)
  })

  it('never repeats a name in the message, since one may be a token', () => {
    const token = 'secret-token/with+base64='
    for (const protocols of [token, ['dws.auth', token], ['dws.auth', 'secret-token', 'secret-token']]) {
      expect(refusal(protocols).message).not.toContain('secret-token')
    }
  })

  it('accepts a name, an array of names, an empty array and a function, called at once for the first attempt', () => {
    let calls = 0
    const accepted: ProtocolsOption[] = [
      'chat.v2',
      ['dws.auth', 'alice.b64url_-~'],
      [],
      () => {
        calls += 1
        return 'chat.v2'
      },
    ]
    for (const protocols of accepted) connect('ws://127.0.0.1:1/ws', { reconnect: false, protocols }).close()
    expect(calls).toBe(1)
  })
})

describe('connect(target, { session, store, storeKey }) checks the session options before connecting', () => {
  it.each<[string, Parameters<typeof connect>[1], RegExp]>([
    ['a session that is no boolean', { session: 'yes' as never }, /options\.session must be true or false/],
    ['maxQueued 0 with a session', { maxQueued: 0 }, /maxQueued is 0, but a session keeps every message/],
    [
      'a store without removeItem',
      { store: { getItem: () => null, setItem: () => undefined } as never },
      /options\.store/,
    ],
    [
      'a store with session: false',
      { session: false, store: memoryStore() },
      /cannot go with session: false/,
    ],
    ['an empty storeKey', { storeKey: '' }, /options\.storeKey/],
    ['the session subprotocol among the app’s', { protocols: ['dws.session.v1'] }, /offers itself/],
  ])('refuses %s with ERR_DWS_INVALID_OPTIONS', (_what, options, message) => {
    const attempt = (): unknown => connect('ws://127.0.0.1:1/ws', options)
    expect(attempt).toThrow(message)
    try {
      attempt()
    } catch (error) {
      expect(isClientError(error) && error.code).toBe('ERR_DWS_INVALID_OPTIONS')
    }
  })

  it('accepts maxQueued 0 in plain mode, and sessionStorage-like stores', () => {
    const plain = (): void => {
      connect('ws://127.0.0.1:1/ws', { reconnect: false, session: false, maxQueued: 0 }).close()
    }
    const stored = (): void => {
      connect('ws://127.0.0.1:1/ws', { reconnect: false, store: memoryStore(), storeKey: 'mine' }).close()
    }
    expect(plain).not.toThrow()
    expect(stored).not.toThrow()
  })
})
