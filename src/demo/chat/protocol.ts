/** What the chat page and the chat object say to each other, as JSON. */

export const MAX_NAME_LENGTH = 32
export const MAX_TEXT_LENGTH = 1_000

/**
 * From the page: only `say`. Who the page is comes with the upgrade (`?name=`), and who is in the
 * room is the package's presence list (`client.presence`), not a message of the chat's own.
 */
export interface ClientMessage {
  type: 'say'
  text: string
}

export type ServerMessage =
  /** To a new session only (a resumed one had it already): the room and the name, as the server took them. */
  | { type: 'welcome'; room: string; name: string }
  /** To everyone, the sender included, so every page shows the same order. */
  | { type: 'said'; name: string; text: string; at: number }
  /** To the sender of something the chat does not accept. */
  | { type: 'refused'; reason: string }

function cleanText(value: unknown, max: number): string | undefined {
  if (typeof value !== 'string') return undefined
  const text = value.trim()
  return text.length === 0 || text.length > max ? undefined : text
}

/** The name an upgrade asks for (`?name=`), trimmed: 1 to MAX_NAME_LENGTH characters, else undefined. */
export function cleanName(value: unknown): string | undefined {
  return cleanText(value, MAX_NAME_LENGTH)
}

/** A message from the page, checked: anything else decoded from JSON is refused. */
export function parseClientMessage(value: unknown): ClientMessage | undefined {
  if (typeof value !== 'object' || value === null) return undefined
  const { type, text } = value as Record<string, unknown>
  if (type !== 'say') return undefined
  const clean = cleanText(text, MAX_TEXT_LENGTH)
  return clean === undefined ? undefined : { type: 'say', text: clean }
}
