import { describe } from '../shared/describe.js'
import type { StandardSchemaIssue } from '../shared/standardSchema.js'

/**
 * Every error this package throws or logs carries a stable `code`, so callers
 * can branch on it without matching message text. The one exception to the
 * single base class is {@link InvalidHandlerError}, which must stay a
 * `TypeError` (what callers of `add` have long been able to catch for a handler that is not a function); it
 * carries a code too, and {@link isDurableWebSocketError} recognises both.
 */
export type DurableWebSocketErrorCode =
  | 'ERR_DWS_UNKNOWN_EVENT'
  | 'ERR_DWS_INVALID_HANDLER'
  | 'ERR_DWS_INVALID_OPTIONS'
  | 'ERR_DWS_INVALID_CLOSE'
  | 'ERR_DWS_ATTACHMENT_TOO_LARGE'
  | 'ERR_DWS_DATA_NOT_STORABLE'
  | 'ERR_DWS_UNSENDABLE_MESSAGE'
  | 'ERR_DWS_NO_MODULE'
  | 'ERR_DWS_MISSING_BINDING'
  | 'ERR_DWS_INVALID_TAGS'
  | 'ERR_DWS_INVALID_ROOM'
  | 'ERR_DWS_INVALID_MESSAGE'
  | 'ERR_DWS_HANDLER_TIMEOUT'
  | 'ERR_DWS_MESSAGE_TOO_LARGE'
  | 'ERR_DWS_PRESENCE_OFF'
  | 'ERR_DWS_INVALID_PRESENCE_META'
  | 'ERR_DWS_PRESENCE_META_TOO_LARGE'

export class DurableWebSocketError extends Error {
  readonly code: DurableWebSocketErrorCode

  constructor(code: DurableWebSocketErrorCode, message: string, options?: ErrorOptions) {
    super(message, options)
    this.name = 'DurableWebSocketError'
    this.code = code
  }
}

/**
 * A decoded message that `validate` or a handler's schema refused, as
 * `malformed_message` gets it: `issues` are the schema's own (a type guard
 * gives one issue of ours). Their messages may quote what the client sent,
 * so they are never logged here.
 */
export class InvalidMessageError extends DurableWebSocketError {
  readonly issues: readonly StandardSchemaIssue[]

  constructor(message: string, issues: readonly StandardSchemaIssue[], options?: ErrorOptions) {
    super('ERR_DWS_INVALID_MESSAGE', message, options)
    this.name = 'InvalidMessageError'
    this.issues = issues
  }
}

export class InvalidHandlerError extends TypeError {
  readonly code = 'ERR_DWS_INVALID_HANDLER' as const

  constructor(event: string, handler: unknown) {
    super(`The handler for the "${event}" event must be a function, got ${describe(handler)}.`)
    this.name = 'InvalidHandlerError'
  }
}

const CODE_PREFIX = 'ERR_DWS_'

/** Works across realms (errors that crossed an RPC boundary keep their code). */
export function isDurableWebSocketError(
  error: unknown,
): error is DurableWebSocketError | InvalidHandlerError {
  if (typeof error !== 'object' || error === null) return false
  const code = (error as { code?: unknown }).code
  return typeof code === 'string' && code.startsWith(CODE_PREFIX)
}

/**
 * Thrown by a `request` handler to answer with a failure the client can
 * branch on: the client's `request()` rejects with a RequestError of this
 * `code` and `message` (cut to 64 and 256 characters). Anything else a
 * request handler throws reaches the client only as `failed`, without its text.
 */
export class ReplyError extends Error {
  readonly code: string

  constructor(code: string, message = '') {
    super(message)
    this.name = 'ReplyError'
    if (typeof code !== 'string' || !/^[a-z][a-z0-9_-]{0,63}$/.test(code) || RESERVED_REPLY_CODES.has(code)) {
      throw new DurableWebSocketError(
        'ERR_DWS_INVALID_OPTIONS',
        `a ReplyError's code must be 1 to 64 lowercase letters, digits, _ or - starting with a letter, and none of ${[...RESERVED_REPLY_CODES].join(', ')}, which the package uses; got ${describe(code)}.`,
      )
    }
    this.code = code
  }
}

/** What a client's RequestError may say besides an app's own codes. */
const RESERVED_REPLY_CODES = new Set(['timeout', 'closed', 'refused', 'failed'])
