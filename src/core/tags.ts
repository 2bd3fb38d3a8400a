import { DurableWebSocketError, describe } from './errors.js'

/** workerd's limits for hibernation tags: at most 10 per socket, each at most 256 characters. */
export const MAX_TAGS = 10
export const MAX_TAG_LENGTH = 256

export function validateTags(tags: unknown, connectionId: number): string[] {
  const label = `the tags of connection ${String(connectionId)}`
  if (!Array.isArray(tags)) {
    throw new DurableWebSocketError(
      'ERR_DWS_INVALID_TAGS',
      `${label} must be an array of strings, got ${describe(tags)}.`,
    )
  }
  if (tags.length > MAX_TAGS) {
    throw new DurableWebSocketError(
      'ERR_DWS_INVALID_TAGS',
      `${label}: ${String(tags.length)} tags, but a socket may carry at most ${String(MAX_TAGS)}.`,
    )
  }
  for (const tag of tags as unknown[]) {
    if (typeof tag !== 'string' || tag.length === 0 || tag.length > MAX_TAG_LENGTH) {
      throw new DurableWebSocketError(
        'ERR_DWS_INVALID_TAGS',
        `${label}: each tag must be a string of 1 to ${String(MAX_TAG_LENGTH)} characters, got ${typeof tag === 'string' ? `${String(tag.length)} characters` : describe(tag)}.`,
      )
    }
  }
  return tags as string[]
}
