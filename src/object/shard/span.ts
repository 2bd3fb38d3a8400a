/** Where an object of a sharded room keeps how many leaves the room has had at most. */
const SPAN_KEY = 'durable-websocket:shard-span'

/** Where the root keeps, per leaf it added to a room that already had rows, the number it started that leaf at. */
const START_KEY = 'durable-websocket:shard-start:'

/**
 * The leaves of a sharded room that still count (docs/sharding.md, "Growing
 * and shrinking"): every leaf below the highest `count` the room has ever
 * run with. Raising `count` adds leaves at the end. Lowering it only stops
 * placing new sockets on the last leaves: they may still hold sockets and
 * suspended sessions, so the root keeps delivering to them and the
 * room-wide calls keep asking them. The root keeps the number in its
 * storage; a leaf hears it with every batch (`Batch.span`).
 */
export class LeafSpan {
  readonly #kv: SyncKvStorage
  #span: number

  /** `least` is what this object knows without asking: its `count`, and on a leaf its own index + 1. */
  constructor(kv: SyncKvStorage, least: number) {
    this.#kv = kv
    const stored = kv.get<number>(SPAN_KEY)
    this.#span = Math.max(stored ?? 0, least)
    if (this.#span !== stored) kv.put(SPAN_KEY, this.#span)
  }

  /** How many leaves to deliver to and ask: leaves 0 to span - 1. */
  get span(): number {
    return this.#span
  }

  /** A batch from the root said how many leaves the room has: kept, never lowered. */
  heard(span: number | undefined): void {
    if (span === undefined || span <= this.#span) return
    this.#span = span
    this.#kv.put(SPAN_KEY, span)
  }
}

/**
 * On the root, where each leaf starts, as of this instance: a leaf the root
 * already knew goes on from what it confirmed (or 0), a leaf added to the
 * room after rows were numbered starts at the head. It holds nobody yet, so
 * nothing before the head is for it, and it need not copy the whole log
 * (`Batch.start`). Written once, when the leaf is added, so an instance that
 * starts later still tells the leaf where to start if its first batch has
 * not got through.
 */
export function leafStarts(kv: SyncKvStorage, count: number, head: number): number[] {
  const known = kv.get<number>(SPAN_KEY)
  const span = new LeafSpan(kv, count).span
  return Array.from({ length: span }, (_, index) => {
    const key = `${START_KEY}${String(index)}`
    // A room numbered before the span was kept: every leaf may hold sockets, so each starts from 1 as before.
    if (known === undefined || index < known || head === 0) return kv.get<number>(key) ?? 0
    kv.put(key, head)
    return head
  })
}
