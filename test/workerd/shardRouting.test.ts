import { evictDurableObject } from 'cloudflare:test'
import { describe, expect, it } from 'vitest'
import { connect, eventually, leave, type Client } from './client.js'
import { SHARD_COUNT } from './fixture/endpoints/shards.js'
import { leafOfId } from '../../src/object/shard/names.js'
import { part } from './shardParts.js'

/** Connects one plain client per entry, in order, tagged `blue` where the entry says so; returns them with their ids. */
async function joinTagged(room: string, blue: boolean[]): Promise<{ clients: Client[]; ids: number[] }> {
  const clients: Client[] = []
  const ids: number[] = []
  for (const tagged of blue) {
    const client = await connect(`/shards/${room}${tagged ? '?tag=blue' : ''}`)
    clients.push(client)
    ids.push(Number((await client.nextText()).slice('open:'.length)))
  }
  return { clients, ids }
}

async function everyoneGets(clients: Client[], text: string): Promise<void> {
  for (const client of clients) expect(await client.nextText()).toBe(text)
}

/** What each leaf was sent: the numbers of its rows, and its batches as `from..through`. */
async function sent(room: string): Promise<{ rows: number[][]; batches: string[][] }> {
  const leaves = Array.from({ length: SHARD_COUNT }, (_, leaf) => part(room, leaf))
  return {
    rows: await Promise.all(leaves.map((leaf) => leaf.rows())),
    batches: await Promise.all(leaves.map((leaf) => leaf.batches())),
  }
}

/** Waits until the root knows the tags of each leaf, in leaf order (null: not heard yet). */
async function rootKnows(room: string, tags: (string[] | null)[]): Promise<void> {
  const read = () => Promise.all(tags.map((_tags, leaf) => part(room).knownTags(leaf)))
  await eventually(read, (known) => JSON.stringify(known) === JSON.stringify(tags))
}

// Placement fills leaf 0, then 1, …, two sockets each: client n is on leaf ⌊n / 2⌋.
describe('rows of a sharded room sent only to the leaves they are for', () => {
  it('sends a send(id) only to the leaf of the id, and a broadcast to every leaf, with no catch-up for the skipped number', async () => {
    const room = 'routed-ids'
    const { clients, ids } = await joinTagged(room, Array<boolean>(8).fill(false))
    await part(room).broadcast('warm')
    await everyoneGets(clients, 'warm')
    const onLeaf2 = ids[4] ?? 0
    expect(leafOfId(onLeaf2)).toBe(2)
    expect(await part(room).send(onLeaf2, 'just-you')).toBe(true)
    expect(await clients[4]?.nextText()).toBe('just-you')
    await part(room).broadcast('end')
    // The other socket of leaf 2 was not sent 'just-you': 'end' comes next everywhere.
    await everyoneGets(clients, 'end')
    const { rows, batches } = await sent(room)
    expect(rows).toEqual([
      [1, 3],
      [1, 3],
      [1, 2, 3],
      [1, 3],
    ])
    // No call at all for number 2 on leaves 0, 1 and 3; their next batch starts where they confirmed.
    expect(batches).toEqual([
      ['1..1', '2..3'],
      ['1..1', '2..3'],
      ['1..1', '2..2', '3..3'],
      ['1..1', '2..3'],
    ])
    expect(await part(room).pulls()).toBe(0)
    await leave(...clients)
  })

  it('sends a to(tag) only to the leaves that reported the tag, once the root heard every leaf', async () => {
    const room = 'routed-tags'
    // One blue socket on leaf 1 and one on leaf 3.
    const blue = [false, false, true, false, false, false, true, false]
    const { clients } = await joinTagged(room, blue)
    await part(room).broadcast('warm')
    await everyoneGets(clients, 'warm')
    await rootKnows(room, [[], ['blue'], [], ['blue']])
    clients[0]?.send('to:blue:hi')
    expect(await clients[2]?.nextText()).toBe('to:blue:hi')
    expect(await clients[6]?.nextText()).toBe('to:blue:hi')
    await part(room).broadcast('end')
    await everyoneGets(clients, 'end')
    const { rows, batches } = await sent(room)
    expect(rows).toEqual([
      [1, 3],
      [1, 2, 3],
      [1, 3],
      [1, 2, 3],
    ])
    expect(batches[0]).toEqual(['1..1', '2..3'])
    expect(batches[2]).toEqual(['1..1', '2..3'])
    expect(await part(room).pulls()).toBe(0)
    await leave(...clients)
  })

  it('hands a to(tag) to a socket that gained the tag on its leaf just before the row was sent', async () => {
    const room = 'gained-now'
    const { clients } = await joinTagged(room, [true, false, false])
    await part(room).broadcast('warm')
    await everyoneGets(clients, 'warm')
    await rootKnows(room, [['blue'], [], [], []])
    // The second socket of leaf 1, the first blue one there: the row may be numbered before the root hears.
    const late = await connect(`/shards/${room}?tag=blue`)
    await late.nextText()
    clients[0]?.send('to:blue:now')
    expect(await late.nextText()).toBe('to:blue:now')
    expect(await clients[0]?.nextText()).toBe('to:blue:now')
    await part(room).broadcast('end')
    await everyoneGets([...clients, late], 'end')
    await rootKnows(room, [['blue'], ['blue'], [], []])
    await leave(...clients, late)
  })

  it('gives a leaf whose tag the root has not heard of the rows for it, after a restart too, by pulling what it cannot trust', async () => {
    const room = 'gained-late'
    const { clients } = await joinTagged(room, [true, false, false])
    const [blueOnLeaf0] = clients
    await part(room).broadcast('warm')
    await everyoneGets(clients, 'warm')
    await rootKnows(room, [['blue'], [], [], []])
    // The root cannot hear of leaf 1's new tag: it goes on filtering with what it knew.
    await part(room).refuseTags(true)
    const late = await connect(`/shards/${room}?tag=blue`)
    await late.nextText()
    blueOnLeaf0?.send('to:blue:late')
    expect(await blueOnLeaf0?.nextText()).toBe('to:blue:late')
    expect(await part(room, 1).rows()).toEqual([1])
    expect(await part(room).knownTags(1)).toEqual([])
    // The leaf restarts; what tags it holds, and since which version, it kept in its storage.
    await evictDurableObject(part(room, 1), { webSockets: 'hibernate' })
    await part(room).broadcast('after')
    expect(await late.nextText()).toBe('to:blue:late')
    // The plain socket on leaf 1 was not sent the row: 'after' is its next.
    await everyoneGets([...clients, late], 'after')
    expect(await part(room).pulls()).toBeGreaterThan(0)
    // Once the root hears the tag, the rows for it come in the leaf's own batches, with no pull.
    await part(room).refuseTags(false)
    await part(room).broadcast('again')
    await everyoneGets([...clients, late], 'again')
    await rootKnows(room, [['blue'], ['blue'], [], []])
    const pulls = await part(room).pulls()
    blueOnLeaf0?.send('to:blue:direct')
    expect(await late.nextText()).toBe('to:blue:direct')
    expect(await blueOnLeaf0?.nextText()).toBe('to:blue:direct')
    await part(room).broadcast('end')
    await everyoneGets([...clients, late], 'end')
    expect(await part(room).pulls()).toBe(pulls)
    await leave(...clients, late)
  })

  it('drops the copy when a filtered batch is sent again after its answer was lost', async () => {
    const room = 'routed-retried'
    const { clients, ids } = await joinTagged(room, [false, false, false])
    await part(room).broadcast('warm')
    await everyoneGets(clients, 'warm')
    // Leaf 1 applies its next batch but the answer is lost: the root sends 2..3 again.
    await part(room, 1).failNext('after')
    expect(await part(room).send(ids[2] ?? 0, 'just-you')).toBe(true)
    await part(room).broadcast('end')
    expect(await clients[2]?.nextText()).toBe('just-you')
    await everyoneGets(clients, 'end')
    await part(room).broadcast('last')
    await everyoneGets(clients, 'last')
    const leaf1 = await part(room, 1).batches()
    expect(leaf1.filter((batch) => batch.startsWith('2..')).length).toBeGreaterThanOrEqual(2)
    // Leaf 0 was never sent number 2, and pulled nothing for the stretch it skipped.
    expect(await part(room, 0).rows()).toEqual([1, 3, 4])
    expect(await part(room).pulls()).toBe(0)
    await leave(...clients)
  })
})
