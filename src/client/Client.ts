import { exceedsBytes } from '../shared/byteSize.js'
import { describe } from '../shared/describe.js'
import type { Frame } from '../shared/serializer.js'
import { ClientError } from './ClientError.js'
import { backoffDelay } from './backoff.js'
import { IDLE_WITHOUT_HEARTBEAT, isIdleTimeout, validateClose, type CloseEventInfo } from './closeCodes.js'
import { Emitter } from './Emitter.js'
import { Heartbeat } from './Heartbeat.js'
import { resolveOptions, type ClientOptions, type ResolvedOptions } from './options.js'
import { Outbox } from './Outbox.js'
import { nextOffer } from './protocols.js'
import { ACK_AFTER_MS, ProtocolViolation, Session } from './Session.js'
import { CloseCode } from '../shared/closeCodes.js'
import {
  SESSION_PROTOCOL,
  SessionCloseCode,
  isSessionProtocolName,
  retryHint,
  type Welcome,
} from '../shared/sessionProtocol.js'
import { StoredSession } from './StoredSession.js'
import { resolveUrl, type ConnectTarget } from './target.js'

/**
 * - `connecting`: a socket is opening (the first one, or a retry).
 * - `open`: connected; `send` writes to the socket.
 * - `reconnecting`: waiting out the backoff delay before the next attempt.
 * - `closed`: for good, after `close()` or when retrying stopped; `send` returns false.
 */
export type ClientState = 'connecting' | 'open' | 'reconnecting' | 'closed'

export interface OpenInfo {
  /** True for every connection after the first. */
  reconnected: boolean
  /**
   * True when the server took this connection back into the session it had
   * before: same `client.id`, and every message it missed follows. False for
   * a new session, and always in plain mode.
   */
  resumed: boolean
}

export interface ResetInfo {
  /**
   * What the client had sent or queued that the old session never
   * confirmed, oldest first, as the serializer encoded it (text) or as
   * bytes. The server may or may not have handled the ones it had sent; the
   * client sends none of them again.
   */
  unacknowledged: (string | ArrayBuffer)[]
}

export interface CloseInfo extends CloseEventInfo {
  /** Whether a retry is scheduled; false after `close()` and when the client gives up. */
  willReconnect: boolean
}

export interface ReconnectInfo {
  /** 1 for the first retry since the last open connection. */
  attempt: number
  /** How long the client waits before it, in ms. */
  delay: number
}

export interface ClientEvents<Incoming> {
  /** A connection opened. Messages queued meanwhile go out right after these listeners return. */
  open: (info: OpenInfo) => void
  /**
   * The server could not resume the session (too late, or it lost track)
   * and started a new one: state the app built from earlier messages may
   * have gaps, so refetch it. Comes right before `open` with `resumed: false`.
   */
  reset: (info: ResetInfo) => void
  /** One text frame, decoded by the serializer. */
  message: (message: Incoming) => void
  /** One binary frame, as it came. */
  binary: (data: ArrayBuffer) => void
  /** A connection ended (or an attempt failed); `willReconnect` tells whether another follows. */
  close: (info: CloseInfo) => void
  /** A retry is scheduled. */
  reconnecting: (info: ReconnectInfo) => void
  /** A frame the serializer could not decode (it is dropped), or an error the socket reported. */
  error: (error: ClientError) => void
}

export type ClientEventName = keyof ClientEvents<unknown>

const EVENT_NAMES: readonly ClientEventName[] = [
  'open',
  'reset',
  'message',
  'binary',
  'close',
  'reconnecting',
  'error',
]

/** The part of a WebSocket the client uses; browsers, Node 22 and `ws` all have it. */
interface Socket {
  readonly readyState: number
  /** The subprotocol the server picked, '' for none; a minimal WebSocket class may lack it. */
  readonly protocol?: string
  binaryType: string
  send(data: Frame): void
  close(code?: number, reason?: string): void
  onopen: (() => void) | null
  onmessage: ((event: { data: unknown }) => void) | null
  onclose: ((event: CloseEventInfo) => void) | null
  onerror: (() => void) | null
}

const CONNECTING = 0
const OPEN = 1

/** A connection that stayed up this long counts as healthy: the backoff starts over after it drops. */
const STABLE_MS = 5_000

/**
 * One logical connection that outlives its sockets: it opens a new socket
 * after a drop, with backoff and jitter, and queues what is sent meanwhile.
 * Make one with `connect()`.
 */
export class Client<Incoming = unknown, Outgoing = Incoming> {
  /** The `ws:` or `wss:` URL every socket opens. */
  readonly url: string
  readonly #options: ResolvedOptions<Incoming, Outgoing>
  readonly #events = new Emitter<ClientEvents<Incoming>>(EVENT_NAMES)
  readonly #outbox: Outbox
  readonly #heartbeat: Heartbeat | undefined
  #warnedIdle = false
  #state: ClientState = 'connecting'
  #socket: Socket | undefined
  #retryTimer: ReturnType<typeof setTimeout> | undefined
  /** Retries since the last open connection, for `maxAttempts`. */
  #attempts = 0
  /** The backoff exponent: it only starts over after a connection that lasted. */
  #step = 0
  #openedAt: number | undefined
  #everOpened = false
  #protocol = ''
  /** The session, unless `session: false`; it lives as long as the client, across sockets. */
  #session: Session | undefined
  #stored: StoredSession | undefined
  /** False after `session: false`, or once a server showed that it does not speak sessions. */
  #offerSession: boolean
  /** A welcome came on some socket of this client: the server speaks sessions. */
  #sessionSeen = false
  /** Whether the current socket speaks the session protocol, and whether it still waits for its welcome. */
  #mode: 'plain' | 'session' | 'welcome' = 'plain'
  /** The current socket failed; reported only if the close that follows gets no retry. */
  #socketError: ClientError | undefined
  /** The current socket's attempt: what the app offered, whether the session was offered too, whether it opened. */
  #offer: readonly string[] = []
  #offered = false
  #socketOpened = false
  #ackTimer: ReturnType<typeof setTimeout> | undefined
  #unsaved: { position: boolean; messages: boolean } | undefined

  /** Checks the options (throwing `ERR_DWS_INVALID_OPTIONS`) and starts connecting; the same as `connect()`. */
  constructor(target: string | URL | ConnectTarget, options?: ClientOptions<Incoming, Outgoing>) {
    this.url = resolveUrl(target)
    this.#options = resolveOptions(options)
    this.#outbox = new Outbox(this.#options.maxQueued)
    this.#offerSession = this.#options.session
    if (this.#options.session) this.#session = this.#loadSession()
    const heartbeat = this.#options.heartbeat
    this.#heartbeat =
      heartbeat === undefined
        ? undefined
        : new Heartbeat(
            heartbeat,
            (ping) => this.#socket?.send(ping),
            () => this.#abandon({ code: 1006, reason: 'Heartbeat timeout', wasClean: false }),
          )
    this.#open()
  }

  get state(): ClientState {
    return this.#state
  }

  /**
   * The state now, after listeners ran: TypeScript keeps `#state` narrowed to
   * what this class last set, as if an emit() could not change it.
   */
  #current(): ClientState {
    return this.#state
  }

  /**
   * The subprotocol the server picked for the connection that opened last,
   * as `WebSocket.protocol` has it: '' before the first open, and when the
   * client offered none. Already set when the `open` listeners run.
   */
  get protocol(): string {
    return this.#protocol
  }

  /** Messages the client holds: waiting for a connection, or sent in a session and not yet acknowledged. */
  get queued(): number {
    return this.#outbox.size + this.#held()
  }

  /**
   * The server's id for this client's session (`conn.id` there), from the
   * latest welcome: it stays the same across resumed connections and
   * changes on a reset. Undefined before the first welcome, in plain mode, and once the session ended.
   */
  get id(): number | undefined {
    return this.#session?.id
  }

  /** Adds a listener; returns the function that removes it. */
  on<E extends ClientEventName>(event: E, listener: ClientEvents<Incoming>[E]): () => void {
    return this.#events.on(event, listener)
  }

  /**
   * Sends one message now, or queues it while the client is connecting or
   * reconnecting. Returns false, sending nothing, when the queue already holds
   * `maxQueued` messages or the client is closed. Bytes go out as a binary
   * frame untouched; anything else goes through the serializer, and a value
   * it cannot encode throws `ERR_DWS_UNSENDABLE_MESSAGE` at once.
   */
  send(message: Outgoing | ArrayBuffer | ArrayBufferView): boolean {
    if (this.#state === 'closed') return false
    const frame = this.#encode(message)
    const socket = this.#socket
    const session = this.#session
    const limit = session?.maxMessageBytes
    if (limit !== undefined && exceedsBytes(frame, limit)) {
      throw new ClientError(
        'ERR_DWS_MESSAGE_TOO_BIG',
        `This message is over the server's maxMessageBytes (${String(limit)} bytes), so the server would close the connection for it; nothing was sent. Send it in smaller parts.`,
      )
    }
    if (this.#state === 'open' && socket?.readyState === OPEN) {
      if (this.#mode !== 'session' || session === undefined) {
        socket.send(frame)
        return true
      }
      if (session.unacknowledged.length >= this.#options.maxQueued) return false
      socket.send(session.number(frame))
      this.#changed('messages')
      this.#armAck()
      return true
    }
    if (!this.#outbox.push(frame, this.#held())) return false
    this.#changed('messages')
    return true
  }

  /**
   * Closes for good: no more retries, and queued messages are dropped. Takes
   * 1000 (the default) or an application code from 3000 to 4999.
   */
  close(code = 1000, reason = ''): void {
    validateClose(code, reason)
    if (this.#state === 'closed') return
    this.#state = 'closed'
    if (this.#retryTimer !== undefined) clearTimeout(this.#retryTimer)
    this.#heartbeat?.stop()
    this.#outbox.clear()
    // The close frame ends the session on the server; a reload must not try to resume it.
    this.#forgetSession(true)
    const socket = this.#socket
    // Between attempts there is no socket to wait for: the client is closed now.
    if (socket === undefined)
      this.#events.emit('close', { code, reason, wasClean: true, willReconnect: false })
    else socket.close(code, reason)
  }

  #encode(message: unknown): Frame {
    if (message instanceof ArrayBuffer || ArrayBuffer.isView(message)) return message
    try {
      return this.#options.serializer.encode(message as Outgoing)
    } catch (cause) {
      const why = `The serializer could not encode ${describe(message)}.`
      throw new ClientError('ERR_DWS_UNSENDABLE_MESSAGE', why, { cause })
    }
  }

  #open(): void {
    this.#state = 'connecting'
    let offer: readonly string[] | Promise<string[]>
    try {
      offer = nextOffer(this.#options.protocols, this.url)
    } catch (error) {
      // Reported a tick later, as a rejection would be: on the first attempt no listener is there yet.
      offer = Promise.reject(error)
    }
    if (!(offer instanceof Promise)) {
      this.#dial(offer)
      return
    }
    // While the offer is made nothing else can start an attempt; only close() can end this one.
    offer.then(
      (protocols) => {
        if (this.#state === 'connecting') this.#dial(protocols)
      },
      (error: unknown) => {
        if (this.#state === 'connecting') this.#failed(error as ClientError)
      },
    )
  }

  /**
   * An attempt that never got a socket. A bad offer from the protocols
   * function would fail every retry alike, so it ends the client instead.
   */
  #failed(error: ClientError): void {
    this.#events.emit('error', error)
    // An error listener may have closed the client, and told its close listeners so.
    if (this.#state === 'closed') return
    if (error.code === 'ERR_DWS_INVALID_OPTIONS') this.#state = 'closed'
    this.#closed({ code: 1006, reason: '', wasClean: false })
  }

  #dial(protocols: readonly string[], offerSession = this.#offerSession): void {
    if (offerSession && protocols.some(isSessionProtocolName)) {
      const why =
        'options.protocols() named a dws.session.* or dws.resume.* subprotocol, which the client offers itself; leave it out.'
      this.#failed(new ClientError('ERR_DWS_INVALID_OPTIONS', why))
      return
    }
    this.#offer = protocols
    this.#offered = offerSession
    this.#socketOpened = false
    const resume = offerSession ? this.#session?.resumeOffer() : undefined
    const offer = offerSession
      ? [SESSION_PROTOCOL, ...(resume === undefined ? [] : [resume]), ...protocols]
      : protocols
    let socket: Socket
    try {
      // Without an offer the second argument is left out, as a bare `new WebSocket(url)` would.
      socket = (
        offer.length === 0
          ? new this.#options.WebSocket(this.url)
          : new this.#options.WebSocket(this.url, [...offer])
      ) as Socket
    } catch (cause) {
      this.#failed(
        new ClientError('ERR_DWS_SOCKET_ERROR', `A WebSocket to ${this.url} could not be made.`, { cause }),
      )
      return
    }
    this.#socket = socket
    socket.binaryType = 'arraybuffer'
    socket.onopen = () => {
      if (socket === this.#socket) this.#opened(socket)
    }
    socket.onmessage = (event) => {
      if (socket === this.#socket) this.#received(event.data)
    }
    socket.onerror = () => {
      if (socket !== this.#socket) return
      // Browsers say nothing more, on purpose; the close event that follows has the code.
      // A handshake that failed only for the session offer is tried again without it, quietly.
      // Reported with the close that follows, and only when no retry does: while a server is down,
      // each failed attempt is a `close` and a `reconnecting`, not an error the app must act on.
      if (!this.#fallsBack()) {
        this.#socketError = new ClientError('ERR_DWS_SOCKET_ERROR', `The WebSocket to ${this.url} failed.`)
      }
      // Node 22's WebSocket (undici) reports a failed handshake with this error alone and stays
      // CONNECTING for good (nodejs/undici#3546); by the spec it is CLOSED by now, with a close to follow.
      setTimeout(() => {
        if (socket === this.#socket && socket.readyState === CONNECTING) {
          this.#abandon({ code: 1006, reason: '', wasClean: false })
        }
      }, 0)
    }
    socket.onclose = ({ code, reason, wasClean }) => {
      if (socket !== this.#socket) return
      this.#lost({ code, reason, wasClean })
    }
  }

  /**
   * Browsers, Node 22 and `ws` all fail a handshake whose 101 names no
   * subprotocol when one was offered, and a server that predates sessions
   * names none. So while no server has welcomed this client, an attempt that
   * offered the session and never opened is made again at once without it.
   */
  #fallsBack(): boolean {
    return this.#offered && !this.#socketOpened && !this.#sessionSeen && this.#state === 'connecting'
  }

  /** The current socket is gone, by its close event or because the client gave up on it. */
  #lost(close: CloseEventInfo): void {
    this.#socket = undefined
    this.#stopAck()
    const fallBack = this.#fallsBack()
    this.#mode = 'plain'
    if (fallBack) this.#dial(this.#offer, false)
    else this.#closed(close)
  }

  #opened(socket: Socket): void {
    if (this.#state === 'closed') return
    this.#socketOpened = true
    this.#protocol = socket.protocol ?? ''
    this.#heartbeat?.start()
    if (!this.#offered && this.#offerSession) {
      // This was the attempt without the session offer, and it opened: the server does not speak it.
      this.#offerSession = false
      this.#forgetSession(true)
    }
    if (this.#offered && this.#protocol === SESSION_PROTOCOL && this.#session !== undefined) {
      // The server speaks first; no data frame may go before its welcome, so the client stays `connecting`.
      this.#mode = 'welcome'
      return
    }
    this.#ready(socket, false)
  }

  #ready(socket: Socket, resumed: boolean): void {
    this.#state = 'open'
    this.#attempts = 0
    this.#openedAt = Date.now()
    const reconnected = this.#everOpened
    this.#everOpened = true
    this.#events.emit('open', { reconnected, resumed })
    // Listeners may have sent (e.g. to join a room again) or closed; the backlog follows what they sent.
    const session = this.#mode === 'session' ? this.#session : undefined
    let sent = false
    while (this.#current() === 'open' && socket === this.#socket && socket.readyState === OPEN) {
      const frame = this.#outbox.shift()
      if (frame === undefined) break
      socket.send(session === undefined ? frame : session.number(frame))
      sent = true
    }
    if (sent && session !== undefined) {
      this.#changed('messages')
      this.#armAck()
    }
  }

  #received(data: unknown): void {
    this.#heartbeat?.received()
    if (data === this.#options.heartbeat?.response) return
    const bytes = ArrayBuffer.isView(data)
      ? (data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength) as ArrayBuffer)
      : data
    const session = this.#session
    if (this.#mode === 'plain' || session === undefined) {
      this.#deliver(bytes)
      return
    }
    if (typeof bytes !== 'string' && !(bytes instanceof ArrayBuffer)) return
    try {
      const incoming = session.receive(bytes)
      if (incoming.kind === 'welcome') {
        if (this.#mode !== 'welcome') throw new ProtocolViolation('a second welcome came on one socket.')
        this.#welcomed(incoming.welcome)
      } else if (this.#mode === 'welcome' && incoming.kind !== 'other') {
        throw new ProtocolViolation(
          `${incoming.kind === 'ack' ? 'an ack' : 'a data frame'} came before the welcome.`,
        )
      } else if (incoming.kind === 'ack') {
        session.acknowledge(incoming.handled)
        this.#changed('messages')
        if (incoming.last !== undefined && session.advance(incoming.last)) this.#changed('position')
      } else if (incoming.kind === 'data') {
        this.#changed('position')
        if (session.ackDue) this.#socket?.send(session.ack())
        this.#armAck()
        this.#deliver(incoming.payload)
      }
    } catch (error) {
      if (!(error instanceof ProtocolViolation)) throw error
      this.#violated(error.message)
    }
  }

  /** The server's first frame on a session socket: the session is (re)established, or a new one replaces it. */
  #welcomed(welcome: Welcome): void {
    const session = this.#session
    const socket = this.#socket
    if (session === undefined || socket === undefined) return
    const { resend, reset } = session.welcome(welcome)
    // The 101 names the session protocol; what the server picked among the app's own offers comes here.
    this.#protocol = welcome.protocol ?? ''
    this.#mode = 'session'
    this.#sessionSeen = true
    this.#changed('position')
    this.#changed('messages')
    if (reset !== undefined) {
      const unacknowledged = [...reset, ...this.#outbox.clear()].map((frame) =>
        typeof frame === 'string' || frame instanceof ArrayBuffer
          ? frame
          : (frame.buffer.slice(frame.byteOffset, frame.byteOffset + frame.byteLength) as ArrayBuffer),
      )
      this.#events.emit('reset', { unacknowledged })
      // A reset listener may have closed the client.
      if (this.#state !== 'connecting' || socket !== this.#socket) return
    }
    // Resent first, with their old numbers: anything new must come after them.
    for (const frame of resend) socket.send(frame)
    if (resend.length > 0) this.#armAck()
    // Any frame on the new socket tells the server the new token arrived, so it retires the one this
    // resume used; with nothing to resend, an ack says it at once rather than at the first message.
    else if (welcome.resumed) socket.send(session.ack())
    this.#ready(socket, welcome.resumed)
  }

  /** The server broke the session protocol: a bug, so the client stops instead of guessing. */
  #violated(why: string): void {
    const message = `The server broke the session protocol: ${why} If it is not a durable-websocket server, connect with session: false.`
    this.#events.emit('error', new ClientError('ERR_DWS_PROTOCOL_ERROR', message))
    if (this.#state !== 'closed') this.close(1000, 'Protocol error')
  }

  #deliver(data: unknown): void {
    if (typeof data === 'string') {
      let message: Incoming
      try {
        message = this.#options.serializer.decode(data)
      } catch (cause) {
        const why = 'A text frame from the server could not be decoded; it was dropped.'
        this.#events.emit('error', new ClientError('ERR_DWS_MALFORMED_MESSAGE', why, { cause }))
        return
      }
      this.#events.emit('message', message)
    } else if (data instanceof ArrayBuffer) {
      this.#events.emit('binary', data)
    }
  }

  /** Gives up on a socket that stopped answering or got stuck: its close could take minutes, or never come. */
  #abandon(close: CloseEventInfo): void {
    const socket = this.#socket
    if (socket === undefined) return
    this.#socket = undefined
    try {
      socket.close(4000, close.reason)
    } catch {
      // Already closing: nothing to add.
    }
    this.#lost(close)
  }

  /** A `shouldReconnect` that throws counts as a no; its error still surfaces, as a listener's would. */
  #wantsRetry(close: CloseEventInfo): boolean {
    try {
      return this.#options.shouldReconnect(close)
    } catch (error) {
      queueMicrotask(() => {
        throw error
      })
      return false
    }
  }

  #closed(close: CloseEventInfo): void {
    this.#heartbeat?.stop()
    if (
      isIdleTimeout(close) &&
      this.#heartbeat === undefined &&
      this.#state !== 'closed' &&
      !this.#warnedIdle
    ) {
      // Without pings a quiet client is reaped, reconnects with a new id, and is reaped again.
      this.#warnedIdle = true
      console.warn(IDLE_WITHOUT_HEARTBEAT)
    }
    const lasted = this.#openedAt !== undefined && Date.now() - this.#openedAt >= STABLE_MS
    this.#openedAt = undefined
    if (lasted) this.#step = 0
    const inSession = this.#sessionSeen && this.#offerSession
    if (inSession && close.code === SessionCloseCode.PROTOCOL_ERROR && this.#state !== 'closed') {
      const why =
        'The server closed with 1002: it saw this client break the session protocol, a bug in one of the two.'
      this.#events.emit('error', new ClientError('ERR_DWS_PROTOCOL_ERROR', why))
    }
    if (inSession && close.code === SessionCloseCode.NOT_YOURS) {
      // Someone else's session: never offer its token again; the next connection is a new session.
      this.#session?.disown()
      this.#changed('position')
    }
    const reconnect = this.#options.reconnect
    const retry =
      this.#state !== 'closed' &&
      reconnect !== undefined &&
      this.#attempts < reconnect.maxAttempts &&
      // Another socket holds the session now; coming back would only take it away again.
      !(inSession && close.code === SessionCloseCode.TAKEN_OVER) &&
      this.#wantsRetry(close)
    const socketError = this.#socketError
    this.#socketError = undefined
    if (!retry) {
      if (socketError !== undefined && this.#state !== 'closed') this.#events.emit('error', socketError)
      if (this.#state !== 'closed') this.#forgetSession(endsSession(close.code))
      this.#state = 'closed'
      this.#outbox.clear()
      this.#events.emit('close', { ...close, willReconnect: false })
      return
    }
    this.#state = 'reconnecting'
    this.#attempts += 1
    // A server shedding load says when to come back; the jitter still spreads everyone it told so.
    const hint = close.code === CloseCode.TRY_AGAIN_LATER ? (retryHint(close.reason) ?? 0) : 0
    const delay = hint + backoffDelay(this.#step, reconnect.initialDelay, reconnect.maxDelay)
    this.#step += 1
    this.#events.emit('close', { ...close, willReconnect: true })
    // A close listener may have closed the client for good.
    if (this.#current() !== 'reconnecting') return
    this.#events.emit('reconnecting', { attempt: this.#attempts, delay })
    if (this.#current() !== 'reconnecting') return
    this.#retryTimer = setTimeout(() => this.#open(), delay)
  }

  /** Frames sent in the session that the server has not acknowledged yet. */
  #held(): number {
    return this.#mode === 'plain' ? 0 : (this.#session?.unacknowledged.length ?? 0)
  }

  #loadSession(): Session {
    const { store, storeKey } = this.#options
    if (store === undefined) return new Session()
    const stored = new StoredSession(store, storeKey ?? `durable-websocket:${this.url}`)
    this.#stored = stored
    try {
      const saved = stored.load()
      if (saved === undefined) return new Session()
      this.#outbox.restore(saved.waiting)
      return new Session(saved)
    } catch (cause) {
      // Reported a tick later: the app adds its listeners after connect() returns.
      queueMicrotask(() => this.#storeFailed(cause))
      return new Session()
    }
  }

  /** Marks what the store must write; one write per kind at the end of the current task, however many changes. */
  #changed(what: 'position' | 'messages'): void {
    if (this.#stored === undefined) return
    if (this.#unsaved === undefined) {
      this.#unsaved = { position: false, messages: false }
      queueMicrotask(() => this.#save())
    }
    this.#unsaved[what] = true
  }

  #save(): void {
    const unsaved = this.#unsaved
    const stored = this.#stored
    const session = this.#session
    this.#unsaved = undefined
    if (unsaved === undefined || stored === undefined || session === undefined) return
    try {
      if (unsaved.position) stored.savePosition(session.state())
      if (unsaved.messages) stored.saveMessages(session.unacknowledged, this.#outbox.frames())
    } catch (cause) {
      this.#storeFailed(cause)
    }
  }

  #storeFailed(cause: unknown): void {
    const why = 'The session store failed (full, or not allowed here); a reload may not resume the session.'
    this.#events.emit('error', new ClientError('ERR_DWS_STORE_FAILED', why, { cause }))
  }

  /**
   * The client is done with its session. When the session ended (a close
   * frame from either side) it is forgotten; otherwise the store keeps it as
   * it was, so a reload can still resume it within the server's window.
   */
  #forgetSession(ended: boolean): void {
    this.#stopAck()
    if (ended) {
      this.#unsaved = undefined
      try {
        this.#stored?.remove()
      } catch {
        // Nothing to keep consistent: the next load finds a token the server refuses, and resets.
      }
    } else {
      this.#save()
    }
    this.#stored = undefined
    this.#session = this.#options.session ? new Session() : undefined
  }

  #armAck(): void {
    this.#stopAck()
    this.#ackTimer = setTimeout(() => this.#ackDue(), ACK_AFTER_MS)
  }

  #stopAck(): void {
    if (this.#ackTimer !== undefined) clearTimeout(this.#ackTimer)
    this.#ackTimer = undefined
  }

  /**
   * A quiet second: acknowledge what arrived, and ask for the server's own
   * ack while anything sent is unconfirmed (the server has no timers and
   * answers a client's ack). Repeats while something stays unconfirmed.
   */
  #ackDue(): void {
    this.#ackTimer = undefined
    const session = this.#session
    const socket = this.#socket
    if (this.#mode !== 'session' || session === undefined || socket?.readyState !== OPEN) return
    if (session.receivedSinceAck === 0 && session.unacknowledged.length === 0) return
    socket.send(session.ack())
    if (session.unacknowledged.length > 0) this.#armAck()
  }
}

/**
 * Whether a close the client will not retry leaves it nothing to resume: 1000, and the
 * application codes a server closes with (but 3901: another socket has the session).
 */
function endsSession(code: number): boolean {
  return (
    code === 1000 ||
    (code >= 3000 &&
      code <= 4999 &&
      code !== SessionCloseCode.TAKEN_OVER &&
      code !== SessionCloseCode.SLOW_CONSUMER &&
      code !== SessionCloseCode.TOO_OLD)
  )
}
