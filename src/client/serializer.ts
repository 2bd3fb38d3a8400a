import { ClientError, describe } from './ClientError.js'

/**
 * The same shape as the server's serializer: `encode` may return a string
 * (sent as a text frame) or bytes (sent as a binary frame).
 */
export interface Serializer<Message = unknown> {
  encode(value: Message): string | ArrayBuffer | ArrayBufferView
  decode(text: string): Message
}

export type SerializerOption<Message = unknown> = 'json' | Serializer<Message>

export const json: Serializer = {
  encode: (value) => {
    const text = JSON.stringify(value)
    // JSON.stringify(undefined) and of a function give undefined, which is no frame at all.
    if (text === undefined) throw new TypeError(`JSON cannot encode ${describe(value)}.`)
    return text
  },
  decode: (text) => JSON.parse(text) as unknown,
}

export function resolveSerializer<Message>(
  option: SerializerOption<Message> | undefined,
): Serializer<Message> {
  if (option === undefined || option === 'json') return json as Serializer<Message>
  if (
    typeof option === 'object' &&
    (option as unknown) !== null &&
    typeof option.encode === 'function' &&
    typeof option.decode === 'function'
  ) {
    return option
  }
  throw new ClientError(
    'ERR_DWS_INVALID_OPTIONS',
    `options.serializer must be 'json' or an object with encode() and decode() functions, got ${describe(option)}.`,
  )
}
