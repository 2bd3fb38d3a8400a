import WebSocket from 'ws'

/** The subprotocol a session client offers first (docs/protocol.md §1). */
export const SESSION_PROTOCOL = 'dws.session.v1'
/** durable-websocket/client acknowledges after this many data frames when the welcome does not say (docs/protocol.md §5). */
const ACK_EVERY = 32
const SPACE = 0x20
const ZERO = 0x30
const NINE = 0x39
const OPEN_BRACE = 0x7b

type SendData = Parameters<WebSocket['send']>[0]
type SendCallback = (err?: Error) => void
type SendOptions = Exclude<Parameters<WebSocket['send']>[1], SendCallback | undefined>

/** The server's first frame on a session socket (docs/protocol.md §4). */
export interface Welcome {
  id: number
  token: string
  resumed: boolean
  handled: number
  last: number
  window: number
  ackEvery?: number
  ackBytes?: number
}

/**
 * Every breach of the protocol any session socket saw from the server: the
 * sessions section checks it after each scenario, so a server that broke
 * the protocol never yields a figure.
 */
export const protocolProblems: string[] = []

/** What a resume offers: the session's token and the highest `g` received. */
export interface ResumeFrom {
  token: string
  last: number
}

/**
 * A session client with as little cost of its own as the protocol allows,
 * so that what the bench measures is the server: every frame it sends is
 * numbered, every data frame it receives reaches the scenario's `message`
 * listener without its number, control frames never reach it, and an ack
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

  constructor(url: string, options: WebSocket.ClientOptions, resume?: ResumeFrom) {
    const offer =
      resume === undefined
        ? [SESSION_PROTOCOL]
        : [SESSION_PROTOCOL, `dws.resume.${String(resume.last)}.${resume.token}`]
    super(url, offer, options)
    this.welcomed = new Promise((resolve) => {
      this.#resolveWelcome = resolve
    })
  }

  /** Sends one data frame: its number, a space, the text. */
  override send(data: SendData, cb?: SendCallback): void
  override send(data: SendData, options: SendOptions, cb?: SendCallback): void
  override send(data: SendData, options?: SendOptions | SendCallback, cb?: SendCallback): void {
    if (typeof data !== 'string') throw new TypeError('the bench session client sends text only')
    const frame = `${String(++this.#sent)} ${data}`
    if (typeof options === 'object') super.send(frame, options, cb)
    else super.send(frame, options)
  }

  override emit(event: string | symbol, ...args: unknown[]): boolean {
    if (event !== 'message') return super.emit(event, ...args)
    const data = args[0]
    if (!Buffer.isBuffer(data)) return super.emit(event, ...args)
    if (data[0] === OPEN_BRACE) {
      this.#control(data)
      return true
    }
    const space = data.indexOf(SPACE)
    const g = space < 1 ? undefined : digits(data, space)
    if (g === undefined) {
      protocolProblems.push(`a frame that is neither data nor control: ${data.toString('utf8', 0, 40)}`)
      return true
    }
    if (this.welcome === undefined) protocolProblems.push(`data frame ${String(g)} before the welcome`)
    if (g <= this.last) protocolProblems.push(`data frame ${String(g)} after ${String(this.last)}`)
    this.last = g
    this.received++
    this.#sizeSinceAck += data.length - space - 1
    if (++this.#sinceAck >= this.#ackEvery || this.#sizeSinceAck >= this.#ackBytes) {
      this.#sinceAck = 0
      this.#sizeSinceAck = 0
      super.send(`{"t":"ack","last":${String(g)}}`)
    }
    return super.emit('message', data.subarray(space + 1), args[1])
  }

  #control(data: Buffer): void {
    const frame = JSON.parse(data.toString('utf8')) as { t?: unknown } & Partial<Welcome>
    if (frame.t !== 'welcome') return
    if (this.welcome !== undefined) {
      protocolProblems.push('a second welcome')
      return
    }
    const welcome = frame as Welcome
    this.welcomedAt = performance.now()
    this.welcome = welcome
    this.last = welcome.last
    this.#ackEvery = welcome.ackEvery ?? ACK_EVERY
    this.#ackBytes = welcome.ackBytes ?? Infinity
    this.#resolveWelcome?.(welcome)
  }
}

/** The decimal number in `data[0..end)`, or undefined when anything there is not a digit. */
function digits(data: Buffer, end: number): number | undefined {
  let value = 0
  for (let i = 0; i < end; i++) {
    const byte = data[i] ?? 0
    if (byte < ZERO || byte > NINE) return undefined
    value = value * 10 + (byte - ZERO)
  }
  return value
}
