import { exports } from 'cloudflare:workers'
import { assert, describe, expect, it, vi } from 'vitest'
import { HandshakeError, openSession, type TestSession } from '../../src/testing/index.js'
import { SESSION_WINDOW_MS } from './fixture/endpoints/sessions.js'
import { sessionsRoom } from './sessionFixture.js'

const worker = exports.default

/** Fails the test if the promise resolves; returns what it rejected with. */
async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise
  } catch (error) {
    return error as Error
  }
  throw new Error('expected the promise to reject')
}

/** A session on the sessions fixture (resume on, a window no test outlasts), its open greeting read. */
async function greeted(room: string, query = ''): Promise<TestSession<string>> {
  const session = await openSession(worker, `/sessions/${room}${query}`, { serializer: false })
  expect(await session.nextMessage()).toBe(`open:${String(session.id)}:false`)
  return session
}

/** How many times the room's message handler saw `message`. */
async function handledCount(room: string, message: string): Promise<number> {
  const log = await sessionsRoom(room).log()
  return log.filter((entry) => entry.event === 'message' && entry.message === message).length
}

describe('openSession(worker, path, options?)', () => {
  it('opens a session that gets an id, a welcome and the server’s greeting', async () => {
    const session = await openSession(worker, '/sessions/testing-open', { serializer: false })
    expect(session.id).toBeGreaterThan(0)
    expect(session.resumed).toBe(false)
    expect(session.welcome).toMatchObject({
      id: session.id,
      resumed: false,
      handled: 0,
      window: SESSION_WINDOW_MS,
    })
    expect(await session.nextMessage()).toBe(`open:${String(session.id)}:false`)
    expect(session.send('echo:hello')).toBe(1)
    expect(await session.nextMessage()).toBe('echo:hello')
    await session.close()
  })

  it('rejects with a HandshakeError when the 101 does not name the session subprotocol', async () => {
    const plain = {
      fetch(): Response {
        const [client, server] = Object.values(new WebSocketPair())
        server!.accept()
        return new Response(null, { status: 101, webSocket: client! })
      },
    }
    const error = await rejection(openSession(plain, '/plain'))
    assert.instanceOf(error, HandshakeError)
    expect(error.status).toBe(101)
    expect(error.message).toBe(
      'the 101 from http://localhost/plain named no subprotocol, not dws.session.v1: nothing there speaks sessions. Point openSession() at a durable-websocket mount, or test a plain WebSocket endpoint with openSocket().',
    )
  })

  it('refuses protocols that are the session protocol’s own', async () => {
    const error = await rejection(
      openSession(worker, '/sessions/testing-bad', { protocols: ['dws.resume.1.x'] }),
    )
    expect(error).toMatchObject({ name: 'DurableWebSocketError', code: 'ERR_DWS_INVALID_OPTIONS' })
    expect(error.message).toMatch(/leave those out/)
  })
})

describe('session.drop(code?) and session.resume()', () => {
  it('comes back with the same id, resumed, and gets what was sent while it was away exactly once', async () => {
    const away = await greeted('testing-away')
    const stayer = await greeted('testing-away')
    await away.drop()
    stayer.send('others:one')
    stayer.send('others:two')
    stayer.send('echo:sent both')
    expect(await stayer.nextMessage()).toBe('echo:sent both')

    const back = await away.resume()
    expect(back.id).toBe(away.id)
    expect(back.resumed).toBe(true)
    expect(await back.nextMessage()).toBe('others:one')
    expect(await back.nextMessage()).toBe('others:two')
    expect(await back.nextMessage()).toBe(`open:${String(away.id)}:true`)
    // Had either come twice, it would be read here instead of the echo.
    back.send('echo:nothing more')
    expect(await back.nextMessage()).toBe('echo:nothing more')
    await Promise.all([back.close(), stayer.close()])
  })

  it('has a message sent just before the drop handled once after the resume', async () => {
    const first = await greeted('testing-in-flight')
    first.send('echo:in flight')
    await first.drop()

    const back = await first.resume()
    expect(back.resumed).toBe(true)
    // The server took it before the drop (its answer is replayed first) or after (resent, answered after open).
    const answers = [await back.nextMessage(), await back.nextMessage()]
    expect(answers.sort()).toEqual(['echo:in flight', `open:${String(first.id)}:true`].sort())
    back.send('echo:after')
    expect(await back.nextMessage()).toBe('echo:after')
    expect(await handledCount('testing-in-flight', 'echo:in flight')).toBe(1)
    await back.close()
  })

  it('refuses a drop code that would end the session', async () => {
    const session = await greeted('testing-drop-1000')
    const error = await rejection(session.drop(1000))
    expect(error).toMatchObject({ code: 'ERR_DWS_INVALID_CLOSE' })
    expect(session.socket.isOpen).toBe(true)
    await session.close()
  })
})

describe('session.close(code?) and session.resume()', () => {
  it('ends the session for good: a resume gets a new session and hands back what was never acknowledged', async () => {
    const room = sessionsRoom('testing-closed')
    const first = await greeted('testing-closed')
    first.send('echo:before')
    expect(await first.nextMessage()).toBe('echo:before')
    expect(await first.close()).toMatchObject({ code: 1000 })
    await vi.waitFor(async () => {
      expect(await room.log()).toContainEqual(
        expect.objectContaining({ event: 'close', id: first.id, code: 1000 }),
      )
    })

    const next = await first.resume()
    expect(next.resumed).toBe(false)
    expect(next.id).not.toBe(first.id)
    expect(next.unconfirmed).toEqual(['echo:before'])
    expect(await next.nextMessage()).toBe(`open:${String(next.id)}:false`)
    expect(next.send('echo:fresh')).toBe(1)
    expect(await next.nextMessage()).toBe('echo:fresh')
    await next.close()
  })
})

describe('session.ack()', () => {
  it('gets the server’s ack, which forgets the messages it covers', async () => {
    const session = await greeted('testing-ack')
    session.send('echo:a')
    expect(await session.nextMessage()).toBe('echo:a')
    expect(session.unacked).toEqual([1])
    session.ack()
    session.send('echo:b')
    expect(await session.nextMessage()).toBe('echo:b')
    expect(session.unacked).toEqual([2])
    await session.close()
  })
})
