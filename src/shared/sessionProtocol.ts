import type { Frame } from './serializer.js'

/**
 * The session protocol, version 1 (docs/protocol.md), once for every side
 * that speaks it: the server, durable-websocket/client, the tests' client and
 * the bench's. Names, frames with one encoder and one strict reader each,
 * and the close codes. Runtime-neutral: no sockets, no timers, no storage.
 * It imports no values: the bench loads it with Node's type stripping, which
 * does not resolve `.js` to `.ts` (test/unit/sessionProtocol.test.ts checks).
 */

/** The subprotocol a session client offers first; a 101 that names it switches the socket to sessions. */
export const SESSION_PROTOCOL = 'dws.session.v1'

/** Offered after SESSION_PROTOCOL by a client that holds a session: `dws.resume.<last>.<token>`. */
export const RESUME_PREFIX = 'dws.resume.'

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
  /** The first readable resume entry; undefined without one, or without SESSION_PROTOCOL. */
  readonly resume: ResumePoint | undefined
  /** What the app's `protocol` option sees: the offer minus every `dws.session.*`/`dws.resume.*` entry. */
  readonly rest: string[]
}

export function readSessionOffer(offered: readonly string[]): SessionOffer {
  let wanted = false
  let resume: ResumePoint | undefined
  const rest: string[] = []
  for (const entry of offered) {
    if (entry === SESSION_PROTOCOL) wanted = true
    else if (entry.startsWith(RESUME_PREFIX)) resume ??= readResumeEntry(entry.slice(RESUME_PREFIX.length))
    else if (!isSessionProtocolName(entry)) rest.push(entry)
  }
  return { wanted, resume: wanted ? resume : undefined, rest }
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

const ascii = new TextEncoder()

/**
 * What a data frame is besides a message, written between its number and
 * its space (docs/protocol.md §8): `?` a request that wants a reply (client
 * to server); `=c` the reply to the client's request `c`, `!c` the news that
 * it failed (server to client). A plain message has no mark.
 */
export type DataMark =
  | { readonly type: 'request' }
  | { readonly type: 'reply'; readonly to: number }
  | { readonly type: 'failure'; readonly to: number }

/** A mark as it goes between the number and the space; '' for none. */
export function markText(mark: DataMark | undefined): string {
  if (mark === undefined) return ''
  switch (mark.type) {
    case 'request':
      return '?'
    case 'reply':
      return `=${String(mark.to)}`
    case 'failure':
      return `!${String(mark.to)}`
  }
}

/**
 * A data frame: its number in ASCII digits, its mark ({@link markText}),
 * one space, then the payload (text, or its bytes).
 */
export function numbered(seq: number, frame: Frame, mark = ''): Frame {
  if (typeof frame === 'string') return `${String(seq)}${mark} ${frame}`
  const prefix = ascii.encode(`${String(seq)}${mark} `)
  const body =
    frame instanceof ArrayBuffer
      ? new Uint8Array(frame)
      : new Uint8Array(frame.buffer, frame.byteOffset, frame.byteLength)
  const out = new Uint8Array(prefix.byteLength + body.byteLength)
  out.set(prefix, 0)
  out.set(body, prefix.byteLength)
  return out.buffer
}

/** A data frame as read: its number, its mark if any, and its payload, the header and the space gone. */
export interface DataFrame {
  readonly kind: 'data'
  readonly seq: number
  readonly payload: string | ArrayBuffer
  readonly mark?: DataMark
}

/** Why a request got no reply from its handler: the payload of a `!c` frame. */
export interface Failure {
  /** `failed` (the handler threw), `refused` (never run), or a code the app chose (a ReplyError's). */
  readonly code: string
  readonly message: string
}

/** The most of a failure's code and message that travels; the rest is cut. */
export const MAX_FAILURE_CODE = 64
export const MAX_FAILURE_MESSAGE = 256

export function encodeFailure({ code, message }: Failure): string {
  return JSON.stringify({
    code: code.slice(0, MAX_FAILURE_CODE),
    message: message.slice(0, MAX_FAILURE_MESSAGE),
  })
}

/** A `!c` frame's payload, strictly; undefined when it is not one. */
export function readFailure(payload: string | ArrayBuffer): Failure | undefined {
  if (typeof payload !== 'string') return undefined
  let parsed: unknown
  try {
    parsed = JSON.parse(payload)
  } catch {
    return undefined
  }
  if (typeof parsed !== 'object' || parsed === null) return undefined
  const { code, message } = parsed as Record<string, unknown>
  if (typeof code !== 'string' || code === '' || typeof message !== 'string') return undefined
  return { code, message }
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
    case 'presence':
      return readPresence(fields)
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

/**
 * A value in a member's metadata, as JSON gives it back; a nested object or
 * list is an `object` to narrow (a recursive JSON type is more than the RPC
 * types can follow, and `members()` is called over RPC).
 */
export type JsonValue = string | number | boolean | null | object

/** One member of a room's presence: its key, its metadata, and how many connections it has. */
export interface PresenceMember {
  readonly key: string
  readonly meta: Record<string, JsonValue>
  readonly connections: number
}

/**
 * What a presence frame says: the whole list (after every welcome), or what
 * changed since the last frame. A join or an update carries the member as it
 * is now, so applying one twice is harmless; a leave names the key.
 */
export type PresenceFrame =
  | { readonly kind: 'list'; readonly members: readonly PresenceMember[] }
  | {
      readonly kind: 'diff'
      readonly join: readonly PresenceMember[]
      readonly update: readonly PresenceMember[]
      readonly leave: readonly string[]
    }

/** `{"t":"presence","members":[…]}`: the room's members, as a session socket gets them after its welcome. */
export function encodePresenceList(members: readonly PresenceMember[]): string {
  return JSON.stringify({ t: 'presence', members: members.map(memberFields) })
}

/** `{"t":"presence","join":[…],"update":[…],"leave":[…]}`, each list only when it is not empty. */
export function encodePresenceDiff(
  join: readonly PresenceMember[],
  update: readonly PresenceMember[],
  leave: readonly string[],
): string {
  return JSON.stringify({
    t: 'presence',
    ...(join.length === 0 ? {} : { join: join.map(memberFields) }),
    ...(update.length === 0 ? {} : { update: update.map(memberFields) }),
    ...(leave.length === 0 ? {} : { leave }),
  })
}

/** The fields in one order, so that the same member always encodes to the same text. */
function memberFields({ key, meta, connections }: PresenceMember): PresenceMember {
  return { key, meta, connections }
}

function readPresence(fields: Record<string, unknown>): ServerFrame {
  const { members, join, update, leave } = fields
  if (members !== undefined) {
    if (join !== undefined || update !== undefined || leave !== undefined)
      return invalid('a presence frame with both members and changes')
    const list = readMembers(members)
    if (list === undefined)
      return invalid('a presence frame whose members are not all { key, meta, connections }')
    return { kind: 'presence', presence: { kind: 'list', members: list } }
  }
  const joined = join === undefined ? [] : readMembers(join)
  const updated = update === undefined ? [] : readMembers(update)
  const left = leave === undefined ? [] : readKeys(leave)
  if (joined === undefined || updated === undefined || left === undefined)
    return invalid('a presence frame whose join, update or leave is not a list of members or keys')
  return { kind: 'presence', presence: { kind: 'diff', join: joined, update: updated, leave: left } }
}

function readMembers(value: unknown): PresenceMember[] | undefined {
  if (!Array.isArray(value)) return undefined
  const members: PresenceMember[] = []
  for (const item of value as unknown[]) {
    if (typeof item !== 'object' || item === null) return undefined
    const { key, meta, connections } = item as Record<string, unknown>
    if (typeof key !== 'string' || key === '' || !isPositive(connections)) return undefined
    if (typeof meta !== 'object' || meta === null || Array.isArray(meta)) return undefined
    members.push({ key, meta: meta as Record<string, JsonValue>, connections })
  }
  return members
}

function readKeys(value: unknown): string[] | undefined {
  if (!Array.isArray(value)) return undefined
  const keys = value as unknown[]
  return keys.every((key) => typeof key === 'string' && key !== '') ? (keys as string[]) : undefined
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

const SPACE = 0x20
const ZERO = 0x30
const NINE = 0x39
/** Enough digits for any safe integer. */
const MAX_DIGITS = 16
/** The longest header: a number, a mark and another number. */
const MAX_HEADER = 2 * MAX_DIGITS + 1
const QUESTION = 0x3f
const EQUALS = 0x3d
const BANG = 0x21

/** A data frame's number (1 to 16 digits, not 0) and payload; undefined when it has no such prefix. */
function readData(raw: string | ArrayBuffer): DataFrame | undefined {
  if (typeof raw === 'string') {
    const space = raw.indexOf(' ')
    if (space < 1 || space > MAX_HEADER) return undefined
    const header = readHeader((i) => raw.charCodeAt(i), space)
    return header === undefined ? undefined : { kind: 'data', ...header, payload: raw.slice(space + 1) }
  }
  const bytes = new Uint8Array(raw, 0, Math.min(raw.byteLength, MAX_HEADER + 1))
  const space = bytes.indexOf(SPACE)
  if (space < 1) return undefined
  const header = readHeader((i) => bytes[i] ?? 0, space)
  return header === undefined ? undefined : { kind: 'data', ...header, payload: raw.slice(space + 1) }
}

/** A data frame's header up to its space: the number, then at most one mark. */
function readHeader(
  codeAt: (index: number) => number,
  end: number,
): { seq: number; mark?: DataMark } | undefined {
  let digits = 0
  while (digits < end && isDigit(codeAt(digits))) digits++
  if (digits > MAX_DIGITS) return undefined
  const seq = digitsValue(codeAt, 0, digits)
  if (seq === undefined) return undefined
  if (digits === end) return { seq }
  const sign = codeAt(digits)
  if (sign === QUESTION) return digits + 1 === end ? { seq, mark: { type: 'request' } } : undefined
  if ((sign !== EQUALS && sign !== BANG) || end - digits - 1 > MAX_DIGITS) return undefined
  const to = digitsValue(codeAt, digits + 1, end)
  if (to === undefined) return undefined
  return { seq, mark: { type: sign === EQUALS ? 'reply' : 'failure', to } }
}

function isDigit(code: number): boolean {
  return code >= ZERO && code <= NINE
}

function digitsValue(codeAt: (index: number) => number, start: number, end: number): number | undefined {
  if (end <= start) return undefined
  let seq = 0
  for (let i = start; i < end; i++) {
    const code = codeAt(i)
    if (!isDigit(code)) return undefined
    seq = seq * 10 + (code - ZERO)
  }
  return seq === 0 ? undefined : seq
}
