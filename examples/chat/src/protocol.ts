/** What the page sends. */
export interface Say {
  text: string
}

/**
 * What the server sends: the room's lines. Who is in the room is not a
 * message of the chat's own: the page reads it from `client.presence`.
 */
export type ToClient = Line

export interface Line {
  type: 'said'
  name: string
  text: string
}

export const MAX_NAME_LENGTH = 32
export const MAX_TEXT_LENGTH = 500
