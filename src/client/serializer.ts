import { ClientError, describe } from './ClientError.js'

/**
 * The server's serializer, seen from the other end: `decode` makes what the
 * server sends, `encode` takes what the client sends, and may return a string
 * (sent as a text frame) or bytes (sent as a binary frame). With one type for
 * both directions it has the very shape of the server's `Serializer<Message>`.
 */
export interface Serializer<Incoming = unknown, Outgoing = Incoming> {
  encode(value: Outgoing): string | ArrayBuffer | ArrayBufferView
  decode(text: string): Incoming
}

export type SerializerOption<Incoming = unknown, Outgoing = Incoming> =
  'json' | Serializer<Incoming, Outgoing>

export const json: Serializer = {
  encode: (value) => {
    const text = JSON.stringify(value)
    // JSON.stringify(undefined) and of a function give undefined, which is no frame at all.
    if (text === undefined) throw new TypeError(`JSON cannot encode ${describe(value)}.`)
    return text
  },
  decode: (text) => JSON.parse(text) as unknown,
}

export function resolveSerializer<Incoming, Outgoing>(
  option: SerializerOption<Incoming, Outgoing> | undefined,
): Serializer<Incoming, Outgoing> {
  // JSON makes whatever the server sent; the type parameters are the caller's word for what that is.
  if (option === undefined || option === 'json') return json as Serializer<Incoming, Outgoing>
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
