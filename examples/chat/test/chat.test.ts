import { exports } from 'cloudflare:workers'
import { openSession, openSocket } from 'durable-websocket/testing'
import { describe, expect, it } from 'vitest'

/** The room's members, as the members route reads them over RPC. */
async function members(room: string): Promise<unknown> {
  const response = await exports.default.fetch(`http://localhost/rooms/${room}/members`)
  return response.json()
}

describe('a chat room at /chat/<room>', () => {
  it('passes each line to everyone in the room, under the name its sender joined with', async () => {
    const ada = await openSocket(exports.default, '/chat/lobby?name=ada')
    const bob = await openSocket(exports.default, '/chat/lobby?name=bob')
    bob.send({ text: 'hi ada' })
    const line = { type: 'said', name: 'bob', text: 'hi ada' }
    expect(await ada.nextMessage()).toEqual(line)
    expect(await bob.nextMessage()).toEqual(line)
    await bob.close()
    await ada.close()
  })

  it('counts two tabs with one name as one member, who leaves with the last tab', async () => {
    const tab = await openSession(exports.default, '/chat/tabs?name=ada')
    const other = await openSession(exports.default, '/chat/tabs?name=ada')
    const bob = await openSession(exports.default, '/chat/tabs?name=bob')
    expect(await members('tabs')).toEqual([
      { key: 'ada', meta: {}, connections: 2 },
      { key: 'bob', meta: {}, connections: 1 },
    ])
    await tab.close()
    await other.close()
    expect(await members('tabs')).toEqual([{ key: 'bob', meta: {}, connections: 1 }])
    await bob.close()
  })

  it('keeps a member whose connection dropped, while its session may still resume', async () => {
    const ada = await openSession(exports.default, '/chat/dropped?name=ada')
    await ada.drop()
    expect(await members('dropped')).toEqual([{ key: 'ada', meta: {}, connections: 1 }])
    const back = await ada.resume()
    expect(back.resumed).toBe(true)
    expect(await members('dropped')).toEqual([{ key: 'ada', meta: {}, connections: 1 }])
    await back.close()
  })

  it('serves the latest lines of a room over RPC at /rooms/<room>/history', async () => {
    const cleo = await openSocket(exports.default, '/chat/history-room?name=cleo')
    cleo.send({ text: 'first' })
    await cleo.nextMessage()
    const response = await exports.default.fetch('http://localhost/rooms/history-room/history')
    expect(await response.json()).toEqual([{ type: 'said', name: 'cleo', text: 'first' }])
    await cleo.close()
  })

  it('answers 400 for a route whose room is not a room name', async () => {
    for (const route of ['history', 'members']) {
      const response = await exports.default.fetch(`http://localhost/rooms/a..b/${route}`)
      expect(response.status).toBe(400)
    }
  })
})
