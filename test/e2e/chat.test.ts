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

/** A chat member in Node, through the package's client, as the page does it. */
async function member(
  room: string,
  name: string,
): Promise<{
  client: Client<ServerMessage, ClientMessage>
  events: ClientEventLog<ServerMessage>
  id: number
}> {
  const client = connect<ServerMessage, ClientMessage>(
    { url: `${dev().origin}/chat/ws`, room },
    { reconnect: false },
  )
  clients.push(client)
  const events = recordEvents(client)
  client.on('open', () => client.send({ type: 'join', name }))
  const welcome = await events.next('message', (message) => message.type === 'welcome')
  if (welcome.type !== 'welcome') throw new Error('no welcome')
  return { client, events, id: welcome.you }
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

describe('the chat endpoint at /chat/ws/<room>', () => {
  it('welcomes a member with the room and everyone in it, and tells only the others that they joined', async () => {
    const alice = await member('chat-welcome', 'Alice')
    const bob = await member('chat-welcome', 'Bob')

    const welcome = bob.events.of('message').find((message) => message.type === 'welcome')
    expect(welcome).toEqual({
      type: 'welcome',
      you: bob.id,
      room: 'chat-welcome',
      members: [
        { id: alice.id, name: 'Alice' },
        { id: bob.id, name: 'Bob' },
      ],
    })
    expect(await alice.events.next('message', (message) => message.type === 'joined')).toEqual({
      type: 'joined',
      member: { id: bob.id, name: 'Bob' },
    })
    expect(bob.events.of('message').filter((message) => message.type === 'joined')).toEqual([])
  })

  it('sends what a member says to everyone in the room, the sender included, and to no other room', async () => {
    const alice = await member('chat-say', 'Alice')
    const bob = await member('chat-say', 'Bob')
    const elsewhere = await member('chat-elsewhere', 'Carol')

    alice.client.send({ type: 'say', text: '  hello  ' })
    const heard = await Promise.all(
      [alice, bob].map(({ events }) => events.next('message', (message) => message.type === 'said')),
    )

    for (const said of heard) {
      expect(said).toMatchObject({ type: 'said', from: { id: alice.id, name: 'Alice' }, text: 'hello' })
    }
    elsewhere.client.send({ type: 'say', text: 'anyone?' })
    await elsewhere.events.next('message', (message) => message.type === 'said')
    expect(bob.events.of('message').filter((message) => message.type === 'said')).toHaveLength(1)
  })

  it('tells the others when a member leaves', async () => {
    const alice = await member('chat-leave', 'Alice')
    const bob = await member('chat-leave', 'Bob')

    bob.client.close()

    expect(await alice.events.next('message', (message) => message.type === 'left')).toEqual({
      type: 'left',
      member: { id: bob.id, name: 'Bob' },
    })
  })

  it('refuses to relay for a connection that has not joined, and refuses what is not chat', async () => {
    // Typed loosely on purpose: these are what a page may not send.
    const client = connect<ServerMessage, unknown>(`${dev().origin}/chat/ws/chat-refused`, {
      reconnect: false,
    })
    clients.push(client)
    const events = recordEvents(client)
    client.send({ type: 'say', text: 'who am I?' })
    client.send({ type: 'join', name: '' })
    client.send({ type: 'dance' })

    for (let i = 0; i < 3; i++) {
      expect(await events.next('message')).toMatchObject({ type: 'refused' })
    }
    expect(client.state).toBe('open')
  })

  it('admits the page at 127.0.0.1 or localhost on any port and refuses other sites with 403', async () => {
    const url = `${dev().wsOrigin}/chat/ws/chat-origins`
    expect(await handshakeStatus(url, dev().origin)).toBe(101)
    expect(await handshakeStatus(url, 'http://localhost:5173')).toBe(101)
    expect(await handshakeStatus(url, 'https://evil.example')).toBe(403)
    expect(await handshakeStatus(url, 'http://127.0.0.1.evil.example')).toBe(403)
  })
})
