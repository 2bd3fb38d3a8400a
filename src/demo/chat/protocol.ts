/** What the chat page and the chat object say to each other, as JSON. */

export const MAX_NAME_LENGTH = 32
export const MAX_TEXT_LENGTH = 1_000

export interface Member {
  /** The connection id: stable for the connection's life, never reused in the room. */
  id: number
  name: string
}

/**
 * From the page: `join` once per session (again after a reset, which starts a new one), then
 * `say`. A page that lost its state (a reload that resumed) may `join` again for the member list.
 */
export type ClientMessage = { type: 'join'; name: string } | { type: 'say'; text: string }

export type ServerMessage =
  /** To the joiner only: who they are and who is here, themselves included. */
  | { type: 'welcome'; you: number; room: string; members: Member[] }
  /** To everyone else in the room. */
  | { type: 'joined'; member: Member }
  /** To everyone else: a member whose connection dropped resumed its session; no news, but pages that joined meanwhile did not list it. */
  | { type: 'back'; member: Member }
  | { type: 'left'; member: Member }
  /** To everyone, the sender included, so every page shows the same order. */
  | { type: 'said'; from: Member; text: string; at: number }
  /** To the sender of something the chat does not accept. */
  | { type: 'refused'; reason: string }

function cleanText(value: unknown, max: number): string | undefined {
  if (typeof value !== 'string') return undefined
  const text = value.trim()
  return text.length === 0 || text.length > max ? undefined : text
}

/** A message from the page, checked: anything else decoded from JSON is refused. */
export function parseClientMessage(value: unknown): ClientMessage | undefined {
  if (typeof value !== 'object' || value === null) return undefined
  const { type, name, text } = value as Record<string, unknown>
  if (type === 'join') {
    const clean = cleanText(name, MAX_NAME_LENGTH)
    return clean === undefined ? undefined : { type, name: clean }
  }
  if (type === 'say') {
    const clean = cleanText(text, MAX_TEXT_LENGTH)
    return clean === undefined ? undefined : { type, text: clean }
  }
  return undefined
}
