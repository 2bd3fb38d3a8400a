import { randomBytes } from 'node:crypto'

/** RFC 6455 §5.2 opcodes the raw clients of the tests and the bench use. */
export const Opcode = { TEXT: 0x1, BINARY: 0x2, CLOSE: 0x8 } as const

/**
 * One masked client frame of any length, written by hand so a test or the
 * bench can send what no client library would: RSV1 (a compressed frame)
 * whether or not the server agreed to compress, cut frames, frames after a close.
 */
export function clientFrame(opcode: number, payload: Uint8Array, options: { rsv1?: boolean } = {}): Buffer {
  const first = 0x80 | (options.rsv1 === true ? 0x40 : 0) | opcode
  let header: Buffer
  if (payload.length < 126) {
    header = Buffer.from([first, 0x80 | payload.length])
  } else if (payload.length <= 0xffff) {
    header = Buffer.from([first, 0x80 | 126, 0, 0])
    header.writeUInt16BE(payload.length, 2)
  } else {
    header = Buffer.from([first, 0x80 | 127, 0, 0, 0, 0, 0, 0, 0, 0])
    header.writeBigUInt64BE(BigInt(payload.length), 2)
  }
  const mask = randomBytes(4)
  const masked = Buffer.from(payload)
  for (let i = 0; i < masked.length; i++) masked[i] = (masked[i] ?? 0) ^ (mask[i % 4] ?? 0)
  return Buffer.concat([header, mask, masked])
}

/** Where one unmasked server frame sits in a buffer: its opcode and its payload's bounds. */
export interface FrameBounds {
  opcode: number
  start: number
  end: number
}

/** The server frame that begins at `at`, or undefined while part of it is still to arrive. */
export function nextFrame(bytes: Buffer, at: number): FrameBounds | undefined {
  if (at + 2 > bytes.length) return undefined
  const opcode = (bytes[at] ?? 0) & 0x0f
  let length = (bytes[at + 1] ?? 0) & 0x7f
  let start = at + 2
  if (length === 126) {
    if (start + 2 > bytes.length) return undefined
    length = bytes.readUInt16BE(start)
    start += 2
  } else if (length === 127) {
    if (start + 8 > bytes.length) return undefined
    length = Number(bytes.readBigUInt64BE(start))
    start += 8
  }
  if (start + length > bytes.length) return undefined
  return { opcode, start, end: start + length }
}
