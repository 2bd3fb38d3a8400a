import { describe, expect, it } from 'vitest'
import { ConnectionTable } from '../../src/object/connectionTable.js'
import { leafOfId, tokenLeaf } from '../../src/object/shard/names.js'
import { MAX_SHARDS } from '../../src/shardOptions.js'

// Pure rules, checked here rather than in test/unit because the files they live in use Workers types.

/** A table with only the durable counter behind it: nextId reads and writes nothing else. */
function table(first: number, lastId?: number): ConnectionTable<unknown, object, unknown, unknown> {
  const kv = new Map<string, unknown>()
  const ctx = {
    storage: {
      kv: { get: (key: string) => kv.get(key), put: (key: string, value: unknown) => kv.set(key, value) },
    },
  }
  const made = new ConnectionTable(ctx as unknown as DurableObjectState, {} as never, () => undefined, {
    first,
    every: MAX_SHARDS,
  })
  if (lastId !== undefined) made.keepLastId(lastId)
  return made
}

describe('leafOfId(id)', () => {
  it('names the leaf that hands the id out, whatever the count: leaf n hands out n+1, n+65, n+129', () => {
    for (let leaf = 0; leaf < MAX_SHARDS; leaf++)
      for (const k of [0, 1, 2, 1_000]) expect(leafOfId(leaf + 1 + k * MAX_SHARDS)).toBe(leaf)
  })

  it('is undefined for what no leaf hands out: 0, negative, fractional, unsafe', () => {
    for (const id of [0, -1, 1.5, Number.NaN, Number.MAX_SAFE_INTEGER + 2])
      expect(leafOfId(id)).toBeUndefined()
  })
})

describe('tokenLeaf(token)', () => {
  it('reads any leaf below 64 from the token, not only below the count of today', () => {
    expect(tokenLeaf('l0_abc')).toBe(0)
    expect(tokenLeaf('l3_abc')).toBe(3)
    expect(tokenLeaf('l63_abc')).toBe(63)
    expect(tokenLeaf('l64_abc')).toBeUndefined()
    expect(tokenLeaf('abc')).toBeUndefined()
  })
})

describe("a leaf's ConnectionTable.nextId()", () => {
  it('hands out its own series: first, then every 64', () => {
    const ids = table(3)
    expect([ids.nextId(), ids.nextId(), ids.nextId()]).toEqual([3, 67, 131])
  })

  it('goes on in its own series after ids spaced otherwise (by an older count), never reusing one', () => {
    // Leaf 2 of 4 under the old spacing handed out 3, 7, 11: the next is the first of its series past 11.
    const ids = table(3, 11)
    expect([ids.nextId(), ids.nextId()]).toEqual([67, 131])
  })
})
