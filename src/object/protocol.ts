import { DurableWebSocketError } from '../core/errors.js'
import type { Locals } from '../core/events.js'
import type { ProtocolFunction } from './behaviour.js'

/** RFC 7230 §3.2.6 token, which RFC 6455 §4.1 requires of every subprotocol. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/

/** What the client offered, less anything that is not a token: the 101 must never echo one. */
function offeredProtocols(request: Request): string[] {
  const header = request.headers.get('Sec-WebSocket-Protocol')
  if (header === null) return []
  return header
    .split(',')
    .map((token) => token.trim())
    .filter((token) => TOKEN.test(token))
}

/**
 * The subprotocol the 101 names, if any. A browser that offered some and
 * gets none back fails the handshake, and RFC 6455 §4.2.2 allows only an
 * offered one, so a pick outside the list is a bug in the option.
 */
export function chooseProtocol(
  request: Request,
  locals: Locals,
  pick: ProtocolFunction | undefined,
): string | undefined {
  if (pick === undefined) return undefined
  const offered = offeredProtocols(request)
  if (offered.length === 0) return undefined
  const chosen = pick(offered, request, locals)
  if (chosen !== undefined && !offered.includes(chosen)) {
    // The offer is left out of the message: a client may carry a token in it, and this gets logged.
    throw new DurableWebSocketError(
      'ERR_DWS_INVALID_OPTIONS',
      `the protocol option chose "${chosen}", which is not among the ${String(offered.length)} subprotocols the client offered.`,
    )
  }
  return chosen
}
