import type { Frame } from './serializer.js'

/**
 * The data frames of the session protocol (docs/protocol.md §5 and §8): a
 * number, a mark for requests and their replies, a space, the payload; and
 * the payload of a failed request. Written by {@link numbered}, read by
 * {@link readData}, which sessionProtocol.ts's frame readers use.
 */

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
export function readData(raw: string | ArrayBuffer): DataFrame | undefined {
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
