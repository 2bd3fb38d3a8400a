import type { Frame } from './serializer.js'

const utf8 = new TextEncoder()

/**
 * Whether a frame is over `limit` bytes on the wire (UTF-8 for text). A
 * UTF-8 character takes one to three bytes per UTF-16 unit, so most text is
 * decided from its length alone and only the ambiguous is encoded.
 */
export function exceedsBytes(frame: Frame, limit: number): boolean {
  if (typeof frame !== 'string') return frame.byteLength > limit
  if (frame.length > limit) return true
  return frame.length * 3 > limit && utf8.encode(frame).byteLength > limit
}

/**
 * What a frame counts for in `maxQueued` and `sendWindow` (and a client's
 * `ackBytes`): UTF-16 units for text, bytes for binary.
 */
export function sizeOf(frame: Frame): number {
  return typeof frame === 'string' ? frame.length : frame.byteLength
}
