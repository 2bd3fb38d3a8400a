import { describe, expect, it } from 'vitest'
import { connect, eventually, leave, upgrade, type Client } from './client.js'
import { SHARD_COUNT, SOCKETS_PER_SHARD } from './fixture/endpoints/shards.js'
import { SessionClient } from './sessionClient.js'
import { part } from './shardParts.js'

/** Connects `count` plain clients one after another; `byId` maps each greeted id to its client. */
async function joinAll(
  room: string,
  count: number,
): Promise<{ clients: Client[]; byId: Map<number, Client> }> {
  const clients: Client[] = []
  const byId = new Map<number, Client>()
  for (let n = 0; n < count; n++) {
    const client = await connect(`/shards/${room}`)
    clients.push(client)
    byId.set(Number((await client.nextText()).slice('open:'.length)), client)
  }
  return { clients, byId }
}

function clientOf(byId: Map<number, Client>, id: number): Client {
  const client = byId.get(id)
  if (client === undefined) throw new Error(`no client has id ${String(id)}`)
  return client
}

/** Broadcasts a last message through the root and checks it comes next: nothing else was owed. */
async function expectNothingBefore(room: string, clients: Client[]): Promise<void> {
  await part(room).broadcast('end')
  for (const client of clients) expect(await client.nextText()).toBe('end')
}

const FULL = SHARD_COUNT * SOCKETS_PER_SHARD

describe('RPC to the root of a sharded room answers for the whole room', () => {
  it('counts and lists the connections of all four leaves, and forgets one that closed', async () => {
    const { clients, byId } = await joinAll('counted', FULL)
    expect(await part('counted').count()).toBe(FULL)
    expect(await part('counted').ids()).toEqual([1, 2, 3, 4, 65, 66, 67, 68])
    // Each leaf still holds only its own two: the root asked them, it holds none.
    expect(await part('counted', 2).connectionIds()).toEqual([3, 67])
    await leave(clientOf(byId, 66))
    expect(
      await eventually(
        () => part('counted').count(),
        (count) => count === FULL - 1,
      ),
    ).toBe(FULL - 1)
    expect(await part('counted').ids()).toEqual([1, 2, 3, 4, 65, 67, 68])
    await leave(...clients)
  })

  it('sends to one id on each leaf through the root: only that connection gets it, and the call says true', async () => {
    const { clients, byId } = await joinAll('targeted', FULL)
    for (const id of [1, 66, 3, 68]) expect(await part('targeted').send(id, `for:${String(id)}`)).toBe(true)
    for (const id of [1, 66, 3, 68]) expect(await clientOf(byId, id).nextText()).toBe(`for:${String(id)}`)
    // The others got nothing: the broadcast through the root is the next thing everyone sees.
    await expectNothingBefore('targeted', clients)
    await leave(...clients)
  })

  it('answers false for an id no leaf holds, and logs nothing for it', async () => {
    const { clients, byId } = await joinAll('unknown', 4)
    await leave(clientOf(byId, 2))
    await eventually(
      () => part('unknown', 1).connectionIds(),
      (ids) => ids.length === 1,
    )
    // 2 has closed, 7 was never handed out, 0, -3 and 1.5 are no connection ids at all.
    for (const id of [2, 7, 0, -3, 1.5]) {
      expect(await part('unknown').send(id, 'lost')).toBe(false)
      expect(await part('unknown').close(id, 4000, 'gone')).toBe(false)
    }
    expect(await part('unknown').logged()).toEqual([])
    await expectNothingBefore(
      'unknown',
      clients.filter((client) => client.isOpen),
    )
    await leave(...clients)
  })

  it('keeps a send over RPC in the order of the calls: numbered by the root after the broadcast before it', async () => {
    const { clients, byId } = await joinAll('ordered', 4)
    await part('ordered').broadcast('first')
    expect(await part('ordered').send(66, 'second')).toBe(true)
    await part('ordered').broadcast('third')
    expect(await clientOf(byId, 66).nextText()).toBe('first')
    expect(await clientOf(byId, 66).nextText()).toBe('second')
    expect(await clientOf(byId, 66).nextText()).toBe('third')
    expect(await part('ordered').logged()).toEqual([
      [1, 'first'],
      [2, 'second'],
      [3, 'third'],
    ])
    await leave(...clients)
  })

  it('closes ids on two other leaves through the root, with the code and reason given', async () => {
    const { clients, byId } = await joinAll('closed', FULL)
    expect(await part('closed').close(2, 4001, 'leaf one')).toBe(true)
    expect(await part('closed').close(68, 4002, 'leaf three')).toBe(true)
    expect(await clientOf(byId, 2).whenClosed()).toMatchObject({ code: 4001, reason: 'leaf one' })
    expect(await clientOf(byId, 68).whenClosed()).toMatchObject({ code: 4002, reason: 'leaf three' })
    expect(
      await eventually(
        () => part('closed').ids(),
        (ids) => ids.length === FULL - 2,
      ),
    ).toEqual([1, 3, 4, 65, 66, 67])
    // A code a close may not carry is refused at the root, whichever leaf holds the id.
    const refused = await part('closed')
      .close(3, 1006, '')
      .then(
        () => undefined,
        (error: unknown) => error,
      )
    expect(String(refused)).toMatch(/Close code 1006 cannot be sent/)
    expect(clientOf(byId, 3).isOpen).toBe(true)
    await leave(...clients)
  })

  it('sends to a suspended session on its leaf through the root, replayed when it resumes', async () => {
    const first = await SessionClient.open('/shards/suspended')
    const second = await SessionClient.open('/shards/suspended')
    const third = await SessionClient.open('/shards/suspended')
    for (const session of [first, second, third]) await session.next()
    // The third is alone on leaf 1; dropped, its session waits there for its resume.
    await third.drop(part('suspended', 1))
    expect(await part('suspended').send(third.id, 'while away')).toBe(true)
    expect(await part('suspended').ids()).toEqual([first.id, second.id].sort((a, b) => a - b))
    const back = await third.resume('/shards/suspended')
    expect(back.resumed).toBe(true)
    expect(await back.nextPayload()).toBe('while away')
    for (const session of [first, second, back]) session.close(1000)
  })

  it('ends a suspended session on another leaf through the root', async () => {
    const first = await SessionClient.open('/shards/ended')
    const second = await SessionClient.open('/shards/ended')
    const third = await SessionClient.open('/shards/ended')
    for (const session of [first, second, third]) await session.next()
    await third.drop(part('ended', 1))
    expect(await part('ended').close(third.id, 4003, 'over')).toBe(true)
    expect(await part('ended').send(third.id, 'too late')).toBe(false)
    const back = await third.resume('/shards/ended')
    expect(back.resumed).toBe(false)
    for (const session of [first, second, back]) session.close(1000)
  })
})

describe('a handler on a leaf of a sharded room', () => {
  it("gets the whole room from roomCount() and roomIds(), and its own leaf's from count() and ids()", async () => {
    const { clients, byId } = await joinAll('handler', FULL - 1)
    // Id 66 is the second socket of leaf 1.
    const asker = clientOf(byId, 66)
    asker.send('room')
    expect(await asker.nextText()).toBe('room:7:1,2,3,4,65,66,67:2:2,66')
    await leave(...clients)
  })

  it('sees 0 from broadcast: the root numbers the message, the leaves deliver it after the call returns', async () => {
    const { clients } = await joinAll('returned', 4)
    clients[0]?.send('sent:x')
    expect(await clients[0]?.nextText()).toBe('sent:0')
    for (const client of clients) expect(await client.nextText()).toBe('x')
    await leave(...clients)
  })
})

describe('placing upgrades on the leaves of a sharded room', () => {
  async function asked(room: string): Promise<number[]> {
    return Promise.all(Array.from({ length: SHARD_COUNT }, (_, leaf) => part(room, leaf).askedForRoom()))
  }

  it('asks from the leaf the last upgrade went to: eight places cost 11 questions, not 18', async () => {
    const { clients } = await joinAll('placed-cheaply', FULL)
    // Still the first leaf with room, and ids as before: leaf n hands out n+1 and n+65.
    expect(await part('placed-cheaply').ids()).toEqual([1, 2, 3, 4, 65, 66, 67, 68])
    for (let leaf = 0; leaf < SHARD_COUNT; leaf++)
      expect(await part('placed-cheaply', leaf).connectionIds()).toEqual([leaf + 1, leaf + 65])
    // Each leaf is asked for its two places and refuses once when full; the last is never asked
    // by an upgrade that started before it. Asking from leaf 0 every time took 8 + 6 + 4 + 0 calls.
    expect(await asked('placed-cheaply')).toEqual([3, 3, 3, 2])
    await leave(...clients)
  })

  it('finds a place freed on an earlier leaf by going round, and refuses an upgrade when every leaf is full', async () => {
    const { clients, byId } = await joinAll('placed-round', FULL)
    const before = await asked('placed-round')
    await leave(clientOf(byId, 65))
    await eventually(
      () => part('placed-round', 0).connectionIds(),
      (ids) => ids.length === 1,
    )
    // The last upgrade went to leaf 3, which is full: the next asks it, then leaf 0, which has room.
    const { clients: late, byId: lateIds } = await joinAll('placed-round', 1)
    expect([...lateIds.keys()]).toEqual([129])
    expect(await part('placed-round', 0).connectionIds()).toEqual([1, 129])
    const after = await asked('placed-round')
    expect(after.map((count, leaf) => count - (before[leaf] ?? 0))).toEqual([1, 0, 0, 1])
    const refused = await upgrade('/shards/placed-round')
    expect(refused.status).toBe(503)
    expect(await part('placed-round').count()).toBe(FULL)
    await leave(...clients, ...late)
  })
})
