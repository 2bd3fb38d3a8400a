import { afterEach, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { connect, type Client } from '../../src/client/index.js'
import type { ClientMessage, ServerMessage } from '../../src/demo/chat/protocol.js'
import { within } from './client.js'
import { recordEvents, type ClientEventLog } from './clientEvents.js'
import { useDevServer } from './useDevServer.js'

const dev = useDevServer()
const clients: Client<ServerMessage, ClientMessage>[] = []

afterEach(() => {
  for (const client of clients.splice(0)) client.close()
})

/** A chat tab in Node, through the package's client, as the page does it: the name goes with the upgrade. */
async function member(
  room: string,
  name: string,
): Promise<{
  client: Client<ServerMessage, ClientMessage>
  events: ClientEventLog<ServerMessage>
}> {
  const client = connect<ServerMessage, ClientMessage>(
    { url: `${dev().origin}/chat/ws?name=${encodeURIComponent(name)}`, room },
    { reconnect: false },
  )
  clients.push(client)
  const events = recordEvents(client)
  // Ready once the room's list, which always holds the newcomer's own member, has come.
  await events.next('presence', () => client.presence.some((member) => member.key === name.trim()))
  return { client, events }
}

function handshakeStatus(url: string, origin: string): Promise<number> {
  return within(
    new Promise<number>((resolve, reject) => {
      const socket = new WebSocket(url, { origin })
      socket.once('unexpected-response', (_request, response) => {
        resolve(response.statusCode ?? 0)
        socket.terminate()
      })
      socket.once('open', () => {
        resolve(101)
        socket.close()
      })
      socket.once('error', reject)
    }),
    `the handshake from ${origin}`,
  )
}

describe('the chat endpoint at /chat/ws/<room>?name=<name>', () => {
  it('welcomes a new session with its room and name, lists the members by name, and tells the others who joined', async () => {
    const alice = await member('chat-welcome', 'Alice')
    const bob = await member('chat-welcome', '  Bob ')

    expect(await bob.events.next('message')).toEqual({ type: 'welcome', room: 'chat-welcome', name: 'Bob' })
    const list = [
      { key: 'Alice', meta: {}, connections: 1 },
      { key: 'Bob', meta: {}, connections: 1 },
    ]
    expect(bob.client.presence).toEqual(list)
    expect(await alice.events.next('presence', ({ joined }) => joined.length > 0)).toEqual({
      joined: [list[1]],
      updated: [],
      left: [],
    })
    expect(alice.client.presence).toEqual(list)
  })

  it('counts two connections under one name as one member, who leaves with the last of them', async () => {
    const alice = await member('chat-tabs', 'Alice')
    const tab = await member('chat-tabs', 'Bob')
    const otherTab = await member('chat-tabs', 'Bob')

    expect(otherTab.client.presence).toEqual([
      { key: 'Alice', meta: {}, connections: 1 },
      { key: 'Bob', meta: {}, connections: 2 },
    ])
    expect(await alice.events.next('presence', ({ updated }) => updated.length > 0)).toEqual({
      joined: [],
      updated: [{ key: 'Bob', meta: {}, connections: 2 }],
      left: [],
    })

    // client.close() ends a session at once: no resume window to wait out.
    tab.client.close()
    expect(await alice.events.next('presence', ({ updated }) => updated.length > 0)).toEqual({
      joined: [],
      updated: [{ key: 'Bob', meta: {}, connections: 1 }],
      left: [],
    })
    otherTab.client.close()
    expect(await alice.events.next('presence', ({ left }) => left.length > 0)).toEqual({
      joined: [],
      updated: [],
      left: [{ key: 'Bob', meta: {}, connections: 1 }],
    })
    expect(alice.client.presence).toEqual([{ key: 'Alice', meta: {}, connections: 1 }])
  })

  it('sends what a member says to everyone in the room, the sender included, and to no other room', async () => {
    const alice = await member('chat-say', 'Alice')
    const bob = await member('chat-say', 'Bob')
    const elsewhere = await member('chat-elsewhere', 'Carol')

    alice.client.send({ type: 'say', text: '  hello  ' })
    const heard = await Promise.all(
      [alice, bob].map(({ events }) => events.next('message', (message) => message.type === 'said')),
    )

    for (const said of heard) expect(said).toMatchObject({ type: 'said', name: 'Alice', text: 'hello' })
    elsewhere.client.send({ type: 'say', text: 'anyone?' })
    await elsewhere.events.next('message', (message) => message.type === 'said')
    expect(bob.events.of('message').filter((message) => message.type === 'said')).toHaveLength(1)
  })

  it('refuses an upgrade without a usable name with 400, and refuses what is not chat', async () => {
    const url = `${dev().wsOrigin}/chat/ws/chat-refused`
    expect(await handshakeStatus(url, dev().origin)).toBe(400)
    expect(await handshakeStatus(`${url}?name=%20%20`, dev().origin)).toBe(400)
    expect(await handshakeStatus(`${url}?name=${'x'.repeat(33)}`, dev().origin)).toBe(400)
    expect(await handshakeStatus(`${url}?name=${'x'.repeat(32)}`, dev().origin)).toBe(101)

    // Typed loosely on purpose: these are what a page may not send.
    const { client, events } = await member('chat-refused', 'Dan')
    const loose = client as unknown as Client<ServerMessage, unknown>
    loose.send({ type: 'say', text: '   ' })
    loose.send({ type: 'join', name: 'Eve' })
    loose.send({ type: 'dance' })

    for (let i = 0; i < 3; i++) {
      expect(await events.next('message', (message) => message.type !== 'welcome')).toMatchObject({
        type: 'refused',
      })
    }
    expect(client.state).toBe('open')
  })

  it('admits the page at 127.0.0.1 or localhost on any port and refuses other sites with 403', async () => {
    const url = `${dev().wsOrigin}/chat/ws/chat-origins?name=Alice`
    expect(await handshakeStatus(url, dev().origin)).toBe(101)
    expect(await handshakeStatus(url, 'http://localhost:5173')).toBe(101)
    expect(await handshakeStatus(url, 'https://evil.example')).toBe(403)
    expect(await handshakeStatus(url, 'http://127.0.0.1.evil.example')).toBe(403)
  })
})
