import { exports } from 'cloudflare:workers'
import { DEFAULT_ROOM } from '../../src/shared/roomName.js'

/** How long a test waits for something the fixture should do at once. */
const PATIENCE_MS = 2_000

export interface Closed {
  code: number
  reason: string
  wasClean: boolean
}

/** Sends a request to the fixture worker's default export, as a client on the network would. */
export function request(path: string, init: RequestInit = {}): Promise<Response> {
  return exports.default.fetch(`http://fixture.test${path}`, init)
}

/** The handshake alone: the Response, whether or not it is a 101. */
export function upgrade(path: string, headers: Record<string, string> = {}): Promise<Response> {
  return request(path, { headers: { Upgrade: 'websocket', ...headers } })
}

/**
 * Opens a WebSocket to the fixture, failing with the response body if it is not a 101.
 * With `allowHalfOpen`, the client does not answer the server's close frame by itself:
 * the test answers it with close(), whenever it chooses.
 */
export async function connect(
  path: string,
  headers: Record<string, string> = {},
  options: WebSocketAcceptOptions = {},
): Promise<Client> {
  const response = await upgrade(path, headers)
  if (response.status !== 101 || response.webSocket === null) {
    throw new Error(`expected 101 from ${path}, got ${String(response.status)}: ${await response.text()}`)
  }
  return new Client(response.webSocket, options)
}

/** Connects to an endpoint that greets each connection with its id, as text, and reads that id. */
export async function join(path: string): Promise<{ client: Client; id: number }> {
  const client = await connect(path)
  return { client, id: Number(await client.nextText()) }
}

/** Connects to an endpoint that greets each connection with a JSON object, and reads that object. */
export async function joinJson<Greeting extends object>(
  path: string,
  headers: Record<string, string> = {},
): Promise<{ client: Client } & Greeting> {
  const client = await connect(path, headers)
  return { client, ...(await client.nextJson<Greeting>()) }
}

/**
 * The client end of one socket: an inbox of frames, and the close event as a
 * promise. Every wait fails after PATIENCE_MS, so a broken behaviour fails the
 * test instead of hanging it.
 */
export class Client {
  readonly socket: WebSocket
  readonly closed: Promise<Closed>
  #closeEvent: Closed | undefined
  readonly #inbox: (string | ArrayBuffer)[] = []
  #wake: (() => void) | undefined

  constructor(socket: WebSocket, options: WebSocketAcceptOptions = {}) {
    this.socket = socket
    socket.binaryType = 'arraybuffer'
    this.closed = new Promise((resolve) => {
      socket.addEventListener('close', (event) => {
        this.#closeEvent = { code: event.code, reason: event.reason, wasClean: event.wasClean }
        resolve(this.#closeEvent)
        this.#wake?.()
      })
    })
    socket.addEventListener('message', (event) => {
      this.#inbox.push(event.data as string | ArrayBuffer)
      this.#wake?.()
    })
    // The runtime reports "Network connection lost" after some closes; the close event says what happened.
    socket.addEventListener('error', () => undefined)
    socket.accept(options)
  }

  get isOpen(): boolean {
    return this.#closeEvent === undefined && this.socket.readyState === WebSocket.OPEN
  }

  send(message: string | ArrayBuffer | ArrayBufferView): void {
    this.socket.send(message)
  }

  sendJson(value: unknown): void {
    this.socket.send(JSON.stringify(value))
  }

  close(code?: number, reason?: string): void {
    this.socket.close(code, reason)
  }

  /** The next frame; fails if the socket closes first or nothing comes within `patience` ms. */
  async next(patience = PATIENCE_MS): Promise<string | ArrayBuffer> {
    const deadline = Date.now() + patience
    for (;;) {
      const frame = this.#inbox.shift()
      if (frame !== undefined) return frame
      if (this.#closeEvent !== undefined) {
        throw new Error(
          `socket closed (${String(this.#closeEvent.code)} ${this.#closeEvent.reason}) before a message came`,
        )
      }
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`no message within ${String(patience)} ms`)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left)
        this.#wake = () => {
          clearTimeout(timer)
          resolve()
        }
      })
      this.#wake = undefined
    }
  }

  async nextText(): Promise<string> {
    const frame = await this.next()
    if (typeof frame !== 'string')
      throw new Error(`expected a text frame, got ${String(frame.byteLength)} bytes`)
    return frame
  }

  async nextBytes(): Promise<number[]> {
    const frame = await this.next()
    if (typeof frame === 'string')
      throw new Error(`expected a binary frame, got text ${JSON.stringify(frame)}`)
    return [...new Uint8Array(frame)]
  }

  async nextJson<T = Record<string, unknown>>(): Promise<T> {
    return JSON.parse(await this.nextText()) as T
  }

  /** Sends one text frame and returns the next frame, as text. */
  async ask(message: string): Promise<string> {
    this.send(message)
    return this.nextText()
  }

  async askJson<T = Record<string, unknown>>(value: unknown): Promise<T> {
    this.sendJson(value)
    return this.nextJson<T>()
  }

  /** The close event; fails if it does not come in time. */
  async whenClosed(): Promise<Closed> {
    return within(this.closed, 'the socket to close')
  }
}

/** Closes each client that is still open with 1000 and waits until the server has answered. */
export async function leave(...clients: Client[]): Promise<void> {
  await Promise.all(
    clients.map((client) => {
      if (client.isOpen) client.close(1000, 'test done')
      return client.whenClosed()
    }),
  )
}

/** The object every connection of a mount goes to. */
export function stubOf<T extends Rpc.DurableObjectBranded | undefined>(
  namespace: DurableObjectNamespace<T>,
): DurableObjectStub<T> {
  return namespace.get(namespace.idFromName(DEFAULT_ROOM))
}

/** Polls until `accept` holds, for things that happen after the socket is gone (a close handler). */
export async function eventually<T>(read: () => T | Promise<T>, accept: (value: T) => boolean): Promise<T> {
  const deadline = Date.now() + PATIENCE_MS
  for (;;) {
    const value = await read()
    if (accept(value)) return value
    if (Date.now() > deadline)
      throw new Error(
        `condition not met within ${String(PATIENCE_MS)} ms; last value: ${JSON.stringify(value)}`,
      )
    await sleep(10)
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

function within<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => {
      reject(new Error(`timed out waiting for ${what}`))
    }, PATIENCE_MS)
  })
  return Promise.race([promise, timeout]).finally(() => {
    if (timer !== undefined) clearTimeout(timer)
  })
}
