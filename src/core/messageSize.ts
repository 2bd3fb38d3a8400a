const utf8 = new TextEncoder()

/**
 * The size of a received message in bytes. A UTF-8 character takes one to
 * three bytes per UTF-16 unit, so most strings are decided from their length
 * alone and only the ambiguous ones are encoded.
 */
export function exceedsBytes(message: string | ArrayBuffer, limit: number): boolean {
  if (typeof message !== 'string') return message.byteLength > limit
  if (message.length > limit) return true
  if (message.length * 3 <= limit) return false
  return utf8.encode(message).byteLength > limit
}
