/** The close codes this package sends on its own; docs/api.md has the table. */
export const CloseCode = {
  NORMAL: 1000,
  /** The connection was silent for longer than `idleTimeout`. */
  GOING_AWAY: 1001,
  /** A text frame the serializer could not decode, and no `malformed_message` handler. */
  INVALID_PAYLOAD: 1007,
  /** A message over `maxMessageBytes`. */
  MESSAGE_TOO_BIG: 1009,
  /** The connection sent faster than `rateLimit` allows. */
  POLICY_VIOLATION: 1008,
  /** A handler threw or outlived `handlerTimeout`, or a handler sent a value that cannot go on the wire. */
  INTERNAL_ERROR: 1011,
  /** More messages waited behind a running handler than `maxQueued` allows. */
  TRY_AGAIN_LATER: 1013,
} as const

/**
 * A client's close as the `close` handler gets it. A close frame carrying a
 * code no endpoint may send (0-999, 1004-1006, 1015, 1016-2999, 5000 and up)
 * is taken as one without a code: 1005, without a reason. So a client cannot
 * pass for a lost connection; a real loss (no close frame) stays 1006. A
 * reason is cut to what a close frame may carry, at a character boundary.
 */
export function peerClose(code: number, reason: string, wasClean: boolean): { code: number; reason: string } {
  if (isSendableCloseCode(code) || (code === 1006 && !wasClean)) return { code, reason: cutReason(reason) }
  return { code: 1005, reason: '' }
}

function cutReason(reason: string): string {
  if (reason.length * 3 <= MAX_CLOSE_REASON_BYTES || utf8Length(reason) <= MAX_CLOSE_REASON_BYTES)
    return reason
  let cut = ''
  let bytes = 0
  for (const char of reason) {
    const size = utf8Length(char)
    if (bytes + size > MAX_CLOSE_REASON_BYTES) break
    cut += char
    bytes += size
  }
  return cut
}

/** RFC 6455 §7.4.1 caps the reason so the close frame fits a 125-byte control payload. */
export const MAX_CLOSE_REASON_BYTES = 123

const utf8 = new TextEncoder()

export function utf8Length(text: string): number {
  return utf8.encode(text).byteLength
}

/**
 * Codes an endpoint may put in a close frame: 1000-1003 and 1007-1014 from
 * RFC 6455 and its registry, 3000-4999 for libraries and applications. 1004,
 * 1005, 1006 and 1015 are reserved for reporting and must never be sent.
 */
export function isSendableCloseCode(code: number): boolean {
  if (!Number.isInteger(code)) return false
  if (code >= 3000 && code <= 4999) return true
  if (code >= 1000 && code <= 1003) return true
  return code >= 1007 && code <= 1014
}

/**
 * What is wrong with a close's reason, if anything; the code is each side's
 * own check, since browsers let a page send fewer codes than a server may.
 */
export function closeReasonProblem(reason: unknown): string | undefined {
  if (typeof reason !== 'string') return 'A close reason must be a string.'
  const bytes = utf8Length(reason)
  if (bytes <= MAX_CLOSE_REASON_BYTES) return undefined
  return `A close reason may be at most ${String(MAX_CLOSE_REASON_BYTES)} bytes of UTF-8; this one is ${String(bytes)}. Shorten it.`
}
