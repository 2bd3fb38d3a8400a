import { randomBytes } from 'node:crypto'
import { connect, type Socket } from 'node:net'
import { Opcode, nextFrame } from '../../tools/wsFrames.ts'

const HEADERS_END = '\r\n\r\n'

export { Opcode, clientFrame } from '../../tools/wsFrames.ts'

/**
 * Counts the server's (unmasked) frames as they stream in, keeping only the
 * bytes of a frame still arriving: a stalled reader may be sent hundreds of
 * MiB, which must not be held here.
 */
export class FrameCounter {
  #pending: Buffer = Buffer.alloc(0)
  readonly #onData: ((payload: Buffer) => void) | undefined
  /** Data frames (text, binary, continuation) received in full. */
  dataFrames = 0
  /** The status code of the server's close frame: null for one without a code, undefined before any. */
  closeCode: number | null | undefined = undefined

  /** `onData` sees each data frame's payload as it completes: a view, to be read then and not kept. */
  constructor(onData?: (payload: Buffer) => void) {
    this.#onData = onData
  }

  push(chunk: Buffer): void {
    let bytes = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk])
    let at = 0
    for (let next = nextFrame(bytes, at); next !== undefined; next = nextFrame(bytes, at)) {
      const { opcode, start, end } = next
      if (opcode === Opcode.CLOSE) {
        this.closeCode ??= end - start >= 2 ? bytes.readUInt16BE(start) : null
      } else if (opcode < 0x8) {
        this.dataFrames++
        this.#onData?.(bytes.subarray(start, end))
      }
      at = end
    }
    bytes = bytes.subarray(at)
    // A copy, so the chunk the remainder was cut from can be collected.
    this.#pending = Buffer.from(bytes)
  }
}

export interface RawSocket {
  readonly socket: Socket
  /** The status line and headers of the 101, as the server wrote them. */
  readonly head: string
  /** Sec-WebSocket-Extensions of the 101, if it had one. */
  readonly extensions: string | undefined
  /** Sec-WebSocket-Protocol of the 101, if it had one. */
  readonly protocol: string | undefined
  /** The server's frames after the 101, counted as they are read. */
  readonly frames: FrameCounter
  /** Resolves when the TCP connection has closed, with whether it ended in an error (a reset). */
  readonly ended: Promise<{ error: boolean }>
}

export interface OpenRawOptions {
  /** "Name: value" lines added to the upgrade request. */
  headers?: readonly string[]
  /**
   * Stop reading once the 101 and this many data frames after it are in (0:
   * the moment the 101 is), and resolve only then; `socket.resume()` reads on.
   */
  pauseAfterFrames?: number
  /** Called with each data frame's payload as it is read (see FrameCounter). */
  onData?: (payload: Buffer) => void
  timeoutMs: number
}

/**
 * A WebSocket client on a bare TCP socket: resolves once the server has
 * answered 101 (and sent `pauseAfterFrames` data frames, if given). From
 * there on the caller writes frames itself, and the server's frames are
 * counted (read only while the socket is not paused).
 */
export function openRaw(url: string, options: OpenRawOptions): Promise<RawSocket> {
  const { hostname, port, pathname } = new URL(url)
  const socket = connect(Number(port), hostname)
  const frames = new FrameCounter(options.onData)
  let failed = false
  socket.on('error', () => (failed = true))
  const ended = new Promise<{ error: boolean }>((resolveEnded) =>
    socket.once('close', () => resolveEnded({ error: failed })),
  )
  socket.write(
    [
      `GET ${pathname} HTTP/1.1`,
      `Host: ${hostname}:${port}`,
      'Upgrade: websocket',
      'Connection: Upgrade',
      `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}`,
      'Sec-WebSocket-Version: 13',
      ...(options.headers ?? []),
      '',
      '',
    ].join('\r\n'),
  )
  const awaited =
    options.pauseAfterFrames === undefined || options.pauseAfterFrames === 0
      ? 'the 101'
      : `the 101 and ${String(options.pauseAfterFrames)} frame(s) after it`
  return new Promise((resolveOpen, reject) => {
    let received = Buffer.alloc(0)
    const fail = (why: string): void => {
      clearTimeout(timer)
      socket.off('data', onHandshake)
      socket.off('close', onClose)
      socket.destroy()
      reject(new Error(`${url}: ${why}`))
    }
    const timer = setTimeout(
      () => fail(`no ${awaited} within ${String(options.timeoutMs)} ms`),
      options.timeoutMs,
    )
    const onHandshake = (chunk: Buffer): void => {
      received = Buffer.concat([received, chunk])
      const headEnd = received.indexOf(HEADERS_END)
      if (headEnd === -1) return
      socket.off('data', onHandshake)
      const head = received.toString('latin1', 0, headEnd)
      if (!head.startsWith('HTTP/1.1 101 ')) {
        fail(`the upgrade was answered ${head.split('\r\n', 1)[0] ?? ''}`)
        return
      }
      const opened: RawSocket = {
        socket,
        head,
        extensions: /^sec-websocket-extensions: *(.*)$/im.exec(head)?.[1],
        protocol: /^sec-websocket-protocol: *(.*)$/im.exec(head)?.[1],
        frames,
        ended,
      }
      const wanted = options.pauseAfterFrames
      let open = false
      const settle = (): void => {
        if (open || (wanted !== undefined && frames.dataFrames < wanted)) return
        open = true
        if (wanted !== undefined) socket.pause()
        clearTimeout(timer)
        socket.off('close', onClose)
        resolveOpen(opened)
      }
      // Paused in the same turn as the chunk that completed the wait, so nothing later is read.
      socket.on('data', (more: Buffer) => {
        frames.push(more)
        settle()
      })
      frames.push(received.subarray(headEnd + HEADERS_END.length))
      settle()
    }
    const onClose = (): void => fail(`closed before ${awaited}`)
    socket.on('data', onHandshake)
    socket.once('close', onClose)
  })
}
