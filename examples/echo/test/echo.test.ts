import { env, exports } from 'cloudflare:workers'
import { evictDurableObject } from 'cloudflare:test'
import { openSocket } from 'durable-websocket/testing'
import { describe, expect, it, vi } from 'vitest'

describe('the echo at /ws', () => {
  it('answers every JSON message with { received: message }', async () => {
    const socket = await openSocket(exports.default, '/ws')
    socket.send({ hello: 'world' })
    expect(await socket.nextMessage()).toEqual({ received: { hello: 'world' } })
    socket.send('again')
    expect(await socket.nextMessage()).toEqual({ received: 'again' })
    await socket.close()
  })

  it('keeps each room in its own object', async () => {
    const lobby = await openSocket(exports.default, '/ws/lobby')
    lobby.send('hi')
    await lobby.nextMessage()
    expect(await env.WEBSOCKET.getByName('lobby').count()).toBe(1)
    expect(await env.WEBSOCKET.getByName('default').count()).toBe(0)
    await lobby.close()
  })

  it('answers on the same socket after the object hibernates', async () => {
    const socket = await openSocket(exports.default, '/ws/naps')
    socket.send('before')
    await socket.nextMessage()

    // What the runtime does to an idle object: gone from memory, its sockets still open.
    await evictDurableObject(env.WEBSOCKET.getByName('naps'), { webSockets: 'hibernate' })

    socket.send('after')
    expect(await socket.nextMessage()).toEqual({ received: 'after' })
    await socket.close()
  })

  it('forgets a connection once it has closed', async () => {
    const socket = await openSocket(exports.default, '/ws/leaving')
    await socket.close()
    await vi.waitFor(async () => {
      expect(await env.WEBSOCKET.getByName('leaving').count()).toBe(0)
    })
  })

  it('closes with 1007 on text that is not JSON', async () => {
    const socket = await openSocket(exports.default, '/ws')
    socket.sendFrame('hello')
    expect(await socket.nextClose()).toMatchObject({ code: 1007 })
  })

  it('refuses a room name with a dot-dot with 400', async () => {
    await expect(openSocket(exports.default, '/ws/a..b')).rejects.toMatchObject({ status: 400 })
  })

  it('leaves every other path to the app', async () => {
    const response = await exports.default.fetch('http://localhost/')
    expect(await response.text()).toBe('Connect a WebSocket client to /ws\n')
  })
})
