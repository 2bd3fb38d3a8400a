/** What the page sends. */
export interface Say {
  text: string
}

/** What the server sends. */
export type ToClient =
  { type: 'welcome'; id: number; names: string[] } | { type: 'joined' | 'left'; name: string } | Line

export interface Line {
  type: 'said'
  name: string
  text: string
}

export const MAX_NAME_LENGTH = 32
export const MAX_TEXT_LENGTH = 500
