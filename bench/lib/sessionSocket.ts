import WebSocket from 'ws'
import { numbered } from '../../src/shared/dataFrames.ts'
import {
  ACK_EVERY,
  BATCHES_OFFER,
  SESSION_PROTOCOL,
  encodeClientAck,
  readBatch,
  readServerFrame,
  resumeEntry,
  type ResumePoint,
  type Welcome,
} from '../../src/shared/sessionProtocol.ts'

export { SESSION_PROTOCOL }
export type { Welcome }

type SendData = Parameters<WebSocket['send']>[0]
type SendCallback = (err?: Error) => void
type SendOptions = Exclude<Parameters<WebSocket['send']>[1], SendCallback | undefined>

/**
 * Every breach of the protocol any session socket saw from the server: the
 * sessions section checks it after each scenario, so a server that broke
 * the protocol never yields a figure.
 */
export const protocolProblems: string[] = []

/** What a resume offers: the session's token and the highest `g` received. */
export type ResumeFrom = ResumePoint

export interface SessionSocketOptions {
  /** Offer a resume of this session. */
  resume?: ResumeFrom | undefined
  /** Every frame goes out as a request (`c?`), so every answer is a reply. */
  requests?: boolean
  /** Offer `dws.session.batches`, as durable-websocket/client does, and unpack the batches. Default: true. */
  batches?: boolean
}

/**
 * A session client with as little cost of its own as the protocol allows,
 * so that what the bench measures is the server: every frame it sends is
 * numbered, every data frame it receives reaches the scenario's `message`
 * listener without its number, control frames never reach it (a presence
 * frame is emitted as `presence`, read, with its length), and an ack
 * goes out as often as the welcome asks (`ackEvery` frames or `ackBytes`),
 * as durable-websocket/client sends them. It keeps no resend buffer and no timer: the bench drops a socket
 * only on purpose, and reads no acknowledgement but the welcome.
 *
 * It is a `ws` WebSocket, so the scenarios written for plain sockets run on
 * it unchanged; `ws` hands every received message to `emit('message', …)`,
 * which is where the protocol is peeled off.
 */
export class SessionSocket extends WebSocket {
  #sent = 0
  #sinceAck = 0
  #sizeSinceAck = 0
  #ackEvery = ACK_EVERY
  #ackBytes = Infinity
  #resolveWelcome: ((welcome: Welcome) => void) | undefined
  /** Resolves with the welcome; the socket carries no data frame before it. */
  readonly welcomed: Promise<Welcome>
  welcome: Welcome | undefined
  /** When the welcome arrived (performance.now()), before any frame after it. */
  welcomedAt: number | undefined
  /** The highest `g` received: what a resume offers. */
  last = 0
  /** Data frames received, for a scenario that waits for a count. */
  received = 0

  /** Every frame goes out as a request (`c?`), so every answer is a reply. */
  readonly #requests: boolean

  constructor(
    url: string,
    options: WebSocket.ClientOptions,
    { resume, requests = false, batches = true }: SessionSocketOptions = {},
  ) {
    const offer = [SESSION_PROTOCOL, ...(resume === undefined ? [] : [resumeEntry(resume)])]
    super(url, batches ? [...offer, BATCHES_OFFER] : offer, options)
    this.#requests = requests
    this.welcomed = new Promise((resolve) => {
      this.#resolveWelcome = resolve
    })
  }

  /** Sends one data frame: its number, a space, the text. */
  override send(data: SendData, cb?: SendCallback): void
  override send(data: SendData, options: SendOptions, cb?: SendCallback): void
  override send(data: SendData, options?: SendOptions | SendCallback, cb?: SendCallback): void {
    if (typeof data !== 'string') throw new TypeError('the bench session client sends text only')
    const frame = numbered(++this.#sent, data, this.#requests ? '?' : '') as string
    if (typeof options === 'object') super.send(frame, options, cb)
    else super.send(frame, options)
  }

  override emit(event: string | symbol, ...args: unknown[]): boolean {
    if (event !== 'message') return super.emit(event, ...args)
    const data = args[0]
    if (!Buffer.isBuffer(data)) return super.emit(event, ...args)
    if (data[0] === OPEN_BRACE) {
      this.#control(data.toString('utf8'))
      return true
    }
    if (data[0] === OPEN_BRACKET) {
      const frames = readBatch(data.toString('utf8'))
      if (!Array.isArray(frames)) protocolProblems.push(`${frames.problem}: ${data.toString('utf8', 0, 40)}`)
      else for (const frame of frames) this.#data(Buffer.from(frame), args[1])
      return true
    }
    this.#data(data, args[1])
    return true
  }

  /** One data frame, alone or out of a batch: numbered in order, acked as the welcome asks, its payload emitted. */
  #data(data: Buffer, isBinary: unknown): void {
    const bytes = new Uint8Array(data.byteLength)
    bytes.set(data)
    const frame = readServerFrame(bytes.buffer)
    if (frame.kind !== 'data') {
      protocolProblems.push(
        `${frame.kind === 'invalid' ? frame.problem : 'an unexpected frame'}: ${data.toString('utf8', 0, 40)}`,
      )
      return
    }
    const g = frame.seq
    if (this.welcome === undefined) protocolProblems.push(`data frame ${String(g)} before the welcome`)
    if (g <= this.last) protocolProblems.push(`data frame ${String(g)} after ${String(this.last)}`)
    this.last = g
    this.received++
    const payload = Buffer.from(frame.payload as ArrayBuffer)
    this.#sizeSinceAck += payload.length
    if (++this.#sinceAck >= this.#ackEvery || this.#sizeSinceAck >= this.#ackBytes) {
      this.#sinceAck = 0
      this.#sizeSinceAck = 0
      super.send(encodeClientAck(g))
    }
    super.emit('message', payload, isBinary)
  }

  #control(text: string): void {
    const frame = readServerFrame(text)
    if (frame.kind === 'invalid') protocolProblems.push(`${frame.problem}: ${text.slice(0, 40)}`)
    if (frame.kind === 'presence') {
      // Nothing listens but the presence section (bench/lib/presence.ts), with the frame's length.
      super.emit('presence', frame.presence, text.length)
      return
    }
    if (frame.kind !== 'welcome') return
    if (this.welcome !== undefined) {
      protocolProblems.push('a second welcome')
      return
    }
    const { welcome } = frame
    this.welcomedAt = performance.now()
    this.welcome = welcome
    this.last = welcome.last
    this.#ackEvery = welcome.ackEvery ?? ACK_EVERY
    this.#ackBytes = welcome.ackBytes ?? Infinity
    this.#resolveWelcome?.(welcome)
  }
}

/** `{`: a control frame is JSON text; the bench reads it as text. */
const OPEN_BRACE = 0x7b
/** `[`: a batch of data frames. */
const OPEN_BRACKET = 0x5b
