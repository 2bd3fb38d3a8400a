import { describe } from './shared/describe.js'
import { invalid, positiveInteger } from './optionChecks.js'

/**
 * One logical room spread over `count` leaf objects that hold the sockets,
 * and a root object that numbers and logs everything sent to the whole room
 * (docs/sharding.md). Experimental: presence does not work with it yet.
 */
export interface ShardOptions {
  /**
   * How many leaf objects one room spreads over, 1 to 64. May be raised for a
   * room that has connections: the new leaves take new sockets, nobody is
   * dropped. Lowering it only stops placing sockets on the last leaves; the
   * room keeps delivering to them, and counting them, for good
   * (docs/sharding.md, "Growing and shrinking").
   */
  count: number
  /** Open sockets one leaf takes before new ones go to the next. */
  socketsPerShard: number
}

/** Shard options checked, with the binding the root and its leaves reach each other through. */
export interface ResolvedShards extends Readonly<ShardOptions> {
  readonly binding: string
}

/** The most leaves one room spreads over: every leaf gets each batch, and ids are spaced by this, whatever the count. */
export const MAX_SHARDS = 64

/** The `shards` option checked; undefined for an ordinary room. */
export function resolveShards(value: unknown, binding: string): ResolvedShards | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'object' || value === null) {
    throw invalid(`options.shards must be { count, socketsPerShard }, got ${describe(value)}.`)
  }
  const { count, socketsPerShard } = value as Partial<ShardOptions>
  const resolved = {
    count: positiveInteger('shards.count', count, MAX_SHARDS),
    socketsPerShard: positiveInteger('shards.socketsPerShard', socketsPerShard),
  }
  if (resolved.count === undefined || resolved.socketsPerShard === undefined)
    throw invalid(
      'options.shards needs both count and socketsPerShard, e.g. { count: 4, socketsPerShard: 5000 }.',
    )
  return { count: resolved.count, socketsPerShard: resolved.socketsPerShard, binding }
}
