import type { AddressInfo } from 'node:net'
import { resolve } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import NodeWs, { WebSocketServer } from 'ws'
import {
  connect,
  type Client,
  type ClientOptions,
  type ProtocolsOption,
  type WebSocketConstructor,
} from '../../src/client/index.js'
import { recordEvents, type ClientEventLog } from './clientEvents.js'
import type { Greeting, ToServer } from './fixtures/protocols/protocol.js'
import { EXPIRED_TOKEN, TOKEN_PROTOCOL } from './fixtures/protocols/tokens.js'
import { createWorkspace, startDev, type DevServer, type Workspace } from './wranglerDev.js'

const CONFIG = resolve(import.meta.dirname, 'fixtures/protocols/wrangler.toml')
const fastRetry = { reconnect: { initialDelay: 20, maxDelay: 50 } } as const
/** The client offers it first; the server names it, and tells the app's own pick in the welcome. */
const SESSION_PROTOCOL = 'dws.session.v1'
/** …and, after its resume entry if any, that it reads batches (docs/protocol.md §2). */
const BATCHES_OFFER = 'dws.session.batches'

const clients: Client<Greeting, ToServer>[] = []

/** A client of the fixture's mount that is closed after the test, whatever happened in it. */
function open(
  url: string,
  options: ClientOptions<Greeting, ToServer>,
): { client: Client<Greeting, ToServer>; events: ClientEventLog<Greeting> } {
  const client = connect<Greeting, ToServer>(url, options)
  clients.push(client)
  return { client, events: recordEvents(client) }
}

afterEach(() => {
  for (const client of clients.splice(0)) client.close()
})

/** Node 22's global WebSocket, counting the sockets made through it. */
function countingWebSocket(): { WebSocket: WebSocketConstructor; made: () => number } {
  let made = 0
  class Counted extends WebSocket {
    constructor(url: string, protocols?: string | string[]) {
      made += 1
      super(url, protocols)
    }
  }
  return { WebSocket: Counted, made: () => made }
}

describe('a client offering subprotocols to a server that names none, as a mount without the protocol option does', () => {
  it.each<[string, WebSocketConstructor | undefined]>([
    ["Node 22's global WebSocket", undefined],
    ['the ws package', NodeWs],
  ])('sees the handshake fail with 1006, and retries (%s)', async (_what, WebSocket) => {
    const server = new WebSocketServer({ host: '127.0.0.1', port: 0, handleProtocols: () => false })
    await new Promise<void>((resolveListening) => server.once('listening', resolveListening))
    let handshakes = 0
    server.on('headers', () => (handshakes += 1))
    try {
      const { port } = server.address() as AddressInfo
      const { client, events } = open(`ws://127.0.0.1:${String(port)}`, {
        reconnect: { initialDelay: 20, maxDelay: 50, maxAttempts: 1 },
        protocols: ['chat.v2'],
        // The app's own offer alone: with the session offered too, each attempt would be made twice.
        session: false,
        ...(WebSocket === undefined ? {} : { WebSocket }),
      })
      expect(await events.next('close')).toMatchObject({ code: 1006, willReconnect: true })
      expect(await events.next('close')).toMatchObject({ code: 1006, willReconnect: false })
      expect(events.of('open')).toEqual([])
      expect(events.of('error')[0]?.code).toBe('ERR_DWS_SOCKET_ERROR')
      expect(handshakes).toBe(2)
      expect(client.protocol).toBe('')
    } finally {
      for (const socket of server.clients) socket.terminate()
      await new Promise((resolveClosed) => server.close(resolveClosed))
    }
  })
})

describe('a client offering subprotocols to a mount whose protocol option picks one (wrangler dev)', () => {
  let workspace: Workspace | undefined
  let dev: DevServer | undefined
  const url = (): string => {
    if (dev === undefined) throw new Error('wrangler dev is not running')
    return `${dev.wsOrigin}/ws`
  }
  beforeAll(async () => {
    workspace = await createWorkspace()
    dev = await startDev(workspace, { config: CONFIG })
  })
  afterAll(async () => {
    await dev?.stop()
    await workspace?.remove()
  })
  beforeEach(({ onTestFailed }) => {
    onTestFailed(() => console.log(`wrangler dev output:\n${dev?.output() ?? '(not running)'}`))
  })

  it.each<[string, WebSocketConstructor | undefined]>([
    ["Node 22's global WebSocket", undefined],
    ['the ws package', NodeWs],
  ])(
    'offers the names in order and reports the one the server picked as client.protocol, already in open listeners (%s)',
    async (_what, WebSocket) => {
      const { client, events } = open(url(), {
        protocols: [TOKEN_PROTOCOL, 'token-1', 'chat.v2'],
        ...(WebSocket === undefined ? {} : { WebSocket }),
      })
      expect(client.protocol).toBe('')
      const seen: string[] = []
      client.on('open', () => seen.push(client.protocol))

      expect(await events.next('message')).toEqual({
        id: expect.any(Number) as number,
        offered: [SESSION_PROTOCOL, BATCHES_OFFER, TOKEN_PROTOCOL, 'token-1', 'chat.v2'],
      })
      expect(client.protocol).toBe(TOKEN_PROTOCOL)
      expect(seen).toEqual([TOKEN_PROTOCOL])
    },
  )

  it('calls the protocols function again before each reconnect, so every connection carries a fresh token', async () => {
    let calls = 0
    const { client, events } = open(url(), {
      ...fastRetry,
      protocols: () => {
        calls += 1
        return [TOKEN_PROTOCOL, `token-${String(calls)}`]
      },
    })
    expect(calls).toBe(1)
    expect((await events.next('message')).offered).toEqual([
      SESSION_PROTOCOL,
      BATCHES_OFFER,
      TOKEN_PROTOCOL,
      'token-1',
    ])

    client.send({ op: 'restart' })
    expect(await events.next('close')).toMatchObject({ code: 1012, willReconnect: true })
    // The reconnect asks to resume its session, beside the fresh token; a close the server made ends
    // the session, so the answer is a fresh one.
    expect((await events.next('message')).offered).toEqual([
      SESSION_PROTOCOL,
      expect.stringMatching(/^dws\.resume\.\d+\.[A-Za-z0-9_-]{43}$/),
      BATCHES_OFFER,
      TOKEN_PROTOCOL,
      'token-2',
    ])
    expect(calls).toBe(2)
    expect(events.of('open')).toEqual([
      { reconnected: false, resumed: false },
      { reconnected: true, resumed: false },
    ])
    expect(client.protocol).toBe(TOKEN_PROTOCOL)
  })

  it('waits for an async function, and after the server refuses its token (401) asks it again', async () => {
    let calls = 0
    const { client, events } = open(url(), {
      ...fastRetry,
      protocols: async () => {
        calls += 1
        await sleep(20)
        return [TOKEN_PROTOCOL, calls === 1 ? EXPIRED_TOKEN : 'fresh-token']
      },
    })
    expect(client.state).toBe('connecting')

    expect(await events.next('close')).toMatchObject({ code: 1006, willReconnect: true })
    expect((await events.next('message')).offered).toEqual([
      SESSION_PROTOCOL,
      BATCHES_OFFER,
      TOKEN_PROTOCOL,
      'fresh-token',
    ])
    expect(calls).toBe(2)
    expect(events.of('open')).toEqual([{ reconnected: false, resumed: false }])
    expect(client.protocol).toBe(TOKEN_PROTOCOL)
  })

  it('reports a function that throws or rejects as ERR_DWS_SOCKET_ERROR with its error as the cause, and retries', async () => {
    const problems = [new Error('token service down'), new Error('token service still down')] as const
    let calls = 0
    const { WebSocket, made } = countingWebSocket()
    const { client, events } = open(url(), {
      ...fastRetry,
      WebSocket,
      protocols: () => {
        calls += 1
        if (calls === 1) throw problems[0]
        if (calls === 2) return Promise.reject(problems[1])
        return [TOKEN_PROTOCOL, 'token-3']
      },
    })

    expect((await events.next('message')).offered).toEqual([
      SESSION_PROTOCOL,
      BATCHES_OFFER,
      TOKEN_PROTOCOL,
      'token-3',
    ])
    const errors = events.of('error')
    expect(errors.map((error) => [error.code, error.cause])).toEqual([
      ['ERR_DWS_SOCKET_ERROR', problems[0]],
      ['ERR_DWS_SOCKET_ERROR', problems[1]],
    ])
    expect(errors[0]?.message).toMatch(
      /options\.protocols\(\) failed, so no WebSocket to ws:\/\/.+ was opened/,
    )
    expect(events.of('close')).toEqual([
      { code: 1006, reason: '', wasClean: false, willReconnect: true },
      { code: 1006, reason: '', wasClean: false, willReconnect: true },
    ])
    expect(events.of('reconnecting').map((retry) => retry.attempt)).toEqual([1, 2])
    expect(made()).toBe(1)
    expect(client.state).toBe('open')
  })

  it.each<[string, () => unknown, RegExp]>([
    ['an invalid name', () => [TOKEN_PROTOCOL, 'a token'], /options\.protocols\(\)\[1\] holds " "/],
    ['no offer at all', () => undefined, /options\.protocols\(\) must return \(or resolve to\)/],
    ['a promise of a name twice', () => Promise.resolve(['a.v1', 'a.v1']), /\[1\] repeats/],
  ])(
    'stops for good when the function returns %s: ERR_DWS_INVALID_OPTIONS, a final close, and no socket',
    async (_what, protocols, message) => {
      const { WebSocket, made } = countingWebSocket()
      const { client, events } = open(url(), {
        ...fastRetry,
        WebSocket,
        protocols: protocols as ProtocolsOption,
      })
      const error = await events.next('error')
      expect(error.code).toBe('ERR_DWS_INVALID_OPTIONS')
      expect(error.message).toMatch(message)
      expect(await events.next('close')).toEqual({
        code: 1006,
        reason: '',
        wasClean: false,
        willReconnect: false,
      })
      await sleep(200)
      expect(client.state).toBe('closed')
      expect(events.of('reconnecting')).toEqual([])
      expect(made()).toBe(0)
    },
  )

  it('close() while the function is pending ends the client at once, and its late offer opens nothing', async () => {
    let give: (protocols: string[]) => void = () => undefined
    const { WebSocket, made } = countingWebSocket()
    const { client, events } = open(url(), {
      WebSocket,
      protocols: () => new Promise<string[]>((resolveOffer) => (give = resolveOffer)),
    })
    client.close()
    expect(client.state).toBe('closed')
    expect(events.of('close')).toEqual([{ code: 1000, reason: '', wasClean: true, willReconnect: false }])

    give([TOKEN_PROTOCOL, 'too-late'])
    await sleep(200)
    expect(made()).toBe(0)
    expect(events.of('close')).toHaveLength(1)
    expect(events.of('error')).toEqual([])
  })
})
