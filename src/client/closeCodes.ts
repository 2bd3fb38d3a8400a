import { closeReasonProblem } from '../shared/closeCodes.js'
import { SessionCloseCode } from '../shared/sessionProtocol.js'
import { ClientError } from './ClientError.js'

/** How a socket ended, as the client saw it. */
export interface CloseEventInfo {
  code: number
  reason: string
  /** False when the connection dropped without a closing handshake (code 1006). */
  wasClean: boolean
}

/**
 * Drops worth retrying: the server went away or restarted (1001, 1012), the
 * connection vanished (1006), the server failed or is overloaded (1011, 1013,
 * 1014), the client fell behind (3903) its session belongs to someone else (3904) or grew too old (3905). Anything else is a deliberate answer
 * (1000 from the server, 1002, 1007, 1008, 1009, 3901, an application's
 * 4xxx), and retrying would only repeat it.
 */
const RETRYABLE_CLOSE_CODES: ReadonlySet<number> = new Set([
  1001,
  1006,
  1011,
  1012,
  1013,
  1014,
  SessionCloseCode.SLOW_CONSUMER,
  SessionCloseCode.NOT_YOURS,
  SessionCloseCode.TOO_OLD,
])

export function isRetryableClose(close: CloseEventInfo): boolean {
  return RETRYABLE_CLOSE_CODES.has(close.code)
}

/** How the server's `idleTimeout` reaper closes a connection that sent neither a message nor a ping. */
export function isIdleTimeout(close: CloseEventInfo): boolean {
  return close.code === 1001 && close.reason === 'Idle timeout'
}

export const IDLE_WITHOUT_HEARTBEAT =
  'durable-websocket/client: the server closed this connection as idle (1001 "Idle timeout"), and this client sends no heartbeat, so it will be closed again every idleTimeout and reconnect each time (a new id each time without a session). Pass connect(target, { heartbeat: N }) with N well below the server\'s idleTimeout, e.g. half of it.'

/** Browsers only let a page send 1000 or an application code (3000-4999); checked here everywhere alike. */
export function validateClose(code: number, reason: string): void {
  if (!Number.isInteger(code) || (code !== 1000 && (code < 3000 || code > 4999))) {
    throw new ClientError(
      'ERR_DWS_INVALID_CLOSE',
      `close() takes 1000 or an application code from 3000 to 4999, got ${String(code)}.`,
    )
  }
  const problem = closeReasonProblem(reason)
  if (problem !== undefined) throw new ClientError('ERR_DWS_INVALID_CLOSE', problem)
}
