/**
 * What one object of a sharded room counted since this instance started:
 * the calls it made to the other objects of the room and the calls it took
 * from them. Counted where the call is made, so a room's object-to-object
 * calls are the sum of every part's `calls`, none counted twice. In memory
 * only: an evicted or restarted object starts again at zero (the bench reads
 * them while the room is busy, docs/sharding.md "Batching").
 */
export interface ShardStats {
  readonly part: 'root' | 'leaf'
  /** When this instance started counting (ms since the epoch): a reader that sees it change knows the counters restarted. */
  readonly since: number
  /** On the root, the last number it handed out; on a leaf, the last it applied. */
  readonly at: number
  /** Calls this object made: `shardPublish` and `shardSince` from a leaf, `shardApply` from the root, retries included. */
  readonly calls: number
  /** Of those, the ones that failed. */
  readonly failed: number
  /** Calls it took from the room's other objects (`shardPublish` and `shardSince` on the root, `shardApply` on a leaf). */
  readonly taken: number
  /** Messages it handed on: numbered on the root, delivered on a leaf. */
  readonly messages: number
  /** Rows it sent (root, in batches) or received (leaf, in batches and catch-ups), copies included. */
  readonly rows: number
}

/** The counters behind {@link ShardStats}, kept by the root and by each leaf. */
export class ShardCounters {
  readonly #since = Date.now()
  calls = 0
  failed = 0
  taken = 0
  messages = 0
  rows = 0

  read(part: 'root' | 'leaf', at: number): ShardStats {
    const { calls, failed, taken, messages, rows } = this
    return { part, since: this.#since, at, calls, failed, taken, messages, rows }
  }
}
