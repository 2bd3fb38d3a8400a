import WebSocket from 'ws'
import { wsText } from '../../tools/wsText.js'

const WAIT_MS = 10_000

export interface Closed {
  code: number
  reason: string
}

/**
 * A real `ws` client that queues what it receives, so a test can send first
 * and read the answers in order afterwards. Every wait is bounded.
 */
export interface TestClient {
  readonly socket: WebSocket
  /** Sends a value as JSON text. */
  send(value: unknown): void
  /** Sends text as it is, JSON or not. */
  sendText(text: string): void
  /** The next message, JSON-decoded. Rejects if the socket closes first or nothing comes in time. */
  next(): Promise<unknown>
  /** Settles with the close the client saw, however the socket ended. */
  readonly closed: Promise<Closed>
  /** Starts the closing handshake and waits (bounded) for it to finish. */
  close(code?: number): Promise<Closed>
  /** Drops the TCP connection without a close frame. */
  terminate(): void
}

export function connect(url: string): Promise<TestClient> {
  const socket = new WebSocket(url)
  const inbox: unknown[] = []
  const readers: ((message: unknown) => void)[] = []
  let lastError: Error | undefined
  socket.on('message', (data, isBinary) => {
    const message: unknown = isBinary ? data : JSON.parse(wsText(data))
    const reader = readers.shift()
    if (reader === undefined) inbox.push(message)
    else reader(message)
  })
  // A refused handshake or a dropped connection reports an error, then a close; tests look at the close.
  socket.on('error', (error) => (lastError = error))
  const closed = new Promise<Closed>((resolveClosed) => {
    socket.once('close', (code, reason) => resolveClosed({ code, reason: reason.toString() }))
  })

  const client: TestClient = {
    socket,
    closed,
    send: (value) => socket.send(JSON.stringify(value)),
    sendText: (text) => socket.send(text),
    next: () => {
      if (inbox.length > 0) return Promise.resolve(inbox.shift())
      return new Promise((resolveMessage, reject) => {
        const reader = (message: unknown): void => {
          clearTimeout(timer)
          resolveMessage(message)
        }
        const timer = setTimeout(() => {
          readers.splice(readers.indexOf(reader), 1)
          reject(new Error(`no message came within ${String(WAIT_MS)} ms`))
        }, WAIT_MS)
        readers.push(reader)
        void closed.then(({ code }) => {
          clearTimeout(timer)
          reject(new Error(`the socket closed (${String(code)}) before the next message came`))
        })
      })
    },
    close: (code = 1000) => {
      socket.close(code)
      return within(closed, 'the closing handshake')
    },
    terminate: () => socket.terminate(),
  }

  return within(
    new Promise<TestClient>((resolveOpen, reject) => {
      socket.once('open', () => resolveOpen(client))
      void closed.then(({ code }) => {
        reject(
          new Error(`the socket to ${url} closed (${String(code)}) before it opened: ${String(lastError)}`),
        )
      })
    }),
    `the handshake to ${url}`,
  )
}

export function connectMany(url: string, count: number): Promise<TestClient[]> {
  return Promise.all(Array.from({ length: count }, () => connect(url)))
}

/** Rejects if `promise` has not settled within the bound. */
export function within<T>(promise: Promise<T>, what: string, ms = WAIT_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`gave up waiting for ${what} after ${String(ms)} ms`)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}
