import type { Outgoing } from '../core/types.js'
import { toFrame } from '../core/outgoing.js'
import type { Serializer } from '../shared/serializer.js'
import { decodeText } from './decodeText.js'

/** What the client saw when its socket closed. */
export interface SocketClose {
  code: number
  reason: string
  wasClean: boolean
}

export interface WaitOptions {
  /** How long to wait, in ms. Default: the socket's `timeout` (2000 unless `openSocket` was told otherwise). */
  timeout?: number | undefined
}

type Frame = string | ArrayBuffer

/**
 * The client end of one socket opened by `openSocket`. Frames are queued as
 * they arrive, so a test may send first and read later without losing any;
 * every wait fails after a timeout instead of hanging the test.
 */
export class TestSocket<Message = unknown> {
  /** The underlying client-side `WebSocket`, for what this class does not wrap. */
  readonly socket: WebSocket
  readonly #serializer: Serializer<Message> | undefined
  readonly #timeout: number
  readonly #inbox: Frame[] = []
  readonly #wakers = new Set<() => void>()
  #closed: SocketClose | undefined

  constructor(socket: WebSocket, serializer: Serializer<Message> | undefined, timeout: number) {
    this.socket = socket
    this.#serializer = serializer
    this.#timeout = timeout
    socket.binaryType = 'arraybuffer'
    socket.addEventListener('message', (event) => {
      this.#inbox.push(event.data as Frame)
      this.#wake()
    })
    socket.addEventListener('close', (event) => {
      this.#closed = { code: event.code, reason: event.reason, wasClean: event.wasClean }
      this.#wake()
    })
    // workerd may report "Network connection lost" after a close; the close event already says what happened.
    socket.addEventListener('error', () => undefined)
    socket.accept()
  }

  /** True until a close event has arrived. */
  get isOpen(): boolean {
    return this.#closed === undefined && this.socket.readyState === WebSocket.OPEN
  }

  /** Encodes like the server's `conn.send`: through the serializer, bytes untouched. */
  send(message: Outgoing<Message>): void {
    this.socket.send(toFrame(message, this.#serializer))
  }

  /** Sends one frame as it is, e.g. text the server's serializer cannot decode. */
  sendFrame(frame: string | ArrayBuffer | ArrayBufferView): void {
    this.socket.send(frame)
  }

  /**
   * The next text frame, decoded with the serializer (a string without one).
   * Fails, leaving the frame queued, if it is binary: read that with `nextFrame()`.
   */
  nextMessage<T extends Message = Message>(options: WaitOptions = {}): Promise<T> {
    return this.#until('a message', options, () => {
      const frame = this.#inbox[0]
      if (frame === undefined) {
        this.#failIfClosed('a message')
        return undefined
      }
      if (typeof frame !== 'string') {
        throw new Error(
          `the next frame is binary (${String(frame.byteLength)} bytes), not a message; read it with nextFrame()`,
        )
      }
      this.#inbox.shift()
      return decodeText(this.#serializer, frame) as T
    })
  }

  /** The next frame as it came: a string, or an `ArrayBuffer` for a binary frame. */
  nextFrame(options: WaitOptions = {}): Promise<Frame> {
    return this.#until('a frame', options, () => this.#inbox.shift() ?? this.#failIfClosed('a frame'))
  }

  /** The close event, whoever closed; frames still queued stay readable. */
  nextClose(options: WaitOptions = {}): Promise<SocketClose> {
    return this.#until('the socket to close', options, () => this.#closed)
  }

  /**
   * Starts the closing handshake and resolves when the server has answered it.
   * The server's `close` handler may still be running then; poll for its effects.
   */
  close(code = 1000, reason = '', options: WaitOptions = {}): Promise<SocketClose> {
    if (this.isOpen) this.socket.close(code, reason)
    return this.nextClose(options)
  }

  #failIfClosed(what: string): undefined {
    const closed = this.#closed
    if (closed === undefined) return undefined
    throw new Error(
      `the socket closed (${String(closed.code)}${closed.reason === '' ? '' : ` ${closed.reason}`}) before ${what} came`,
    )
  }

  /** Resolves with the first value `take` returns that is not undefined; `take` may throw to fail. */
  #until<T>(what: string, options: WaitOptions, take: () => T | undefined): Promise<T> {
    const timeout = options.timeout ?? this.#timeout
    return new Promise<T>((resolve, reject) => {
      let settled = false
      const settle = (outcome: () => void): void => {
        settled = true
        this.#wakers.delete(check)
        clearTimeout(timer)
        outcome()
      }
      const check = (): void => {
        if (settled) return
        try {
          const value = take()
          if (value !== undefined) settle(() => resolve(value))
        } catch (error) {
          settle(() => reject(error))
        }
      }
      const timer = setTimeout(() => {
        settle(() => reject(new Error(`timed out after ${String(timeout)} ms waiting for ${what}`)))
      }, timeout)
      this.#wakers.add(check)
      check()
    })
  }

  #wake(): void {
    for (const check of [...this.#wakers]) check()
  }
}
