import type { RawData } from 'ws'

/**
 * A `ws` message as text. With the default binaryType it is always one
 * Buffer, a fragmented message's pieces already joined; the other shapes only
 * exist for other binaryTypes, and are decoded the same way rather than
 * stringified as objects.
 */
export function wsText(data: RawData): string {
  if (Buffer.isBuffer(data)) return data.toString()
  if (Array.isArray(data)) return Buffer.concat(data).toString()
  return Buffer.from(data).toString()
}
