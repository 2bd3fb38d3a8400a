import type { Frame } from '../shared/serializer.js'

/** The subprotocol a session client offers first; a 101 that names it switches the socket to sessions. */
export const SESSION_PROTOCOL = 'dws.session.v1'

/** Offered after SESSION_PROTOCOL by a client that holds a session: `dws.resume.<last>.<token>`. */
export const RESUME_PREFIX = 'dws.resume.'

/** base64url without padding: it must fit in a subprotocol name, and a dot would end it. */
const TOKEN = /^[A-Za-z0-9_-]+$/

export function isToken(value: unknown): value is string {
  return typeof value === 'string' && TOKEN.test(value)
}

/**
 * Data frames in a row the client takes before it acknowledges them without
 * waiting for the timer, when the welcome does not say (`ackEvery`).
 */
export const ACK_EVERY = 32

/** How long after the last data frame in either direction the client acknowledges what is pending. */
export const ACK_AFTER_MS = 1_000

/** A data frame the client wrote, kept until an acknowledgement or a welcome covers its number. */
export interface Numbered {
  readonly seq: number
  readonly frame: Frame
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

export interface Welcome {
  id: number
  token: string
  resumed: boolean
  handled: number
  /** The position the client holds from now on: its own on a resume, the log's head for a new session. */
  last: number
  /** The subprotocol the server's `protocol` option picked among the app's own offers, if any. */
  protocol?: string
  /** Acknowledge after this many data frames (ACK_EVERY when the server does not say). */
  ackEvery?: number
  /** … or after this many bytes of data frames, whichever comes first. */
  ackBytes?: number
}

/** What a frame from the server turned out to be. */
export type Incoming =
  | { kind: 'data'; seq: number; payload: string | ArrayBuffer }
  | { kind: 'welcome'; welcome: Welcome }
  | { kind: 'ack'; handled: number }
  | { kind: 'other' }

/** The server broke the session protocol; the message says how, never what a token was. */
export class ProtocolViolation extends Error {}

const ascii = new TextEncoder()

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

  constructor(state?: SessionState) {
    if (state === undefined) return
    this.token = state.token
    this.last = state.last
    this.next = state.next
    this.unacknowledged = state.unacknowledged
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
    return `${RESUME_PREFIX}${String(this.last)}.${this.token}`
  }

  /** Whether enough arrived since the last ack to send one now rather than on the timer. */
  get ackDue(): boolean {
    return this.receivedSinceAck >= this.ackEvery || this.receivedSizeSinceAck >= this.ackBytes
  }

  ack(): string {
    this.receivedSinceAck = 0
    this.receivedSizeSinceAck = 0
    return JSON.stringify({ t: 'ack', last: this.last })
  }

  /** Gives a frame the next number and keeps it until it is acknowledged; returns what goes on the wire. */
  number(frame: Frame): Frame {
    const entry = { seq: this.next, frame }
    this.next += 1
    this.unacknowledged.push(entry)
    return wire(entry)
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
    const askedToResume = this.token !== null
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
    this.last = welcome.last
    if (!welcome.resumed) {
      const lost = this.unacknowledged.map((entry) => entry.frame)
      this.unacknowledged = []
      this.next = 1
      return { resend: [], reset: askedToResume ? lost : undefined }
    }
    this.acknowledge(welcome.handled)
    return { resend: this.unacknowledged.map(wire), reset: undefined }
  }

  /** Reads one frame from the server; a data frame moves `last`. */
  receive(data: string | ArrayBuffer): Incoming {
    if (typeof data === 'string') {
      if (data.startsWith('{')) return control(data)
      const space = digitsBefore((index) => data.charCodeAt(index))
      return this.#data(Number(data.slice(0, space)), data.slice(space + 1))
    }
    const bytes = new Uint8Array(data)
    const space = digitsBefore((index) => bytes[index] ?? 0)
    const seq = Number(String.fromCharCode(...bytes.subarray(0, space)))
    return this.#data(seq, data.slice(space + 1))
  }

  #data(seq: number, payload: string | ArrayBuffer): Incoming {
    if (!Number.isSafeInteger(seq) || seq <= this.last) {
      throw new ProtocolViolation(
        `a data frame carried position ${String(seq)}, not above the last one received (${String(this.last)}).`,
      )
    }
    this.last = seq
    this.receivedSinceAck += 1
    this.receivedSizeSinceAck += typeof payload === 'string' ? payload.length : payload.byteLength
    return { kind: 'data', seq, payload }
  }
}

/** `"<seq> <text>"`, or the ASCII of `"<seq> "` followed by the bytes. */
export function wire({ seq, frame }: Numbered): Frame {
  const prefix = `${String(seq)} `
  if (typeof frame === 'string') return prefix + frame
  const head = ascii.encode(prefix)
  const body = ArrayBuffer.isView(frame)
    ? new Uint8Array(frame.buffer, frame.byteOffset, frame.byteLength)
    : new Uint8Array(frame)
  const out = new Uint8Array(head.byteLength + body.byteLength)
  out.set(head)
  out.set(body, head.byteLength)
  return out
}

/** The index of the space that ends a data frame's number; throws unless 1 to 16 digits precede it. */
function digitsBefore(codeAt: (index: number) => number): number {
  let index = 0
  for (; index <= 16; index += 1) {
    const code = codeAt(index)
    if (code === 0x20 && index > 0) return index
    if (code < 0x30 || code > 0x39) break
  }
  throw new ProtocolViolation('a frame started with neither a position and a space nor "{".')
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0
}

function isPositive(value: unknown): value is number {
  return isCount(value) && value > 0
}

function control(text: string): Incoming {
  let frame: unknown
  try {
    frame = JSON.parse(text)
  } catch {
    throw new ProtocolViolation('a control frame was not JSON.')
  }
  if (typeof frame !== 'object' || frame === null || Array.isArray(frame)) {
    throw new ProtocolViolation('a control frame was not a JSON object.')
  }
  const fields = frame as Record<string, unknown>
  switch (fields.t) {
    case 'welcome': {
      const { v, id, token, resumed, handled, last, protocol, ackEvery, ackBytes } = fields
      if (
        v !== 1 ||
        !isCount(id) ||
        !isToken(token) ||
        typeof resumed !== 'boolean' ||
        !isCount(handled) ||
        !isCount(last) ||
        (protocol !== undefined && typeof protocol !== 'string') ||
        (ackEvery !== undefined && !isPositive(ackEvery)) ||
        (ackBytes !== undefined && !isPositive(ackBytes))
      ) {
        throw new ProtocolViolation(
          'a welcome lacked v: 1, id, a base64url token, resumed, handled or last, or had one of the wrong type.',
        )
      }
      const welcome: Welcome = { id, token, resumed, handled, last }
      if (protocol !== undefined) welcome.protocol = protocol
      if (ackEvery !== undefined) welcome.ackEvery = ackEvery
      if (ackBytes !== undefined) welcome.ackBytes = ackBytes
      return { kind: 'welcome', welcome }
    }
    case 'ack':
      if (!isCount(fields.handled))
        throw new ProtocolViolation('an ack from the server lacked a whole handled.')
      return { kind: 'ack', handled: fields.handled }
    default:
      // Room for later versions of the server: a control frame this client does not know is skipped.
      if (typeof fields.t !== 'string') throw new ProtocolViolation('a control frame had no string t.')
      return { kind: 'other' }
  }
}
