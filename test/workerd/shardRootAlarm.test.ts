import { evictDurableObject, runDurableObjectAlarm } from 'cloudflare:test'
import { describe, expect, it } from 'vitest'
import { eventually, leave, type Client } from './client.js'
import type { Failure } from './fixture/endpoints/shards.js'
import { part, joinAll } from './shardParts.js'

async function everyoneGets(clients: Client[], text: string): Promise<void> {
  for (const client of clients) expect(await client.nextText()).toBe(text)
}

// Placement fills leaf 0, then 1, two sockets each.
describe("the root's alarm in a sharded room", () => {
  it('resends from its alarm, with no new message, what a leaf had not confirmed when the root restarted', async () => {
    const room = 'root-restarted'
    const { clients } = await joinAll(room, 4)
    const onLeaf0 = clients.slice(0, 2)
    const onLeaf1 = clients.slice(2)
    // Every batch to leaf 1 is lost on its way until the test says otherwise.
    await part(room, 1).failNext(...Array<Failure>(100).fill('before'))
    await part(room).broadcast('missed')
    await everyoneGets(onLeaf0, 'missed')
    await eventually(
      () => part(room, 1).batches(),
      (batches) => batches.length >= 2,
    )
    await evictDurableObject(part(room))
    await part(room, 1).failNext()
    // The new instance of the root gets no call: only its alarm runs, and finds leaf 1 behind.
    expect(await runDurableObjectAlarm(part(room))).toBe(true)
    await everyoneGets(onLeaf1, 'missed')
    await part(room).broadcast('end')
    await everyoneGets(clients, 'end')
    await leave(...clients)
  })

  it('sets no alarm again once every leaf confirmed and the log holds nothing to trim', async () => {
    const room = 'root-idle'
    const { clients } = await joinAll(room, 2)
    expect(await runDurableObjectAlarm(part(room))).toBe(false)
    await part(room).broadcast('one')
    await everyoneGets(clients, 'one')
    // The safety alarm a broadcast sets finds every leaf caught up; one row is the log's head, kept.
    expect(await runDurableObjectAlarm(part(room))).toBe(true)
    expect(await runDurableObjectAlarm(part(room))).toBe(false)
    await leave(...clients)
  })

  it('trims its log by age from the alarm, but never past a number a leaf has not confirmed', async () => {
    const room = 'root-trimmed'
    const { clients } = await joinAll(room, 2)
    await part(room).broadcast('one')
    await everyoneGets(clients, 'one')
    // Leaf 0 loses every batch from now on: it confirmed 1 and no further.
    await part(room, 0).failNext(...Array<Failure>(100).fill('before'))
    await part(room).broadcast('two')
    await part(room).broadcast('three')
    await eventually(
      () => part(room, 0).batches(),
      (batches) => batches.includes('2..3'),
    )
    // Past the resume window (60 s in the fixture) every row is old; 2 and 3 stay for leaf 0.
    await part(room).rootAlarmIn(61_000)
    expect((await part(room).logged()).map(([seq]) => seq)).toEqual([2, 3])
    await part(room, 0).failNext()
    await runDurableObjectAlarm(part(room))
    await everyoneGets(clients, 'two')
    await everyoneGets(clients, 'three')
    // Once leaf 0 confirmed (its answer may come just after its sockets got the rows), the alarm trims to the head.
    const trimmed = async () => {
      await part(room).rootAlarmIn(61_000)
      return (await part(room).logged()).map(([seq]) => seq)
    }
    await eventually(trimmed, (seqs) => seqs.length === 1 && seqs[0] === 3)
    await leave(...clients)
  })
})
