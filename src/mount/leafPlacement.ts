/** Rooms whose last placement an isolate remembers; the oldest is forgotten first. */
const REMEMBERED_ROOMS = 1_000

/**
 * Where the last upgrade of each sharded room landed, in this isolate's
 * memory: the next one starts asking there instead of at leaf 0, so once
 * the first leaves are full an upgrade costs one `shardHasRoom` call, not
 * one per full leaf before it (docs/sharding.md, "Placement"). Only a
 * hint: another isolate, or a fresh one, starts elsewhere, and a leaf that
 * is full refuses the upgrade to the next as before.
 */
export class PlacementHints {
  readonly #last = new Map<string, number>()
  readonly #limit: number

  constructor(limit = REMEMBERED_ROOMS) {
    this.#limit = limit
  }

  /**
   * The leaves of a room in the order to ask them: from the one the last
   * upgrade went to, round to the one before it.
   */
  order(key: string, count: number): number[] {
    const last = this.#last.get(key)
    const start = last === undefined || last >= count ? 0 : last
    return Array.from({ length: count }, (_, step) => (start + step) % count)
  }

  /** Remembers the leaf an upgrade went to: the next one asks it first. */
  placed(key: string, leaf: number): void {
    // Deleted first so the room moves to the end of the map's order: the oldest is the first key.
    this.#last.delete(key)
    this.#last.set(key, leaf)
    if (this.#last.size <= this.#limit) return
    const oldest = this.#last.keys().next()
    if (oldest.done !== true) this.#last.delete(oldest.value)
  }
}

/** The one every module of this isolate shares: keyed by binding and room. */
export const placementHints = new PlacementHints()
