import { exports } from 'cloudflare:workers'
import { openSocket } from 'durable-websocket/testing'
import { describe, expect, it } from 'vitest'

describe('a chat room at /chat/<room>', () => {
  it('welcomes each newcomer, tells the others, and passes lines to everyone', async () => {
    const ada = await openSocket(exports.default, '/chat/lobby?name=ada')
    expect(await ada.nextMessage()).toEqual({ type: 'welcome', id: 1, names: ['ada'] })
    const bob = await openSocket(exports.default, '/chat/lobby?name=bob')
    expect(await bob.nextMessage()).toEqual({ type: 'welcome', id: 2, names: ['ada', 'bob'] })
    expect(await ada.nextMessage()).toEqual({ type: 'joined', name: 'bob' })

    bob.send({ text: 'hi ada' })
    const line = { type: 'said', name: 'bob', text: 'hi ada' }
    expect(await ada.nextMessage()).toEqual(line)
    expect(await bob.nextMessage()).toEqual(line)

    await bob.close()
    expect(await ada.nextMessage()).toEqual({ type: 'left', name: 'bob' })
    await ada.close()
  })

  it('serves the latest lines of a room over RPC at /rooms/<room>/history', async () => {
    const cleo = await openSocket(exports.default, '/chat/history-room?name=cleo')
    await cleo.nextMessage()
    cleo.send({ text: 'first' })
    await cleo.nextMessage()
    const response = await exports.default.fetch('http://localhost/rooms/history-room/history')
    expect(await response.json()).toEqual([{ type: 'said', name: 'cleo', text: 'first' }])
    await cleo.close()
  })

  it('answers 400 for a history route whose room is not a room name', async () => {
    const response = await exports.default.fetch('http://localhost/rooms/a..b/history')
    expect(response.status).toBe(400)
  })
})
