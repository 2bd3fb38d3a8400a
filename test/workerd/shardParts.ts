import { env } from 'cloudflare:workers'
import { connect, type Client } from './client.js'
import type { ShardsObject } from './fixture/endpoints/shards.js'

/**
 * The root of a sharded room of the fixture (its own name), or leaf `leaf`
 * of it. A new stub each time: an object that was aborted breaks its old ones.
 */
export function part(room: string, leaf?: number): DurableObjectStub<ShardsObject> {
  return env.SHARDS.getByName(leaf === undefined ? room : `${room}#${String(leaf)}`)
}

/** Connects `count` plain clients one after another, and reads the id each was greeted with. */
export async function joinAll(room: string, count: number): Promise<{ clients: Client[]; ids: number[] }> {
  const clients: Client[] = []
  const ids: number[] = []
  for (let n = 0; n < count; n++) {
    const client = await connect(`/shards/${room}`)
    clients.push(client)
    ids.push(Number((await client.nextText()).slice('open:'.length)))
  }
  return { clients, ids }
}
