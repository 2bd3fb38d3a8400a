import { DurableWebSocketError } from '../../core/errors.js'
import { log } from '../../core/log.js'
import { exceedsBytes } from '../../shared/byteSize.js'
import { alarmNoLaterThan } from '../alarm.js'
import { MAX_LOGGED_FRAME_BYTES } from '../session/log.js'
import type { Publication, RoomMessage, ShardStub } from './messages.js'
import type { ShardCounters } from './stats.js'

/** Where a leaf keeps the name of its outbox's numbering and the last number the root took. */
const OUTBOX_KEY = 'durable-websocket:shard-outbox'

/** Rows sent in one call at most: a backlog after a long outage leaves in several calls, in order. */
const SEND_ROWS = 512

/** A failed send is tried again from the alarm after this, doubled per failure in a row, up to {@link MAX_RETRY_MS}. */
const FIRST_RETRY_MS = 10
const MAX_RETRY_MS = 2_000

/**
 * While rows wait, the leaf's alarm is set at most this far ahead: an
 * instance that goes away before the root took them (a crash right after the
 * handler's turn) is woken to send them, even if nothing else calls it.
 */
const RESEND_MS = 2_000

/**
 * What the leaf remembers of its outbox: `epoch` names this storage's
 * numbering (a wiped leaf starts again at 1 under a new one), `taken` the
 * last number the root answered it took.
 */
interface OutboxState {
  readonly epoch: string
  taken: number
}

/**
 * A leaf's outbox (docs/sharding.md, the path of a broadcast): each room
 * message a handler sends is written to SQLite in the handler's own turn,
 * so it commits with the handler's effects and the client message's handled
 * mark, under a durable number that only grows. What is pending leaves for
 * the root in order, all of it in one call per turn, and is deleted once the
 * root answered it took it. The root dedupes by (epoch, number), so a resend
 * after a lost answer or a restart is taken once. A send that fails is tried
 * again from the leaf's alarm, for as long as it takes; a new instance sends
 * what an old one left at its first use.
 */
export class LeafOutbox {
  readonly #ctx: DurableObjectState
  readonly #leaf: number
  readonly #root: () => ShardStub
  readonly #name: string
  readonly #counters: ShardCounters
  #state: OutboxState | undefined
  /** The next number to hand out; read from storage once per instance. */
  #next: number | undefined
  #scheduled = false
  /** A send is in flight: what is written meanwhile leaves when it is answered. */
  #sending = false
  #failures = 0
  /** The time this instance set the alarm for, if it did and it has not run yet. */
  #alarmAt: number | undefined
  #waking: Promise<void> = Promise.resolve()

  constructor(
    ctx: DurableObjectState,
    leaf: number,
    root: () => ShardStub,
    name: string,
    counters: ShardCounters,
  ) {
    this.#ctx = ctx
    this.#leaf = leaf
    this.#root = root
    this.#name = name
    this.#counters = counters
    ctx.storage.sql.exec(`CREATE TABLE IF NOT EXISTS dws_shard_outbox (
      n INTEGER PRIMARY KEY,
      target INTEGER,
      tag TEXT,
      excluded TEXT,
      frame BLOB NOT NULL,
      mark TEXT NOT NULL
    )`)
    // What an instance that went away had not sent: it leaves once this one has started.
    if (this.pending() > 0) this.#schedule()
  }

  /** How many messages wait for the root to take them. */
  pending(): number {
    return this.#ctx.storage.sql.exec<{ rows: number }>('SELECT count(*) AS rows FROM dws_shard_outbox').one()
      .rows
  }

  /**
   * Writes a message to the outbox, in the caller's turn; it leaves with
   * whatever else this turn writes. A frame too large for a SQLite row is
   * refused here, as the root's log would refuse it.
   */
  add({ target, tag, except, frame, mark }: RoomMessage): void {
    if (exceedsBytes(frame, MAX_LOGGED_FRAME_BYTES)) {
      throw new DurableWebSocketError(
        'ERR_DWS_MESSAGE_TOO_LARGE',
        `a message of more than ${String(MAX_LOGGED_FRAME_BYTES)} bytes cannot be kept on its way to the room's other objects, so it was not sent to anyone. Send large payloads in parts, or keep them in storage and send a reference.`,
      )
    }
    const stored =
      typeof frame === 'string' || frame instanceof ArrayBuffer
        ? frame
        : new Uint8Array(frame.buffer, frame.byteOffset, frame.byteLength).slice().buffer
    const n = this.#nextNumber()
    this.#ctx.storage.sql.exec(
      'INSERT INTO dws_shard_outbox (n, target, tag, excluded, frame, mark) VALUES (?, ?, ?, ?, ?, ?)',
      n,
      target,
      tag,
      except === null || except.length === 0 ? null : JSON.stringify(except),
      stored,
      mark,
    )
    this.#next = n + 1
    this.#wake(Date.now() + RESEND_MS)
    this.#schedule()
  }

  /**
   * The outbox's part of the leaf's alarm: sends what is pending, and sets
   * the alarm again (from the failure) while the root does not take it.
   */
  async alarm(): Promise<void> {
    this.#alarmAt = undefined
    if (this.pending() > 0) await this.#send()
    await this.#waking
  }

  #nextNumber(): number {
    if (this.#next !== undefined) return this.#next
    const last = this.#ctx.storage.sql
      .exec<{ last: number | null }>('SELECT max(n) AS last FROM dws_shard_outbox')
      .one().last
    return Math.max(last ?? 0, this.#current().taken) + 1
  }

  #current(): OutboxState {
    if (this.#state !== undefined) return this.#state
    const kv = this.#ctx.storage.kv
    let state = kv.get<OutboxState>(OUTBOX_KEY)
    if (state === undefined) {
      state = { epoch: crypto.randomUUID(), taken: 0 }
      kv.put(OUTBOX_KEY, state)
    }
    this.#state = state
    return state
  }

  /** One send per turn: the whole turn's messages go in one call. */
  #schedule(): void {
    if (this.#scheduled) return
    this.#scheduled = true
    setTimeout(() => {
      this.#scheduled = false
      this.#ctx.waitUntil(this.#send())
    }, 0)
  }

  /**
   * Sends the pending rows, oldest first, until none is left or a call
   * fails. One call at a time, so the root takes them in the order written.
   */
  async #send(): Promise<void> {
    if (this.#sending) return
    this.#sending = true
    try {
      for (;;) {
        const publication = this.#publication()
        if (publication === undefined) return
        this.#counters.calls++
        const taken = await this.#root().shardPublish(publication)
        if (taken < publication.first + publication.messages.length - 1)
          throw new Error(`the root answered it took through ${String(taken)}, short of what was sent`)
        this.#failures = 0
        this.#took(taken)
      }
    } catch (error) {
      this.#counters.failed++
      this.#failures++
      const retry = Math.min(MAX_RETRY_MS, FIRST_RETRY_MS * 2 ** (this.#failures - 1))
      log.warn(
        `${this.#name} could not hand its outbox to the root (${String(this.#failures)} in a row), trying again in ${String(retry)} ms:`,
        error,
      )
      this.#wake(Date.now() + retry)
    } finally {
      this.#sending = false
    }
  }

  #publication(): Publication | undefined {
    const rows = this.#ctx.storage.sql
      .exec<{
        n: number
        target: number | null
        tag: string | null
        excluded: string | null
        frame: string | ArrayBuffer
        mark: string
      }>('SELECT n, target, tag, excluded, frame, mark FROM dws_shard_outbox ORDER BY n LIMIT ?', SEND_ROWS)
      .toArray()
    const first = rows[0]
    if (first === undefined) return undefined
    const messages = rows.map(({ target, tag, excluded, frame, mark }) => ({
      target,
      tag,
      except: excluded === null ? null : (JSON.parse(excluded) as number[]),
      frame,
      mark,
    }))
    return { leaf: this.#leaf, epoch: this.#current().epoch, first: first.n, messages }
  }

  /** The root took every number through `taken`: those rows are done with. */
  #took(taken: number): void {
    const state = this.#current()
    if (taken <= state.taken) return
    state.taken = taken
    this.#ctx.storage.sql.exec('DELETE FROM dws_shard_outbox WHERE n <= ?', taken)
    this.#ctx.storage.kv.put(OUTBOX_KEY, state)
  }

  /** Sets the alarm for `at`, unless this instance already set it no later. */
  #wake(at: number): void {
    if (this.#alarmAt !== undefined && this.#alarmAt <= at) return
    this.#alarmAt = at
    this.#waking = alarmNoLaterThan(this.#ctx.storage, at)
    this.#ctx.waitUntil(this.#waking)
  }
}
