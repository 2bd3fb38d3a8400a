import { describe, expect, it } from 'vitest'
import { MAX_SHARDS } from '../../src/shardOptions.js'
import { LEAF_FULL_HEADER } from '../../src/object/shard/leafFull.js'
import { retryReason, SESSION_PROTOCOL } from '../../src/shared/sessionProtocol.js'
import { Client, connect, leave, upgrade } from './client.js'
import { SHARD_COUNT, SOCKETS_PER_SHARD, type ShardsObject } from './fixture/endpoints/shards.js'
import { SessionClient } from './sessionClient.js'
import { part } from './shardParts.js'

const FULL = SHARD_COUNT * SOCKETS_PER_SHARD
const LEAVES = Array.from({ length: SHARD_COUNT }, (_, leaf) => leaf)

/** Connects a plain client and reads the id it was greeted with. */
async function joinOne(path: string): Promise<{ client: Client; id: number }> {
  const client = await connect(path)
  return { client, id: Number((await client.nextText()).slice('open:'.length)) }
}

/** The ids each leaf holds, sorted, leaf by leaf. */
function idsByLeaf(room: string): Promise<number[][]> {
  return Promise.all(
    LEAVES.map(async (leaf) => (await part(room, leaf).connectionIds()).sort((a, b) => a - b)),
  )
}

/** Leaf n hands out n+1 and n+65: every leaf holds exactly its two. */
const EVERY_LEAF_FULL = LEAVES.map((leaf) => [leaf + 1, leaf + 1 + MAX_SHARDS])

/** A plain upgrade straight to one leaf, not through the Worker's placement. */
async function connectTo(stub: DurableObjectStub<ShardsObject>, room: string): Promise<Client> {
  const response = await stub.fetch(
    new Request(`http://fixture.test/shards/${room}`, { headers: { Upgrade: 'websocket' } }),
  )
  if (response.webSocket === null) throw new Error(`expected 101, got ${String(response.status)}`)
  const client = new Client(response.webSocket)
  await client.nextText()
  return client
}

/** Expects the refusal an ordinary full room gives a plain client, with nothing of the leaves' in it. */
async function expectFullRoom(response: Response): Promise<void> {
  expect(response.status).toBe(503)
  expect(response.headers.get('Retry-After')).toBe('5')
  expect(response.headers.has(LEAF_FULL_HEADER)).toBe(false)
  expect(await response.text()).toContain('this room is full')
}

/** Expects the refusal an ordinary full room gives a session client: 1013 with when to come back. */
async function expectFullRoomForSession(response: Response): Promise<void> {
  expect(response.status).toBe(101)
  expect(response.headers.has(LEAF_FULL_HEADER)).toBe(false)
  if (response.webSocket === null) throw new Error('expected a socket to read the close from')
  expect(await new Client(response.webSocket).whenClosed()).toMatchObject({
    code: 1013,
    reason: retryReason(5_000),
  })
}

const SESSION_OFFER = { 'Sec-WebSocket-Protocol': SESSION_PROTOCOL }

describe('placing upgrades that race for the last places of a sharded room', () => {
  it('fills every leaf exactly with eight plain upgrades at once, and refuses a ninth as a full room', async () => {
    const room = 'race-plain'
    const joined = await Promise.all(Array.from({ length: FULL }, () => joinOne(`/shards/${room}`)))
    expect(joined.map(({ id }) => id).sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 65, 66, 67, 68])
    expect(await idsByLeaf(room)).toEqual(EVERY_LEAF_FULL)
    // They all started at leaf 0 and heard it had room: it took two and sent the rest on.
    expect(await part(room, 0).passedOn()).toBeGreaterThan(0)
    await expectFullRoom(await upgrade(`/shards/${room}`))
    expect(await part(room).count()).toBe(FULL)
    await leave(...joined.map(({ client }) => client))
  })

  it('fills every leaf exactly with eight session upgrades at once, and closes a ninth with 1013', async () => {
    const path = '/shards/race-sessions'
    const sessions = await Promise.all(Array.from({ length: FULL }, () => SessionClient.open(path)))
    expect(sessions.map((session) => session.id).sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 65, 66, 67, 68])
    expect(await idsByLeaf('race-sessions')).toEqual(EVERY_LEAF_FULL)
    expect(await part('race-sessions', 0).passedOn()).toBeGreaterThan(0)
    await expectFullRoomForSession(await upgrade(path, SESSION_OFFER))
    for (const session of sessions) session.close(1000)
  })

  it('places plain and session upgrades made at once side by side, one socket per place', async () => {
    const room = 'race-mixed'
    const [plain, sessions] = await Promise.all([
      Promise.all(Array.from({ length: FULL / 2 }, () => joinOne(`/shards/${room}`))),
      Promise.all(Array.from({ length: FULL / 2 }, () => SessionClient.open(`/shards/${room}`))),
    ])
    const ids = [...plain.map(({ id }) => id), ...sessions.map((session) => session.id)]
    expect(ids.sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 65, 66, 67, 68])
    expect(await idsByLeaf(room)).toEqual(EVERY_LEAF_FULL)
    await leave(...plain.map(({ client }) => client))
    for (const session of sessions) session.close(1000)
  })

  it('sends an upgrade on to the next leaf when the leaf that said it had room is full when it comes', async () => {
    const room = 'stale-yes'
    const first = part(room, 0)
    const held = [await connectTo(first, room), await connectTo(first, room)]
    await first.sayRoomWhenFull()
    const { client, id } = await joinOne(`/shards/${room}`)
    // Leaf 1 hands out 2 first; leaf 0 was asked, said yes, and passed the upgrade on.
    expect(id).toBe(2)
    expect(await first.askedForRoom()).toBe(1)
    expect(await first.passedOn()).toBe(1)
    expect(await idsByLeaf(room)).toEqual([[1, 65], [2], [], []])
    await leave(client, ...held)
  })

  it('sends a session upgrade on the same way: it opens on the next leaf, not closed with 1013', async () => {
    const room = 'stale-yes-session'
    const first = part(room, 0)
    const held = [await connectTo(first, room), await connectTo(first, room)]
    await first.sayRoomWhenFull()
    const session = await SessionClient.open(`/shards/${room}`)
    expect(session.welcome).toMatchObject({ id: 2, resumed: false })
    expect(await first.passedOn()).toBe(1)
    expect(await idsByLeaf(room)).toEqual([[1, 65], [2], [], []])
    session.close(1000)
    await leave(...held)
  })

  it('sends a resume whose own leaf fills before it arrives on to another leaf, which claims the session', async () => {
    const room = 'stale-home'
    const path = `/shards/${room}`
    const home = part(room, 0)
    const subject = await SessionClient.open(path)
    expect(await home.connectionIds()).toEqual([subject.id])
    await subject.drop(home)
    const held = [await connectTo(home, room), await connectTo(home, room)]
    await home.sayRoomWhenFull()
    await part(room).broadcast('missed')
    const back = await subject.resume(path)
    expect(back.welcome).toMatchObject({ id: subject.id, resumed: true })
    expect(await back.nextPayload()).toBe('missed')
    expect(await home.passedOn()).toBe(1)
    expect(await part(room, 1).connectionIds()).toEqual([subject.id])
    back.close(1000)
    await leave(...held)
  })

  it('refuses as an ordinary full room when every leaf says it has room but none has', async () => {
    const room = 'all-stale'
    const held: Client[] = []
    for (const leaf of LEAVES) {
      const stub = part(room, leaf)
      held.push(await connectTo(stub, room), await connectTo(stub, room))
      await stub.sayRoomWhenFull()
    }
    await expectFullRoom(await upgrade(`/shards/${room}`))
    await expectFullRoomForSession(await upgrade(`/shards/${room}`, SESSION_OFFER))
    // Every leaf but the last of the turn passed each of the two on; the last refused them itself.
    const passed = await Promise.all(LEAVES.map((leaf) => part(room, leaf).passedOn()))
    expect(passed.reduce((sum, count) => sum + count, 0)).toBe(2 * (SHARD_COUNT - 1))
    expect(await part(room).count()).toBe(FULL)
    await leave(...held)
  })

  it("ignores the leaves' header when a client sends it: the room fills and refuses as usual", async () => {
    const room = 'forged'
    const forged = { [LEAF_FULL_HEADER]: 'guessed' }
    const joined: Client[] = []
    for (let n = 0; n < FULL; n++) joined.push(await connect(`/shards/${room}`, forged))
    expect(await idsByLeaf(room)).toEqual(EVERY_LEAF_FULL)
    await expectFullRoom(await upgrade(`/shards/${room}`, forged))
    await expectFullRoomForSession(await upgrade(`/shards/${room}`, { ...forged, ...SESSION_OFFER }))
    await leave(...joined)
  })

  it('answers "full" on a leaf only to an upgrade that carries a ticket, echoing it, and accepts nothing', async () => {
    const room = 'ticketed'
    const leaf = part(room, 2)
    const held = [await connectTo(leaf, room), await connectTo(leaf, room)]
    const ticketed = await leaf.fetch(
      new Request(`http://fixture.test/shards/${room}`, {
        headers: { Upgrade: 'websocket', [LEAF_FULL_HEADER]: 'ticket-1', ...SESSION_OFFER },
      }),
    )
    expect(ticketed.status).toBe(503)
    expect(ticketed.webSocket).toBeNull()
    expect(ticketed.headers.get(LEAF_FULL_HEADER)).toBe('ticket-1')
    const plain = await leaf.fetch(
      new Request(`http://fixture.test/shards/${room}`, { headers: { Upgrade: 'websocket' } }),
    )
    await expectFullRoom(plain)
    expect(await leaf.connectionIds()).toEqual([3, 67])
    await leave(...held)
  })
})
