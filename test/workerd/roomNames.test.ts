import { env } from 'cloudflare:workers'
import { describe, expect, it } from 'vitest'
import { DEFAULT_ROOM } from '../../src/index.js'
import { rooms, type RoomsObject } from './fixture/endpoints/rooms.js'
import { connect, joinJson, leave, request, upgrade } from './client.js'

/**
 * Room names a client can put in the path, beyond the ones rooms.test.ts
 * already refuses (too long, `a..b`, `%2F`, spaces, non-ASCII).
 */

/** How many connections the object of a raw name ever accepted; 0 means it never took one. */
function acceptedIn(name: string): Promise<number> {
  return env.ROOMS.get(env.ROOMS.idFromName(name)).lastId()
}

async function roomJoined(path: string): Promise<string> {
  const client = await connect(path)
  const { room } = await client.nextJson<{ room: string }>()
  await leave(client)
  return room
}

describe('an empty room name', () => {
  it(`is no name: "/rooms/", "/rooms//" and "/rooms/." reach the room "${DEFAULT_ROOM}"`, async () => {
    for (const path of ['/rooms/', '/rooms//', '/rooms/.', '/rooms/%2E', '/rooms/?room=x']) {
      expect(await roomJoined(path), path).toBe(DEFAULT_ROOM)
    }
    expect(await acceptedIn('')).toBe(0)
  })
})

describe('dot segments in the path', () => {
  it('are resolved by the URL parser before the Worker sees the path, so they cannot name a room', async () => {
    // "/rooms/.." is "/", which is not the mount: the fixture's own 404 answers, as a user's app would.
    for (const path of ['/rooms/..', '/rooms/%2e%2e', '/rooms/.%2E']) {
      const response = await upgrade(path)
      expect(response.webSocket, path).toBeNull()
      expect(await response.text(), path).toBe('no such fixture endpoint\n')
    }
    expect(await roomJoined('/rooms/attic/../cellar')).toBe('cellar')
    expect(await roomJoined('/rooms/attic/%2E%2E/cellar')).toBe('cellar')
    expect(await acceptedIn('..')).toBe(0)
    expect(await acceptedIn('attic')).toBe(0)
  })

  it('stay refused with 400 when the slashes around them are percent-encoded', async () => {
    for (const path of ['/rooms/a%2F..%2Fb', '/rooms/..%2Fdefault', '/rooms/%2F..']) {
      const response = await upgrade(path)
      expect(response.status, path).toBe(400)
      expect(await response.text()).toMatch(/^Bad Request: a room name may hold only letters, digits/)
      expect(await acceptedIn(decodeURIComponent(path.slice('/rooms/'.length)))).toBe(0)
    }
  })
})

describe('unicode in a room name', () => {
  it('arrives percent-encoded and is refused with 400, whatever its normalization form', async () => {
    for (const name of [
      'caf\u00e9',
      'cafe\u0301',
      '\u043a\u043e\u043c\u043d\u0430\u0442\u0430',
      '\u{1F600}',
    ]) {
      const response = await request(`/rooms/${name}`, { headers: { Upgrade: 'websocket' } })
      expect(response.status, name).toBe(400)
      expect(await acceptedIn(name)).toBe(0)
      expect(await acceptedIn(encodeURIComponent(name))).toBe(0)
    }
  })
})

describe('a flood of distinct room names from one client', () => {
  it('is answered room by room, each name its own object with its own ids: limiting it is the middleware’s job', async () => {
    const names = Array.from({ length: 200 }, (_, i) => `flood-${String(i)}`)
    for (let start = 0; start < names.length; start += 20) {
      const batch = names.slice(start, start + 20)
      const joined = await Promise.all(
        batch.map((name) => joinJson<{ id: number; room: string }>(`/rooms/${name}`)),
      )
      expect(joined.map(({ room, id }) => `${room} ${String(id)}`)).toEqual(batch.map((name) => `${name} 1`))
      await leave(...joined.map(({ client }) => client))
    }
    for (const name of names) expect(await rooms.room<RoomsObject>(env, name).lastId(), name).toBe(1)
    // 200 objects opened and closed take about 2 s alone, several times that on a loaded machine.
  }, 30_000)
})
