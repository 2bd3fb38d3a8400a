import { log } from '../../core/log.js'
import type { ResolvedShards } from '../../options.js'
import { HeldTags } from './heldTags.js'
import type { Batch, NumberedMessage, RoomMessage, ShardStub } from './messages.js'
import { shardStub } from './names.js'
import { LeafOutbox } from './outbox.js'
import { LeafSpan } from './span.js'
import { ShardCounters, type ShardStats } from './stats.js'

/** Where a leaf keeps the last root number it applied: written in the same turn as what it delivered. */
const APPLIED_KEY = 'durable-websocket:shard-applied'

/**
 * A leaf of a sharded room (docs/sharding.md): holds sockets like any room
 * object, but what its handlers send to the room (and to its sessions) goes
 * to the root to be numbered first, and comes back in a batch in the root's
 * order. A leaf delivers each number once: it remembers, durably, the last
 * one it applied, drops copies from a retried batch, and asks the root for
 * what it missed when a batch starts past it.
 */
export class ShardLeaf {
  readonly index: number
  readonly #ctx: DurableObjectState
  readonly #env: unknown
  readonly #binding: string
  readonly #room: string
  readonly #deliver: (message: NumberedMessage) => void
  /** What this leaf's handlers sent the room, kept in storage until the root took it. */
  readonly #outbox: LeafOutbox
  /** Batches are applied one after another: a catch-up that awaits the root holds the next one back. */
  #applying: Promise<unknown> = Promise.resolve()
  #applied: number | undefined
  readonly #counters = new ShardCounters()
  readonly #tags: HeldTags
  readonly #span: LeafSpan

  constructor(
    ctx: DurableObjectState,
    env: unknown,
    room: string,
    index: number,
    shards: ResolvedShards,
    deliver: (message: NumberedMessage) => void,
  ) {
    this.#ctx = ctx
    this.#env = env
    this.#binding = shards.binding
    this.#room = room
    this.index = index
    this.#deliver = deliver
    this.#span = new LeafSpan(ctx.storage.kv, Math.max(shards.count, index + 1))
    this.#tags = new HeldTags(ctx, index, () => this.#root(), `leaf ${String(index)} of room ${room}`)
    this.#outbox = new LeafOutbox(
      ctx,
      index,
      () => this.#root(),
      `leaf ${String(index)} of room ${room}`,
      this.#counters,
    )
  }

  /**
   * The tags of a socket this leaf just accepted: the root learns the new
   * ones, so `to(tag)` rows for them come here (shard/heldTags.ts). Called
   * in the accept's own turn.
   */
  holds(tags: readonly string[]): void {
    this.#tags.hold(tags)
  }

  /** The last root number this leaf delivered. */
  get applied(): number {
    this.#applied ??= this.#ctx.storage.kv.get<number>(APPLIED_KEY) ?? 0
    return this.#applied
  }

  /** How many leaves the room has, as far as this leaf heard from the root: its room-wide calls ask them all. */
  get span(): number {
    return this.#span.span
  }

  /** The calls this leaf made and took, for the bench (shard/stats.ts). */
  stats(): ShardStats {
    return this.#counters.read('leaf', this.applied)
  }

  /**
   * A message for the room, from a handler or an RPC call on this leaf:
   * written to the outbox in this turn, so it commits with the handler's
   * effects, and sent to the root with whatever else this turn writes.
   */
  publish(message: RoomMessage): void {
    this.#outbox.add(message)
  }

  /** How many of this leaf's messages wait for the root to take them. */
  outboxPending(): number {
    return this.#outbox.pending()
  }

  /** The leaf's part of the object's alarm: resends what the root has not taken yet. */
  async alarm(): Promise<void> {
    await this.#outbox.alarm()
  }

  /** A batch from the root; answers the last number applied, which the root sends on from. */
  apply(batch: Batch): Promise<number> {
    this.#counters.taken++
    const applying = this.#applying.then(() => this.#applyInOrder(batch))
    this.#applying = applying.catch(() => undefined)
    return applying
  }

  async #applyInOrder(batch: Batch): Promise<number> {
    this.#tags.heard(batch)
    this.#begin(batch.start)
    // A batch that starts past what was applied means one went missing; one filtered with an older
    // version of this leaf's tags may lack rows for a tag gained since. The root's log has both.
    while (this.applied < (this.#tags.trusts(batch) ? batch.from - 1 : batch.through)) {
      const before = this.applied
      this.#counters.calls++
      this.#take(await this.#root().shardSince(before, this.index))
      if (this.applied === before) break
    }
    if (batch.from > this.applied + 1)
      log.warn(
        `leaf ${String(this.index)} of room ${this.#room} skipped numbers ${String(this.applied + 1)}..${String(batch.from - 1)}: the root's log no longer has them`,
      )
    this.#take(batch)
    return this.applied
  }

  /**
   * Applies what the root numbered up to `seq`, asking it for what no batch
   * brought yet: a session that moved here from another leaf may have seen
   * numbers this leaf has not (shard/claims.ts). In line with the batches;
   * `then` runs in the same line, once the catch-up is done.
   */
  catchUpTo(seq: number, then?: () => void): Promise<void> {
    const catching = this.#applying.then(async () => {
      while (this.applied < seq) {
        const before = this.applied
        this.#take(await this.#root().shardSince(before, this.index))
        if (this.applied === before) break
      }
      // Still in line: no batch is applied between the catch-up and what the caller does with it.
      then?.()
    })
    this.#applying = catching.catch(() => undefined)
    return catching
  }

  /**
   * Delivers, in order, every message past the last applied, and stores how
   * far it got in the same turn: through the batch's `through`, since the
   * rows between its messages were for other leaves.
   */
  #take(batch: Batch): void {
    this.#span.heard(batch.span)
    this.#begin(batch.start)
    const before = this.applied
    this.#counters.rows += batch.messages.length
    for (const message of batch.messages)
      if (message.seq > before) {
        this.#deliver(message)
        this.#counters.messages++
      }
    const applied = Math.max(before, batch.through)
    if (applied === before) return
    this.#applied = applied
    this.#ctx.storage.kv.put(APPLIED_KEY, applied)
  }

  /**
   * The root added this leaf when its log already held rows (shard/span.ts):
   * none of them was for a socket here, so the leaf goes on from `start`
   * instead of copying the log from the beginning.
   */
  #begin(start: number | undefined): void {
    if (start === undefined || this.applied >= start) return
    this.#applied = start
    this.#ctx.storage.kv.put(APPLIED_KEY, start)
  }

  #root(): ShardStub {
    return shardStub(this.#env, this.#binding, this.#room)
  }
}
