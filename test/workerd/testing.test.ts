import { env, exports } from 'cloudflare:workers'
import { evictDurableObject } from 'cloudflare:test'
import { assert, describe, expect, it, vi } from 'vitest'
import { HandshakeError, openSocket, type TestSocket } from '../../src/testing/index.js'
import { bracketed } from './fixture/endpoints/custom.js'
import { stubOf } from './client.js'

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

async function done(...sockets: TestSocket[]): Promise<void> {
  await Promise.all(sockets.map((socket) => socket.close()))
}

describe('openSocket(worker, path, options?)', () => {
  it('opens a socket through the worker’s fetch and speaks JSON by default', async () => {
    const socket = await openSocket(worker, '/json')
    socket.send({ hello: 'world' })
    expect(await socket.nextMessage()).toEqual({ received: { hello: 'world' }, kind: 'object' })
    await done(socket)
  })

  it('sends the headers it is given with the upgrade request', async () => {
    const socket = await openSocket(worker, '/lifecycle?room=kitchen', {
      headers: new Headers({ 'x-client': 'testing helpers' }),
    })
    expect(await socket.nextMessage()).toMatchObject({
      path: '/lifecycle',
      room: 'kitchen',
      client: 'testing helpers',
      upgrade: 'websocket',
    })
    await done(socket)
  })

  it('passes the upgrade through the module’s middleware', async () => {
    const socket = await openSocket(worker, '/guarded', { headers: { Authorization: 'Bearer letmein' } })
    expect(await socket.nextMessage()).toMatchObject({
      locals: { order: ['first', 'second'], user: 'alice' },
    })
    await done(socket)
  })

  it('rejects with a HandshakeError carrying the status and body when the worker refuses', async () => {
    const unauthorized = await rejection(openSocket(worker, '/guarded'))
    assert.instanceOf(unauthorized, HandshakeError)
    expect(unauthorized).toMatchObject({ status: 401, body: 'Unauthorized\n' })
    expect(unauthorized.headers.get('WWW-Authenticate')).toBe('Bearer')
    expect(unauthorized.message).toBe(
      'expected 101 Switching Protocols from http://localhost/guarded, got 401: Unauthorized',
    )

    const forbidden = await rejection(
      openSocket(worker, '/strict-origins', { headers: { Origin: 'https://evil.example' } }),
    )
    expect(forbidden).toMatchObject({ name: 'HandshakeError', status: 403 })
  })

  it('decodes and encodes with a custom serializer', async () => {
    const socket = await openSocket(worker, '/custom', { serializer: bracketed })
    socket.send({ a: 1 })
    expect(await socket.nextMessage()).toEqual({ received: { a: 1 } })
    await done(socket)
  })

  it('sends and reads strings as they are with serializer: false', async () => {
    const socket = await openSocket(worker, '/raw', { serializer: false })
    const greeting: string = await socket.nextMessage()
    expect(greeting).toMatch(/^\d+$/)
    socket.send('hello')
    expect(await socket.nextMessage()).toBe('string:hello')
    await done(socket)
  })

  it('refuses a timeout that is not a positive number', async () => {
    const error = await rejection(openSocket(worker, '/json', { timeout: 0 }))
    expect(error).toBeInstanceOf(TypeError)
  })
})

describe('socket.nextMessage(options?)', () => {
  it('returns messages in the order they arrived, even those that came before the call', async () => {
    const socket = await openSocket(worker, '/ordering', { serializer: false })
    for (const word of ['one', 'two', 'three']) socket.send(word)
    expect([await socket.nextMessage(), await socket.nextMessage(), await socket.nextMessage()]).toEqual([
      'done one',
      'done two',
      'done three',
    ])
    await done(socket)
  })

  it('fails after the timeout when nothing comes', async () => {
    const socket = await openSocket(worker, '/json')
    const error = await rejection(socket.nextMessage({ timeout: 50 }))
    expect(error.message).toBe('timed out after 50 ms waiting for a message')
    await done(socket)
  })

  it('fails with the close code and reason when the socket closes first', async () => {
    const socket = await openSocket(worker, '/closer')
    socket.send({ code: 4001, reason: 'bye' })
    const error = await rejection(socket.nextMessage())
    expect(error.message).toBe('the socket closed (4001 bye) before a message came')
  })

  it('leaves a binary frame queued for nextFrame()', async () => {
    const socket = await openSocket(worker, '/json')
    socket.send(new Uint8Array([1, 2, 3]))
    expect(await socket.nextMessage()).toEqual({ binary: true, isArrayBuffer: true, bytes: [1, 2, 3] })
    const error = await rejection(socket.nextMessage())
    expect(error.message).toMatch(/binary \(3 bytes\).*nextFrame\(\)/)
    const frame = await socket.nextFrame()
    expect(frame).toBeInstanceOf(ArrayBuffer)
    expect([...new Uint8Array(frame as ArrayBuffer)]).toEqual([1, 2, 3])
    await done(socket)
  })

  it('fails with the raw text when the serializer cannot decode it', async () => {
    const socket = await openSocket(worker, '/raw')
    expect(await socket.nextMessage()).toEqual(expect.any(Number))
    socket.sendFrame('hello')
    const error = await rejection(socket.nextMessage())
    expect(error.message).toBe('the serializer could not decode the text frame "string:hello"')
    expect(error.cause).toBeInstanceOf(SyntaxError)
    await done(socket)
  })
})

describe('socket.send(message) and socket.sendFrame(frame)', () => {
  it('sends bytes untouched, whatever the serializer', async () => {
    const socket = await openSocket(worker, '/raw', { serializer: false })
    await socket.nextMessage()
    socket.send(new Uint8Array([7, 8]))
    expect(await socket.nextMessage()).toBe('binary 2')
    expect([...new Uint8Array((await socket.nextFrame()) as ArrayBuffer)]).toEqual([7, 8])
    await done(socket)
  })

  it('sends a frame past the serializer, for testing malformed_message', async () => {
    const socket = await openSocket(worker, '/json')
    socket.sendFrame('{not json')
    expect(await socket.nextMessage()).toEqual({ malformed: '{not json', error: 'SyntaxError' })
    await done(socket)
  })

  it('throws at once for a value that needs a serializer it does not have', async () => {
    // Typed as taking anything, so the call reaches the run-time check.
    const socket: TestSocket = await openSocket(worker, '/raw', { serializer: false })
    expect(() => {
      socket.send({ not: 'text' })
    }).toThrow(expect.objectContaining({ code: 'ERR_DWS_UNSENDABLE_MESSAGE' }))
    await done(socket)
  })
})

describe('socket.nextClose(options?)', () => {
  it('resolves with the code and reason the server closed with', async () => {
    const socket = await openSocket(worker, '/closer')
    socket.send({ code: 4002, reason: 'done here' })
    expect(await socket.nextClose()).toEqual({ code: 4002, reason: 'done here', wasClean: true })
    expect(socket.isOpen).toBe(false)
  })

  it('fails after the timeout while the socket stays open', async () => {
    const socket = await openSocket(worker, '/json')
    const error = await rejection(socket.nextClose({ timeout: 50 }))
    expect(error.message).toBe('timed out after 50 ms waiting for the socket to close')
    await done(socket)
  })
})

describe('socket.close(code?, reason?, options?)', () => {
  it('resolves once the server answered, and the close handler sees the code', async () => {
    const lifecycle = stubOf(env.LIFECYCLE)
    const socket = await openSocket<{ id: number }>(worker, '/lifecycle')
    const { id } = await socket.nextMessage()
    expect(await socket.close(4005, 'test over')).toEqual({ code: 4005, reason: 'test over', wasClean: true })
    await vi.waitFor(async () => {
      expect(await lifecycle.log()).toContainEqual({ event: 'close', id, code: 4005, reason: 'test over' })
    })
  })

  it('resolves with the server’s close when the server closed first', async () => {
    const socket = await openSocket(worker, '/closer')
    socket.send({ code: 4003 })
    await socket.nextClose()
    expect(await socket.close()).toMatchObject({ code: 4003 })
  })
})

describe('with evictDurableObject(stub, { webSockets: "hibernate" })', () => {
  it('keeps reading the same socket after the object hibernated, with conn.data intact', async () => {
    const socket = await openSocket(worker, '/data')
    const { id } = await socket.nextMessage<{ id: number }>()
    socket.send({ op: 'set', key: 'name', value: 'Ada' })
    await socket.nextMessage()
    await evictDurableObject(stubOf(env.DATA), { webSockets: 'hibernate' })
    socket.send({ op: 'get' })
    expect(await socket.nextMessage()).toEqual({ id, data: { name: 'Ada' } })
    await done(socket)
  })
})
