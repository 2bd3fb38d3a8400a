import { readData, type DataFrame } from './dataFrames.js'
import { readPresenceFields, type PresenceFrame } from './presenceFrames.js'

/**
 * The session protocol, version 1 (docs/protocol.md), once for every side
 * that speaks it: the server, durable-websocket/client, the tests' client and
 * the bench's. Names, frames with one encoder and one strict reader each,
 * and the close codes. Runtime-neutral: no sockets, no timers, no storage.
 * Data frames are written and read in dataFrames.ts, presence frames in
 * presenceFrames.ts; this file reads every frame a socket gets.
 */

/** The subprotocol a session client offers first; a 101 that names it switches the socket to sessions. */
export const SESSION_PROTOCOL = 'dws.session.v1'

/** Offered after SESSION_PROTOCOL by a client that holds a session: `dws.resume.<last>.<token>`. */
export const RESUME_PREFIX = 'dws.resume.'

/**
 * Offered beside SESSION_PROTOCOL by a client that reads batches: a replay
 * may then carry several text data frames in one message ({@link encodeBatch}),
 * one send for the runtime instead of one per frame.
 */
export const BATCHES_OFFER = 'dws.session.batches'

/** Every subprotocol name under these is the package's own: an application may not offer one. */
export function isSessionProtocolName(name: string): boolean {
  return name.startsWith('dws.session.') || name.startsWith(RESUME_PREFIX)
}

/** base64url without padding, 22 to 128 characters: it must fit a subprotocol name, where a dot would end it. */
const TOKEN = /^[A-Za-z0-9_-]{22,128}$/

export function isToken(value: unknown): value is string {
  return typeof value === 'string' && TOKEN.test(value)
}

/** Where a client stands in its session: the highest `g` it received, and the token to present. */
export interface ResumePoint {
  readonly last: number
  readonly token: string
}

/** The offered entry that asks to resume a session. */
export function resumeEntry({ last, token }: ResumePoint): string {
  return `${RESUME_PREFIX}${String(last)}.${token}`
}

/** What a client's offer says about sessions, and the offer without the package's own entries. */
export interface SessionOffer {
  readonly wanted: boolean
  /** The client offered BATCHES_OFFER beside SESSION_PROTOCOL. */
  readonly batches: boolean
  /** The first readable resume entry; undefined without one, or without SESSION_PROTOCOL. */
  readonly resume: ResumePoint | undefined
  /** What the app's `protocol` option sees: the offer minus every `dws.session.*`/`dws.resume.*` entry. */
  readonly rest: string[]
}

export function readSessionOffer(offered: readonly string[]): SessionOffer {
  let wanted = false
  let batches = false
  let resume: ResumePoint | undefined
  const rest: string[] = []
  for (const entry of offered) {
    if (entry === SESSION_PROTOCOL) wanted = true
    else if (entry === BATCHES_OFFER) batches = true
    else if (entry.startsWith(RESUME_PREFIX)) resume ??= readResumeEntry(entry.slice(RESUME_PREFIX.length))
    else if (!isSessionProtocolName(entry)) rest.push(entry)
  }
  return { wanted, batches: wanted && batches, resume: wanted ? resume : undefined, rest }
}

function readResumeEntry(value: string): ResumePoint | undefined {
  const dot = value.indexOf('.')
  if (dot < 1) return undefined
  const last = Number(value.slice(0, dot))
  const token = value.slice(dot + 1)
  if (!Number.isSafeInteger(last) || last < 0 || !isToken(token)) return undefined
  return { last, token }
}

/** Close codes of the session protocol; docs/protocol.md §7 says which end a session. */
export const SessionCloseCode = {
  /** Either side refuses a frame that breaks the protocol. */
  PROTOCOL_ERROR: 1002,
  /** Sent to a socket whose session a resume took over on another socket; the client must not reconnect. */
  TAKEN_OVER: 3901,
  /** What the server's `close` handler gets when a session's window ended without a resume; never on the wire. */
  EXPIRED: 3902,
  /** The session fell behind what the server's log holds; it is over, and the client starts a new one. */
  SLOW_CONSUMER: 3903,
  /** A resume by someone other than the session's owner (`resume.owner`); the client starts a new session. */
  NOT_YOURS: 3904,
  /** The session passed the server's `resume.maxAge`; it is over, and the client starts a new one. */
  TOO_OLD: 3905,
  /** The client had more requests waiting for replies than the welcome's `maxRequests`; the session ends. */
  TOO_MANY_REQUESTS: 3906,
} as const

/**
 * Whether a close the client sent ends its session rather than suspending
 * it: 1000 (what `client.close()` sends) and a close frame with no code
 * (1005) are a client that meant to leave. Everything else a client sends or
 * the runtime reports (1001 from a page going away, 1006 for a cut, any
 * application code such as a client's own stalled-link close) suspends it.
 */
export function endsSession(code: number): boolean {
  return code === 1000 || code === 1005
}

/**
 * Whether a close the server starts leaves the session to resume: a handler
 * that failed (1011), a socket silent past `idleTimeout` (1001) and a client
 * whose messages queued past `maxQueued` (1013) say nothing against the
 * session, so it is suspended as after a cut. Every other code the server
 * sends ends it.
 */
export function serverCloseSuspends(code: number): boolean {
  return code === 1011 || code === 1001 || code === 1013
}

/**
 * The reason of a 1013 close by which a server sheds load: when to try
 * again. A session upgrade the server cannot take (a full room, a key at its
 * limit) gets a 101 and this close rather than an HTTP status, which a
 * browser's WebSocket never shows its page.
 */
export function retryReason(ms: number): string {
  return `retry after ${String(Math.max(0, Math.round(ms)))} ms`
}

/** The wait a 1013 close's reason asks for, in ms; undefined when it names none. */
export function retryHint(reason: string): number | undefined {
  const match = /^retry after (\d{1,9}) ms$/.exec(reason)
  return match === null ? undefined : Number(match[1])
}

/** The server's first frame on a session socket (docs/protocol.md §4). */
export interface Welcome {
  id: number
  token: string
  resumed: boolean
  handled: number
  /** The position the client holds from now on: its own on a resume, the log's head for a new session. */
  last: number
  /** How long the server keeps a dropped session, in ms; 0 without a log. */
  window: number
  /** Acknowledge after this many data frames; ACK_EVERY when absent. */
  ackEvery?: number
  /** … or after this much of them, whichever comes first; no limit when absent. */
  ackBytes?: number
  /** The subprotocol the server's `protocol` option picked among the app's own offers, if any. */
  protocol?: string
  /** The largest message the server takes from the client, in bytes (UTF-8 for text); it closes with 1009 past it. */
  maxMessageBytes?: number
  /** How many requests the client may have waiting for their replies; it closes with 3906 past it. */
  maxRequests?: number
}

/** How often a client acknowledges when the welcome does not say (`ackEvery`). */
export const ACK_EVERY = 32

export function encodeWelcome(welcome: Welcome): string {
  const {
    id,
    token,
    resumed,
    handled,
    last,
    window,
    ackEvery,
    ackBytes,
    protocol,
    maxMessageBytes,
    maxRequests,
  } = welcome
  return JSON.stringify({
    t: 'welcome',
    v: 1,
    id,
    token,
    resumed,
    handled,
    last,
    window,
    ...(ackEvery === undefined ? {} : { ackEvery }),
    ...(ackBytes === undefined ? {} : { ackBytes }),
    ...(protocol === undefined ? {} : { protocol }),
    ...(maxMessageBytes === undefined ? {} : { maxMessageBytes }),
    ...(maxRequests === undefined ? {} : { maxRequests }),
  })
}

/**
 * The server's acknowledgement: the highest `c` it handled and, when it
 * knows it, `last`: every data frame for this session up to that `g` has
 * been sent on this socket before this frame (position advance: a client
 * that nothing was for keeps up with the log, so a trim cannot reset it).
 */
export function encodeServerAck(handled: number, last?: number): string {
  return last === undefined
    ? `{"t":"ack","handled":${String(handled)}}`
    : `{"t":"ack","handled":${String(handled)},"last":${String(last)}}`
}

/** The client's acknowledgement: the highest `g` it received. */
export function encodeClientAck(last: number): string {
  return `{"t":"ack","last":${String(last)}}`
}

/**
 * Several text data frames in one message, in order (docs/protocol.md §2):
 * a JSON array of the frames as they would go alone. Only to a client that
 * offered BATCHES_OFFER.
 */
export function encodeBatch(frames: readonly string[]): string {
  return JSON.stringify(frames)
}

/** `[`: a batch; a data frame starts with a digit, a control frame with `{`. */
const OPEN_BRACKET = 0x5b

export function isBatch(raw: string | ArrayBuffer): raw is string {
  return typeof raw === 'string' && raw.charCodeAt(0) === OPEN_BRACKET
}

/**
 * The frames of a batch, strictly: a JSON array of two or more strings, each
 * starting with a digit as a text data frame does. Each is then read as a
 * frame of its own ({@link readServerFrame}).
 */
export function readBatch(raw: string): string[] | InvalidFrame {
  let parsed: unknown
  try {
    parsed = JSON.parse(raw)
  } catch {
    return invalid('a batch that is not a JSON array')
  }
  if (!Array.isArray(parsed) || parsed.length < 2)
    return invalid('a batch that is not an array of two or more frames')
  for (const frame of parsed as unknown[]) {
    if (typeof frame !== 'string' || !isDigit(frame.charCodeAt(0)))
      return invalid('a batch that holds something other than text data frames')
  }
  return parsed as string[]
}

function isDigit(code: number): boolean {
  return code >= 0x30 && code <= 0x39
}

/** A frame that breaks the protocol, and how (never what it held: a token may be in it). */
export interface InvalidFrame {
  readonly kind: 'invalid'
  readonly problem: string
}

/** What a client may send: a data frame, or an ack with the `last` it covers (undefined when it names none). */
export type ClientFrame =
  DataFrame | { readonly kind: 'ack'; readonly last: number | undefined } | InvalidFrame

/** What a server may send; `other` is a control frame of a later version, which a client skips. */
export type ServerFrame =
  | DataFrame
  | { readonly kind: 'welcome'; readonly welcome: Welcome }
  | { readonly kind: 'ack'; readonly handled: number; readonly last?: number }
  | { readonly kind: 'presence'; readonly presence: PresenceFrame }
  | { readonly kind: 'other' }
  | InvalidFrame

/** `{`: a control frame is a JSON object; a data frame starts with a digit. */
const OPEN_BRACE = 0x7b

/**
 * Reads a frame from a client, strictly: the one control frame a client
 * sends is an ack (with `last` a number, or none); anything else is invalid.
 */
export function readClientFrame(raw: string | ArrayBuffer): ClientFrame {
  if (typeof raw === 'string' && raw.charCodeAt(0) === OPEN_BRACE) {
    const fields = controlFields(raw)
    if (fields?.t !== 'ack') return invalid('a control frame that is not an ack')
    const { last } = fields
    if (last === undefined) return { kind: 'ack', last: undefined }
    if (typeof last !== 'number') return invalid('an ack whose last is not a number')
    return { kind: 'ack', last: Number.isSafeInteger(last) ? last : undefined }
  }
  const data = readData(raw)
  if (data === undefined) return invalid('a data frame without its sequence number')
  if (data.mark !== undefined && data.mark.type !== 'request') return invalid('a reply from a client')
  return data
}

/**
 * Reads a frame from the server. Unknown fields and unknown control frames
 * are skipped, so a server may add optional ones within version 1.
 */
export function readServerFrame(raw: string | ArrayBuffer): ServerFrame {
  if (typeof raw !== 'string' || raw.charCodeAt(0) !== OPEN_BRACE) {
    const data = readData(raw)
    if (data === undefined) return invalid('a frame that starts with neither a position and a space nor "{"')
    if (data.mark?.type === 'request') return invalid('a request from the server')
    return data
  }
  const fields = controlFields(raw)
  if (fields === undefined) return invalid('a control frame that is not a JSON object')
  switch (fields.t) {
    case 'welcome':
      return readWelcome(fields)
    case 'ack':
      if (!isCount(fields.handled)) return invalid('an ack from the server without a whole handled')
      if (fields.last === undefined) return { kind: 'ack', handled: fields.handled }
      if (!isCount(fields.last)) return invalid('an ack from the server whose last is not a whole number')
      return { kind: 'ack', handled: fields.handled, last: fields.last }
    case 'presence': {
      const read = readPresenceFields(fields)
      return 'problem' in read ? invalid(read.problem) : { kind: 'presence', presence: read.frame }
    }
    default:
      if (typeof fields.t !== 'string') return invalid('a control frame without a string t')
      return { kind: 'other' }
  }
}

function readWelcome(fields: Record<string, unknown>): ServerFrame {
  const {
    v,
    id,
    token,
    resumed,
    handled,
    last,
    window,
    protocol,
    ackEvery,
    ackBytes,
    maxMessageBytes,
    maxRequests,
  } = fields
  if (
    v !== 1 ||
    !isCount(id) ||
    !isToken(token) ||
    typeof resumed !== 'boolean' ||
    !isCount(handled) ||
    !isCount(last) ||
    !isCount(window) ||
    (protocol !== undefined && typeof protocol !== 'string') ||
    (ackEvery !== undefined && !isPositive(ackEvery)) ||
    (ackBytes !== undefined && !isPositive(ackBytes)) ||
    (maxMessageBytes !== undefined && !isPositive(maxMessageBytes)) ||
    (maxRequests !== undefined && !isPositive(maxRequests))
  ) {
    return invalid(
      'a welcome without v: 1, id, a base64url token, resumed, handled, last or window, or with one of the wrong type',
    )
  }
  const welcome: Welcome = { id, token, resumed, handled, last, window }
  if (protocol !== undefined) welcome.protocol = protocol
  if (ackEvery !== undefined) welcome.ackEvery = ackEvery
  if (ackBytes !== undefined) welcome.ackBytes = ackBytes
  if (maxMessageBytes !== undefined) welcome.maxMessageBytes = maxMessageBytes
  if (maxRequests !== undefined) welcome.maxRequests = maxRequests
  return { kind: 'welcome', welcome }
}

function controlFields(text: string): Record<string, unknown> | undefined {
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    return undefined
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return undefined
  return parsed as Record<string, unknown>
}

function invalid(problem: string): InvalidFrame {
  return { kind: 'invalid', problem }
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0
}

function isPositive(value: unknown): value is number {
  return isCount(value) && value > 0
}
