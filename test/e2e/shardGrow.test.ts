import { resolve } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { MAX_SHARDS } from '../../src/shardOptions.js'
import { oneTo, peer, until, type Peer } from './sessionPeers.js'
import { createWorkspace, startDev, type DevServer, type Workspace } from './wranglerDev.js'

// One room of the fixture's worker under `wrangler dev` with shards.count 2, then the same worker and
// storage with count 4 (docs/sharding.md, "Growing and shrinking"): a deploy that grows the room.

const dir = resolve(import.meta.dirname, 'fixtures/shardGrow')
const ROOM = 'grown'
/** Exactly what leaves 0 and 1 hold (20 sockets each): the clients that come after must go further. */
const FIRST = 40
const LATE = 24
const BEFORE = 10
const BETWEEN = 10
const AFTER = 10

let workspace: Workspace | undefined
let dev: DevServer | undefined
afterAll(async () => {
  await dev?.stop()
  await workspace?.remove()
})

async function broadcast(server: DevServer, from: number, to: number): Promise<void> {
  for (let b = from; b <= to; b++) {
    const response = await fetch(`${server.origin}/rooms/${ROOM}/broadcast/${String(b)}`, { method: 'POST' })
    expect(response.status).toBe(200)
  }
}

async function leaves(server: DevServer): Promise<number[][]> {
  return (await (await fetch(`${server.origin}/rooms/${ROOM}/leaves`)).json()) as number[][]
}

function from(first: number, last: number): number[] {
  return oneTo(last - first + 1).map((n) => n + first - 1)
}

describe('a sharded room whose count is raised from 2 to 4 by a restart on the same storage', () => {
  it('resumes every session with its id and no reset, puts new clients on the new leaves, and delivers every broadcast once in order', async () => {
    workspace = await createWorkspace()
    dev = await startDev(workspace, { config: resolve(dir, 'wrangler.toml') })
    let stopping = false
    const url = (server: DevServer): string => `${server.wsOrigin}/ws/${ROOM}`
    const join = (server: DevServer, name: string): Peer =>
      peer(
        name,
        url(server),
        () => stopping,
        0,
        (k) => ({ n: k }),
      )
    const first: Peer[] = []
    // One after another, so each knows which leaves are full: 20 on leaf 0, then 20 on leaf 1.
    for (let n = 0; n < FIRST; n++) {
      const p = join(dev, `first-${String(n)}`)
      first.push(p)
      await until(`${p.name} open`, () => p.ids.length === 1, 10_000, first)
    }
    const before = await leaves(dev)
    expect(before.map((ids) => ids.length)).toEqual([20, 20, 0, 0])
    await broadcast(dev, 1, BEFORE)
    await until(
      'the broadcasts before the restart',
      () => first.every((p) => p.broadcasts.length === BEFORE),
      15_000,
      first,
    )

    // The deploy: wrangler stops (SIGTERM) and starts again with count 4 on the same state and port.
    const port = Number(new URL(dev.origin).port)
    await dev.stop()
    dev = await startDev(workspace, { config: resolve(dir, 'wrangler4.toml'), port })
    const grown = dev
    await until(
      'every session resumed',
      () => first.every((p) => p.resumes >= 1 && p.client.state === 'open'),
      30_000,
      first,
    )
    await broadcast(grown, BEFORE + 1, BEFORE + BETWEEN)

    const late: Peer[] = []
    for (let n = 0; n < LATE; n++) {
      const p = join(grown, `late-${String(n)}`)
      late.push(p)
      await until(`${p.name} open`, () => p.ids.length === 1, 10_000, [...first, ...late])
    }
    const everyone = [...first, ...late]
    const total = BEFORE + BETWEEN + AFTER
    await broadcast(grown, BEFORE + BETWEEN + 1, total)
    await until(
      'every broadcast delivered',
      () =>
        first.every((p) => p.broadcasts.length >= total) && late.every((p) => p.broadcasts.length >= AFTER),
      20_000,
      everyone,
    )

    for (const p of first) {
      expect(p.resets, `${p.name} reset`).toBe(0)
      expect(new Set(p.ids).size, `${p.name} kept its id`).toBe(1)
      expect(p.broadcasts, `what ${p.name} received`).toEqual(oneTo(total))
    }
    // The late clients joined after the first 20 broadcasts were numbered, so they start at the next.
    for (const p of late)
      expect(p.broadcasts, `what ${p.name} received`).toEqual(from(BEFORE + BETWEEN + 1, total))
    const ids = everyone.map((p) => p.ids[0] ?? 0)
    expect(new Set(ids).size).toBe(everyone.length)
    const after = await leaves(grown)
    // The first clients are still on leaves 0 and 1, under their first ids; the late ones on 2 and 3.
    expect(after.slice(0, 2)).toEqual(before.slice(0, 2))
    expect(
      after
        .slice(2)
        .flat()
        .sort((a, b) => a - b),
    ).toEqual(late.map((p) => p.ids[0] ?? 0).sort((a, b) => a - b))
    expect(after[2]?.length).toBeGreaterThan(0)
    expect(after[3]?.length).toBeGreaterThan(0)
    after.forEach((onLeaf, leaf) => {
      // The rule of src/object/shard/names.ts's leafOfId, which needs the Workers types to import.
      for (const id of onLeaf) expect((id - 1) % MAX_SHARDS).toBe(leaf)
    })
    stopping = true
    for (const p of everyone) p.client.close()
  }, 90_000)
})
