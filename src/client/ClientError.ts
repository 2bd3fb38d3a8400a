/**
 * The stable codes of the client's errors. Those shared with the server
 * (`ERR_DWS_INVALID_OPTIONS`, `ERR_DWS_UNKNOWN_EVENT`, `ERR_DWS_UNSENDABLE_MESSAGE`,
 * `ERR_DWS_INVALID_CLOSE`) mean the same thing on both sides.
 */
export type ClientErrorCode =
  | 'ERR_DWS_INVALID_OPTIONS'
  | 'ERR_DWS_UNKNOWN_EVENT'
  | 'ERR_DWS_INVALID_LISTENER'
  | 'ERR_DWS_UNSENDABLE_MESSAGE'
  | 'ERR_DWS_INVALID_CLOSE'
  | 'ERR_DWS_MALFORMED_MESSAGE'
  | 'ERR_DWS_SOCKET_ERROR'
  | 'ERR_DWS_PROTOCOL_ERROR'
  | 'ERR_DWS_STORE_FAILED'
  | 'ERR_DWS_MESSAGE_TOO_BIG'

/** Every error the client throws or reports on its `error` event. */
export class ClientError extends Error {
  readonly code: ClientErrorCode

  constructor(code: ClientErrorCode, message: string, options?: ErrorOptions) {
    super(message, options)
    this.name = 'ClientError'
    this.code = code
  }
}

/** Recognises a client error by its name and code, so it also works across realms (iframes, workers). */
export function isClientError(value: unknown): value is ClientError {
  if (typeof value !== 'object' || value === null) return false
  const { name, code } = value as { name?: unknown; code?: unknown }
  return name === 'ClientError' && typeof code === 'string' && code.startsWith('ERR_DWS_')
}
