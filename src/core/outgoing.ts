import { describe } from '../shared/describe.js'
import type { Frame, Serializer } from '../shared/serializer.js'
import { DurableWebSocketError } from './errors.js'

export type { Frame }

// Looked up once: a global lookup per message goes through the runtime's global scope.
const ArrayBufferClass = ArrayBuffer
const isView = ArrayBuffer.isView.bind(ArrayBuffer)

export function isBinary(value: unknown): value is ArrayBuffer | ArrayBufferView {
  return typeof value === 'object' && value !== null && (value instanceof ArrayBufferClass || isView(value))
}

/**
 * Decides what goes on the wire for `send(value)`. Bytes always go out as a
 * binary frame untouched. With a serializer everything else is encoded;
 * without one only primitives have an obvious text form, so objects, arrays, null and undefined are refused.
 */
export function toFrame<Out>(value: unknown, serializer: Serializer<unknown, Out> | undefined): Frame {
  if (isBinary(value)) return value
  if (serializer !== undefined) {
    try {
      return serializer.encode(value as Out)
    } catch (cause) {
      throw new DurableWebSocketError(
        'ERR_DWS_UNSENDABLE_MESSAGE',
        `The serializer could not encode ${describe(value)}.`,
        { cause },
      )
    }
  }
  switch (typeof value) {
    case 'string':
      return value
    case 'number':
    case 'boolean':
    case 'bigint':
      return String(value)
    default:
      throw new DurableWebSocketError(
        'ERR_DWS_UNSENDABLE_MESSAGE',
        `Cannot send ${describe(value)} without a serializer: send a string, a number, a boolean, a bigint or bytes, or set serializer: 'json'.`,
      )
  }
}
