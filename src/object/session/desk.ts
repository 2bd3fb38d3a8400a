import type { Frame } from '../../core/outgoing.js'
import type { ObjectSide } from '../../options.js'
import { SessionCloseCode } from '../../shared/sessionProtocol.js'
import { alarmNoLaterThan } from '../alarm.js'
import { ConnectionEntry, type ConnectionHost, type TransportRecord } from '../connection.js'
import type { ConnectionTable } from '../connectionTable.js'
import type { CloseByServer, MessageLimits } from '../messageLimits.js'
import type { RoomOrder } from '../shard/messages.js'
import type { HandleMessage, HandleRequest } from '../transport.js'
import { HandledStamps, finishesInItsTurn } from './handledStamps.js'
import { SessionLink, storedCounters } from './link.js'
import { SessionLog } from './log.js'
import { SessionOpening } from './opening.js'
import { SessionSends } from './sends.js'
import { SESSION_TAG, SessionStore } from './store.js'
import type { WindowLimits } from './window.js'

/** What the desk needs from the rest of the object. */
export interface DeskParts<Env, Data extends object, In, Out> {
  readonly ctx: DurableObjectState
  readonly options: ObjectSide<Env, Data, In, Out, object>
  readonly table: ConnectionTable<Env, Data, In, Out>
  readonly host: ConnectionHost<Env, Data, In, Out>
  readonly limits: MessageLimits<Env, Data, In, Out>
  readonly handle: HandleMessage<Env, Data, In, Out>
  readonly request: HandleRequest<Env, Data, In, Out>
  readonly close: CloseByServer<Env, Data, In, Out>
  /** Queues `close` or `suspend` behind what the connection has queued (Dispatch's queueEvent). */
  readonly queueEvent: (
    entry: ConnectionEntry<Env, Data, In, Out>,
    event: 'close' | 'suspend',
    code: number,
    reason: string,
  ) => Promise<void> | undefined
  /** In a sharded room, where sends to sessions go to be numbered by the root (docs/sharding.md). */
  readonly relay?: RoomOrder | undefined
  /** Put in front of every token handed out: a sharded room's leaf names itself, so resumes come back to it. */
  readonly tokenPrefix?: string | undefined
}

/**
 * The session desk: every durable session of the room, whatever socket (if
 * any) carries it now. Owns the stored sessions and the log, accepts new
 * sessions and resumes (through {@link SessionOpening}), numbers and logs
 * what is sent to sessions (sends.ts), keeps
 * suspended sessions until their resume or their end, and reconciles the
 * stored sessions with the sockets after a restart. Each socket's own part
 * is its {@link SessionLink}.
 */
export class SessionDesk<Env, Data extends object, In, Out> {
  /** Sessions kept in SQLite for resumes; undefined with `resume: false`. */
  readonly store: SessionStore | undefined
  readonly log: SessionLog | undefined
  /** Which log row says a message was handled, when its handler sent something (handledStamps.ts). */
  readonly stamps: HandledStamps | undefined
  readonly limits: MessageLimits<Env, Data, In, Out>
  readonly handle: HandleMessage<Env, Data, In, Out>
  readonly request: HandleRequest<Env, Data, In, Out>
  readonly close: CloseByServer<Env, Data, In, Out>
  readonly maxRequests: number
  readonly sendWindow: WindowLimits
  /** Numbers and logs what the room sends to its sessions. */
  readonly sends: SessionSends<Env, Data, In, Out>
  /** In a sharded room, the root numbers every send: they go there, and come back in its order. */
  readonly relay: RoomOrder | undefined
  readonly #parts: DeskParts<Env, Data, In, Out>
  readonly #room: string | undefined
  /** Suspended sessions still in memory: a resume takes over their queue, counters and data. */
  readonly #suspended = new Map<number, ConnectionEntry<Env, Data, In, Out>>()
  /** New sessions and resumes: from the upgrade's tokens to the welcome and the replay. */
  readonly opening: SessionOpening<Env, Data, In, Out>
  /** Whether this instance compared its sessions with its sockets yet ({@link reconcile}). */
  #reconciled = false

  constructor(parts: DeskParts<Env, Data, In, Out>) {
    this.#parts = parts
    this.#room = parts.ctx.id.name
    this.limits = parts.limits
    this.handle = parts.handle
    this.request = parts.request
    this.maxRequests = parts.options.maxRequests
    this.close = parts.close
    this.sendWindow = parts.options.sendWindow
    this.relay = parts.relay
    const resume = parts.options.resume
    const sql = parts.ctx.storage.sql
    if (resume === undefined) {
      this.stamps = undefined
      this.store = undefined
      this.log = undefined
    } else {
      const stamps = new HandledStamps(sql)
      this.stamps = stamps
      this.store = new SessionStore(sql, resume.window, resume.maxAge, stamps)
      const { window, maxMessages, maxBytes } = resume
      this.log = new SessionLog(sql, { window, maxMessages, maxBytes }, stamps)
    }
    this.sends = new SessionSends(this, parts.table)
    this.opening = new SessionOpening(this, parts)
  }

  /**
   * Runs message `seq`'s handler through `run`: with the log rows it appends
   * stamped when the handler is a plain function, whose whole run is then
   * one transaction with them.
   */
  handling<T>(id: number, seq: number, event: 'message' | 'request', run: () => T): T {
    const stamps = this.stamps
    if (stamps === undefined || !finishesInItsTurn(this.#parts.options.handlers.get(event))) return run()
    return stamps.during(id, seq, run)
  }

  label(entry: ConnectionEntry<Env, Data, In, Out>): string {
    return entry.label(this.#room)
  }

  /** The socket that carries session `id` now, if it is live here. */
  current(id: number): ConnectionEntry<Env, Data, In, Out> | undefined {
    return this.#parts.table.get(id)
  }

  tagsOf(entry: ConnectionEntry<Env, Data, In, Out>): string[] {
    return this.#parts.ctx.getTags(entry.socket)
  }

  /** The transport of a session socket found again after a wake. */
  transportFor(id: number, record: TransportRecord): SessionLink<Env, Data, In, Out> {
    const handled = this.store?.handled(id) ?? 0
    return new SessionLink(
      this,
      { resumed: record.session?.resumed ?? false, batches: record.session?.batches === true },
      storedCounters(handled),
      record.held,
    )
  }

  /**
   * The session's earlier socket, if this instance still holds it: one that
   * still looks open is closed as taken over (a half-dead TCP connection),
   * a suspended one is let go. Either way nothing new runs there, and the
   * new socket takes its queue, so messages stay in order across the two.
   */
  earlierEntry(id: number): ConnectionEntry<Env, Data, In, Out> | undefined {
    const live = this.#parts.table.get(id)
    if (live?.move('replace')) {
      this.#parts.table.remove(live)
      try {
        live.socket.close(SessionCloseCode.TAKEN_OVER, 'Session taken over')
      } catch {
        // Already closed by the runtime: nothing to tell it.
      }
      return live
    }
    const suspended = this.#suspended.get(id)
    this.#suspended.delete(id)
    suspended?.move('replace')
    return suspended
  }

  /** An RPC send to a suspended session: it waits in the log for the resume. False if `id` is none. */
  sendToSuspended(id: number, frame: Frame): boolean {
    if (this.#suspendedSession(id) === undefined) return false
    if (this.relay !== undefined) this.relay.publish({ target: id, tag: null, except: null, frame, mark: '' })
    else this.sends.append(id, null, null, frame)
    return true
  }

  /** Whether `id` is a suspended session, waiting for its resume. */
  holdsSuspended(id: number): boolean {
    return this.#suspendedSession(id) !== undefined
  }

  /** An RPC close of a suspended session: it ends now, and `close` runs with this code. */
  endSuspended(id: number, code: number, reason: string): boolean {
    const session = this.#suspendedSession(id)
    if (session === undefined) return false
    this.end(session, code, reason)
    return true
  }

  #suspendedSession(id: number): { id: number; data: string; tags: string } | undefined {
    const store = this.store
    if (!store?.exists()) return undefined
    this.reconcile()
    return store.suspended(id, Date.now())
  }

  /**
   * A session whose socket is gone waits for its resume until the window
   * ends, which the alarm checks; `suspend` runs behind what its socket still had queued.
   */
  suspend(entry: ConnectionEntry<Env, Data, In, Out>, code: number, reason: string): Promise<void> {
    const store = this.store
    if (store === undefined) return Promise.resolve()
    this.#suspended.set(entry.id, entry)
    const now = Date.now()
    store.suspend(entry.id, now)
    // Not awaited here: a handler still running on the socket (and `suspend` behind it) must not
    // hold up the close event that brought the drop.
    const told = this.#parts.queueEvent(entry, 'suspend', code, reason)
    if (told !== undefined) this.#parts.ctx.waitUntil(told)
    return alarmNoLaterThan(this.#parts.ctx.storage, now + store.window)
  }

  /**
   * A session ended: its row goes, and with the last one the log but for its
   * newest row. Not on a sharded room's leaf: a session from another leaf may
   * still move here and replay from its copy of the log (shard/claims.ts).
   */
  remove(id: number): void {
    const store = this.store
    if (store === undefined) return
    if (!store.remove(id) && this.relay === undefined) this.log?.dropAllButHead()
  }

  /**
   * Session `id` moves to another leaf of a sharded room: a socket that still
   * carries it here is closed as taken over (3901), a suspended one is let
   * go; nothing new runs for it here, and no `close`. Settles once a handler
   * still running for it is done, so its row has the final `handled` and
   * `data`; the caller then removes the row.
   */
  release(id: number): Promise<void> {
    return this.earlierEntry(id)?.queue.idle() ?? Promise.resolve()
  }

  /**
   * A session that can no longer be resumed: its window passed, the log
   * lost what it missed, it is too old, or an RPC `close(id)` ended it while
   * suspended. `close` runs for it once, with 3902 (or the code given),
   * behind whatever its last socket still had queued. When its socket still
   * looks open (a client too far behind the log came back while its old TCP
   * connection lingers), that socket is taken over as on a resume, and
   * `close` gets 3901.
   */
  end(
    session: { id: number; data: string; tags: string },
    code: number = SessionCloseCode.EXPIRED,
    reason = 'Session expired',
  ): void {
    const { id } = session
    const { table, host, ctx } = this.#parts
    this.remove(id)
    const live = table.get(id)
    if (live !== undefined) {
      this.close(live, SessionCloseCode.TAKEN_OVER, 'Session taken over')
      return
    }
    let entry = this.#suspended.get(id)
    this.#suspended.delete(id)
    if (!entry?.move('expire')) {
      // No socket is left to ask the runtime for anything; this one is never accepted.
      const [detached] = Object.values(new WebSocketPair()) as [WebSocket]
      const link = new SessionLink(this, { resumed: false, batches: false }, storedCounters(0))
      entry = new ConnectionEntry(
        detached,
        id,
        JSON.parse(session.data) as Data,
        Date.now(),
        'closedByPeer',
        host,
        link,
      )
      entry.detachedTags = JSON.parse(session.tags) as string[]
    }
    const ending = this.#parts.queueEvent(entry, 'close', code, reason)
    if (ending !== undefined) ctx.waitUntil(ending)
  }

  /**
   * The alarm's part for sessions: ends those too old or past their window,
   * trims the log by age, and says when the next session ends by itself.
   */
  alarm(now: number): number | undefined {
    const { store, log: sessionLog } = this
    if (store === undefined || sessionLog === undefined || !store.exists()) return undefined
    for (const old of store.tooOld(now)) {
      const live = this.current(old.id)
      if (live !== undefined) this.close(live, SessionCloseCode.TOO_OLD, 'Session too old')
      else this.end(old, SessionCloseCode.TOO_OLD, 'Session too old')
    }
    for (const expired of store.expired(now)) this.end(expired)
    const kept = sessionLog.oldestKept
    sessionLog.trim(now)
    if (sessionLog.oldestKept !== kept) this.sends.tellPositions(sessionLog.oldestKept - 1, sessionLog.head())
    return store.nextExpiry()
  }

  /**
   * Runs around `deleteAll` through `manager.storage`: reads what must
   * outlive it (the log's numbering), and returns what forgets every cached
   * fact about the dropped tables afterwards.
   */
  beforeDeleteAll(): () => void {
    const head = this.store === undefined ? 0 : this.sends.head()
    const logging = this.sends.logging()
    return () => {
      this.store?.reset()
      // Fan-out keeps logging if it did: live session sockets must never see a number go back.
      this.log?.reset(head)
      if (logging) this.sends.sessionsExist()
      this.#suspended.clear()
    }
  }

  /**
   * After a restart the sockets are gone, but their sessions are still marked
   * attached: suspend those, so their window runs from now and the alarm ends
   * them if nobody comes back. Done once per instance, not at construction
   * but on the first accept, alarm, fan-out or look at the connections: a
   * plain room's wake then touches no storage at all (its first SQL access
   * costs more than the rest of a wake-up; bench).
   */
  reconcile(): void {
    if (this.#reconciled) return
    this.#reconciled = true
    const store = this.store
    if (!store?.exists()) return
    const attached = store.attachedIds()
    const { ctx, table } = this.#parts
    const sockets = ctx.getWebSockets(SESSION_TAG)
    if (attached.length === 0 || attached.length <= sockets.length) return
    const live = new Set<number>()
    for (const socket of sockets) {
      const entry = table.entryFor(socket)
      if (entry !== undefined) live.add(entry.id)
    }
    const now = Date.now()
    let lost = 0
    for (const id of attached) {
      if (live.has(id)) continue
      store.suspend(id, now)
      lost++
    }
    if (lost > 0) void ctx.blockConcurrencyWhile(() => alarmNoLaterThan(ctx.storage, now + store.window))
  }
}
