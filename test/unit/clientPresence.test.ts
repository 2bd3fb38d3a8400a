import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { connect, type Client, type PresenceChange } from '../../src/client/index.js'
import { encodePresenceDiff, encodePresenceList } from '../../src/shared/presenceFrames.js'
import { fakeWebSockets, type FakeSocket, type FakeWebSockets } from './fakeWebSocket.js'

const SESSION = 'dws.session.v1'

const bo = { key: 'u-17', meta: { name: 'Bo' }, connections: 1 }
const cy = { key: 'u-42', meta: { name: 'Cy' }, connections: 1 }

interface Started {
  fake: FakeWebSockets
  client: Client
  changes: PresenceChange[]
  errors: unknown[]
}

const clients: Client[] = []

function start(): Started {
  const fake = fakeWebSockets()
  const client = connect('ws://example.test/ws', {
    WebSocket: fake.WebSocket,
    reconnect: { initialDelay: 10, maxDelay: 10 },
  })
  clients.push(client)
  const changes: PresenceChange[] = []
  const errors: unknown[] = []
  client.on('presence', (change) => changes.push(change))
  client.on('error', (error) => errors.push(error))
  return { fake, client, changes, errors }
}

function welcome(resumed: boolean, id = 7): string {
  return JSON.stringify({
    t: 'welcome',
    v: 1,
    id,
    token: 'token-1-0123456789abcdef',
    resumed,
    handled: 0,
    last: 0,
    window: 120_000,
  })
}

function establish(started: Started, resumed = false): FakeSocket {
  const socket = started.fake.last()
  socket.accept(SESSION)
  socket.receive(welcome(resumed))
  return socket
}

beforeEach(() => {
  vi.useFakeTimers()
})

afterEach(() => {
  for (const client of clients.splice(0)) client.close()
  vi.useRealTimers()
})

describe('client.presence and the presence event', () => {
  it('is empty before the first list, then holds the list the server sent after its welcome', () => {
    const started = start()
    expect(started.client.presence).toEqual([])
    const socket = establish(started)
    socket.receive(encodePresenceList([bo, cy]))
    expect(started.client.presence).toEqual([bo, cy])
    expect(started.changes).toEqual([{ joined: [bo, cy], updated: [], left: [] }])
  })

  it('applies diffs: a join adds, an update replaces, a leave removes, each told as it happened', () => {
    const started = start()
    const socket = establish(started)
    socket.receive(encodePresenceList([bo]))
    const boTwice = { ...bo, connections: 2 }
    socket.receive(encodePresenceDiff([cy], [boTwice], []))
    expect(started.client.presence).toEqual([boTwice, cy])
    socket.receive(encodePresenceDiff([], [], ['u-17']))
    expect(started.client.presence).toEqual([cy])
    expect(started.changes.slice(1)).toEqual([
      { joined: [cy], updated: [boTwice], left: [] },
      { joined: [], updated: [], left: [boTwice] },
    ])
  })

  it('tells nothing for a diff that changes nothing it holds (a join it has, a leave of a stranger)', () => {
    const started = start()
    const socket = establish(started)
    socket.receive(encodePresenceList([bo]))
    socket.receive(encodePresenceDiff([bo], [], ['u-99']))
    expect(started.changes).toHaveLength(1)
    expect(started.client.presence).toEqual([bo])
  })

  it('keeps the list across a drop, and after the resume tells only what differs from the new list', async () => {
    const started = start()
    const first = establish(started)
    first.receive(encodePresenceList([bo, cy]))
    first.drop()
    expect(started.client.presence).toEqual([bo, cy])
    await vi.advanceTimersByTimeAsync(20)
    const second = establish(started, true)
    second.receive(encodePresenceList([bo, cy]))
    expect(started.changes).toHaveLength(1)
    const cyAway = { ...cy, meta: { name: 'Cy', away: true } }
    second.receive(encodePresenceList([cyAway]))
    expect(started.changes.at(-1)).toEqual({ joined: [], updated: [cyAway], left: [bo] })
    expect(started.client.presence).toEqual([cyAway])
  })

  it('takes a presence frame before the welcome as a protocol error', () => {
    const started = start()
    const socket = started.fake.last()
    socket.accept(SESSION)
    socket.receive(encodePresenceList([bo]))
    expect(started.errors).toMatchObject([{ code: 'ERR_DWS_PROTOCOL_ERROR' }])
    expect(started.client.state).toBe('closed')
  })

  it('takes a malformed presence frame as a protocol error', () => {
    const started = start()
    const socket = establish(started)
    socket.receive('{"t":"presence","members":[{"key":"u-17"}]}')
    expect(started.errors).toMatchObject([{ code: 'ERR_DWS_PROTOCOL_ERROR' }])
    expect(started.client.presence).toEqual([])
  })
})
