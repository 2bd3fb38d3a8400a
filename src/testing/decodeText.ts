import type { Serializer } from '../shared/serializer.js'

/**
 * A text frame (or a session's text payload) as the test reads it: through
 * the serializer, or as it is without one. A frame the serializer refuses
 * fails with the text itself, cut short, so the test's output shows it.
 */
export function decodeText<Message>(serializer: Serializer<Message> | undefined, text: string): Message {
  if (serializer === undefined) return text as Message
  try {
    return serializer.decode(text)
  } catch (cause) {
    const shown = text.length > 200 ? `${text.slice(0, 200)}…` : text
    throw new Error(`the serializer could not decode the text frame ${JSON.stringify(shown)}`, { cause })
  }
}
