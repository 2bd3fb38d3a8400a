import { describe } from './describe.js'

/** What goes on the wire: a string is a text frame, bytes a binary frame. */
export type Frame = string | ArrayBuffer | ArrayBufferView

/**
 * Turns values into frames and text frames into values, the same on both
 * ends: `decode` makes what arrives (`In`), `encode` takes what goes out
 * (`Out`) and may return a string (a text frame) or bytes (a binary frame).
 */
export interface Serializer<In = unknown, Out = In> {
  encode(value: Out): Frame
  decode(text: string): In
}

export type SerializerOption<In = unknown, Out = In> = 'json' | Serializer<In, Out>

export const json: Serializer = {
  encode: (value) => {
    // Typed as string, but it gives undefined for undefined and for a function, which is no frame at all.
    const text = JSON.stringify(value) as string | undefined
    if (text === undefined) throw new TypeError(`JSON cannot encode ${describe(value)}.`)
    return text
  },
  decode: (text) => JSON.parse(text) as unknown,
}

/** The serializer an option names, or undefined when the option is neither 'json' nor a serializer. */
export function serializerFrom<In, Out>(option: unknown): Serializer<In, Out> | undefined {
  if (option === 'json') return json as Serializer<In, Out>
  if (
    typeof option === 'object' &&
    option !== null &&
    typeof (option as Partial<Serializer>).encode === 'function' &&
    typeof (option as Partial<Serializer>).decode === 'function'
  ) {
    return option as Serializer<In, Out>
  }
  return undefined
}

export const SERIALIZER_EXPECTED = "'json' or an object with encode() and decode() functions"
