import type { Frame } from '../../core/outgoing.js'
import type { ObjectSide } from '../../options.js'
import { SessionCloseCode, encodeWelcome, type SessionOffer } from '../../shared/sessionProtocol.js'
import { alarmNoLaterThan } from '../alarm.js'
import { ConnectionEntry, type ConnectionHost, type TransportRecord } from '../connection.js'
import type { ConnectionTable } from '../connectionTable.js'
import type { CloseByServer, MessageLimits } from '../messageLimits.js'
import type { RoomOrder } from '../shard/messages.js'
import type { HandleMessage, HandleRequest } from '../transport.js'
import { SessionLink, storedCounters, type SessionCounters } from './link.js'
import { SessionLog } from './log.js'
import { SessionSends } from './sends.js'
import { SESSION_TAG, SessionStore, type SessionRecord } from './store.js'
import { hashToken, newToken } from './tokens.js'
import type { WindowLimits } from './window.js'

/** What a session upgrade read before its checks ({@link SessionDesk.keys}). */
export interface SessionKeys {
  /** The token the welcome hands out, and its hash as stored. */
  readonly token: string
  readonly tokenHash: string
  /** The hash of the token the resume entry presented; empty without one. */
  readonly usedHash: string
  /** The stored session that token names, if any. */
  readonly found: SessionRecord | undefined
}

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
 * sessions and resumes, numbers and logs what is sent to sessions, keeps
 * suspended sessions until their resume or their end, and reconciles the
 * stored sessions with the sockets after a restart. Each socket's own part
 * is its {@link SessionLink}.
 */
export class SessionDesk<Env, Data extends object, In, Out> {
  /** Sessions kept in SQLite for resumes; undefined with `resume: false`. */
  readonly store: SessionStore | undefined
  readonly log: SessionLog | undefined
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
    this.store = resume === undefined ? undefined : new SessionStore(sql, resume.window, resume.maxAge)
    this.log =
      resume === undefined
        ? undefined
        : new SessionLog(sql, {
            window: resume.window,
            maxMessages: resume.maxMessages,
            maxBytes: resume.maxBytes,
          })
    this.sends = new SessionSends(this, parts.table)
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
    return new SessionLink(this, record.session?.resumed ?? false, storedCounters(handled), record.held)
  }

  /**
   * A session upgrade's new token, both hashes, and the stored session its
   * resume entry names: hashing is the only await a session upgrade needs,
   * and it comes before the limits are checked.
   */
  async keys(offer: SessionOffer): Promise<SessionKeys> {
    const store = this.store
    const resume = offer.resume
    const token = (this.#parts.tokenPrefix ?? '') + newToken()
    if (store === undefined) return { token, tokenHash: '', usedHash: '', found: undefined }
    const [tokenHash, usedHash] = await Promise.all([
      hashToken(token),
      resume === undefined ? '' : hashToken(resume.token),
    ])
    const found = resume !== undefined && store.exists() ? store.find(usedHash) : undefined
    return { token, tokenHash, usedHash, found }
  }

  /**
   * A session socket: a resume when the offer names a session that is still
   * in its window and whose missed messages are all still logged, else a new
   * session. Either way the welcome is the first frame, and a resume's missed
   * messages follow it, a window at a time, before anything newer.
   */
  accept(
    server: WebSocket,
    offer: SessionOffer,
    keys: SessionKeys,
    tags: string[],
    protocol: string | undefined,
    owner: string | undefined,
  ): ConnectionEntry<Env, Data, In, Out> {
    const { store, log: sessionLog } = this
    const { ctx, table, host } = this.#parts
    const resume = offer.resume
    // Read before this call, and nothing awaited since: no message of the old socket can have been
    // handled in between.
    let found = keys.found
    // A session never goes back before its own start, whatever position the client offers.
    const from = resume === undefined ? 0 : Math.max(resume.last, found?.floor ?? 0)
    if (found !== undefined && store !== undefined && sessionLog !== undefined) {
      const now = Date.now()
      const expired = found.suspendedAt !== null && found.suspendedAt + store.window <= now
      if (found.createdAt + store.maxAge <= now) {
        this.#end(found, SessionCloseCode.TOO_OLD, 'Session too old')
        found = undefined
      } else if (expired || from < sessionLog.trimmedThrough()) {
        this.#end(found)
        found = undefined
      }
    }
    if (found !== undefined && store !== undefined) {
      const previous = this.#previousEntry(found.id)
      store.rotate(found.id, keys.tokenHash, keys.usedHash)
      ctx.acceptWebSocket(server, [...(JSON.parse(found.tags) as string[]), SESSION_TAG])
      const earlier = previous?.transport
      const counters =
        earlier instanceof SessionLink ? takeOver(earlier.counters) : storedCounters(found.handled)
      // The replay is a catch-up like any other: live sends wait behind it from `from` on.
      const link = new SessionLink(this, true, counters, from)
      // A handler still running on the earlier socket keeps working on the same data.
      const data = previous?.data ?? (JSON.parse(found.data) as Data)
      const entry = new ConnectionEntry(
        server,
        found.id,
        data,
        Date.now(),
        'opening',
        host,
        link,
        previous?.queue,
      )
      table.track(entry)
      this.#welcome(entry, link, keys.token, from, protocol)
      link.catchUp(entry)
      return entry
    }
    const id = table.nextId()
    store?.create(id, keys.tokenHash, tags, this.sends.head(), Date.now(), owner)
    this.sends.sessionsExist()
    ctx.acceptWebSocket(server, [...tags, SESSION_TAG])
    const link = new SessionLink(this, false, storedCounters(0))
    const entry = new ConnectionEntry(server, id, {} as Data, Date.now(), 'opening', host, link)
    table.track(entry)
    this.#welcome(entry, link, keys.token, this.sends.head(), protocol)
    return entry
  }

  /** The session's first frame; `protocol` is what the app's option picked, since the 101 names the session's. */
  #welcome(
    entry: ConnectionEntry<Env, Data, In, Out>,
    link: SessionLink<Env, Data, In, Out>,
    token: string,
    last: number,
    protocol: string | undefined,
  ): void {
    const { messages, bytes } = this.sendWindow
    entry.socket.send(
      encodeWelcome({
        id: entry.id,
        token,
        resumed: link.resumed,
        handled: link.counters.handled,
        last,
        window: this.store?.window ?? 0,
        // A quarter of the send window: the client's ack arrives long before the window fills.
        ackEvery: Math.max(1, Math.floor(messages / 4)),
        ackBytes: Math.max(1, Math.floor(bytes / 4)),
        ...(protocol === undefined ? {} : { protocol }),
        // So the client refuses a message the server would close the socket for, and keeps its session.
        maxMessageBytes: this.#parts.options.maxMessageBytes,
        maxRequests: this.maxRequests,
      }),
    )
  }

  /**
   * The session's earlier socket, if this instance still holds it: one that
   * still looks open is closed as taken over (a half-dead TCP connection),
   * a suspended one is let go. Either way nothing new runs there, and the
   * new socket takes its queue, so messages stay in order across the two.
   */
  #previousEntry(id: number): ConnectionEntry<Env, Data, In, Out> | undefined {
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
    this.#end(session, code, reason)
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
    if (store.remove(id) === 0 && this.relay === undefined) this.log?.dropAllButHead()
  }

  /**
   * Session `id` moves to another leaf of a sharded room: a socket that still
   * carries it here is closed as taken over (3901), a suspended one is let
   * go; nothing new runs for it here, and no `close`. Settles once a handler
   * still running for it is done, so its row has the final `handled` and
   * `data`; the caller then removes the row.
   */
  release(id: number): Promise<void> {
    return this.#previousEntry(id)?.queue.idle() ?? Promise.resolve()
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
  #end(
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
      const link = new SessionLink(this, false, storedCounters(0))
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
      else this.#end(old, SessionCloseCode.TOO_OLD, 'Session too old')
    }
    for (const expired of store.expired(now)) this.#end(expired)
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

/**
 * A resume while this instance still holds the session: it goes on from the
 * counters in memory. A message whose handler started is not taken again;
 * one still queued behind it never runs on the old socket, so its resend is.
 */
function takeOver(counters: SessionCounters): SessionCounters {
  counters.received = counters.started
  counters.acked = counters.handled
  for (const seq of counters.requests) if (seq > counters.started) counters.requests.delete(seq)
  return counters
}
