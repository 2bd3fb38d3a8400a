import { log } from '../../core/log.js'
import type { Frame } from '../../core/outgoing.js'
import type { BroadcastOptions } from '../../core/types.js'
import { CloseCode } from '../../shared/closeCodes.js'
import { numbered } from '../../shared/dataFrames.js'
import type { ConnectionEntry } from '../connection.js'
import type { ConnectionTable } from '../connectionTable.js'
import type { Outbound } from '../transport.js'
import type { SessionDesk } from './desk.js'
import { SessionLink } from './link.js'

/** Numbers per ms of the clock under the sequence numbers of `resume: false` (see #nextUnloggedSeq). */
const UNLOGGED_SEQ_PER_MS = 1024

/**
 * What the room sends to its sessions: each message gets its `g`, one
 * number for every session it reaches, and goes into the log once, with
 * who it was for, while any session exists. Without a log (`resume: false`)
 * the numbers come from the clock instead.
 */
export class SessionSends<Env, Data extends object, In, Out> {
  readonly #desk: SessionDesk<Env, Data, In, Out>
  readonly #table: ConnectionTable<Env, Data, In, Out>
  /** Whether any session exists, so fan-out logs; undefined until first asked. */
  #anySessions: boolean | undefined
  /** The last sequence number for session clients when nothing is logged (`resume: false`). */
  #unloggedSeq = 0

  constructor(desk: SessionDesk<Env, Data, In, Out>, table: ConnectionTable<Env, Data, In, Out>) {
    this.#desk = desk
    this.#table = table
  }

  /** The last `g` handed out: the log's head, or without a log the last unlogged number. */
  head(): number {
    return this.#desk.log?.head() ?? this.#unloggedSeq
  }

  /** A session began: from now on fan-out logs. */
  sessionsExist(): void {
    this.#anySessions = true
  }

  /**
   * What a broadcast or `to(tag)` hands each target. While any session
   * exists the message is logged once, with who it was for, so suspended
   * sessions get it when they resume.
   */
  outbound(frame: Frame, tag: string | null, except: BroadcastOptions['except']): Outbound {
    let made: { seq: number; frame: Frame } | undefined
    if (this.logging()) {
      const excluded = except === undefined ? null : typeof except === 'number' ? [except] : except
      const seq = this.append(null, tag, excluded, frame)
      made = { seq, frame: numbered(seq, frame) }
    }
    return {
      frame,
      numbered: () => {
        if (made === undefined) {
          const seq = this.#nextUnloggedSeq()
          made = { seq, frame: numbered(seq, frame) }
        }
        return made
      },
    }
  }

  /**
   * Logs one message for sessions and returns its `g`; without a log, only a
   * number. `at` is the number a sharded room's root gave it (shard/leaf.ts).
   */
  append(
    target: number | null,
    tag: string | null,
    except: readonly number[] | null,
    frame: Frame,
    mark = '',
    at?: number,
  ): number {
    const sessionLog = this.#desk.log
    if (sessionLog === undefined) return at ?? this.#nextUnloggedSeq()
    const kept = sessionLog.oldestKept
    // The frame being logged goes out after this returns: the position told is the head before it.
    const head = sessionLog.head()
    const seq = sessionLog.append(target, tag, except, frame, Date.now(), mark, at)
    if (sessionLog.oldestKept !== kept) this.tellPositions(sessionLog.oldestKept - 1, head)
    return seq
  }

  /** Delivers to one session socket; a send that throws costs only that connection (1011). */
  deliverSafely(entry: ConnectionEntry<Env, Data, In, Out>, outbound: Outbound): boolean {
    try {
      return entry.transport.deliver(entry, outbound)
    } catch (error) {
      log.error(`sending to ${this.#desk.label(entry)} failed, disconnecting it:`, error)
      this.#desk.close(entry, CloseCode.INTERNAL_ERROR, 'Internal Error')
      return false
    }
  }

  /** Every live session socket that was sent nothing past `trimmed` gets `head` as its position. */
  tellPositions(trimmed: number, head: number): void {
    for (const entry of this.#table.live()) {
      const link = entry.transport
      if (link instanceof SessionLink) link.logTrimmed(entry, trimmed, head)
    }
  }

  /**
   * Without a log the numbers only have to grow on each socket, but a counter
   * in memory starts again after every wake, while the sockets and their
   * clients' `last` live on. So the count never falls below the clock, in
   * units of 1/1024 ms: a new instance starts above anything an earlier one
   * sent unless that one averaged over 1024 sends per ms, and the numbers stay
   * below 2^53 for two more centuries.
   */
  #nextUnloggedSeq(): number {
    this.#unloggedSeq = Math.max(this.#unloggedSeq + 1, Date.now() * UNLOGGED_SEQ_PER_MS)
    return this.#unloggedSeq
  }

  /** Whether fan-out must log: some session exists, attached or suspended. */
  logging(): boolean {
    const store = this.#desk.store
    if (store === undefined) return false
    this.#desk.reconcile()
    this.#anySessions ??= store.exists() && store.any()
    return this.#anySessions
  }
}
