import { DurableWebSocketError } from '../core/errors.js'
import type { Validator } from './behaviour.js'

/**
 * Throws ERR_DWS_INVALID_MESSAGE when the validator refuses the message, or
 * throws on it (a validator that reads `message.type` throws on `null`): a
 * handler can then tell a message of the wrong shape from one that did not decode.
 */
export function checkShape(validate: Validator | undefined, message: unknown): void {
  if (validate === undefined) return
  let valid: boolean
  try {
    valid = validate(message)
  } catch (cause) {
    throw new DurableWebSocketError('ERR_DWS_INVALID_MESSAGE', 'The validator threw on the message.', {
      cause,
    })
  }
  if (!valid) {
    throw new DurableWebSocketError(
      'ERR_DWS_INVALID_MESSAGE',
      'The message does not have the expected shape.',
    )
  }
}

export function isInvalidMessage(error: unknown): boolean {
  return error instanceof DurableWebSocketError && error.code === 'ERR_DWS_INVALID_MESSAGE'
}
