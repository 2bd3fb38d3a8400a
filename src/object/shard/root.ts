import { log } from '../../core/log.js'
import { alarmNoLaterThan } from '../alarm.js'
import type { ResolvedShards } from '../../options.js'
import { HandledStamps } from '../session/handledStamps.js'
import { SessionLog, type LogBounds } from '../session/log.js'
import { BATCH_ROWS, LeafRoute } from './leafRoute.js'
import type { Batch, Publication, RoomMessage, TagReport } from './messages.js'
import { leafName, leafOfId, shardStub } from './names.js'
import { SessionRoutes, type MoveAnswer, type MoveNotice } from './sessionRoutes.js'
import { leafStarts } from './span.js'
import { ShardCounters, type ShardStats } from './stats.js'

/** A failed batch is tried again after this, doubled per failure in a row, up to {@link MAX_RETRY_MS}. */
const FIRST_RETRY_MS = 10
const MAX_RETRY_MS = 2_000

/**
 * While rows are on their way, the root's alarm is set at most this far
 * ahead: if this instance goes away (evicted, restarted) before every leaf
 * confirmed, the next one resends from the alarm without waiting for a
 * message to arrive.
 */
const RESEND_MS = 2_000

/** Where the root keeps, per leaf, the last number it confirmed: a new instance sends on from there. */
const CONFIRMED_KEY = 'durable-websocket:shard-confirmed:'

/** Where the root keeps, per leaf, the epoch and last outbox number it took, so a resent message is taken once. */
const TAKEN_KEY = 'durable-websocket:shard-taken:'

/**
 * The root of a sharded room (docs/sharding.md): holds no sockets, numbers
 * every message sent to the room in its log, and sends each leaf what it has
 * not confirmed and is for it (shard/leafRoute.ts), in one call per leaf per
 * turn, however many messages the turn numbered. Delivery is at least once: a call that fails is made again,
 * and the leaf drops what it already applied.
 */
export class ShardRoot {
  readonly #ctx: DurableObjectState
  readonly #env: unknown
  readonly #binding: string
  readonly #room: string
  readonly #log: SessionLog
  readonly #leaves: LeafRoute[]
  readonly #routes: SessionRoutes
  #scheduled = false
  readonly #counters = new ShardCounters()
  /** The time this instance set the alarm for, if it did and it has not run yet: set again only to move it earlier. */
  #alarmAt: number | undefined
  #waking: Promise<void> = Promise.resolve()
  /** How long a row is kept by age: the resume window, as in an ordinary room. */
  readonly #window: number

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
    // The root runs no handlers, so nothing stamps its rows.
    this.#log = new SessionLog(ctx.storage.sql, bounds, new HandledStamps(ctx.storage.sql))
    this.#window = bounds.window
    this.#routes = new SessionRoutes(ctx.storage.sql)
    // Every leaf the room has ever had, not only today's count: a lowered count still has sockets there.
    const starts = leafStarts(ctx.storage.kv, shards.count, this.#log.head())
    this.#leaves = starts.map((start, index) => {
      const leaf = new LeafRoute(index, (id) => this.leafOfId(id))
      leaf.start = start
      leaf.confirmed = ctx.storage.kv.get<number>(`${CONFIRMED_KEY}${String(index)}`) ?? start
      return leaf
    })
  }

  /** How many leaves this root delivers to: the highest `count` the room has had (shard/span.ts). */
  get span(): number {
    return this.#leaves.length
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
   * Numbers and logs a leaf's messages, in the order it sent them, skipping
   * those this root took already (a resend after a lost answer or a leaf's
   * restart): the leaf's outbox numbers them durably (shard/outbox.ts).
   * Returns the last outbox number taken from that leaf, through which the
   * leaf may forget its rows.
   */
  take({ leaf, epoch, first, messages }: Publication): number {
    this.#counters.taken++
    const kv = this.#ctx.storage.kv
    const key = `${TAKEN_KEY}${String(leaf)}`
    const stored = kv.get<{ epoch?: string; n: number }>(key)
    // Another epoch is a leaf whose storage was wiped: its numbering started again.
    const taken = stored?.epoch === epoch ? stored.n : 0
    if (first > taken + 1)
      log.warn(
        `leaf ${String(leaf)} of room ${this.#room} sent outbox numbers from ${String(first)}, the root took through ${String(taken)}`,
      )
    const last = first + messages.length - 1
    if (last <= taken) return taken
    messages.forEach((message, index) => {
      if (first + index > taken) this.publish(message)
    })
    kv.put(key, { epoch, n: last })
    return last
  }

  /** Numbers and logs one message (a broadcast over RPC to the root comes here), and sends it soon. */
  publish({ target, tag, except, frame, mark }: RoomMessage): number {
    const now = Date.now()
    const seq = this.#log.append(target, tag, except, frame, now, mark)
    this.#counters.messages++
    this.#schedule()
    this.#wake(now + RESEND_MS)
    return seq
  }

  /** The leaf that holds connection `id` now: where its session moved, else the one that handed it out. */
  leafOfId(id: number): number | undefined {
    return this.#routes.leafOf(id) ?? leafOfId(id)
  }

  /**
   * A leaf adopted a claimed session (shard/claims.ts). In one synchronous
   * step, so no row can be numbered in between: the route is recorded (rows
   * for the id, and the session's tags, go to that leaf from the next batch
   * on), and the rows numbered so far after the client's position that were
   * for the session are read, for the leaf to log before the replay. A row
   * for it numbered later is routed there.
   */
  moved({ id, leaf, after, tags, until }: MoveNotice): MoveAnswer {
    this.#counters.taken++
    const route = this.#leaves[leaf]
    if (route === undefined) return { kind: 'trimmed' }
    if (this.#log.oldestKept > after + 1) return { kind: 'trimmed' }
    this.#routes.record(id, leaf, until)
    route.gained(tags)
    const messages = this.#log.rowsFor(id, tags, after).map(({ seq, target, tag, except, frame, mark }) => ({
      seq,
      target,
      tag,
      except,
      frame,
      mark,
    }))
    return { kind: 'rows', head: this.head(), messages }
  }

  /**
   * What a leaf that found a gap asks for: the rows after `after`, a batch
   * at a time; never from before where the root started that leaf.
   */
  since(after: number, leaf?: number): Batch {
    this.#counters.taken++
    const start = leaf === undefined ? 0 : (this.#leaves[leaf]?.start ?? 0)
    const batch = this.#batch(Math.max(after, start))
    return start > 0 ? { ...batch, start } : batch
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
    return { from: after + 1, through: messages.at(-1)?.seq ?? after, messages, tags: null, span: this.span }
  }

  /**
   * A leaf's report of the tags it holds: from now on the root sends it the
   * rows for them, including any it skipped for the leaf and has not sent
   * yet. Answers the version of the leaf's tags the root holds.
   */
  learnTags(report: TagReport): number {
    const leaf = this.#leaves[report.leaf]
    if (leaf === undefined) return -1
    const known = leaf.learn(report)
    this.#schedule()
    return known
  }

  /** The tags the root knows leaf `index` holds; undefined when it has not heard them (docs/sharding.md). */
  tagsOf(index: number): readonly string[] | undefined {
    return this.#leaves[index]?.tags
  }

  /**
   * The root's part of the object's alarm: sends every leaf that is behind
   * what it has not confirmed (retries after a failed batch, and a new
   * instance's resend), trims the log by age but never past what a leaf
   * still needs, and sets the alarm again while either has work left.
   */
  async alarm(now: number): Promise<void> {
    this.#alarmAt = undefined
    this.#routes.prune(now)
    this.#flush()
    this.#log.trim(now, Math.min(...this.#leaves.map((leaf) => leaf.settled)))
    if (this.#leaves.some((leaf) => leaf.behind(this.#log))) this.#wake(now + RESEND_MS)
    else if (this.#log.oldestKept < this.#log.head()) this.#wake(now + this.#window)
    await this.#waking
  }

  /** Sets the alarm for `at`, unless this instance already set it no later. */
  #wake(at: number): void {
    if (this.#alarmAt !== undefined && this.#alarmAt <= at) return
    this.#alarmAt = at
    this.#waking = alarmNoLaterThan(this.#ctx.storage, at)
    this.#ctx.waitUntil(this.#waking)
  }

  /**
   * One flush per turn: whatever this turn numbered (from any number of
   * leaves' calls) leaves together, one call per leaf.
   */
  #schedule(): void {
    if (this.#scheduled) return
    this.#scheduled = true
    setTimeout(() => {
      this.#scheduled = false
      this.#flush()
    }, 0)
  }

  #flush(): void {
    for (const leaf of this.#leaves) {
      if (leaf.busy) continue
      const batch = leaf.next(this.#log)
      if (batch === undefined) continue
      this.#ctx.waitUntil(
        this.#send(leaf, batch).catch((error: unknown) => {
          // Only when this instance itself is going away: the next one sends on from its log.
          log.error(`sending to leaf ${String(leaf.index)} of room ${this.#room} stopped:`, error)
        }),
      )
    }
  }

  async #send(leaf: LeafRoute, batch: Batch): Promise<void> {
    leaf.busy = true
    this.#counters.calls++
    this.#counters.rows += batch.messages.length
    try {
      const stub = shardStub(this.#env, this.#binding, leafName(this.#room, leaf.index))
      const before = leaf.confirmed
      // `start` until the leaf confirmed past it: a leaf added after rows were numbered skips what came before.
      const start = leaf.confirmed <= leaf.start && leaf.start > 0 ? { start: leaf.start } : {}
      leaf.answered(await stub.shardApply({ ...batch, ...start, span: this.span }))
      if (leaf.confirmed !== before)
        this.#ctx.storage.kv.put(`${CONFIRMED_KEY}${String(leaf.index)}`, leaf.confirmed)
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
    if (!leaf.behind(this.#log)) return
    // The rest follows at once; a retry waits for the alarm, which a new instance runs as well.
    if (leaf.failures === 0) this.#schedule()
    else this.#wake(Date.now() + Math.min(MAX_RETRY_MS, FIRST_RETRY_MS * 2 ** (leaf.failures - 1)))
  }
}
