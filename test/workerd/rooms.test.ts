import { env } from 'cloudflare:workers'
import { evictDurableObject } from 'cloudflare:test'
import { describe, expect, it } from 'vitest'
import { DEFAULT_ROOM, MAX_ROOM_NAME_LENGTH } from '../../src/index.js'
import { rooms, tenants, type RoomsObject, type TenantsObject } from './fixture/endpoints/rooms.js'
import { joinJson, leave, sleep, upgrade, type Client } from './client.js'

interface Greeting {
  id: number
  room: string | null
  managerRoom: string | null
}

interface Broadcast {
  room: string | null
  from: number
  text: string
}

/** Long enough for a message that went astray, had one, to arrive. */
const SETTLE_MS = 100

/** The object of a room, by the module's own lookup. */
function roomOf(name: string): DurableObjectStub<RoomsObject> {
  return rooms.room<RoomsObject>(env, name)
}

/** How many connections the object of a raw name ever accepted: the module's check of the name is bypassed. */
async function acceptedIn(
  namespace: DurableObjectNamespace<RoomsObject | TenantsObject>,
  name: string,
): Promise<number> {
  return namespace.get(namespace.idFromName(name)).lastId()
}

async function whoami(client: Client): Promise<Greeting & { ids: number[] }> {
  return client.askJson<Greeting & { ids: number[] }>({ op: 'whoami' })
}

describe('mount(path, app) with rooms', () => {
  it('sends the mount path to the room "default" and path/:room to the object of that name', async () => {
    const lobby = await joinJson<Greeting>('/rooms')
    const kitchen = await joinJson<Greeting>('/rooms/kitchen')
    expect(lobby).toMatchObject({ room: DEFAULT_ROOM, managerRoom: DEFAULT_ROOM })
    expect(kitchen).toMatchObject({ room: 'kitchen', managerRoom: 'kitchen' })
    expect(await rooms.room<RoomsObject>(env).connectionIds()).toEqual([lobby.id])
    expect(await roomOf('kitchen').connectionIds()).toEqual([kitchen.id])
    await leave(lobby.client, kitchen.client)
  })

  it(`takes names of letters, digits, "_", "-" and inner dots, up to ${String(MAX_ROOM_NAME_LENGTH)} characters`, async () => {
    for (const name of ['a', 'Room_1-b', 'v1.2.3', '-_-', 'x'.repeat(MAX_ROOM_NAME_LENGTH)]) {
      const joined = await joinJson<Greeting>(`/rooms/${name}`)
      expect(joined.room).toBe(name)
      await leave(joined.client)
    }
  })

  it('refuses any other name with 400 and a text that says why, before an object is touched', async () => {
    const refused: [path: string, reason: RegExp][] = [
      ['x'.repeat(MAX_ROOM_NAME_LENGTH + 1), /at most 64 characters/],
      ['a..b', /single inner dots/],
      ['.hidden', /single inner dots/],
      ['trailing.', /single inner dots/],
      ['a%2Fb', /only letters, digits/],
      ['a%20b', /only letters, digits/],
      ['caf%C3%A9', /only letters, digits/],
      ['caf\u00e9', /only letters, digits/],
    ]
    for (const [path, reason] of refused) {
      const response = await upgrade(`/rooms/${path}`)
      expect(response.status).toBe(400)
      expect(response.webSocket).toBeNull()
      const text = await response.text()
      expect(text).toMatch(/^Bad Request: .*room name/)
      expect(text).toMatch(reason)
      for (const name of new Set([path, decodeURIComponent(path)])) {
        expect(await acceptedIn(env.ROOMS, name)).toBe(0)
      }
    }
  })

  it('refuses a path below a room with 400, since a room name holds no "/"', async () => {
    const response = await upgrade('/rooms/attic/boxes')
    expect(response.status).toBe(400)
    expect(await response.text()).toMatch(/room name may not contain "\/"/)
    expect(await acceptedIn(env.ROOMS, 'attic')).toBe(0)
    expect(await acceptedIn(env.ROOMS, 'attic/boxes')).toBe(0)
  })
})

describe('the room option: (request, env, locals) => string', () => {
  it('picks the room from what the middleware put in locals, whatever the path says', async () => {
    const acme = await joinJson<Greeting>('/tenants/elsewhere', { 'x-tenant': 'acme' })
    expect(acme).toMatchObject({ room: 'acme', managerRoom: 'acme' })
    expect(await tenants.room<TenantsObject>(env, 'acme').connectionIds()).toEqual([acme.id])
    expect(await acceptedIn(env.TENANTS, 'elsewhere')).toBe(0)
    await leave(acme.client)
  })

  it('answers 400, before an object is touched, when what it returns is not a room name', async () => {
    const cases: [headers: Record<string, string>, reason: RegExp, name: string][] = [
      [{}, /empty/, ''],
      [{ 'x-tenant': 'acme/evil' }, /only letters, digits/, 'acme/evil'],
      [{ 'x-tenant': 'y'.repeat(MAX_ROOM_NAME_LENGTH + 1) }, /at most 64/, 'y'.repeat(65)],
    ]
    for (const [headers, reason, name] of cases) {
      const response = await upgrade('/tenants', headers)
      expect(response.status).toBe(400)
      expect(await response.text()).toMatch(reason)
      expect(await acceptedIn(env.TENANTS, name)).toBe(0)
    }
  })
})

describe('handler() and run() in your own router', () => {
  it('take the room from the :room param, and default to "default" without one', async () => {
    const attic = await joinJson<Greeting>('/routed-rooms/raw/attic')
    const cellar = await joinJson<Greeting>('/routed-rooms/run/cellar')
    const lobby = await joinJson<Greeting>('/routed-rooms/run')
    expect([attic.room, cellar.room, lobby.room]).toEqual(['attic', 'cellar', DEFAULT_ROOM])
    expect(await roomOf('attic').connectionIds()).toEqual([attic.id])
    expect(await roomOf('cellar').connectionIds()).toEqual([cellar.id])
    await leave(attic.client, cellar.client, lobby.client)
  })

  it('refuse a :room param that is not a room name with 400', async () => {
    for (const path of ['/routed-rooms/raw/a..b', '/routed-rooms/run/a%2Fb']) {
      const response = await upgrade(path)
      expect(response.status).toBe(400)
      expect(await response.text()).toMatch(/^Bad Request: .*room name/)
    }
  })
})

describe('ids in rooms', () => {
  it('are counted per room: each room numbers its connections from 1', async () => {
    const joined = []
    for (const name of ['north', 'south', 'north', 'south', 'north'])
      joined.push(await joinJson<Greeting>(`/rooms/${name}`))
    expect(joined.map(({ room, id }) => `${String(room)} ${String(id)}`)).toEqual([
      'north 1',
      'south 1',
      'north 2',
      'south 2',
      'north 3',
    ])
    await leave(...joined.map(({ client }) => client))
  })
})

describe('room isolation', () => {
  it('delivers each broadcast to its own room only, with many rooms and clients all broadcasting at once', async () => {
    const names = ['iso-1', 'iso-2', 'iso-3', 'iso-4', 'iso-5']
    const perRoom = 4
    const members = await Promise.all(
      names.flatMap((name) => Array.from({ length: perRoom }, () => joinJson<Greeting>(`/rooms/${name}`))),
    )
    for (const member of members)
      member.client.sendJson({ op: 'broadcast', text: `hello from ${String(member.id)}` })

    for (const member of members) {
      const received: Broadcast[] = []
      for (let i = 0; i < perRoom; i++) received.push(await member.client.nextJson<Broadcast>())
      const roommates = members.filter((other) => other.room === member.room)
      expect(received.sort((a, b) => a.from - b.from)).toEqual(
        roommates
          .map(({ id }) => ({ room: member.room, from: id, text: `hello from ${String(id)}` }))
          .sort((a, b) => a.from - b.from),
      )
    }
    await sleep(SETTLE_MS)
    // Nothing else is queued for anyone: the next frame each client gets is the answer to its own question.
    for (const member of members) expect((await whoami(member.client)).room).toBe(member.room)
    for (const name of names) expect(await roomOf(name).count()).toBe(perRoom)
    await leave(...members.map(({ client }) => client))
  })
})

describe('after a forced hibernation of the object', () => {
  it('conn.room, manager.room, the ids and the connections are intact, and the next message is handled', async () => {
    const first = await joinJson<Greeting>('/rooms/loft')
    const second = await joinJson<Greeting>('/rooms/loft')
    const other = await joinJson<Greeting>('/rooms/porch')
    await evictDurableObject(roomOf('loft'), { webSockets: 'hibernate' })
    expect(await whoami(first.client)).toEqual({ id: 1, room: 'loft', managerRoom: 'loft', ids: [1, 2] })
    expect(await roomOf('loft').connectionIds()).toEqual([1, 2])

    second.client.sendJson({ op: 'broadcast', text: 'after the nap' })
    const expected = { room: 'loft', from: 2, text: 'after the nap' }
    expect(await first.client.nextJson()).toEqual(expected)
    expect(await second.client.nextJson()).toEqual(expected)
    const third = await joinJson<Greeting>('/rooms/loft')
    expect(third).toMatchObject({ id: 3, room: 'loft' })
    await sleep(SETTLE_MS)
    expect(await whoami(other.client)).toMatchObject({ room: 'porch', ids: [1] })
    await leave(first.client, second.client, third.client, other.client)
  })
})
