import { evictDurableObject, runDurableObjectAlarm } from 'cloudflare:test'
import { env } from 'cloudflare:workers'
import { describe, expect, it } from 'vitest'
import { connect, eventually, leave, type Client } from './client.js'
import type { Failure, ShardsObject } from './fixture/endpoints/shards.js'

/** The root of a sharded room (its own name), or leaf `leaf` of it. */
function part(room: string, leaf?: number): DurableObjectStub<ShardsObject> {
  return env.SHARDS.getByName(leaf === undefined ? room : `${room}#${String(leaf)}`)
}

async function joinAll(room: string, count: number): Promise<Client[]> {
  const clients: Client[] = []
  for (let n = 0; n < count; n++) {
    const client = await connect(`/shards/${room}`)
    await client.nextText()
    clients.push(client)
  }
  return clients
}

async function everyoneGets(clients: Client[], text: string): Promise<void> {
  for (const client of clients) expect(await client.nextText()).toBe(text)
}

// Placement fills leaf 0, then 1, two sockets each.
describe("the root's alarm in a sharded room", () => {
  it('resends from its alarm, with no new message, what a leaf had not confirmed when the root restarted', async () => {
    const room = 'root-restarted'
    const clients = await joinAll(room, 4)
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
    const clients = await joinAll(room, 2)
    expect(await runDurableObjectAlarm(part(room))).toBe(false)
    await part(room).broadcast('one')
    await everyoneGets(clients, 'one')
    // The safety alarm a broadcast sets finds every leaf caught up; one row is the log's head, kept.
    expect(await runDurableObjectAlarm(part(room))).toBe(true)
    expect(await runDurableObjectAlarm(part(room))).toBe(false)
    await leave(...clients)
  })
})
