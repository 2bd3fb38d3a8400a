import { randomBytes } from 'node:crypto'
import { connect, type Socket } from 'node:net'
import { within } from './fixtureClient.js'

const WAIT_MS = 10_000
const HEADERS_END = '\r\n\r\n'

/** RFC 6455 §5.2 opcodes used here. */
export const Opcode = { TEXT: 0x1, BINARY: 0x2, CLOSE: 0x8 } as const

export interface FrameOptions {
  /** Sets RSV1, which no extension was negotiated for: a protocol error for the receiver. */
  rsv1?: boolean
}

/**
 * One masked client frame, written by hand so a test can send what no
 * client library would: reserved bits, cut frames, frames after a close.
 */
export function frame(opcode: number, payload: Uint8Array | string, options: FrameOptions = {}): Buffer {
  const body = Buffer.from(payload)
  if (body.length > 0xffff) throw new RangeError('frame() writes payloads of up to 65,535 bytes')
  const first = 0x80 | (options.rsv1 === true ? 0x40 : 0) | opcode
  const length = body.length < 126 ? [0x80 | body.length] : [0x80 | 126, body.length >> 8, body.length & 0xff]
  const mask = randomBytes(4)
  const masked = Uint8Array.from(body, (byte: number, i: number) => byte ^ (mask[i % 4] ?? 0))
  return Buffer.concat([Buffer.from([first, ...length]), mask, masked])
}

/** A close frame with a status code. */
export function closeFrame(code: number): Buffer {
  return frame(Opcode.CLOSE, Buffer.from([code >> 8, code & 0xff]))
}

export interface ServerFrame {
  opcode: number
  payload: Buffer
}

/**
 * A WebSocket client on a bare TCP socket: the handshake is done, and from
 * there on the test writes bytes and reads the server's frames itself.
 */
export interface RawSocket {
  readonly socket: Socket
  /** The status line and headers of the 101, as the server wrote them. */
  readonly head: string
  /** The server's frames so far (it never masks them). */
  frames(): ServerFrame[]
  /** Resolves when the TCP connection has closed. */
  readonly ended: Promise<void>
}

/**
 * Opens `path` on `origin` (`http://host:port`) and resolves once the server
 * has answered 101. `headers` ("Name: value" lines) go into the upgrade request.
 */
export async function openRaw(origin: string, path: string, headers: string[] = []): Promise<RawSocket> {
  const { hostname, port } = new URL(origin)
  const socket = connect(Number(port), hostname)
  let buffer = Buffer.alloc(0)
  socket.on('data', (chunk: Buffer) => (buffer = Buffer.concat([buffer, chunk])))
  // A reset is one of the ways these tests end a socket; `ended` reports it.
  socket.on('error', () => undefined)
  const ended = new Promise<void>((resolveEnded) => socket.once('close', () => resolveEnded()))
  await within(
    new Promise<void>((resolveConnect) => socket.once('connect', () => resolveConnect())),
    `a TCP connection to ${origin}`,
    WAIT_MS,
  )
  socket.write(
    [
      `GET ${path} HTTP/1.1`,
      `Host: ${hostname}:${port}`,
      'Upgrade: websocket',
      'Connection: Upgrade',
      `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}`,
      'Sec-WebSocket-Version: 13',
      ...headers,
      '',
      '',
    ].join('\r\n'),
  )
  await within(
    new Promise<void>((resolveHeaders, reject) => {
      const check = (): void => {
        if (!buffer.includes(HEADERS_END)) return
        socket.off('data', check)
        const status = buffer.toString('latin1', 0, buffer.indexOf('\r\n'))
        if (status.includes(' 101 ')) resolveHeaders()
        else reject(new Error(`the upgrade of ${path} was answered ${status}`))
      }
      socket.on('data', check)
      check()
    }),
    `the handshake of ${path}`,
    WAIT_MS,
  )
  return {
    socket,
    head: buffer.toString('latin1', 0, buffer.indexOf(HEADERS_END)),
    ended,
    frames: () => parseFrames(buffer.subarray(buffer.indexOf(HEADERS_END) + HEADERS_END.length)),
  }
}

/** Splits unmasked server frames; a frame still arriving is left out. */
function parseFrames(bytes: Buffer): ServerFrame[] {
  const frames: ServerFrame[] = []
  let at = 0
  while (at + 2 <= bytes.length) {
    const opcode = (bytes[at] ?? 0) & 0x0f
    let length = (bytes[at + 1] ?? 0) & 0x7f
    let start = at + 2
    if (length === 126) {
      if (start + 2 > bytes.length) break
      length = bytes.readUInt16BE(start)
      start += 2
    } else if (length === 127) {
      if (start + 8 > bytes.length) break
      length = Number(bytes.readBigUInt64BE(start))
      start += 8
    }
    if (start + length > bytes.length) break
    frames.push({ opcode, payload: bytes.subarray(start, start + length) })
    at = start + length
  }
  return frames
}
