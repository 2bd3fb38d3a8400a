import { sizeOf } from '../shared/byteSize.js'
import type { Frame } from '../shared/serializer.js'
import { numbered, type DataMark } from '../shared/dataFrames.js'
import type { PresenceFrame } from '../shared/presenceFrames.js'
import {
  ACK_EVERY,
  encodeClientAck,
  readServerFrame,
  resumeEntry,
  type Welcome,
} from '../shared/sessionProtocol.js'

/** How long after the last data frame in either direction the client acknowledges what is pending. */
export const ACK_AFTER_MS = 1_000

/** A data frame the client wrote, kept until an acknowledgement or a welcome covers its number. */
export interface Numbered {
  readonly seq: number
  readonly frame: Frame
  /** `?` for a request; absent for a message. */
  readonly mark?: string
}

/** The part of a session that outlives a page: what a store keeps between loads. */
export interface SessionState {
  token: string | null
  /** The highest server position received. */
  last: number
  /** The number the next data frame gets. */
  next: number
  /** Written and not yet acknowledged, in order. */
  unacknowledged: Numbered[]
}

/** What a frame from the server turned out to be. */
export type Incoming =
  | { kind: 'data'; seq: number; payload: string | ArrayBuffer; mark?: DataMark }
  | { kind: 'welcome'; welcome: Welcome }
  | { kind: 'ack'; handled: number; last?: number }
  | { kind: 'presence'; presence: PresenceFrame }
  | { kind: 'other' }

/** The server broke the session protocol; the message says how, never what a token was. */
export class ProtocolViolation extends Error {}

/**
 * The client's half of one durable session: its token, its position in
 * the server's log, and the numbered frames the server has not confirmed.
 * It knows the frames and the rules, and nothing of sockets or timers.
 */
export class Session {
  token: string | null = null
  last = 0
  next = 1
  /** The connection id from the latest welcome. */
  id: number | undefined
  unacknowledged: Numbered[] = []
  /** Data frames received since the client last sent an ack. */
  receivedSinceAck = 0
  /** Their size: UTF-16 code units of text, bytes of binary, as the server counts its send window. */
  receivedSizeSinceAck = 0
  /** From the welcome: how many frames, or how much of them, the client takes before it acks. */
  ackEvery = ACK_EVERY
  ackBytes = Infinity
  /** From the latest welcome: the largest message the server takes; unknown before the first. */
  maxMessageBytes: number | undefined
  /** From the latest welcome: how many requests may wait for replies; unknown before the first. */
  maxRequests: number | undefined

  constructor(state?: SessionState) {
    if (state === undefined) return
    this.token = state.token
    this.last = state.last
    this.next = state.next
    this.unacknowledged = state.unacknowledged
  }

  /** Set by {@link disown} until the next welcome: that one starts over, and its `reset` carries what was unacknowledged. */
  #disowned = false

  /**
   * The server refused this session to this client (3904: it belongs to
   * someone else): the next connection offers no resume and starts a new
   * session, as a reset.
   */
  disown(): void {
    this.token = null
    this.#disowned = true
  }

  state(): SessionState {
    return { token: this.token, last: this.last, next: this.next, unacknowledged: this.unacknowledged }
  }

  /**
   * What asks the server to resume this session, offered as a subprotocol
   * beside SESSION_PROTOCOL: the server must know it when it accepts the
   * socket, before any frame. Undefined while the client holds no session.
   */
  resumeOffer(): string | undefined {
    if (this.token === null) return undefined
    return resumeEntry({ last: this.last, token: this.token })
  }

  /** Whether enough arrived since the last ack to send one now rather than on the timer. */
  get ackDue(): boolean {
    return this.receivedSinceAck >= this.ackEvery || this.receivedSizeSinceAck >= this.ackBytes
  }

  ack(): string {
    this.receivedSinceAck = 0
    this.receivedSizeSinceAck = 0
    return encodeClientAck(this.last)
  }

  /** Gives a frame the next number (and a request its `?`) and keeps it until it is acknowledged; returns what goes on the wire. */
  number(frame: Frame, mark = ''): Frame {
    const entry: Numbered = mark === '' ? { seq: this.next, frame } : { seq: this.next, frame, mark }
    this.next += 1
    this.unacknowledged.push(entry)
    return numbered(entry.seq, entry.frame, mark)
  }

  /**
   * Takes the server's position advance: nothing for this session up to
   * `last` is still to come, so a resume may start there. Returns whether the position moved.
   */
  advance(last: number): boolean {
    if (last <= this.last) return false
    this.last = last
    return true
  }

  /** Forgets every frame the server says it handled. */
  acknowledge(handled: number): void {
    if (handled >= this.next) {
      throw new ProtocolViolation(
        `the server acknowledged message ${String(handled)}, but the client has numbered only ${String(this.next - 1)}.`,
      )
    }
    let drop = 0
    while (drop < this.unacknowledged.length && (this.unacknowledged[drop]?.seq ?? Infinity) <= handled)
      drop += 1
    if (drop > 0) this.unacknowledged = this.unacknowledged.slice(drop)
  }

  /**
   * Takes the welcome, the first frame on a session socket. On a resume it returns
   * the frames to write again, in order; when the server started a new
   * session although the client asked for an old one, it returns the frames
   * that old session never confirmed, as `reset`, and starts over.
   */
  welcome(welcome: Welcome): { resend: Frame[]; reset: Frame[] | undefined } {
    const askedToResume = this.token !== null || this.#disowned
    this.#disowned = false
    if (welcome.resumed && !askedToResume) {
      throw new ProtocolViolation('the server resumed a session the client did not ask for.')
    }
    if (!welcome.resumed && welcome.handled !== 0) {
      throw new ProtocolViolation('a welcome to a new session must say handled: 0.')
    }
    this.token = welcome.token
    this.id = welcome.id
    this.receivedSinceAck = 0
    this.receivedSizeSinceAck = 0
    this.ackEvery = welcome.ackEvery ?? ACK_EVERY
    this.ackBytes = welcome.ackBytes ?? Infinity
    this.maxMessageBytes = welcome.maxMessageBytes
    this.maxRequests = welcome.maxRequests
    this.last = welcome.last
    if (!welcome.resumed) {
      // A lost request is its promise's business (rejected as closed), not a message to hand back.
      const lost = this.unacknowledged.filter((entry) => entry.mark === undefined).map((entry) => entry.frame)
      this.unacknowledged = []
      this.next = 1
      return { resend: [], reset: askedToResume ? lost : undefined }
    }
    this.acknowledge(welcome.handled)
    return {
      resend: this.unacknowledged.map((entry) => numbered(entry.seq, entry.frame, entry.mark)),
      reset: undefined,
    }
  }

  /** Reads one frame from the server; a data frame moves `last`. */
  receive(data: string | ArrayBuffer): Incoming {
    const frame = readServerFrame(data)
    switch (frame.kind) {
      case 'invalid':
        throw new ProtocolViolation(`${frame.problem}.`)
      case 'data':
        return this.#data(frame.seq, frame.payload, frame.mark)
      default:
        return frame
    }
  }

  #data(seq: number, payload: string | ArrayBuffer, mark: DataMark | undefined): Incoming {
    if (!Number.isSafeInteger(seq) || seq <= this.last) {
      throw new ProtocolViolation(
        `a data frame carried position ${String(seq)}, not above the last one received (${String(this.last)}).`,
      )
    }
    this.last = seq
    this.receivedSinceAck += 1
    this.receivedSizeSinceAck += sizeOf(payload)
    return mark === undefined ? { kind: 'data', seq, payload } : { kind: 'data', seq, payload, mark }
  }
}
