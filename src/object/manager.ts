import { DurableWebSocketError } from '../core/errors.js'
import type { EventHandlers, EventName, Incoming } from '../core/events.js'
import { handlesQueued, isLive } from '../core/lifecycle.js'
import { log } from '../core/log.js'
import { toFrame, type Frame } from '../core/outgoing.js'
import type { BroadcastOptions, Manager, Outgoing, TaggedGroup } from '../core/types.js'
import type { ObjectSide } from '../options.js'
import {
  CloseCode,
  MAX_CLOSE_REASON_BYTES,
  isSendableCloseCode,
  peerClose,
  utf8Length,
} from '../shared/closeCodes.js'
import { describe } from '../shared/describe.js'
import type { Serializer } from '../shared/serializer.js'
import {
  CLOSED,
  OPEN,
  ConnectionEntry,
  type Connection,
  type ConnectionHost,
  type SessionState,
  validateClose,
} from './connection.js'
import {
  SESSION_PROTOCOL,
  SessionCloseCode,
  encodeServerAck,
  encodeWelcome,
  endsSession,
  numbered,
  readClientFrame,
  readSessionOffer,
  retryReason,
  serverCloseSuspends,
  type SessionOffer,
} from '../shared/sessionProtocol.js'
import { SESSION_TAG, SessionStore, hashToken, newToken, type SessionRecord } from './sessions.js'

/** workerd's limits for hibernation tags: at most 10 per socket, each at most 256 characters. */
export const MAX_TAGS = 10
export const MAX_TAG_LENGTH = 256

/** How long a client refused for `maxConnections` should wait before trying again, in seconds. */
const RETRY_AFTER_SECONDS = 5

/** How long a client refused for `maxConnectionsPerKey` should wait: its own sockets must close first. */
const RETRY_AFTER_KEY_SECONDS = 30

/** The longest key `maxConnectionsPerKey` accepts; it is kept in the socket's attachment. */
const MAX_KEY_LENGTH = 256

const LAST_ID_KEY = 'durable-websocket:last-connection-id'

/** Numbers per ms of the clock under the sequence numbers of `resume: false` (see #nextUnloggedSeq). */
const UNLOGGED_SEQ_PER_MS = 1024

/** Log rows a replay looks at per query; their frames are read only as far as the send window goes. */
const REPLAY_PAGE_ROWS = 64

/** The server acknowledges a session client's messages at least this often. */
const ACK_EVERY = 32

type Entry<Env, Data extends object, In, Out> = ConnectionEntry<Env, Data, In, Out>

/**
 * One per Durable Object instance: hands out ids, owns the sockets, and turns
 * the runtime's hibernation callbacks into handler calls. All of its state can
 * be rebuilt from durable storage and the sockets' attachments, which is what
 * happens after the object wakes from hibernation.
 *
 * The path of one message reads top to bottom: {@link webSocketMessage}
 * finds the entry, checks the size and queues {@link #onMessage}, which
 * decodes, validates and calls the handler through {@link #invoke}, which
 * stores `data` afterwards.
 */
export class WebSocketManager<Env, Data extends object, In, Out, L extends object> implements Manager<
  Env,
  Data,
  In,
  Out
> {
  readonly ctx: DurableObjectState
  readonly env: Env
  readonly #options: ObjectSide<Env, Data, In, Out, L>
  readonly #open = new Map<number, Entry<Env, Data, In, Out>>()
  readonly #bySocket = new WeakMap<WebSocket, Entry<Env, Data, In, Out>>()
  readonly #host: ConnectionHost<Env, Data, In, Out>
  /** Sessions kept in SQLite for resumes; undefined with `resume: false`. */
  readonly #store: SessionStore | undefined
  /** Suspended sessions still in memory: a resume takes over their queue, so order holds. */
  readonly #suspended = new Map<number, Entry<Env, Data, In, Out>>()
  #lastId: number | undefined
  #hydrated = false
  /** Whether this instance compared its sessions with its sockets yet (#reconcileSessions). */
  #reconciled = false
  /** Whether any session exists, so fan-out logs; undefined until first asked. */
  #anySessions: boolean | undefined
  /** The last sequence number for session clients when nothing is logged (`resume: false`). */
  #unloggedSeq = 0
  /** Each session socket's unacknowledged frames; rebuilt lazily after a wake. */
  readonly #flows = new WeakMap<Entry<Env, Data, In, Out>, Flow>()
  /** Each connection's `rateLimit` bucket; a woken object starts them full. */
  readonly #buckets = new WeakMap<Entry<Env, Data, In, Out>, Bucket>()

  constructor(ctx: DurableObjectState, env: Env, options: ObjectSide<Env, Data, In, Out, L>) {
    this.ctx = ctx
    this.env = env
    this.#options = options
    // What connections call back into; private, so nothing of it is reachable from a Connection.
    this.#host = {
      manager: this,
      encode: (message) => toFrame(message, options.serializer),
      close: (entry, code, reason) => {
        this.#closeByServer(entry, code, reason)
      },
      unsendable: (entry, error) => {
        log.error(`invalid data sent to ${this.#label(entry)}, disconnecting:`, error)
        this.#closeByServer(entry, CloseCode.INTERNAL_ERROR, 'Internal Error')
      },
      sendToSession: (entry, frame) => this.#sendToSession(entry, frame),
      stored: (entry) => {
        if (entry.session !== undefined) this.#store?.saveData(entry.id, entry.data)
      },
      sessionOf: (id, resumed) => {
        const handled = this.#store?.handled(id) ?? 0
        return { resumed, handled, received: handled, acked: handled, confirmed: false }
      },
    }
    const resume = options.resume
    this.#store =
      resume === undefined
        ? undefined
        : new SessionStore(ctx.storage.sql, resume.window, resume.maxMessages, resume.maxAge)
  }

  get storage(): DurableObjectStorage {
    return this.ctx.storage
  }

  get room(): string | undefined {
    return this.ctx.id.name
  }

  get serializer(): Serializer<In, Out> | undefined {
    return this.#options.serializer
  }

  /** The counter lives in durable storage: read once per instance, written once per connection. */
  get lastId(): number {
    this.#lastId ??= this.ctx.storage.kv.get<number>(LAST_ID_KEY) ?? 0
    return this.#lastId
  }

  connections(tag?: string): Map<number, Connection<Env, Data, In, Out>> {
    const found = new Map<number, Connection<Env, Data, In, Out>>()
    for (const entry of tag === undefined ? this.#live() : this.#tagged(tag)) found.set(entry.id, entry.view)
    return found
  }

  connection(id: number): Connection<Env, Data, In, Out> | undefined {
    return this.#openEntry(id)?.view
  }

  count(): number {
    this.#hydrate()
    return this.#open.size
  }

  /**
   * A send to one id from outside the object (RPC): an open connection gets
   * it now; a suspended session gets it in the log, so its resume replays
   * it. False for any other id.
   */
  sendToId(id: number, message: Outgoing<Out>): boolean {
    const open = this.connection(id)
    if (open !== undefined) return open.send(message)
    const frame = toFrame(message, this.serializer)
    if (this.#suspendedSession(id) === undefined) return false
    this.#log(id, null, null, frame)
    return true
  }

  /**
   * A close of one id from outside the object (RPC): an open connection
   * starts its closing handshake; a suspended session ends at once, and its
   * `close` runs with this code and reason. False for any other id.
   */
  closeId(id: number, code: number = CloseCode.NORMAL, reason = ''): boolean {
    const open = this.connection(id)
    if (open !== undefined) {
      open.close(code, reason)
      return true
    }
    validateClose(code, reason)
    const session = this.#suspendedSession(id)
    if (session === undefined) return false
    this.#endSession(id, session.data, session.tags, code, reason)
    return true
  }

  /** The stored session of `id` when it is suspended and within its window. */
  #suspendedSession(id: number): { data: string; tags: string } | undefined {
    const store = this.#store
    if (!store?.exists()) return undefined
    this.#reconcileSessions()
    return store.suspended(id, Date.now())
  }

  ids(): number[] {
    this.#hydrate()
    return [...this.#open.keys()].sort((a, b) => a - b)
  }

  broadcast(message: Outgoing<Out>, options: BroadcastOptions = {}): number {
    return this.#fanOut(this.#live(), toFrame(message, this.serializer), options, null)
  }

  to(tag: string): TaggedGroup<Out> {
    return {
      send: (message, options = {}) =>
        this.#fanOut(this.#tagged(tag), toFrame(message, this.serializer), options, tag),
    }
  }

  /**
   * Accepts an upgrade that the Worker already checked, and answers 101, or
   * 503 when the object is full: refused before acceptance, never accepted
   * and then dropped.
   */
  async accept(request: Request, locals: L): Promise<Response> {
    this.#reconcileSessions()
    const { maxConnections, idleTimeout } = this.#options
    const offer = readSessionOffer(offeredProtocols(request))
    // The one await of an upgrade comes before its checks: from the limits to acceptWebSocket nothing
    // may await, so two upgrades cannot both take a last place.
    const keys = offer.wanted ? await this.#sessionKeys(offer) : undefined
    let owner: string | undefined
    if (keys !== undefined) {
      try {
        owner = this.#ownerOf(request, locals)
      } catch (error) {
        return this.#refuseUpgrade(error)
      }
      const found = keys.found
      if (found !== undefined && found.owner !== null && found.owner !== owner)
        return this.#notYours(found.id)
    }
    // A resume closes its session's socket that still looks open as it takes over: that one does not count.
    const replaced = keys?.found === undefined ? undefined : this.#openEntry(keys.found.id)
    if (maxConnections !== undefined && this.count() - (replaced === undefined ? 0 : 1) >= maxConnections) {
      if (offer.wanted) return shed(RETRY_AFTER_SECONDS)
      return new Response('Service Unavailable: this room is full, try again shortly.\n', {
        status: 503,
        headers: { 'Retry-After': String(RETRY_AFTER_SECONDS) },
      })
    }
    let key: string | undefined
    const perKey = this.#options.maxConnectionsPerKey
    if (perKey !== undefined) {
      try {
        key = validateKey(perKey.key(request, locals), 'maxConnectionsPerKey.key')
      } catch (error) {
        return this.#refuseUpgrade(error)
      }
      if (this.#countKey(key) - (replaced?.key === key ? 1 : 0) >= perKey.max) {
        if (offer.wanted) return shed(RETRY_AFTER_KEY_SECONDS)
        return new Response('Too Many Requests: too many connections for this client, try again later.\n', {
          status: 429,
          headers: { 'Retry-After': String(RETRY_AFTER_KEY_SECONDS) },
        })
      }
    }
    // Tags are checked before an id is spent, so a refused connection leaves no gap in the ids.
    let tags: string[] = []
    let protocol: string | undefined
    try {
      const pickTags = this.#options.tags
      // A session socket carries one tag of the package's own.
      const maxTags = offer.wanted ? MAX_TAGS - 1 : MAX_TAGS
      if (pickTags !== undefined) tags = validateTags(pickTags(request, locals), this.lastId + 1, maxTags)
      protocol = chooseProtocol(offer.rest, request, locals, this.#options.protocol)
    } catch (error) {
      return this.#refuseUpgrade(error)
    }
    const [client, server] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket]
    const entry =
      keys === undefined
        ? this.#acceptPlain(server, tags)
        : this.#acceptSession(server, offer, keys, tags, protocol, owner)
    entry.key = key
    if (idleTimeout !== undefined) await alarmNoLaterThan(this.storage, Date.now() + idleTimeout)
    // A new session ends at maxAge even if it never drops: the alarm sees to it.
    const store = this.#store
    if (store !== undefined && entry.session?.resumed === false)
      await alarmNoLaterThan(this.storage, Date.now() + store.maxAge)
    const opening = entry.queue.run(() =>
      this.#invoke(entry, 'open', (open) => open(entry.view, request, locals)),
    )
    if (opening !== undefined) this.ctx.waitUntil(opening)
    // Refuses permessage-deflate: the runtime inflates a frame before any size check of ours, so a
    // small compressed frame could cost 32 MiB. An empty value counts as absent and the runtime
    // would fill in the client's offer; one that names no extension it knows leaves compression
    // off on every hop to the client. test/e2e/deflate.test.ts pins it.
    const headers: Record<string, string> = { 'Sec-WebSocket-Extensions': 'no-compression' }
    const chosen = offer.wanted ? SESSION_PROTOCOL : protocol
    if (chosen !== undefined) headers['Sec-WebSocket-Protocol'] = chosen
    return new Response(null, { status: 101, webSocket: client, headers })
  }

  /** An option's function failed on an upgrade: logged with the room, answered 500, nothing accepted. */
  #refuseUpgrade(error: unknown): Response {
    log.error(`refusing an upgrade${this.room === undefined ? '' : ` to room ${this.room}`}:`, error)
    return new Response('Internal Server Error\n', { status: 500 })
  }

  /** Who a session upgrade is, by `resume.owner`; undefined when the module names no owner. */
  #ownerOf(request: Request, locals: L): string | undefined {
    const pick = this.#options.resume?.owner
    return pick === undefined ? undefined : validateKey(pick(request, locals), 'resume.owner')
  }

  /**
   * Refuses a resume by someone other than the session's owner with 3904,
   * after the handshake so that a browser sees the code: the socket is never
   * accepted into the object, no id is spent, and the session stays its owner's.
   */
  #notYours(id: number): Response {
    log.warn(
      `refused a resume of session ${String(id)}${this.room === undefined ? '' : ` in room ${this.room}`} by another owner, closing it with 3904`,
    )
    return refusedSession(SessionCloseCode.NOT_YOURS, 'Session belongs to another client')
  }

  #countKey(key: string): number {
    let count = 0
    for (const entry of this.#live()) if (entry.key === key) count++
    return count
  }

  /**
   * A session upgrade's new token, both hashes, and the stored session its
   * resume entry names: hashing is the only await a session upgrade needs,
   * and it comes before the limits are checked.
   */
  async #sessionKeys(offer: SessionOffer): Promise<SessionKeys> {
    const store = this.#store
    const resume = offer.resume
    const token = newToken()
    if (store === undefined) return { token, tokenHash: '', usedHash: '', found: undefined }
    const [tokenHash, usedHash] = await Promise.all([
      hashToken(token),
      resume === undefined ? '' : hashToken(resume.token),
    ])
    const found = resume !== undefined && store.exists() ? store.find(usedHash) : undefined
    return { token, tokenHash, usedHash, found }
  }

  #openEntry(id: number): Entry<Env, Data, In, Out> | undefined {
    this.#hydrate()
    return this.#open.get(id)
  }

  #nextId(): number {
    const id = this.lastId + 1
    this.ctx.storage.kv.put(LAST_ID_KEY, id)
    this.#lastId = id
    return id
  }

  /**
   * Not stored yet: the record is written once `open` is done, the one write
   * a hand-written object makes too. Until then the connection lives in
   * memory, and the object cannot hibernate while `open` is still running.
   */
  #acceptPlain(server: WebSocket, tags: string[]): Entry<Env, Data, In, Out> {
    const id = this.#nextId()
    this.ctx.acceptWebSocket(server, tags)
    const entry = new ConnectionEntry<Env, Data, In, Out>(
      server,
      id,
      {} as Data,
      Date.now(),
      'opening',
      this.#host,
    )
    this.#track(entry)
    return entry
  }

  /**
   * A session socket: a resume when the offer names a session that is still
   * in its window and whose missed messages are all still logged, else a new
   * session. Either way the welcome is the first frame, and a resume's missed
   * messages follow it before anything newer.
   */
  #acceptSession(
    server: WebSocket,
    offer: SessionOffer,
    keys: SessionKeys,
    tags: string[],
    protocol: string | undefined,
    owner: string | undefined,
  ): Entry<Env, Data, In, Out> {
    const store = this.#store
    const resume = offer.resume
    const { token, tokenHash, usedHash } = keys
    // Read before this call, and nothing awaited since: no message of the old socket can have been
    // handled in between, after the welcome's `handled` was read.
    let found = keys.found
    // A session never goes back before its own start, whatever position the client offers.
    const from = resume === undefined ? 0 : Math.max(resume.last, found?.floor ?? 0)
    if (found !== undefined && store !== undefined && resume !== undefined) {
      const now = Date.now()
      const expired = found.suspendedAt !== null && found.suspendedAt + store.window <= now
      if (found.createdAt + store.maxAge <= now) {
        this.#endSession(found.id, found.data, found.tags, SessionCloseCode.TOO_OLD, 'Session too old')
        found = undefined
      } else if (expired || from < store.trimmedThrough()) {
        this.#endSession(found.id, found.data, found.tags)
        found = undefined
      }
    }
    let entry: Entry<Env, Data, In, Out>
    let last: number
    if (found !== undefined && store !== undefined && resume !== undefined) {
      const previous = this.#previousEntry(found.id)
      store.rotate(found.id, tokenHash, usedHash)
      const sessionTags = JSON.parse(found.tags) as string[]
      this.ctx.acceptWebSocket(server, [...sessionTags, SESSION_TAG])
      const session: SessionState = {
        resumed: true,
        handled: found.handled,
        received: found.handled,
        acked: found.handled,
        confirmed: false,
      }
      const data = JSON.parse(found.data) as Data
      entry = new ConnectionEntry(
        server,
        found.id,
        data,
        Date.now(),
        'opening',
        this.#host,
        session,
        previous?.queue,
      )
      last = from
      this.#track(entry)
      this.#welcome(entry, token, last, protocol)
      // The replay is a catch-up like any other: paged from the log within the send window, the rest
      // as acks arrive, and live sends held behind it, so no number of resumes holds more than
      // their windows in memory.
      entry.hold(last)
      this.#catchUp(entry, this.#flowOf(entry))
    } else {
      const id = this.#nextId()
      store?.create(id, tokenHash, {}, tags, Date.now(), owner)
      this.#anySessions = true
      this.ctx.acceptWebSocket(server, [...tags, SESSION_TAG])
      const session: SessionState = { resumed: false, handled: 0, received: 0, acked: 0, confirmed: true }
      entry = new ConnectionEntry(server, id, {} as Data, Date.now(), 'opening', this.#host, session)
      last = store?.head() ?? this.#unloggedSeq
      this.#track(entry)
      this.#welcome(entry, token, last, protocol)
    }
    return entry
  }

  /** The session's first frame; `protocol` is what the app's option picked, since the 101 names the session's. */
  #welcome(
    entry: Entry<Env, Data, In, Out>,
    token: string,
    last: number,
    protocol: string | undefined,
  ): void {
    const session = entry.session
    if (session === undefined) return
    const { messages, bytes } = this.#options.sendWindow
    entry.socket.send(
      encodeWelcome({
        id: entry.id,
        token,
        resumed: session.resumed,
        handled: session.handled,
        last,
        window: this.#store?.window ?? 0,
        // A quarter of the send window: the client's ack arrives long before the window fills.
        ackEvery: Math.max(1, Math.floor(messages / 4)),
        ackBytes: Math.max(1, Math.floor(bytes / 4)),
        ...(protocol === undefined ? {} : { protocol }),
        // So the client refuses a message the server would close the socket for, and keeps its session.
        maxMessageBytes: this.#options.maxMessageBytes,
      }),
    )
  }

  /**
   * The session's earlier socket, if this instance still holds it: one that
   * still looks open is closed as taken over (a half-dead TCP connection),
   * a suspended one is let go. Either way nothing more runs there, and the
   * new socket takes its queue, so messages stay in order across the two.
   */
  #previousEntry(id: number): Entry<Env, Data, In, Out> | undefined {
    this.#hydrate()
    const live = this.#open.get(id)
    if (live?.move('replace')) {
      this.#open.delete(id)
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

  webSocketMessage(socket: WebSocket, raw: string | ArrayBuffer): Promise<void> | undefined {
    const entry = this.#entryFor(socket)
    // The state, not the socket's: the runtime delivers a message before the close that followed
    // it, and a message the client sent before closing is still handled.
    if (entry === undefined || !isLive(entry.state)) return undefined
    if (entry.session !== undefined) return this.#onSessionFrame(entry, entry.session, raw)
    if (!this.#withinLimit(entry, raw) || !this.#admitted(entry, raw)) return undefined
    return entry.queue.run(
      () => (handlesQueued(entry.state) ? this.#onMessage(entry, raw) : undefined),
      sizeOf(raw),
    )
  }

  /** Closes a connection whose message is over `maxMessageBytes`; records activity for idle reaping. */
  #withinLimit(entry: Entry<Env, Data, In, Out>, raw: string | ArrayBuffer): boolean {
    const limit = this.#options.maxMessageBytes
    if (exceedsBytes(raw, limit)) {
      log.warn(`${this.#label(entry)} sent a message over ${String(limit)} bytes, closing it with 1009`)
      this.#closeByServer(entry, CloseCode.MESSAGE_TOO_BIG, 'Message too big')
      return false
    }
    // Only idle reaping reads the activity time; without it, not even the clock is read.
    if (this.#options.idleTimeout !== undefined) entry.seen = Date.now()
    return true
  }

  /**
   * A frame from a session client (docs/protocol.md): an acknowledgement, or
   * a numbered message. A number already taken is a resend after a resume
   * and is dropped, so each message reaches `message` once per session; the
   * number is stored as the message is handed over, in the same turn, so a
   * crash before storage commits loses both or neither.
   */
  #onSessionFrame(
    entry: Entry<Env, Data, In, Out>,
    session: SessionState,
    raw: string | ArrayBuffer,
  ): Promise<void> | undefined {
    if (!session.confirmed) {
      session.confirmed = true
      this.#store?.confirm(entry.id)
    }
    const frame = readClientFrame(raw)
    if (frame.kind === 'invalid') {
      this.#protocolError(entry, frame.problem)
      return undefined
    }
    if (frame.kind === 'ack') {
      if (session.handled > session.acked) this.#ack(entry, session)
      if (frame.last !== undefined) this.#acked(entry, frame.last)
      return undefined
    }
    const { seq, payload } = frame
    if (seq <= session.received) {
      if (session.handled > session.acked) this.#ack(entry, session)
      return undefined
    }
    // Without a log nothing is ever resent, and a woken object does not know the count: take it as it comes.
    if (this.#store !== undefined && seq !== session.received + 1) {
      this.#protocolError(entry, `message ${String(seq)} where ${String(session.received + 1)} was due`)
      return undefined
    }
    session.received = seq
    if (!this.#withinLimit(entry, payload) || !this.#admitted(entry, payload)) return undefined
    return entry.queue.run(() => {
      if (!handlesQueued(entry.state)) return undefined
      session.handled = seq
      this.#store?.saveHandled(entry.id, seq)
      const result = this.#onMessage(entry, payload)
      if (seq - session.acked >= ACK_EVERY) this.#ack(entry, session)
      return result
    }, sizeOf(payload))
  }

  /**
   * The limits on what a client may send, checked as a message arrives:
   * `rateLimit`, then `maxQueued`. Past either, the connection is closed at
   * once, but the messages it already had queued are still handled.
   */
  #admitted(entry: Entry<Env, Data, In, Out>, raw: string | ArrayBuffer): boolean {
    if (!this.#withinRate(entry)) {
      log.warn(`${this.#label(entry)} sent faster than rateLimit allows, closing it with 1008`)
      this.#closeByServer(entry, CloseCode.POLICY_VIOLATION, 'Rate limit exceeded', 'drain')
      return false
    }
    const { messages, bytes } = this.#options.maxQueued
    const queue = entry.queue
    if (queue.waiting >= messages || queue.waitingSize + sizeOf(raw) > bytes) {
      log.warn(
        `${this.#label(entry)} has ${String(queue.waiting)} messages queued behind a running handler, over maxQueued; closing it with 1013`,
      )
      this.#closeByServer(entry, CloseCode.TRY_AGAIN_LATER, 'Too many queued messages', 'drain')
      return false
    }
    return true
  }

  /** A token bucket refilled from the clock as messages arrive: no timer keeps the object awake. */
  #withinRate(entry: Entry<Env, Data, In, Out>): boolean {
    const limit = this.#options.rateLimit
    if (limit === undefined) return true
    const now = Date.now()
    const bucket = this.#buckets.get(entry)
    if (bucket === undefined) {
      this.#buckets.set(entry, { tokens: limit.messages - 1, at: now })
      return true
    }
    const refill = ((now - bucket.at) * limit.messages) / limit.per
    bucket.tokens = Math.min(limit.messages, bucket.tokens + refill)
    bucket.at = now
    if (bucket.tokens < 1) return false
    bucket.tokens -= 1
    return true
  }

  /**
   * Sends a numbered frame to a session socket, unless it is too far behind:
   * past `sendWindow` unacknowledged frames or bytes, live sends to it stop
   * (the frame is logged anyway) until its acknowledgements let it catch up
   * from the log. Without a log there is nothing to catch up from, and it is
   * closed at once. Returns whether the frame was sent or will be replayed.
   */
  #deliver(entry: Entry<Env, Data, In, Out>, seq: number, frame: Frame): boolean {
    const flow = this.#flowOf(entry)
    if (flow.held) {
      if (this.#store !== undefined && this.#store.trimmedThrough() > flow.sent) this.#tooSlow(entry)
      return isLive(entry.state)
    }
    if (!fitsWindow(flow, sizeOf(frame), this.#options.sendWindow)) {
      if (this.#store === undefined) {
        this.#tooSlow(entry)
        return false
      }
      flow.held = true
      entry.hold(flow.sent)
      log.warn(
        `${this.#label(entry)} is behind by ${String(flow.seqs.length - flow.start)} frames; holding its live sends`,
      )
      return true
    }
    if (!entry.sendFrame(frame)) return false
    sent(flow, seq, sizeOf(frame))
    return true
  }

  /** A session client's ack: what it received leaves the window, and a held one catches up. */
  #acked(entry: Entry<Env, Data, In, Out>, last: number): void {
    const flow = this.#flowOf(entry)
    while (flow.start < flow.seqs.length && (flow.seqs[flow.start] ?? 0) <= last) {
      flow.bytes -= flow.sizes[flow.start] ?? 0
      flow.start++
    }
    // Under steady traffic acks never cover everything in flight: drop the covered part now and then.
    if (flow.start === flow.seqs.length || (flow.start >= 256 && flow.start * 2 >= flow.seqs.length)) {
      flow.seqs.splice(0, flow.start)
      flow.sizes.splice(0, flow.start)
      flow.start = 0
    }
    if (flow.held) this.#catchUp(entry, flow)
  }

  /**
   * Replays from the log what a held client has not been sent, as far as
   * the window allows; once it reaches the head of the log, live sends
   * resume. All of it runs in one turn, so no send can slip in between.
   */
  #catchUp(entry: Entry<Env, Data, In, Out>, flow: Flow): void {
    const store = this.#store
    if (store === undefined || !isLive(entry.state)) return
    if (store.trimmedThrough() > flow.sent) {
      this.#tooSlow(entry)
      return
    }
    const tags = this.ctx.getTags(entry.socket)
    const window = this.#options.sendWindow
    for (let after = flow.sent; ;) {
      const page = store.pending(entry.id, tags, after, REPLAY_PAGE_ROWS)
      const fitting: number[] = []
      let bytes = flow.bytes
      for (const { seq, size } of page.pending) {
        if (!fits(flow.seqs.length - flow.start + fitting.length, bytes, size, window)) break
        fitting.push(seq)
        bytes += size
      }
      for (const logged of store.frames(fitting)) {
        const frame = numbered(logged.seq, logged.frame)
        const size = sizeOf(frame)
        if (!fitsWindow(flow, size, window)) {
          entry.hold(flow.sent)
          return
        }
        if (!entry.sendFrame(frame)) return
        sent(flow, logged.seq, size)
      }
      if (fitting.length < page.pending.length) {
        entry.hold(flow.sent)
        return
      }
      if (!page.full || page.through === undefined) break
      after = page.through
    }
    flow.held = false
    entry.hold(undefined)
  }

  #tooSlow(entry: Entry<Env, Data, In, Out>): void {
    log.warn(`${this.#label(entry)} fell behind what the session log holds, closing it with 3903`)
    this.#closeByServer(entry, SessionCloseCode.SLOW_CONSUMER, 'Slow consumer')
  }

  /** A socket's window, made on first use: a woken object knows only whether it was held, and from where. */
  #flowOf(entry: Entry<Env, Data, In, Out>): Flow {
    let flow = this.#flows.get(entry)
    if (flow === undefined) {
      const heldAfter = entry.heldAfter
      flow = {
        sent: heldAfter ?? this.#store?.head() ?? this.#unloggedSeq,
        // A woken object does not know what its clients were last told; a trim tells them again.
        told: 0,
        seqs: [],
        sizes: [],
        start: 0,
        bytes: 0,
        held: heldAfter !== undefined,
      }
      this.#flows.set(entry, flow)
    }
    return flow
  }

  /**
   * The server's ack, with a position advance when the socket is not held
   * back: then every frame for it up to the log's head has been sent, and the
   * client may take the head as its position.
   */
  #ack(entry: Entry<Env, Data, In, Out>, session: SessionState, head = this.#store?.head()): void {
    session.acked = session.handled
    const flow = head === undefined ? undefined : this.#flowOf(entry)
    const last = flow === undefined || flow.held ? undefined : head
    try {
      entry.socket.send(encodeServerAck(session.handled, last))
      if (flow !== undefined && last !== undefined) flow.told = last
    } catch {
      // The socket is gone; the next welcome carries the count instead.
    }
  }

  /**
   * The log dropped everything through `trimmed`: a client that was sent
   * nothing past it (nothing was for it) would be reset on its next resume,
   * though it missed nothing. Each such live socket gets the head as its
   * position first, in the same turn as the trim.
   */
  #tellPositions(trimmed: number, head: number): void {
    for (const entry of this.#live()) {
      const session = entry.session
      if (session === undefined) continue
      const flow = this.#flowOf(entry)
      if (!flow.held && flow.told < trimmed) this.#ack(entry, session, head)
    }
  }

  #protocolError(entry: Entry<Env, Data, In, Out>, what: string): void {
    log.warn(`${this.#label(entry)} broke the session protocol (${what}), closing it with 1002`)
    this.#closeByServer(entry, SessionCloseCode.PROTOCOL_ERROR, 'Protocol error')
  }

  /**
   * `close` gets the client's code and reason as a client may send them: a
   * code no endpoint may send becomes 1005 without a reason, so only a real
   * loss reads 1006, and a reason is cut to 123 bytes (peerClose).
   */
  webSocketClose(
    socket: WebSocket,
    code: number,
    reason: string,
    wasClean = false,
  ): Promise<void> | undefined {
    const entry = this.#entryFor(socket)
    // A socket the runtime already closed has nothing left to answer.
    if (socket.readyState !== CLOSED) answerClose(socket, code, reason)
    if (entry === undefined) return undefined
    const seen = peerClose(code, reason, wasClean)
    return this.#closeByPeer(entry, seen.code, seen.reason)
  }

  webSocketError(socket: WebSocket, error: unknown): Promise<void> | undefined {
    const entry = this.#entryFor(socket)
    log.warn(`socket error on ${entry === undefined ? 'an unknown connection' : this.#label(entry)}:`, error)
    if (entry === undefined) return undefined
    return this.#closeByPeer(entry, 1006, '')
  }

  /**
   * The object's alarm: closes connections silent for longer than
   * `idleTimeout`, ends sessions whose window passed, trims the log, and sets
   * the alarm again for whichever comes next.
   */
  async alarm(): Promise<void> {
    this.#reconcileSessions()
    const now = Date.now()
    let next = this.#reapIdle(now)
    const store = this.#store
    if (store?.exists()) {
      for (const old of store.tooOld(now)) {
        const live = this.#openEntry(old.id)
        if (live !== undefined) this.#closeByServer(live, SessionCloseCode.TOO_OLD, 'Session too old')
        else this.#endSession(old.id, old.data, old.tags, SessionCloseCode.TOO_OLD, 'Session too old')
      }
      for (const expired of store.expired(now)) this.#endSession(expired.id, expired.data, expired.tags)
      const kept = store.oldestKept
      store.trim(now)
      if (store.oldestKept !== kept) this.#tellPositions(store.oldestKept - 1, store.head())
      const expiry = store.nextExpiry()
      if (expiry !== undefined && (next === undefined || expiry < next)) next = expiry
    }
    if (next !== undefined) await alarmNoLaterThan(this.storage, next)
  }

  #reapIdle(now: number): number | undefined {
    const timeout = this.#options.idleTimeout
    if (timeout === undefined) return undefined
    let next: number | undefined
    for (const entry of [...this.#live()]) {
      // The runtime answers heartbeat pings without waking us and only keeps their time.
      const pinged = this.ctx.getWebSocketAutoResponseTimestamp(entry.socket)?.getTime() ?? 0
      const idleAt = Math.max(entry.seen, pinged) + timeout
      if (idleAt <= now) {
        log.warn(`${this.#label(entry)} was idle for ${String(timeout)} ms, closing it with 1001`)
        this.#closeByServer(entry, CloseCode.GOING_AWAY, 'Idle timeout')
      } else if (next === undefined || idleAt < next) {
        next = idleAt
      }
    }
    return next
  }

  /**
   * A session that can no longer be resumed: its window passed, the log
   * lost what it missed, or an RPC `close(id)` ended it while suspended.
   * `close` runs for it once, with 3902 (or the RPC's code), behind whatever
   * its last socket still had queued. When its socket still looks open (a
   * client too far behind the log came back while its old TCP connection
   * lingers), that socket is taken over as on a resume, and `close` gets 3901.
   */
  #endSession(
    id: number,
    data: string,
    tags: string,
    code: number = SessionCloseCode.EXPIRED,
    reason = 'Session expired',
  ): void {
    this.#store?.remove(id)
    const live = this.#openEntry(id)
    if (live !== undefined) {
      this.#closeByServer(live, SessionCloseCode.TAKEN_OVER, 'Session taken over')
      return
    }
    let entry = this.#suspended.get(id)
    this.#suspended.delete(id)
    if (!entry?.move('expire')) {
      // No socket is left to ask the runtime for anything; this one is never accepted.
      const [detached] = Object.values(new WebSocketPair()) as [WebSocket]
      entry = new ConnectionEntry(
        detached,
        id,
        JSON.parse(data) as Data,
        Date.now(),
        'closedByPeer',
        this.#host,
      )
      entry.detachedTags = JSON.parse(tags) as string[]
    }
    const ending = this.#queueClose(entry, code, reason)
    if (ending !== undefined) this.ctx.waitUntil(ending)
  }

  #onMessage(entry: Entry<Env, Data, In, Out>, raw: string | ArrayBuffer): unknown {
    const serializer = this.serializer
    if (typeof raw !== 'string' || serializer === undefined) {
      return this.#invoke(entry, 'message', (message) => message(entry.view, raw as Incoming<In>))
    }
    let decoded: In
    try {
      decoded = serializer.decode(raw)
      checkShape(this.#options.validate, decoded)
    } catch (error) {
      if (this.#options.handlers.get('malformed_message') === undefined) {
        // Neither the error nor the text goes into the log: both hold what the client sent.
        const what = isInvalidMessage(error) ? 'that failed validate' : 'the serializer cannot decode'
        log.warn(`${this.#label(entry)} sent a message ${what}, closing it with 1007`)
        this.#closeByServer(entry, CloseCode.INVALID_PAYLOAD, 'Malformed message')
        return undefined
      }
      return this.#invoke(entry, 'malformed_message', (malformed) => malformed(entry.view, raw, error))
    }
    return this.#invoke(entry, 'message', (message) => message(entry.view, decoded))
  }

  /**
   * Runs one handler. Whatever it throws or rejects with is logged here and
   * costs only its own connection (closed with 1011); afterwards `data` is
   * stored so changes made in the handler survive hibernation.
   */
  #invoke<E extends Exclude<EventName, 'error'>>(
    entry: Entry<Env, Data, In, Out>,
    event: E,
    call: (handler: EventHandlers<Env, Data, In, Out, L>[E]) => unknown,
  ): unknown {
    const handler = this.#options.handlers.get(event)
    if (handler === undefined) {
      // Nothing changed `data`, but a new record or the activity time still has to be stored.
      this.#storeAfter(entry, event)
      return undefined
    }
    let result: unknown
    try {
      result = call(handler)
    } catch (error) {
      this.#handlerFailed(entry, event, error)
      return undefined
    }
    if (result instanceof Promise) {
      return this.#timeLimited(result, event).then(
        () => {
          this.#storeAfter(entry, event)
        },
        (error: unknown) => {
          this.#handlerFailed(entry, event, error)
        },
      )
    }
    this.#storeAfter(entry, event)
    return undefined
  }

  /**
   * A handler still pending after `handlerTimeout` counts as failed: its
   * connection is closed with 1011 and its queue goes on, so a promise that
   * never settles cannot hold back later messages or `close`. The timer
   * exists only while a handler is pending, when the object is awake anyway.
   */
  #timeLimited(result: Promise<unknown>, event: EventName): Promise<unknown> {
    const limit = this.#options.handlerTimeout
    if (limit === undefined) return result
    let timer: ReturnType<typeof setTimeout> | undefined
    const expired = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => {
        reject(
          new DurableWebSocketError(
            'ERR_DWS_HANDLER_TIMEOUT',
            `the ${event} handler was still pending after ${String(limit)} ms (handlerTimeout), so it counts as failed. Make sure every promise it awaits settles, or raise handlerTimeout.`,
          ),
        )
      }, limit)
    })
    return Promise.race([result, expired]).finally(() => {
      if (timer !== undefined) clearTimeout(timer)
    })
  }

  /**
   * Stores `data` after a handler, unless nothing can have changed: an
   * attachment write per message is the largest cost a plain echo pays
   * (bench/RESULTS.md). With idle reaping on, the activity time is stored
   * every time too, since a woken object only knows what the attachment says.
   */
  #storeAfter(entry: Entry<Env, Data, In, Out>, event: EventName): void {
    if (!entry.needsStore && this.#options.idleTimeout === undefined) return
    if (
      entry.session !== undefined &&
      (entry.state === 'suspended' || (isLive(entry.state) && entry.socket.readyState !== OPEN))
    ) {
      // The socket is gone or closing (a message handled just before the client's close), but the
      // session lives on: its data goes where a resume reads it.
      entry.dataRead = false
      this.#store?.saveData(entry.id, entry.data)
      return
    }
    if (!isLive(entry.state) || entry.socket.readyState !== OPEN) return
    try {
      entry.store()
    } catch (error) {
      log.error(`after the ${event} handler, ${this.#label(entry)}:`, error)
    }
  }

  #handlerFailed(entry: Entry<Env, Data, In, Out>, event: EventName, error: unknown): void {
    if (!isLive(entry.state)) {
      log.error(`the ${event} handler failed for ${this.#label(entry)}:`, error)
      return
    }
    log.error(`the ${event} handler failed for ${this.#label(entry)}, closing it with 1011:`, error)
    this.#closeByServer(entry, CloseCode.INTERNAL_ERROR, 'Internal Error')
  }

  /**
   * The server closes: its frame goes out, and `close` is queued behind the
   * pending handlers. With `drain`, the messages already queued are still
   * handled first; otherwise they are dropped.
   */
  #closeByServer(
    entry: Entry<Env, Data, In, Out>,
    code: number,
    reason: string,
    event: 'serverClose' | 'drain' = 'serverClose',
  ): void {
    const suspends = entry.session !== undefined && this.#store !== undefined && serverCloseSuspends(code)
    if (!entry.move(suspends ? 'suspend' : event)) return
    this.#open.delete(entry.id)
    if (entry.session !== undefined && !suspends) this.#store?.remove(entry.id)
    try {
      entry.socket.close(code, reason)
    } catch (error) {
      // The runtime closed the socket first; `close` still runs, once.
      log.warn(`closing ${this.#label(entry)} failed:`, error)
    }
    if (suspends) {
      this.ctx.waitUntil(this.#suspend(entry, code, reason))
      return
    }
    const closing = this.#queueClose(entry, code, reason)
    if (closing !== undefined) this.ctx.waitUntil(closing)
  }

  /**
   * The client closed, or the connection was lost; a close we started only
   * needed answering. A session's socket lost without a final close is
   * suspended instead: `close` waits for the window to pass without a resume.
   */
  #closeByPeer(entry: Entry<Env, Data, In, Out>, code: number, reason: string): Promise<void> | undefined {
    const store = this.#store
    if (entry.session !== undefined && store !== undefined && !endsSession(code)) {
      if (!entry.move('suspend')) return undefined
      this.#open.delete(entry.id)
      return this.#suspend(entry, code, reason)
    }
    if (!entry.move('peerClose')) return undefined
    this.#open.delete(entry.id)
    if (entry.session !== undefined) store?.remove(entry.id)
    return this.#queueClose(entry, code, reason)
  }

  /**
   * A session whose socket is gone waits for its resume until the window
   * ends, which the alarm checks; `suspend` runs behind what its socket still had queued.
   */
  #suspend(entry: Entry<Env, Data, In, Out>, code: number, reason: string): Promise<void> {
    this.#suspended.set(entry.id, entry)
    const now = Date.now()
    const store = this.#store
    if (store === undefined) return Promise.resolve()
    store.suspend(entry.id, now)
    // Not awaited here: a handler still running on the socket (and `suspend` behind it) must not
    // hold up the close event that brought the drop.
    const told = entry.queue.run(() =>
      this.#invoke(entry, 'suspend', (suspend) => suspend(entry.view, code, reason)),
    )
    if (told !== undefined) this.ctx.waitUntil(told)
    return alarmNoLaterThan(this.storage, now + store.window)
  }

  #queueClose(entry: Entry<Env, Data, In, Out>, code: number, reason: string): Promise<void> | undefined {
    return entry.queue.run(() => this.#invoke(entry, 'close', (close) => close(entry.view, code, reason)))
  }

  /**
   * Sends one encoded frame to many; a send that throws costs only its own
   * connection (1011). While any session exists the message is logged once,
   * with who it was for, so suspended sessions get it when they resume.
   */
  #fanOut(
    targets: Iterable<Entry<Env, Data, In, Out>>,
    frame: Frame,
    { except }: BroadcastOptions,
    tag: string | null,
  ): number {
    let forSessions: Frame | undefined
    let seq = 0
    if (this.#hasLoggedSessions()) {
      const excluded = except === undefined ? null : typeof except === 'number' ? [except] : except
      seq = this.#log(null, tag, excluded, frame)
      forSessions = numbered(seq, frame)
    }
    let sent = 0
    for (const entry of targets) {
      if (
        except !== undefined &&
        (typeof except === 'number' ? except === entry.id : except.includes(entry.id))
      ) {
        continue
      }
      try {
        if (entry.session === undefined) {
          if (entry.sendFrame(frame)) sent++
          continue
        }
        if (forSessions === undefined) {
          seq = this.#nextUnloggedSeq()
          forSessions = numbered(seq, frame)
        }
        if (this.#deliver(entry, seq, forSessions)) sent++
      } catch (error) {
        log.error(`sending to ${this.#label(entry)} failed, disconnecting it:`, error)
        this.#closeByServer(entry, CloseCode.INTERNAL_ERROR, 'Internal Error')
      }
    }
    return sent
  }

  /**
   * A send to one session: numbered, and logged so a resume replays it. It
   * goes to the session's current socket, which after a resume may be newer
   * than the one the sender's `conn` came from; while the session is
   * suspended it waits in the log.
   */
  #sendToSession(entry: Entry<Env, Data, In, Out>, frame: Frame): boolean {
    if (entry.state === 'closedByServer' || entry.state === 'draining' || entry.state === 'closedByPeer')
      return false
    const store = this.#store
    const seq = store === undefined ? this.#nextUnloggedSeq() : this.#log(entry.id, null, null, frame)
    const current = this.#open.get(entry.id)
    if (current === undefined) return store !== undefined
    try {
      return this.#deliver(current, seq, numbered(seq, frame))
    } catch (error) {
      log.error(`sending to ${this.#label(current)} failed, disconnecting it:`, error)
      this.#closeByServer(current, CloseCode.INTERNAL_ERROR, 'Internal Error')
      return false
    }
  }

  #log(target: number | null, tag: string | null, except: readonly number[] | null, frame: Frame): number {
    const store = this.#store
    if (store === undefined) return this.#nextUnloggedSeq()
    const kept = store.oldestKept
    // The frame being logged goes out after this returns: the position told is the head before it.
    const head = store.head()
    const seq = store.append(target, tag, except, frame, Date.now())
    if (store.oldestKept !== kept) this.#tellPositions(store.oldestKept - 1, head)
    return seq
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
  #hasLoggedSessions(): boolean {
    if (this.#store === undefined) return false
    this.#reconcileSessions()
    this.#anySessions ??= this.#store.exists() && this.#store.count() > 0
    return this.#anySessions
  }

  /**
   * After a restart the sockets are gone, but their sessions are still marked
   * attached: suspend those, so their window runs from now and the alarm ends
   * them if nobody comes back. Done once per instance, not at construction
   * but on the first accept, alarm, fan-out or look at the connections: a
   * plain room's wake then touches no storage at all (its first SQL access
   * costs more than the rest of a wake-up; bench).
   */
  #reconcileSessions(): void {
    if (this.#reconciled) return
    this.#reconciled = true
    const store = this.#store
    if (!store?.exists()) return
    const attached = store.attachedIds()
    const sockets = this.ctx.getWebSockets(SESSION_TAG)
    if (attached.length === 0 || attached.length <= sockets.length) return
    const live = new Set<number>()
    for (const socket of sockets) {
      const entry = this.#entryFor(socket)
      if (entry !== undefined) live.add(entry.id)
    }
    const now = Date.now()
    let lost = 0
    for (const id of attached) {
      if (live.has(id)) continue
      store.suspend(id, now)
      lost++
    }
    if (lost > 0)
      void this.ctx.blockConcurrencyWhile(() => alarmNoLaterThan(this.storage, now + store.window))
  }

  #label(entry: Entry<Env, Data, In, Out>): string {
    return entry.label(this.room)
  }

  #live(): IterableIterator<Entry<Env, Data, In, Out>> {
    this.#hydrate()
    return this.#open.values()
  }

  *#tagged(tag: string): Generator<Entry<Env, Data, In, Out>> {
    for (const socket of this.ctx.getWebSockets(tag)) {
      const entry = this.#entryFor(socket)
      if (entry !== undefined && isLive(entry.state) && socket.readyState === OPEN) yield entry
    }
  }

  #track(entry: Entry<Env, Data, In, Out>): void {
    this.#bySocket.set(entry.socket, entry)
    if (isLive(entry.state) && entry.socket.readyState === OPEN) this.#open.set(entry.id, entry)
  }

  /**
   * After a wake the in-memory maps are empty; the attachments still know
   * every connection. Every event of a socket carries the same WebSocket
   * object (test/workerd/runtime.test.ts), which the WeakMap relies on.
   */
  #entryFor(socket: WebSocket): Entry<Env, Data, In, Out> | undefined {
    const known = this.#bySocket.get(socket)
    if (known !== undefined) return known
    const entry = ConnectionEntry.fromAttachment(socket, this.#host)
    if (entry !== undefined) this.#track(entry)
    return entry
  }

  #hydrate(): void {
    if (this.#hydrated) return
    this.#reconcileSessions()
    for (const socket of this.ctx.getWebSockets()) this.#entryFor(socket)
    this.#hydrated = true
  }
}

/**
 * Sends our close frame back after the peer's. workerd does not do this for
 * hibernatable sockets, not even at compatibility date 2026-10-23
 * (test/workerd/runtime.test.ts pins it), and after a 1006 (no close frame,
 * e.g. a peer that half-closed its TCP connection) closing our end still
 * releases the connection now rather than when the object next hibernates.
 */
function answerClose(socket: WebSocket, code: number, reason: string): void {
  try {
    // Echo the peer's code where it may be sent back; 1005 (no code) and codes reserved for
    // reporting get an empty close frame, which is always valid. A peer's reason over the
    // control-frame limit cannot be sent back, so the code goes alone.
    if (!isSendableCloseCode(code)) socket.close()
    else if (utf8Length(reason) > MAX_CLOSE_REASON_BYTES) socket.close(code)
    else socket.close(code, reason)
  } catch {
    // Already closed by the runtime: nothing left to answer.
  }
}

const utf8 = new TextEncoder()

/**
 * Whether a received message is over `limit` bytes. A UTF-8 character takes
 * one to three bytes per UTF-16 unit, so most strings are decided from their
 * length alone and only the ambiguous ones are encoded.
 */
function exceedsBytes(message: string | ArrayBuffer, limit: number): boolean {
  if (typeof message !== 'string') return message.byteLength > limit
  if (message.length > limit) return true
  if (message.length * 3 <= limit) return false
  return utf8.encode(message).byteLength - 2 * countReplacements(message) > limit
}

/**
 * workerd decodes a text frame's invalid bytes to U+FFFD, three bytes in
 * UTF-8, where each stood for at least one byte on the wire. Counting each
 * as one keeps a message that was under the limit on the wire under it
 * here, and the length check above still bounds what the string costs.
 */
function countReplacements(message: string): number {
  let count = 0
  for (let at = message.indexOf(REPLACEMENT); at !== -1; at = message.indexOf(REPLACEMENT, at + 1)) count++
  return count
}

const REPLACEMENT = '\uFFFD'

/** What a message or frame counts for in `maxQueued` and `sendWindow`: UTF-16 units for text, bytes for binary. */
function sizeOf(message: Frame): number {
  return typeof message === 'string' ? message.length : message.byteLength
}

/** What a session upgrade read before its checks (WebSocketManager's #sessionKeys). */
interface SessionKeys {
  /** The token the welcome hands out, and its hash as stored. */
  readonly token: string
  readonly tokenHash: string
  /** The hash of the token the resume entry presented; empty without one. */
  readonly usedHash: string
  /** The stored session that token names, if any. */
  readonly found: SessionRecord | undefined
}

/** One session socket's frames sent and not yet acknowledged, oldest first from `start`. */
interface Flow {
  /** The highest `g` sent on this socket, live or from the log. */
  sent: number
  /** The highest position this socket's client was sent, by a data frame or a position advance; 0 when unknown. */
  told: number
  seqs: number[]
  sizes: number[]
  start: number
  bytes: number
  /** Live sends stopped: the client catches up from the log as it acknowledges. */
  held: boolean
}

interface Bucket {
  tokens: number
  /** When the bucket was last refilled, in ms since the epoch. */
  at: number
}

/** One more frame fits: always when nothing is unacknowledged, so one large frame cannot stall a client. */
function fitsWindow(flow: Flow, size: number, window: { messages: number; bytes: number }): boolean {
  return fits(flow.seqs.length - flow.start, flow.bytes, size, window)
}

/** Whether a frame of `size` fits beside `count` frames of `bytes` in all that no ack has covered yet. */
function fits(
  count: number,
  bytes: number,
  size: number,
  window: { messages: number; bytes: number },
): boolean {
  return count === 0 || (count < window.messages && bytes + size <= window.bytes)
}

function sent(flow: Flow, seq: number, size: number): void {
  flow.sent = seq
  flow.told = seq
  flow.seqs.push(seq)
  flow.sizes.push(size)
  flow.bytes += size
}

/**
 * A session upgrade turned away after the handshake, with a close code its
 * client can read (a browser's WebSocket shows no HTTP status): the socket is
 * never accepted into the object, and no id is spent.
 */
function refusedSession(code: number, reason: string): Response {
  const [client, server] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket]
  server.accept()
  server.close(code, reason)
  return new Response(null, {
    status: 101,
    webSocket: client,
    headers: { 'Sec-WebSocket-Protocol': SESSION_PROTOCOL, 'Sec-WebSocket-Extensions': 'no-compression' },
  })
}

/** Load shed from a session client: 1013 with when to come back, where a plain client gets 503 or 429. */
function shed(seconds: number): Response {
  return refusedSession(CloseCode.TRY_AGAIN_LATER, retryReason(seconds * 1000))
}

/** A key or an owner an option's function derived: kept in storage, so bounded. */
function validateKey(key: unknown, option: string): string {
  if (typeof key !== 'string' || key.length === 0 || key.length > MAX_KEY_LENGTH) {
    throw new DurableWebSocketError(
      'ERR_DWS_INVALID_OPTIONS',
      `${option} must return a string of 1 to ${String(MAX_KEY_LENGTH)} characters, got ${typeof key === 'string' ? `${String(key.length)} characters` : describe(key)}.`,
    )
  }
  return key
}

/**
 * Throws ERR_DWS_INVALID_MESSAGE when the validator refuses the message, or
 * throws on it (a validator that reads `message.type` throws on `null`): a
 * handler can then tell a message of the wrong shape from one that did not decode.
 */
function checkShape(validate: ((message: unknown) => boolean) | undefined, message: unknown): void {
  if (validate === undefined) return
  let valid: boolean
  try {
    valid = validate(message)
  } catch (cause) {
    throw new DurableWebSocketError('ERR_DWS_INVALID_MESSAGE', 'The validator threw on the message.', {
      cause,
    })
  }
  if (!valid)
    throw new DurableWebSocketError(
      'ERR_DWS_INVALID_MESSAGE',
      'The message does not have the expected shape.',
    )
}

function isInvalidMessage(error: unknown): boolean {
  return error instanceof DurableWebSocketError && error.code === 'ERR_DWS_INVALID_MESSAGE'
}

/**
 * The subprotocol the 101 names, if any. A browser that offered some and
 * gets none back fails the handshake, and RFC 6455 §4.2.2 allows only an
 * offered one, so a pick outside the list is a bug in the option.
 */
/** RFC 7230 §3.2.6 token, which RFC 6455 §4.1 requires of every subprotocol. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/

/** What the client offered, less anything that is not a token: the 101 must never echo one. */
function offeredProtocols(request: Request): string[] {
  const header = request.headers.get('Sec-WebSocket-Protocol')
  if (header === null) return []
  return header
    .split(',')
    .map((token) => token.trim())
    .filter((token) => TOKEN.test(token))
}

function chooseProtocol<L>(
  offered: string[],
  request: Request,
  locals: L,
  pick: ((offered: string[], request: Request, locals: L) => string | undefined) | undefined,
): string | undefined {
  if (pick === undefined || offered.length === 0) return undefined
  const chosen = pick(offered, request, locals)
  if (chosen !== undefined && !offered.includes(chosen)) {
    // The offer is left out of the message: a client may carry a token in it, and this gets logged.
    throw new DurableWebSocketError(
      'ERR_DWS_INVALID_OPTIONS',
      `the protocol option chose "${chosen}", which is not among the ${String(offered.length)} subprotocols the client offered.`,
    )
  }
  return chosen
}

function validateTags(tags: unknown, connectionId: number, maxTags: number): string[] {
  const label = `the tags of connection ${String(connectionId)}`
  if (!Array.isArray(tags)) {
    throw new DurableWebSocketError(
      'ERR_DWS_INVALID_TAGS',
      `${label} must be an array of strings, got ${describe(tags)}.`,
    )
  }
  if (tags.length > maxTags) {
    throw new DurableWebSocketError(
      'ERR_DWS_INVALID_TAGS',
      `${label}: ${String(tags.length)} tags, but ${maxTags < MAX_TAGS ? 'a session socket' : 'a socket'} may carry at most ${String(maxTags)}.`,
    )
  }
  for (const tag of tags as unknown[]) {
    if (typeof tag !== 'string' || tag.length === 0 || tag.length > MAX_TAG_LENGTH) {
      throw new DurableWebSocketError(
        'ERR_DWS_INVALID_TAGS',
        `${label}: each tag must be a string of 1 to ${String(MAX_TAG_LENGTH)} characters, got ${typeof tag === 'string' ? `${String(tag.length)} characters` : describe(tag)}.`,
      )
    }
  }
  return tags as string[]
}

/**
 * An object has one alarm, which a subclass may use too: move it earlier
 * when `time` needs that, never later, so neither use loses its turn.
 */
async function alarmNoLaterThan(storage: DurableObjectStorage, time: number): Promise<void> {
  const current = await storage.getAlarm()
  if (current === null || current > time) await storage.setAlarm(time)
}
