import { env } from 'cloudflare:workers'
import { evictDurableObject } from 'cloudflare:test'
import { describe, expect, it } from 'vitest'
import { unloggedSessions, type UnloggedSessionsObject } from './fixture/endpoints/sessions.js'
import { Client, eventually, upgrade } from './client.js'
import { closesOf } from './closesOf.js'
import { SESSION_PROTOCOL, SessionClient } from './sessionClient.js'
import { opened, sessionsRoom } from './sessionFixture.js'

describe('a plain client on an object with sessions on', () => {
  it('sees exactly the frames it saw before sessions: no welcome, no numbers, no acks', async () => {
    const room = sessionsRoom('plain')
    const response = await upgrade('/sessions/plain')
    expect(response.status).toBe(101)
    expect(response.headers.get('Sec-WebSocket-Protocol')).toBeNull()
    if (response.webSocket === null) throw new Error('expected a socket')
    const plain = new Client(response.webSocket)
    const greeting = await plain.nextText()
    expect(greeting).toMatch(/^open:\d+:false$/)
    const id = Number(greeting.split(':')[1])
    expect(await plain.ask('echo:hi')).toBe('echo:hi')
    const session = await opened('/sessions/plain')
    // One broadcast: the session client gets it numbered, the plain one as it was sent.
    session.send('all:to everyone')
    expect(await plain.nextText()).toBe('all:to everyone')
    expect(await session.nextPayload()).toBe('all:to everyone')
    plain.send(new Uint8Array([1, 2, 3]))
    plain.send('echo:after bytes')
    expect(await plain.nextText()).toBe('echo:after bytes')
    expect((await room.log()).filter((entry) => entry.id === id && entry.event === 'message')).toEqual([
      { event: 'message', id, message: 'echo:hi' },
      { event: 'message', id, message: '(3 bytes)' },
      { event: 'message', id, message: 'echo:after bytes' },
    ])
    // A drop of a plain client ends it at once: close runs, with 1006.
    await room.drop(id)
    expect(await closesOf(room, id)).toMatchObject([{ event: 'close', id, code: 1006 }])
    session.close(1000)
    await session.whenClosed()
  })

  it('is what an offer with a resume entry but no dws.session.v1 gets: a plain socket', async () => {
    const response = await upgrade('/sessions/plain-offer', {
      'Sec-WebSocket-Protocol': 'dws.resume.0.AAAAAAAAAAAAAAAAAAAAAAAA, chat',
    })
    expect(response.status).toBe(101)
    expect(response.headers.get('Sec-WebSocket-Protocol')).toBeNull()
    const socket = response.webSocket
    if (socket === null) throw new Error('expected a socket')
    socket.accept()
    const first = await new Promise<unknown>((resolve) => {
      socket.addEventListener('message', (event) => {
        resolve(event.data)
      })
    })
    expect(first).toMatch(/^open:\d+:false$/)
    socket.close(1000)
  })
})

describe('a malformed resume entry', () => {
  it.each([
    ['no token', 'dws.resume.5'],
    ['a token too short', 'dws.resume.5.abc'],
    ['a negative position', 'dws.resume.-1.AAAAAAAAAAAAAAAAAAAAAAAAAA'],
    ['a position that is not a number', 'dws.resume.x.AAAAAAAAAAAAAAAAAAAAAAAAAA'],
    ['a token that is not base64url', 'dws.resume.5.AAAAAAAAAAAAAAAAAAAAAAAAA*'],
  ])('(%s) is ignored: the client gets a new session', async (_what, entry) => {
    const response = await upgrade('/sessions/malformed-resume', {
      'Sec-WebSocket-Protocol': `${SESSION_PROTOCOL}, ${entry}`,
    })
    expect(response.status).toBe(101)
    expect(response.headers.get('Sec-WebSocket-Protocol')).toBe(SESSION_PROTOCOL)
    const socket = response.webSocket
    if (socket === null) throw new Error('expected a socket')
    const first = new Promise<unknown>((resolve) => {
      socket.addEventListener('message', (event) => {
        resolve(event.data)
      })
    })
    socket.accept()
    expect(JSON.parse(String(await first))).toMatchObject({ t: 'welcome', resumed: false, handled: 0 })
    socket.close(1000)
  })

  it('with a token nobody holds gets a new session, and the session whose token it imitates goes on', async () => {
    const room = sessionsRoom('unknown-token')
    const owner = await SessionClient.open('/sessions/unknown-token')
    const forged = await SessionClient.open('/sessions/unknown-token', {
      resume: { last: owner.position.last, token: `${owner.position.token.slice(0, -2)}AA` },
    })
    expect(forged.resumed).toBe(false)
    expect(forged.id).not.toBe(owner.id)
    expect(await room.connectionIds()).toEqual([owner.id, forged.id])
    for (const client of [owner, forged]) client.close(1000)
    await Promise.all([owner.whenClosed(), forged.whenClosed()])
  })
})

describe('sessions with resume: false', () => {
  const room = (name: string): DurableObjectStub<UnloggedSessionsObject> =>
    unloggedSessions.room<UnloggedSessionsObject>(env, name)

  it('still names dws.session.v1 and numbers frames, with a window of 0', async () => {
    const session = await SessionClient.open('/unlogged-sessions/named')
    expect(session.protocol).toBe(SESSION_PROTOCOL)
    expect(session.welcome).toMatchObject({ resumed: false, handled: 0, window: 0 })
    expect(await session.nextPayload()).toBe(`open:${String(session.id)}:false`)
    session.send('echo:one')
    expect(await session.nextPayload()).toBe('echo:one')
    session.close(1000)
    await session.whenClosed()
  })

  it('ends the session on a drop: close runs with 1006, and the token resumes nothing', async () => {
    const stub = room('dropped')
    const session = await opened('/unlogged-sessions/dropped')
    await session.drop(stub)
    expect(await closesOf(stub, session.id)).toMatchObject([{ event: 'close', id: session.id, code: 1006 }])
    const again = await session.resume('/unlogged-sessions/dropped')
    expect(again.resumed).toBe(false)
    expect(again.id).not.toBe(session.id)
    again.close(1000)
    await again.whenClosed()
  })

  it('keeps numbering upwards across a hibernation, so the client never sees a number twice', async () => {
    const stub = room('hibernated')
    const session = await opened('/unlogged-sessions/hibernated')
    session.send('echo:before')
    expect(await session.nextPayload()).toBe('echo:before')
    const before = session.position.last
    await evictDurableObject(stub, { webSockets: 'hibernate' })
    session.send('echo:after')
    const after = await session.next()
    expect(after.payload).toBe('echo:after')
    expect(after.seq).toBeGreaterThan(before)
    await stub.broadcast('rpc:after')
    expect((await session.next()).payload).toBe('rpc:after')
    session.close(1000)
    await session.whenClosed()
    await eventually(
      () => closesOf(stub, session.id),
      (found) => found.length === 1,
    )
  })
})
