import { ClientError, describe } from './ClientError.js'
import { backoffDelay } from './backoff.js'
import { IDLE_WITHOUT_HEARTBEAT, isIdleTimeout, validateClose, type CloseEventInfo } from './closeCodes.js'
import { Emitter } from './Emitter.js'
import { Heartbeat } from './Heartbeat.js'
import { resolveOptions, type ClientOptions, type ResolvedOptions } from './options.js'
import { Outbox, type Frame } from './Outbox.js'
import { nextOffer } from './protocols.js'
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

  /** Checks the options (throwing `ERR_DWS_INVALID_OPTIONS`) and starts connecting; the same as `connect()`. */
  constructor(target: string | URL | ConnectTarget, options?: ClientOptions<Incoming, Outgoing>) {
    this.url = resolveUrl(target)
    this.#options = resolveOptions(options)
    this.#outbox = new Outbox(this.#options.maxQueued)
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
   * The subprotocol the server picked for the connection that opened last,
   * as `WebSocket.protocol` has it: '' before the first open, and when the
   * client offered none. Already set when the `open` listeners run.
   */
  get protocol(): string {
    return this.#protocol
  }

  /** Messages waiting for a connection. */
  get queued(): number {
    return this.#outbox.size
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
    if (this.#state === 'open' && socket?.readyState === OPEN) {
      socket.send(frame)
      return true
    }
    return this.#outbox.push(frame)
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
      offer = Promise.reject(error as ClientError)
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

  #dial(protocols: readonly string[]): void {
    let socket: Socket
    try {
      // Without an offer the second argument is left out, as a bare `new WebSocket(url)` would.
      socket = (
        protocols.length === 0
          ? new this.#options.WebSocket(this.url)
          : new this.#options.WebSocket(this.url, [...protocols])
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
      this.#events.emit(
        'error',
        new ClientError('ERR_DWS_SOCKET_ERROR', `The WebSocket to ${this.url} failed.`),
      )
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
      this.#socket = undefined
      this.#closed({ code, reason, wasClean })
    }
  }

  #opened(socket: Socket): void {
    if (this.#state === 'closed') return
    this.#state = 'open'
    this.#attempts = 0
    this.#openedAt = Date.now()
    this.#protocol = socket.protocol ?? ''
    this.#heartbeat?.start()
    const reconnected = this.#everOpened
    this.#everOpened = true
    this.#events.emit('open', { reconnected })
    // Listeners may have sent (e.g. to join a room again) or closed; the backlog follows what they sent.
    while (this.#state === 'open' && socket === this.#socket && socket.readyState === OPEN) {
      const frame = this.#outbox.shift()
      if (frame === undefined) break
      socket.send(frame)
    }
  }

  #received(data: unknown): void {
    this.#heartbeat?.received()
    if (typeof data === 'string') {
      if (data === this.#options.heartbeat?.response) return
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
    } else if (ArrayBuffer.isView(data)) {
      this.#events.emit(
        'binary',
        data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength) as ArrayBuffer,
      )
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
    this.#closed(close)
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
    const reconnect = this.#options.reconnect
    const retry =
      this.#state !== 'closed' &&
      reconnect !== undefined &&
      this.#attempts < reconnect.maxAttempts &&
      this.#wantsRetry(close)
    if (!retry || reconnect === undefined) {
      this.#state = 'closed'
      this.#outbox.clear()
      this.#events.emit('close', { ...close, willReconnect: false })
      return
    }
    this.#state = 'reconnecting'
    this.#attempts += 1
    const delay = backoffDelay(this.#step, reconnect.initialDelay, reconnect.maxDelay)
    this.#step += 1
    this.#events.emit('close', { ...close, willReconnect: true })
    // A close listener may have closed the client for good.
    if (this.#state !== 'reconnecting') return
    this.#events.emit('reconnecting', { attempt: this.#attempts, delay })
    if (this.#state !== 'reconnecting') return
    this.#retryTimer = setTimeout(() => this.#open(), delay)
  }
}
