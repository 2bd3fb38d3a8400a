import { DurableWebSocketError } from '../core/errors.js'
import { toFrame } from '../core/outgoing.js'
import type { Outgoing } from '../core/types.js'
import type { Frame, Serializer } from '../shared/serializer.js'
import { numbered, type DataFrame } from '../shared/dataFrames.js'
import {
  encodeClientAck,
  endsSession,
  readServerFrame,
  type ResumePoint,
  type Welcome,
} from '../shared/sessionProtocol.js'
import { decodeText } from './decodeText.js'
import type { SocketClose, TestSocket, WaitOptions } from './TestSocket.js'

/**
 * How a session reaches its server again: one upgrade offering the session
 * subprotocol (and the resume entry, when given), its welcome read. Made by
 * `openSession`, kept by every socket of the session.
 */
export interface SessionLink<Message> {
  readonly serializer: Serializer<Message> | undefined
  readonly timeout: number
  connect(resume: ResumePoint | undefined): Promise<{ socket: TestSocket<string>; welcome: Welcome }>
}

/** A message sent and not yet acknowledged: as the test gave it, and as it went out before its number. */
interface Kept<Message> {
  readonly message: Outgoing<Message>
  readonly frame: Frame
}

/** What a resume carries over from the socket before. */
interface Carried<Message> {
  readonly nextC: number
  readonly unacked: ReadonlyMap<number, Kept<Message>>
}

/**
 * The client end of one socket of a durable session, opened by
 * `openSession` or by `resume()`. It numbers what it sends and keeps it
 * until the server acknowledges it, reads the server's numbered frames and
 * remembers the last one, and takes acks in silently. It sends no ack on its
 * own: call {@link ack} where the test wants one.
 */
export class TestSession<Message = unknown> {
  /** The socket under the session, its frames as they came (numbers and acks included). */
  readonly socket: TestSocket<string>
  /** The server's first frame on this socket, as read. */
  readonly welcome: Welcome
  /**
   * After a resume the server answered with a new session (a reset): the
   * messages the old session sent that the server never acknowledged. It may
   * or may not have handled them; they are not sent again. Empty otherwise.
   */
  readonly unconfirmed: readonly Outgoing<Message>[]
  readonly #link: SessionLink<Message>
  readonly #unacked = new Map<number, Kept<Message>>()
  #nextC = 1
  #last: number
  #token: string
  /** A data frame read but not taken, e.g. a binary one `nextMessage` refused. */
  #pending: DataFrame | undefined

  /** Made by `openSession` and `resume()`; a test does not call it. */
  constructor(
    link: SessionLink<Message>,
    socket: TestSocket<string>,
    welcome: Welcome,
    carried?: Carried<Message>,
  ) {
    this.#link = link
    this.socket = socket
    this.welcome = welcome
    this.#last = welcome.last
    this.#token = welcome.token
    if (carried === undefined || !welcome.resumed) {
      this.unconfirmed =
        carried === undefined ? [] : [...carried.unacked.values()].map((kept) => kept.message)
      return
    }
    this.unconfirmed = []
    this.#nextC = carried.nextC
    for (const [c, kept] of carried.unacked) {
      if (c <= welcome.handled) continue
      this.#unacked.set(c, kept)
      socket.sendFrame(numbered(c, kept.frame))
    }
    // A first frame confirms the new token to the server (docs/protocol.md §6).
    if (this.#unacked.size === 0) this.ack()
  }

  /** The session's connection id: `conn.id` on the server, the same on every socket of the session. */
  get id(): number {
    return this.welcome.id
  }

  /** Whether this socket continues the session a resume asked for; false for a new session or a reset. */
  get resumed(): boolean {
    return this.welcome.resumed
  }

  /** The highest position received: what `resume()` offers, and what `ack()` sends. */
  get last(): number {
    return this.#last
  }

  /** The numbers of the messages sent that the server has not acknowledged yet. */
  get unacked(): number[] {
    return [...this.#unacked.keys()]
  }

  /**
   * Encodes like `TestSocket.send`, numbers the frame and keeps it until an
   * ack or a resume's welcome covers it. Returns its number.
   */
  send(message: Outgoing<Message>): number {
    const frame = toFrame(message, this.#link.serializer)
    const c = this.#nextC++
    this.#unacked.set(c, { message, frame })
    this.socket.sendFrame(numbered(c, frame))
    return c
  }

  /** Tells the server the highest position received; it answers with its own ack when it handled more. */
  ack(): void {
    this.socket.sendFrame(encodeClientAck(this.#last))
  }

  /**
   * The payload of the next numbered text frame, decoded with the
   * serializer. Fails, leaving the frame unread, if it is binary: read that
   * with `nextFrame()`.
   */
  async nextMessage<T extends Message = Message>(options: WaitOptions = {}): Promise<T> {
    const frame = await this.#nextData('a message', options)
    if (typeof frame.payload !== 'string') {
      throw new Error(
        `the next data frame (${String(frame.seq)}) is binary (${String(frame.payload.byteLength)} bytes), not a message; read it with nextFrame()`,
      )
    }
    this.#pending = undefined
    return decodeText(this.#link.serializer, frame.payload) as T
  }

  /** The payload of the next numbered frame, undecoded: a string, or an `ArrayBuffer`. */
  async nextFrame(options: WaitOptions = {}): Promise<string | ArrayBuffer> {
    const frame = await this.#nextData('a frame', options)
    this.#pending = undefined
    return frame.payload
  }

  /**
   * Closes this socket without ending the session, as a cut or a page going
   * away would: any code but 1000 suspends it on the server. Frames that
   * arrived and were not read are forgotten; the server replays them after
   * `resume()`. Resolves once the server answered the close.
   */
  async drop(code = 4000, reason = '', options: WaitOptions = {}): Promise<SocketClose> {
    if (endsSession(code)) {
      throw new DurableWebSocketError(
        'ERR_DWS_INVALID_CLOSE',
        `drop(${String(code)}) would end the session, not drop it: drop with a code from 3000 to 4999 (the default is 4000), or call close() to end it.`,
      )
    }
    return this.socket.close(code, reason, options)
  }

  /**
   * Opens a new socket offering this session's token and position. On a
   * resume it sends again, with their numbers, the messages the welcome's
   * `handled` does not cover; on a reset (`resumed` false) it hands them to
   * the new session's `unconfirmed` and numbers from 1 again.
   */
  async resume(): Promise<TestSession<Message>> {
    const carried: Carried<Message> = { nextC: this.#nextC, unacked: new Map(this.#unacked) }
    const { socket, welcome } = await this.#link.connect({ last: this.#last, token: this.#token })
    if (welcome.resumed && welcome.handled >= carried.nextC) {
      await socket.close()
      throw new Error(
        `the server's welcome says it handled message ${String(welcome.handled)}, but this session sent only ${String(carried.nextC - 1)}`,
      )
    }
    return new TestSession(this.#link, socket, welcome, carried)
  }

  /**
   * Ends the session for good with 1000 (the server runs its `close`
   * handler), and resolves once the server answered. A `resume()` after it
   * gets a new session.
   */
  close(code = 1000, reason = '', options: WaitOptions = {}): Promise<SocketClose> {
    return this.socket.close(code, reason, options)
  }

  /** The close event, whoever closed; as `TestSocket.nextClose`. */
  nextClose(options: WaitOptions = {}): Promise<SocketClose> {
    return this.socket.nextClose(options)
  }

  /** The next data frame, taking in the acks and the frames of later versions on the way. */
  async #nextData(what: string, options: WaitOptions): Promise<DataFrame> {
    if (this.#pending !== undefined) return this.#pending
    const timeout = options.timeout ?? this.#link.timeout
    const deadline = Date.now() + timeout
    for (;;) {
      let raw: string | ArrayBuffer
      try {
        raw = await this.socket.nextFrame({ timeout: Math.max(1, deadline - Date.now()) })
      } catch (error) {
        if (!this.socket.isOpen) throw error
        throw new Error(`timed out after ${String(timeout)} ms waiting for ${what}`, { cause: error })
      }
      const frame = this.#take(raw)
      if (frame !== undefined) {
        this.#pending = frame
        return frame
      }
    }
  }

  #take(raw: string | ArrayBuffer): DataFrame | undefined {
    const frame = readServerFrame(raw)
    switch (frame.kind) {
      case 'invalid':
        throw new Error(`the server broke the session protocol: ${frame.problem}`)
      case 'welcome':
        throw new Error(`the server broke the session protocol: a second welcome on one socket`)
      case 'ack':
        // A position advance: nothing for this session up to `last` is still to come.
        if (frame.last !== undefined) this.#last = Math.max(this.#last, frame.last)
        for (const c of this.#unacked.keys()) if (c <= frame.handled) this.#unacked.delete(c)
        return undefined
      case 'presence':
      case 'other':
        return undefined
      case 'data':
        if (frame.seq <= this.#last) {
          throw new Error(
            `the server broke the session protocol: data frame ${String(frame.seq)} is not above the last one received, ${String(this.#last)}`,
          )
        }
        this.#last = frame.seq
        return frame
    }
  }
}
