import { log } from '../../core/log.js'
import type { ResolvedShards } from '../../options.js'
import { SessionLog, type LogBounds } from '../session/log.js'
import type { Batch, Publication, RoomMessage } from './messages.js'
import { leafName, shardStub } from './names.js'
import { ShardCounters, type ShardStats } from './stats.js'

/** Rows one batch to a leaf carries at most; a leaf further behind gets the rest in the next. */
const BATCH_ROWS = 512

/** A failed batch is tried again after this, doubled per failure in a row, up to {@link MAX_RETRY_MS}. */
const FIRST_RETRY_MS = 10
const MAX_RETRY_MS = 2_000

/** Where the root keeps, per leaf, the last publication it took, so a retried one is taken once. */
const TAKEN_KEY = 'durable-websocket:shard-taken:'

/** What the root knows of one leaf: how far it confirmed, and whether a batch is on its way. */
interface LeafState {
  readonly index: number
  /** The last number the leaf said it applied; undefined until this instance heard from it. */
  through: number | undefined
  busy: boolean
  failures: number
}

/**
 * The root of a sharded room (docs/sharding.md): holds no sockets, numbers
 * every message sent to the room in its log, and sends each leaf what it has
 * not confirmed, in one call per leaf per turn, however many messages the
 * turn numbered. Delivery is at least once: a call that fails is made again,
 * and the leaf drops what it already applied.
 */
export class ShardRoot {
  readonly #ctx: DurableObjectState
  readonly #env: unknown
  readonly #binding: string
  readonly #room: string
  readonly #log: SessionLog
  readonly #leaves: LeafState[]
  /** The log's head when this instance started: a leaf it has not heard from is sent what comes after. */
  #startedAt: number | undefined
  #scheduled = false
  readonly #counters = new ShardCounters()

  constructor(
    ctx: DurableObjectState,
    env: unknown,
    room: string,
    shards: ResolvedShards,
    bounds: LogBounds,
  ) {
    this.#ctx = ctx
    this.#env = env
    this.#binding = shards.binding
    this.#room = room
    this.#log = new SessionLog(ctx.storage.sql, bounds)
    this.#leaves = Array.from({ length: shards.count }, (_, index) => ({
      index,
      through: undefined,
      busy: false,
      failures: 0,
    }))
  }

  /** The last number handed out. */
  head(): number {
    return this.#log.head()
  }

  /** The calls this root made and took, for the bench (shard/stats.ts). */
  stats(): ShardStats {
    return this.#counters.read('root', this.head())
  }

  /**
   * Numbers and logs a leaf's messages, in the order it sent them, unless
   * this publication was taken already (the leaf's call was retried).
   * Returns the last number handed out.
   */
  take({ leaf, sender, n, messages }: Publication): number {
    this.#counters.taken++
    const kv = this.#ctx.storage.kv
    const taken = kv.get<{ sender: string; n: number }>(`${TAKEN_KEY}${String(leaf)}`)
    if (taken?.sender === sender && n <= taken.n) return this.head()
    kv.put(`${TAKEN_KEY}${String(leaf)}`, { sender, n })
    for (const message of messages) this.publish(message)
    return this.head()
  }

  /** Numbers and logs one message (a broadcast over RPC to the root comes here), and sends it soon. */
  publish({ target, tag, except, frame, mark }: RoomMessage): number {
    this.#startedAt ??= this.#log.head()
    const seq = this.#log.append(target, tag, except, frame, Date.now(), mark)
    this.#counters.messages++
    this.#schedule()
    return seq
  }

  /** What a leaf that found a gap asks for: the rows after `after`, a batch at a time. */
  since(after: number): Batch {
    this.#counters.taken++
    return this.#batch(after)
  }

  #batch(after: number): Batch {
    const rows = this.#log.rows(after, BATCH_ROWS)
    const oldest = this.#log.oldestKept
    if (oldest > after + 1)
      log.warn(
        `leaf of room ${this.#room} asked for numbers from ${String(after + 1)}, the log starts at ${String(oldest)}`,
      )
    const messages = rows.map(({ seq, target, tag, except, frame, mark }) => ({
      seq,
      target,
      tag,
      except,
      frame,
      mark,
    }))
    return { from: after + 1, through: messages.at(-1)?.seq ?? after, messages }
  }

  /**
   * One flush per turn: whatever this turn numbered (from any number of
   * leaves' calls) leaves together, one call per leaf.
   */
  #schedule(delay = 0): void {
    if (this.#scheduled) return
    this.#scheduled = true
    setTimeout(() => {
      this.#scheduled = false
      this.#flush()
    }, delay)
  }

  #flush(): void {
    const head = this.#log.head()
    for (const leaf of this.#leaves) {
      if (leaf.busy || this.#from(leaf) > head) continue
      this.#ctx.waitUntil(
        this.#send(leaf).catch((error: unknown) => {
          // Only when this instance itself is going away: the next one sends on from its log.
          log.error(`sending to leaf ${String(leaf.index)} of room ${this.#room} stopped:`, error)
        }),
      )
    }
  }

  #from(leaf: LeafState): number {
    return (leaf.through ?? this.#startedAt ?? this.#log.head()) + 1
  }

  async #send(leaf: LeafState): Promise<void> {
    leaf.busy = true
    const batch = this.#batch(this.#from(leaf) - 1)
    this.#counters.calls++
    this.#counters.rows += batch.messages.length
    try {
      const stub = shardStub(this.#env, this.#binding, leafName(this.#room, leaf.index))
      const applied = await stub.shardApply(batch)
      leaf.through = Math.max(leaf.through ?? 0, applied)
      leaf.failures = 0
    } catch (error) {
      this.#counters.failed++
      leaf.failures++
      log.warn(
        `batch ${String(batch.from)}..${String(batch.through)} to leaf ${String(leaf.index)} of room ${this.#room} failed (${String(leaf.failures)} in a row), trying again:`,
        error,
      )
    } finally {
      leaf.busy = false
    }
    if (this.#from(leaf) <= this.#log.head())
      this.#schedule(
        leaf.failures === 0 ? 0 : Math.min(MAX_RETRY_MS, FIRST_RETRY_MS * 2 ** (leaf.failures - 1)),
      )
  }
}
