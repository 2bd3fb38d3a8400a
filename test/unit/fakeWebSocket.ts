import type { WebSocketConstructor } from '../../src/client/index.js'

type Sent = string | ArrayBuffer | ArrayBufferView

/**
 * One socket the client made, driven by the test as a server would drive
 * it: `accept` answers the handshake, `receive` delivers a frame, `drop`
 * and `refuse` end it. Everything the client writes lands in `sent`.
 */
export interface FakeSocket {
  readonly url: string
  /** What the client offered in Sec-WebSocket-Protocol, in order. */
  readonly offered: readonly string[]
  readonly sent: Sent[]
  /** The code and reason of the client's own close(), if it called it. */
  closedWith: { code: number | undefined; reason: string | undefined } | undefined
  /** The 101: `protocol` is the subprotocol it names, '' for none. */
  accept(protocol?: string): void
  /** A failed handshake, as browsers and Node 22 report it: error, then close 1006. */
  refuse(): void
  receive(data: string | ArrayBuffer): void
  /** The connection ends with this code: 1006 is a cut without a close frame. */
  drop(code?: number, reason?: string): void
  /** The text frames sent, the binary ones as `<bytes:…>` with their ASCII. */
  texts(): string[]
}

export interface FakeWebSockets {
  WebSocket: WebSocketConstructor
  /** Every socket made so far, oldest first. */
  readonly made: FakeSocket[]
  /** The newest socket; throws when there is none. */
  last(): FakeSocket
}

const decoder = new TextDecoder()

export function fakeWebSockets(): FakeWebSockets {
  const made: FakeSocket[] = []
  class FakeWebSocket implements FakeSocket {
    readonly url: string
    readonly offered: readonly string[]
    readonly sent: Sent[] = []
    closedWith: FakeSocket['closedWith']
    readyState = 0
    protocol = ''
    binaryType = 'blob'
    onopen: (() => void) | null = null
    onmessage: ((event: { data: unknown }) => void) | null = null
    onclose: ((event: { code: number; reason: string; wasClean: boolean }) => void) | null = null
    onerror: (() => void) | null = null

    constructor(url: string, protocols?: string | string[]) {
      this.url = url
      this.offered = protocols === undefined ? [] : typeof protocols === 'string' ? [protocols] : protocols
      made.push(this)
    }

    send(data: Sent): void {
      if (this.readyState !== 1) throw new Error(`send() on a socket in state ${String(this.readyState)}`)
      this.sent.push(data)
    }

    close(code?: number, reason?: string): void {
      this.closedWith = { code, reason }
      if (this.readyState === 1) this.readyState = 2
    }

    accept(protocol = ''): void {
      this.readyState = 1
      this.protocol = protocol
      this.onopen?.()
    }

    refuse(): void {
      this.readyState = 3
      this.onerror?.()
      this.onclose?.({ code: 1006, reason: '', wasClean: false })
    }

    receive(data: string | ArrayBuffer): void {
      this.onmessage?.({ data })
    }

    drop(code = 1006, reason = ''): void {
      this.readyState = 3
      this.onclose?.({ code, reason, wasClean: code !== 1006 })
    }

    texts(): string[] {
      return this.sent.map((frame) => {
        if (typeof frame === 'string') return frame
        const bytes = ArrayBuffer.isView(frame)
          ? new Uint8Array(frame.buffer, frame.byteOffset, frame.byteLength)
          : new Uint8Array(frame)
        return `<bytes:${decoder.decode(bytes)}>`
      })
    }
  }
  return {
    WebSocket: FakeWebSocket,
    made,
    last: () => {
      const socket = made.at(-1)
      if (socket === undefined) throw new Error('the client made no socket yet')
      return socket
    },
  }
}

/** A Storage-like map, so a test can look at what was kept and hand it to a second client, as a reload would. */
export function memoryStore(): Map<string, string> & {
  getItem(key: string): string | null
  setItem(key: string, value: string): void
  removeItem(key: string): void
} {
  const map = new Map<string, string>()
  return Object.assign(map, {
    getItem: (key: string) => map.get(key) ?? null,
    setItem: (key: string, value: string) => void map.set(key, value),
    removeItem: (key: string) => void map.delete(key),
  })
}
