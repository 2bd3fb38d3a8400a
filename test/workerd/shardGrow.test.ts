import { evictDurableObject } from 'cloudflare:test'
import { env } from 'cloudflare:workers'
import { describe, expect, it } from 'vitest'
import { leafOfId } from '../../src/object/shard/names.js'
import { type Client, connect, eventually, leave, upgrade } from './client.js'
import type { GrowObject } from './fixture/endpoints/shardGrow.js'
import { SessionClient } from './sessionClient.js'

/** The root of a room of the growing fixture (its own name), or leaf `leaf` of it. */
function grow(room: string, leaf?: number): DurableObjectStub<GrowObject> {
  return env.GROW.getByName(leaf === undefined ? room : `${room}#${String(leaf)}`)
}

/**
 * What a deploy that changes `shards.count` does to a room: every object of
 * it starts again under the new code, on the same storage. Sockets stay
 * connected, as the Hibernation API keeps them across an eviction.
 */
async function deploy(room: string, count: 2 | 4, leaves: number): Promise<void> {
  // Through an object of no room under test: the call must not start this room's root under the old count.
  await grow('deployer').deploy(count)
  await restart(grow(room))
  for (let leaf = 0; leaf < leaves; leaf++) await restart(grow(room, leaf))
}

/** Evicts an object that runs; one that does not will start under the new count anyway. */
async function restart(stub: DurableObjectStub<GrowObject>): Promise<void> {
  try {
    await evictDurableObject(stub, { webSockets: 'hibernate' })
  } catch (error) {
    if (!String(error).includes('not currently running')) throw error
  }
}

/** Connects `count` plain clients to `/grow<2|4>/<room>`, one after another, with the ids they were greeted with. */
async function joinAll(path: string, count: number): Promise<{ clients: Client[]; ids: number[] }> {
  const clients: Client[] = []
  const ids: number[] = []
  for (let n = 0; n < count; n++) {
    const client = await connect(path)
    clients.push(client)
    ids.push(Number((await client.nextText()).slice('open:'.length)))
  }
  return { clients, ids }
}

/**
 * A room deployed with 4 leaves of 2 sockets: 6 plain clients, then a
 * session client, the seventh, which lands on leaf 3.
 */
async function fourLeavesFilled(
  room: string,
): Promise<{ plain: { clients: Client[]; ids: number[] }; session: SessionClient }> {
  await deploy(room, 4, 0)
  const plain = await joinAll(`/grow4/${room}`, 6)
  const session = await SessionClient.open(`/grow4/${room}`)
  expect(await session.nextPayload()).toBe(`open:${String(session.id)}`)
  return { plain, session }
}

/** The open ids of leaves 0 to `leaves` - 1, sorted, in leaf order. */
function idsByLeaf(room: string, leaves: number): Promise<number[][]> {
  return Promise.all(
    Array.from({ length: leaves }, async (_, leaf) =>
      (await grow(room, leaf).connectionIds()).sort((a, b) => a - b),
    ),
  )
}

async function texts(client: Client, count: number): Promise<string[]> {
  const found: string[] = []
  while (found.length < count) found.push(await client.nextText())
  return found
}

describe('a sharded room whose count grows (docs/sharding.md, "Growing and shrinking")', () => {
  it('hands out ids that are unique in the room and name their leaf, under two leaves and then four', async () => {
    const room = 'grow-ids'
    await deploy(room, 2, 0)
    const before = await joinAll(`/grow2/${room}`, 4)
    expect(before.ids).toEqual([1, 65, 2, 66])
    await deploy(room, 4, 2)
    const after = await joinAll(`/grow4/${room}`, 4)
    // Leaves 0 and 1 are full: the new upgrades go to the leaves the grown count added.
    expect(after.ids).toEqual([3, 67, 4, 68])
    const byLeaf = await idsByLeaf(room, 4)
    expect(byLeaf).toEqual([
      [1, 65],
      [2, 66],
      [3, 67],
      [4, 68],
    ])
    byLeaf.forEach((ids, leaf) => {
      for (const id of ids) expect(leafOfId(id)).toBe(leaf)
    })
    const all = [...before.ids, ...after.ids]
    expect(new Set(all).size).toBe(all.length)
    expect(await grow(room).count()).toBe(8)
    expect(await grow(room).ids()).toEqual([...all].sort((a, b) => a - b))
    // A send by id reaches a socket on an old leaf and on a new one, found by the id alone.
    expect(await grow(room).send(66, 'to-66')).toBe(true)
    expect(await grow(room).send(68, 'to-68')).toBe(true)
    expect(await before.clients[3]?.nextText()).toBe('to-66')
    expect(await after.clients[3]?.nextText()).toBe('to-68')
    await leave(...before.clients, ...after.clients)
  })

  it('delivers to all four leaves once a root of two runs with four, and starts the new leaves at its head', async () => {
    const room = 'grow-fanout'
    await deploy(room, 2, 0)
    const before = await joinAll(`/grow2/${room}`, 4)
    for (const text of ['before-1', 'before-2', 'before-3']) await grow(room).broadcast(text)
    for (const client of before.clients)
      expect(await texts(client, 3)).toEqual(['before-1', 'before-2', 'before-3'])
    await deploy(room, 4, 2)
    const after = await joinAll(`/grow4/${room}`, 4)
    expect(await idsByLeaf(room, 4)).toEqual([
      [1, 65],
      [2, 66],
      [3, 67],
      [4, 68],
    ])
    await grow(room).broadcast('after-1')
    // A handler on a new leaf broadcasts: numbered by the root, delivered on the old leaves too.
    after.clients[3]?.send('all:from-leaf-3')
    expect(await before.clients[0]?.nextText()).toBe('after-1')
    expect(await before.clients[0]?.nextText()).toBe('all:from-leaf-3')
    await grow(room).broadcast('after-2')
    expect(await before.clients[0]?.nextText()).toBe('after-2')
    for (const client of [...before.clients.slice(1), ...after.clients])
      expect(await texts(client, 3)).toEqual(['after-1', 'all:from-leaf-3', 'after-2'])
    // The new leaves were never sent the three rows before they were added, nor asked for them.
    for (const leaf of [2, 3]) {
      const stats = await grow(room, leaf).shardStats()
      expect(stats.at).toBe(6)
      expect(stats.rows).toBe(3)
    }
    expect(await grow(room).pulls()).toBe(0)
    // Nothing else was owed to anyone.
    await grow(room).broadcast('end')
    for (const client of [...before.clients, ...after.clients]) expect(await client.nextText()).toBe('end')
    await leave(...before.clients, ...after.clients)
  })

  it('resumes a session opened under two leaves on its own leaf once the count is four: same id, what it missed once', async () => {
    const room = 'grow-resume'
    await deploy(room, 2, 0)
    const session = await SessionClient.open(`/grow2/${room}`)
    expect(await session.nextPayload()).toBe(`open:${String(session.id)}`)
    await grow(room).broadcast('seen')
    expect(await session.nextPayload()).toBe('seen')
    await session.drop(grow(room, 0))
    await grow(room).broadcast('missed')
    await deploy(room, 4, 2)
    await grow(room).broadcast('missed-after-the-deploy')
    const resumed = await session.resume(`/grow4/${room}`)
    expect(resumed.resumed).toBe(true)
    expect(resumed.id).toBe(session.id)
    expect(await resumed.nextPayload()).toBe('missed')
    expect(await resumed.nextPayload()).toBe('missed-after-the-deploy')
    expect(await grow(room, 0).connectionIds()).toEqual([session.id])
    await grow(room).broadcast('live')
    expect(await resumed.nextPayload()).toBe('live')
    resumed.close()
  })

  it('keeps delivering to the leaves past a lowered count and counting their sockets, and places nothing new there', async () => {
    const room = 'grow-shrink'
    const { plain, session } = await fourLeavesFilled(room)
    expect(await idsByLeaf(room, 4)).toEqual([[1, 65], [2, 66], [3, 67], [session.id]])
    expect(session.id).toBe(4)
    await deploy(room, 2, 4)
    await grow(room).broadcast('after-shrink')
    for (const client of plain.clients) expect(await client.nextText()).toBe('after-shrink')
    expect(await session.nextPayload()).toBe('after-shrink')
    // A handler on leaf 3, past the count now, still reaches the whole room.
    session.send('all:from-leaf-3')
    for (const client of plain.clients) expect(await client.nextText()).toBe('all:from-leaf-3')
    expect(await session.nextPayload()).toBe('all:from-leaf-3')
    expect(await grow(room).count()).toBe(7)
    expect(await grow(room).ids()).toEqual([1, 2, 3, 4, 65, 66, 67])
    expect(await grow(room).send(4, 'to-4')).toBe(true)
    expect(await session.nextPayload()).toBe('to-4')
    // Leaf 3 has room, but placement uses today's two leaves, which are full.
    expect((await upgrade(`/grow2/${room}`)).status).toBe(503)
    expect(await grow(room, 3).connectionIds()).toEqual([4])
    await leave(...plain.clients)
    session.close()
  })

  it("resumes a session of a leaf past a lowered count on one of today's leaves, which claims it from there", async () => {
    const room = 'grow-shrink-resume'
    const { plain, session } = await fourLeavesFilled(room)
    expect(await grow(room, 3).connectionIds()).toEqual([session.id])
    await deploy(room, 2, 4)
    await session.drop(grow(room, 3))
    await grow(room).broadcast('missed')
    const [first] = plain.clients
    if (first === undefined) throw new Error('no client on leaf 0')
    await leave(first)
    await eventually(
      () => grow(room, 0).connectionIds(),
      (ids) => ids.length === 1,
    )
    const resumed = await session.resume(`/grow2/${room}`)
    expect(resumed.resumed).toBe(true)
    expect(resumed.id).toBe(session.id)
    expect(await resumed.nextPayload()).toBe('missed')
    expect(await idsByLeaf(room, 4)).toEqual([[session.id, 65], [2, 66], [3, 67], []])
    await grow(room).broadcast('live')
    expect(await resumed.nextPayload()).toBe('live')
    await leave(...plain.clients.slice(1))
    resumed.close()
  })
})
