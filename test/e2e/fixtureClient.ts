import WebSocket from 'ws'
import { wsText } from '../../tools/wsText.js'
import type { ToClient, ToServer } from './fixtures/load/protocol.js'

const HANDSHAKE_MS = 30_000
const WAIT_MS = 10_000

export interface Closed {
  code: number
  reason: string
}

export interface JoinOptions {
  /** `?key=`: a name the fixture records the runtime's callbacks under. */
  key?: string
  /** `?tag=`: hibernation tags for the socket. */
  tags?: readonly string[]
  /** `?faulty`: every `echo` on this connection throws in the handler. */
  faulty?: boolean
}

type Echo = Extract<ToClient, { type: 'echo' }>

/** Every client opened here and not yet gone, so a failed test leaves no socket behind. */
const everyClient = new Set<WebSocket>()

/**
 * One `ws` client of the load fixture, past its greeting. Everything it
 * receives is kept in order, so a test reads what arrived after the fact,
 * and every wait is bounded.
 */
export class FixtureClient {
  readonly socket: WebSocket
  readonly room: string
  /** Every message after the greeting, in arrival order. */
  readonly received: ToClient[] = []
  /** Settles with the close this client saw, however the socket ended. */
  readonly closed: Promise<Closed>
  #id = 0
  #closedWith: Closed | undefined
  readonly #watchers = new Set<() => void>()

  private constructor(socket: WebSocket, room: string) {
    this.socket = socket
    this.room = room
    everyClient.add(socket)
    this.closed = new Promise((resolveClosed) => {
      socket.once('close', (code, reason) => {
        everyClient.delete(socket)
        this.#closedWith = { code, reason: reason.toString() }
        resolveClosed(this.#closedWith)
        this.#wake()
      })
    })
    socket.on('message', (data) => {
      const message = JSON.parse(wsText(data)) as ToClient
      if (message.type === 'hello' && this.#id === 0) this.#id = message.id
      else this.received.push(message)
      this.#wake()
    })
  }

  /** Opens `/ws/<room>` and resolves once the `open` handler's greeting has arrived. */
  static async join(wsOrigin: string, room: string, options: JoinOptions = {}): Promise<FixtureClient> {
    const url = new URL(`${wsOrigin}/ws/${room}`)
    if (options.key !== undefined) url.searchParams.set('key', options.key)
    for (const tag of options.tags ?? []) url.searchParams.append('tag', tag)
    if (options.faulty === true) url.searchParams.set('faulty', '')
    const socket = new WebSocket(url, { perMessageDeflate: false, handshakeTimeout: HANDSHAKE_MS })
    const client = new FixtureClient(socket, room)
    let lastError: Error | undefined
    // A refused handshake or a dropped connection reports an error, then a close; tests look at the close.
    socket.on('error', (error) => (lastError = error))
    try {
      await client.until(() => client.#id !== 0, `the greeting on ${url.pathname}`, HANDSHAKE_MS)
    } catch (error) {
      socket.terminate()
      throw lastError === undefined ? error : new Error(`${String(error)}: ${String(lastError)}`)
    }
    return client
  }

  /** The id the `open` handler greeted this connection with. */
  get id(): number {
    return this.#id
  }

  /** How the socket ended, once it has. */
  get closedWith(): Closed | undefined {
    return this.#closedWith
  }

  get isOpen(): boolean {
    return this.#closedWith === undefined && this.socket.readyState === WebSocket.OPEN
  }

  send(message: ToServer): void {
    this.socket.send(JSON.stringify(message))
  }

  echoes(): Echo[] {
    return this.received.filter((message): message is Echo => message.type === 'echo')
  }

  /** Takes the first message of this type out of `received`, waiting for it if need be. */
  async next<T extends ToClient['type']>(type: T, ms = WAIT_MS): Promise<Extract<ToClient, { type: T }>> {
    const find = (): Extract<ToClient, { type: T }> | undefined =>
      this.received.find((message): message is Extract<ToClient, { type: T }> => message.type === type)
    await this.until(() => find() !== undefined, `a ${type} message on connection ${String(this.id)}`, ms)
    const found = find()
    if (found === undefined) throw new Error(`no ${type} message on connection ${String(this.id)}`)
    this.received.splice(this.received.indexOf(found), 1)
    return found
  }

  /** Starts the closing handshake and waits (bounded) for it to finish. */
  close(code = 1000, ms = WAIT_MS): Promise<Closed> {
    if (this.isOpen) this.socket.close(code)
    return within(this.closed, `the closing handshake of connection ${String(this.id)}`, ms)
  }

  /** Resolves once `done` holds, checked on every message and on the close; fails after `ms`. */
  until(done: () => boolean, what: string, ms = WAIT_MS): Promise<void> {
    return new Promise((resolveDone, reject) => {
      const check = (): void => {
        if (!done()) {
          if (this.#closedWith !== undefined) finish(new Error(`${what}: the socket closed first`))
          return
        }
        finish()
      }
      const finish = (error?: Error): void => {
        clearTimeout(timer)
        this.#watchers.delete(check)
        if (error === undefined) resolveDone()
        else reject(error)
      }
      const timer = setTimeout(
        () => finish(new Error(`gave up after ${String(ms)} ms waiting for ${what}`)),
        ms,
      )
      this.#watchers.add(check)
      check()
    })
  }

  #wake(): void {
    for (const check of [...this.#watchers]) check()
  }
}

/** Drops every client still open, without a close frame: for `afterAll`, after a failure. */
export function terminateAll(): void {
  for (const socket of everyClient) socket.terminate()
}

/** Opens `count` clients, at most `concurrency` handshakes at a time; `open(i)` opens the i-th. */
export async function joinMany(
  count: number,
  concurrency: number,
  open: (index: number) => Promise<FixtureClient>,
): Promise<FixtureClient[]> {
  const clients: FixtureClient[] = []
  let next = 0
  const lane = async (): Promise<void> => {
    for (let index = next++; index < count; index = next++) clients[index] = await open(index)
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, lane))
  return clients
}

/** Rejects if `promise` has not settled within `ms`. */
export function within<T>(promise: Promise<T>, what: string, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`gave up after ${String(ms)} ms waiting for ${what}`)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}
