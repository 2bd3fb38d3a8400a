import { env } from 'cloudflare:workers'
import { describe, expect, it } from 'vitest'
import type { ShardStats } from '../../src/object/shard/stats.js'
import { leave, type Client } from './client.js'
import { SHARD_COUNT, SOCKETS_PER_SHARD } from './fixture/endpoints/shards.js'
import { part, joinAll } from './shardParts.js'

// The counters the bench's `--shards` reads its calls per room-wide message from (bench/lib/shards.ts).

async function texts(client: Client, count: number): Promise<string[]> {
  const found: string[] = []
  while (found.length < count) found.push(await client.nextText())
  return found
}

/** The root's counters and each leaf's, in leaf order. */
async function statsOf(room: string): Promise<{ root: ShardStats; leaves: ShardStats[] }> {
  const root = await part(room).shardStats()
  const leaves: ShardStats[] = []
  for (let leaf = 0; leaf < SHARD_COUNT; leaf++) leaves.push(await part(room, leaf).shardStats())
  return { root, leaves }
}

/** Every call the room's objects made to each other: each part counts the calls it made. */
function calls({ root, leaves }: { root: ShardStats; leaves: ShardStats[] }): number {
  return root.calls + leaves.reduce((sum, leaf) => sum + leaf.calls, 0)
}

describe('shardStats(): the calls a sharded room makes between its objects', () => {
  it('counts one publication and one batch per leaf for a turn of 20 broadcasts', async () => {
    const { clients } = await joinAll('counted', SHARD_COUNT * SOCKETS_PER_SHARD)
    const before = await statsOf('counted')
    clients[0]?.send('burst:20:c')
    for (const client of clients) expect(await texts(client, 20)).toHaveLength(20)
    const after = await statsOf('counted')
    expect(after.root).toMatchObject({ part: 'root', at: 20, messages: 20, failed: 0 })
    // Leaf 0 published once; the root took it once and sent each leaf one batch of 20 rows.
    expect(after.root.taken - before.root.taken).toBe(1)
    expect(after.root.calls - before.root.calls).toBe(SHARD_COUNT)
    expect(after.root.rows - before.root.rows).toBe(20 * SHARD_COUNT)
    expect(calls(after) - calls(before)).toBe(1 + SHARD_COUNT)
    for (const leaf of after.leaves) expect(leaf).toMatchObject({ part: 'leaf', at: 20, messages: 20 })
    await leave(...clients)
  })

  it('counts one call per leaf for every message when each comes in a turn of its own', async () => {
    const { clients } = await joinAll('unbatched', SHARD_COUNT * SOCKETS_PER_SHARD)
    const before = await statsOf('unbatched')
    for (let n = 1; n <= 5; n++) {
      clients[3]?.send(`all:${String(n)}`)
      for (const client of clients) expect(await client.nextText()).toBe(`all:${String(n)}`)
    }
    const after = await statsOf('unbatched')
    expect(calls(after) - calls(before)).toBe(5 * (1 + SHARD_COUNT))
    expect(after.leaves[1]?.calls).toBe(5)
    await leave(...clients)
  })

  it('counts a failed batch and its retry as two calls', async () => {
    const { clients } = await joinAll('failing', SHARD_COUNT * SOCKETS_PER_SHARD)
    await part('failing', 2).failNext('before')
    await part('failing').broadcast('x')
    for (const client of clients) expect(await client.nextText()).toBe('x')
    const { root } = await statsOf('failing')
    expect(root).toMatchObject({ calls: SHARD_COUNT + 1, failed: 1, taken: 0, messages: 1 })
    await leave(...clients)
  })

  it('throws ERR_DWS_INVALID_OPTIONS on an object of an ordinary room', async () => {
    const stub = env.SESSIONS.getByName('not-sharded') as unknown as { shardStats(): Promise<ShardStats> }
    const error = await stub.shardStats().then(
      () => undefined,
      (thrown: unknown) => thrown,
    )
    expect(error).toBeInstanceOf(Error)
    expect(String(error)).toMatch(/not the leaf of a sharded room/)
  })
})
