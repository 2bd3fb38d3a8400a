import { randomBytes } from 'node:crypto'
import { connect, type Socket } from 'node:net'
import { Opcode, clientFrame, nextFrame } from '../../tools/wsFrames.js'
import { within } from './fixtureClient.js'

const WAIT_MS = 10_000
const HEADERS_END = '\r\n\r\n'

export { Opcode } from '../../tools/wsFrames.js'

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
  return clientFrame(opcode, body, options)
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
  for (let next = nextFrame(bytes, at); next !== undefined; next = nextFrame(bytes, at)) {
    frames.push({ opcode: next.opcode, payload: bytes.subarray(next.start, next.end) })
    at = next.end
  }
  return frames
}
