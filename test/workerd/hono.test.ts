import { env } from 'cloudflare:workers'
import { describe, expect, it } from 'vitest'
import { DEFAULT_ROOM, isRoomName, roomNameProblem } from '../../src/index.js'
import { rooms, type RoomsObject } from './fixture/endpoints/rooms.js'
import { joinJson, leave, request, upgrade } from './client.js'

interface Greeting {
  id: number
  room: string | null
}

describe('run() on a Hono route: (request, env, ctx, room)', () => {
  it('puts /live/lobby and /live/other in two rooms, each with its own object and ids', async () => {
    const lobby = await joinJson<Greeting>('/hono/live/hono-lobby')
    const other = await joinJson<Greeting>('/hono/live/hono-other')
    const lobbyAgain = await joinJson<Greeting>('/hono/live/hono-lobby')
    expect([lobby.room, other.room, lobbyAgain.room]).toEqual(['hono-lobby', 'hono-other', 'hono-lobby'])
    expect([lobby.id, other.id, lobbyAgain.id]).toEqual([1, 1, 2])
    expect(await rooms.room<RoomsObject>(env, 'hono-lobby').ids()).toEqual([1, 2])
    expect(await rooms.room<RoomsObject>(env, 'hono-other').ids()).toEqual([1])
    await leave(lobby.client, other.client, lobbyAgain.client)
  })

  it('uses the room "default" when the route passes none', async () => {
    const joined = await joinJson<Greeting>('/hono/live')
    expect(joined.room).toBe(DEFAULT_ROOM)
    await leave(joined.client)
  })

  it('refuses a :room that is not a room name with 400, also when Hono decoded it', async () => {
    for (const path of ['/hono/live/a..b', '/hono/live/a%2Fb', '/hono/live/caf%C3%A9']) {
      const response = await upgrade(path)
      expect(response.status).toBe(400)
      expect(response.webSocket).toBeNull()
      expect(await response.text()).toMatch(/^Bad Request: .*room name/)
    }
  })

  it('leaves the rest of the Hono app alone, and answers a GET without Upgrade with 426', async () => {
    const hello = await request('/hono/hello')
    expect(await hello.text()).toBe('hi from hono')
    expect((await request('/hono/live/hono-lobby')).status).toBe(426)
  })
})

describe('isRoomName(name) on an RPC route of your own', () => {
  it('agrees with the mount: true for a name it takes, false with a reason from roomNameProblem otherwise', () => {
    for (const name of ['lobby', 'v1.2', 'a_b-c']) {
      expect(isRoomName(name)).toBe(true)
      expect(roomNameProblem(name)).toBeUndefined()
    }
    for (const name of ['a..b', 'a/b', '', 'x'.repeat(65), 42]) {
      expect(isRoomName(name)).toBe(false)
      expect(roomNameProblem(name)).toMatch(/room name/)
    }
  })

  it('answers 400 for /rooms/a..b/ids in Hono and in itty-router, where ws.room() would throw', async () => {
    for (const path of ['/hono/rooms/a..b/ids', '/routed-rooms/ids/a..b']) {
      const response = await request(path)
      expect(response.status).toBe(400)
      expect(await response.text()).toBe('Bad Request: not a room name\n')
    }
  })

  it('lets a good name through to the room object', async () => {
    const joined = await joinJson<Greeting>('/hono/live/hono-rpc')
    for (const path of ['/hono/rooms/hono-rpc/ids', '/routed-rooms/ids/hono-rpc']) {
      const response = await request(path)
      expect(response.status).toBe(200)
      expect(await response.json()).toEqual([joined.id])
    }
    await leave(joined.client)
  })
})
