import { CloseCode } from '../shared/closeCodes.js'
import { describe } from '../shared/describe.js'
import type { Frame } from '../shared/serializer.js'
import type { PresenceMember } from '../shared/presenceFrames.js'
import { isSessionProtocolName, retryHint } from '../shared/sessionProtocol.js'
import { ClientError } from './ClientError.js'
import { Retries } from './backoff.js'
import { IDLE_WITHOUT_HEARTBEAT, isIdleTimeout, validateClose, type CloseEventInfo } from './closeCodes.js'
import { Emitter } from './Emitter.js'
import { EVENT_NAMES, deliver, type ClientEventName, type ClientEvents } from './events.js'
import { Heartbeat } from './Heartbeat.js'
import { resolveOptions, type ClientOptions, type ResolvedOptions } from './options.js'
import { Outbox, type Queued } from './Outbox.js'
import { Presence } from './Presence.js'
import { nextOffer } from './protocols.js'
import {
  NO_SESSION,
  QueuedRequest,
  RequestError,
  Requests,
  decodeReply,
  requestTimeout,
  type RequestOptions,
} from './Requests.js'
import { SessionLink, type Welcomed } from './SessionLink.js'
import { CONNECTING, OPEN, copy, type Socket } from './socket.js'
import { resolveUrl, type ConnectTarget } from './target.js'

/**
 * - `connecting`: a socket is opening (the first one, or a retry).
 * - `open`: connected; `send` writes to the socket.
 * - `reconnecting`: waiting out the backoff delay before the next attempt.
 * - `closed`: for good, after `close()` or when retrying stopped; `send` returns false.
 */
export type ClientState = 'connecting' | 'open' | 'reconnecting' | 'closed'

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
  readonly #requests = new Requests()
  readonly #heartbeat: Heartbeat | undefined
  readonly #presence = new Presence()
  #warnedIdle = false
  #state: ClientState = 'connecting'
  #socket: Socket | undefined
  readonly #retries: Retries
  #everOpened = false
  #protocol = ''
  /**
   * The session, which outlives the sockets; none after `session: false`, or
   * once a server showed that it does not speak sessions.
   */
  #link: SessionLink | undefined
  /** The current socket failed; reported only if the close that follows gets no retry. */
  #socketError: ClientError | undefined
  /** The current socket's attempt: what the app offered, whether the session was offered too, whether it opened. */
  #offer: readonly string[] = []
  #offered = false
  #socketOpened = false

  /** Checks the options (throwing `ERR_DWS_INVALID_OPTIONS`) and starts connecting; the same as `connect()`. */
  constructor(target: string | URL | ConnectTarget, options?: ClientOptions<Incoming, Outgoing>) {
    this.url = resolveUrl(target)
    this.#options = resolveOptions(options)
    this.#outbox = new Outbox(this.#options.maxQueued)
    this.#retries = new Retries(this.#options.reconnect, this.#options.shouldReconnect)
    if (this.#options.session) {
      const { store, storeKey } = this.#options
      this.#link = new SessionLink({
        waiting: () => this.#outbox.frames(),
        error: (error) => this.#events.emit('error', error),
      })
      this.#outbox.restore(this.#link.load(store, storeKey ?? `durable-websocket:${this.url}`))
    }
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
    return this.#outbox.size + (this.#link?.held ?? 0)
  }

  /**
   * The server's id for this client's session (`conn.id` there), from the
   * latest welcome: it stays the same across resumed connections and
   * changes on a reset. Undefined before the first welcome, in plain mode, and once the session ended.
   */
  get id(): number | undefined {
    return this.#link?.id
  }

  /**
   * Who is in the room, when the server's module has `presence` on: each
   * member's key, metadata and number of connections, as the server last
   * said. Empty before the first list, and always in plain mode; kept as it
   * was while the client reconnects, and replaced by the list after the next welcome.
   */
  get presence(): PresenceMember[] {
    return this.#presence.list
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
    const link = this.#link
    link?.checkSize(frame)
    if (this.#state === 'open' && socket?.readyState === OPEN) {
      if (link?.mode === 'session') return link.send(frame, this.#options.maxQueued)
      socket.send(frame)
      return true
    }
    if (!this.#outbox.push(frame, link?.held ?? 0)) return false
    link?.queueChanged()
    return true
  }

  /**
   * Sends a request and resolves with the server's reply: what its `request`
   * handler returned, decoded by the serializer (bytes as an ArrayBuffer).
   * Over a durable session it survives drops: sent again after a resume, run
   * once by the server, answered once. Rejects with a {@link RequestError}:
   * `timeout`, `closed` (the client closed or its session was reset first),
   * `refused` (never run), `failed`, or the server's own code.
   */
  request(
    message: Outgoing | ArrayBuffer | ArrayBufferView,
    options: RequestOptions = {},
  ): Promise<Incoming> {
    const timeout = requestTimeout(options)
    if (this.#state === 'closed') return Promise.reject(new RequestError('closed', 'The client is closed.'))
    const link = this.#link
    if (link === undefined) return Promise.reject(NO_SESSION)
    const frame = this.#encode(message)
    link.checkSize(frame)
    const socket = this.#socket
    const now = this.#state === 'open' && socket?.readyState === OPEN && link.mode === 'session'
    const reply = this.#requests.send(frame, timeout, {
      max: link.maxRequests,
      write: now ? () => link.request(frame, this.#options.maxQueued) : undefined,
      queue: (queued) => {
        if (!this.#outbox.push(queued, link.held)) return false
        link.queueChanged()
        return true
      },
    })
    return reply.then((payload) => decodeReply(payload, this.#options.serializer))
  }

  /**
   * Closes for good: no more retries, and queued messages are dropped. Takes
   * 1000 (the default) or an application code from 3000 to 4999.
   */
  close(code = 1000, reason = ''): void {
    validateClose(code, reason)
    if (this.#state === 'closed') return
    this.#state = 'closed'
    this.#retries.cancel()
    this.#heartbeat?.stop()
    this.#outbox.clear()
    this.#requests.fail(new RequestError('closed', 'The client closed before the reply came.'), 'all')
    // The close frame ends the session on the server; a reload must not try to resume it.
    this.#link?.forget(true)
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

  #dial(protocols: readonly string[], offerSession = this.#link !== undefined): void {
    if (offerSession && protocols.some(isSessionProtocolName)) {
      const why =
        'options.protocols() named a dws.session.* or dws.resume.* subprotocol, which the client offers itself; leave it out.'
      this.#failed(new ClientError('ERR_DWS_INVALID_OPTIONS', why))
      return
    }
    this.#offer = protocols
    this.#offered = offerSession
    this.#socketOpened = false
    const offer = (offerSession ? this.#link?.offer(protocols) : undefined) ?? protocols
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
      if (socket === this.#socket) this.#received(socket, event.data)
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
    return this.#offered && !this.#socketOpened && this.#link?.seen !== true && this.#state === 'connecting'
  }

  /** The current socket is gone, by its close event or because the client gave up on it. */
  #lost(close: CloseEventInfo): void {
    this.#socket = undefined
    this.#link?.detach()
    const fallBack = this.#fallsBack()
    if (fallBack) this.#dial(this.#offer, false)
    else this.#closed(close)
  }

  #opened(socket: Socket): void {
    if (this.#state === 'closed') return
    this.#socketOpened = true
    this.#protocol = socket.protocol ?? ''
    this.#heartbeat?.start()
    if (!this.#offered && this.#link !== undefined) {
      // This was the attempt without the session offer, and it opened: the server does not speak it.
      this.#link.forget(true)
      this.#link = undefined
      this.#requests.fail(new RequestError('refused', 'The server does not speak durable sessions.'), 'all')
    }
    // The server speaks first; no data frame may go before its welcome, so the client stays `connecting`.
    if (this.#offered && this.#link?.opened(socket) === true) return
    this.#ready(socket, false)
  }

  #ready(socket: Socket, resumed: boolean): void {
    this.#state = 'open'
    this.#retries.opened()
    const reconnected = this.#everOpened
    this.#everOpened = true
    this.#events.emit('open', { reconnected, resumed })
    // Listeners may have sent (e.g. to join a room again) or closed; the backlog follows what they sent.
    const link = this.#link?.mode === 'session' ? this.#link : undefined
    let sent = false
    while (this.#current() === 'open' && socket === this.#socket && socket.readyState === OPEN) {
      const queued = this.#outbox.shift()
      if (queued === undefined) break
      if (queued instanceof QueuedRequest) {
        if (link === undefined) continue
        this.#requests.sent(queued.pending, link.next)
        socket.send(link.number(queued.frame, '?'))
      } else {
        socket.send(link === undefined ? queued : link.number(queued))
      }
      sent = true
    }
    if (sent) link?.numbered()
  }

  #received(socket: Socket, data: unknown): void {
    this.#heartbeat?.received()
    if (data === this.#options.heartbeat?.response) return
    const bytes = ArrayBuffer.isView(data) ? copy(data) : data
    const link = this.#link
    if (link === undefined || link.mode === 'plain') {
      deliver(this.#events, this.#options.serializer, bytes)
      return
    }
    if (typeof bytes !== 'string' && !(bytes instanceof ArrayBuffer)) return
    const heard = link.receive(bytes)
    if (heard.kind === 'batch') {
      // Each frame as if it came alone, until one closes the client (a browser drops what comes after close()).
      for (const frame of heard.frames) if (this.#state !== 'closed') this.#received(socket, frame)
    } else if (heard.kind === 'broken') this.#violated(heard.why)
    else if (heard.kind === 'welcome') this.#welcomed(socket, link, heard)
    else if (heard.kind === 'data') deliver(this.#events, this.#options.serializer, heard.payload)
    else if (heard.kind === 'presence') {
      const change = this.#presence.apply(heard.presence)
      if (change !== undefined) this.#events.emit('presence', change)
    } else if (heard.kind === 'reply') this.#requests.answered(heard.to, heard.ok, heard.payload)
  }

  #welcomed(socket: Socket, link: SessionLink, { welcome, resend, lost }: Welcomed): void {
    // The 101 names the session protocol; what the server picked among the app's own offers comes here.
    this.#protocol = welcome.protocol ?? ''
    if (lost !== undefined) {
      const reset = new RequestError(
        'closed',
        'The session was reset before the reply came; the request may or may not have run.',
      )
      this.#requests.fail(reset, 'sent')
      const unacknowledged = [...lost, ...this.#outbox.clear()].flatMap((queued: Queued) => {
        if (queued instanceof QueuedRequest) {
          this.#requests.refuse(queued.pending, reset)
          return []
        }
        return [typeof queued === 'string' || queued instanceof ArrayBuffer ? queued : copy(queued)]
      })
      this.#events.emit('reset', { unacknowledged })
      // A reset listener may have closed the client.
      if (this.#state !== 'connecting' || socket !== this.#socket) return
    }
    link.resend(resend, welcome.resumed)
    this.#ready(socket, welcome.resumed)
  }

  /** The server broke the session protocol: a bug, so the client stops instead of guessing. */
  #violated(why: string): void {
    const message = `The server broke the session protocol: ${why} If it is not a durable-websocket server, connect with session: false.`
    this.#events.emit('error', new ClientError('ERR_DWS_PROTOCOL_ERROR', message))
    if (this.#state !== 'closed') this.close(1000, 'Protocol error')
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
    this.#retries.closed()
    const link = this.#link
    const verdict = link?.closed(close.code)
    if (verdict === 'broken' && this.#state !== 'closed') {
      const why =
        'The server closed with 1002: it saw this client break the session protocol, a bug in one of the two.'
      this.#events.emit('error', new ClientError('ERR_DWS_PROTOCOL_ERROR', why))
    }
    const retry =
      this.#state !== 'closed' &&
      this.#retries.allowed &&
      // Another socket holds the session now; coming back would only take it away again.
      verdict !== 'taken' &&
      this.#retries.wanted(close)
    const socketError = this.#socketError
    this.#socketError = undefined
    if (!retry) {
      if (socketError !== undefined && this.#state !== 'closed') this.#events.emit('error', socketError)
      if (this.#state !== 'closed') link?.dropped(close.code)
      this.#state = 'closed'
      this.#outbox.clear()
      this.#requests.fail(
        new RequestError('closed', 'The connection closed for good before the reply came.'),
        'all',
      )
      this.#events.emit('close', { ...close, willReconnect: false })
      return
    }
    this.#state = 'reconnecting'
    // A server shedding load says when to come back; the jitter still spreads everyone it told so.
    const hint = close.code === CloseCode.TRY_AGAIN_LATER ? (retryHint(close.reason) ?? 0) : 0
    const { attempt, delay } = this.#retries.next(hint)
    this.#events.emit('close', { ...close, willReconnect: true })
    // A close listener may have closed the client for good.
    if (this.#current() !== 'reconnecting') return
    this.#events.emit('reconnecting', { attempt, delay })
    if (this.#current() !== 'reconnecting') return
    this.#retries.schedule(() => this.#open(), delay)
  }
}
