import { readRecord } from '../core/attachment.js'
import { CloseCode } from '../core/closeCodes.js'
import { Connection, type ConnectionHost } from '../core/connection.js'
import type { EventHandlers, EventName, Incoming, Locals } from '../core/events.js'
import { exceedsBytes } from '../core/messageSize.js'
import { CLOSED } from '../core/readyState.js'
import type { BroadcastOptions, Manager, Outgoing, TaggedGroup } from '../core/manager.js'
import { toFrame } from '../core/outgoing.js'
import type { Serializer } from '../core/serializer.js'
import type { ObjectBehaviour } from './behaviour.js'
import { validateTags } from '../core/tags.js'
import { chooseProtocol } from './protocol.js'
import { checkShape, isInvalidMessage } from './validate.js'
import { log } from '../core/log.js'
import { reapIdle } from './idleReaper.js'
import { alarmNoLaterThan } from './alarm.js'
import { answerClose } from './answerClose.js'
import { fanOut } from './fanOut.js'
import { IdCounter } from './idCounter.js'

/** How long a client refused for `maxConnections` should wait before trying again, in seconds. */
const RETRY_AFTER_SECONDS = 5

/**
 * One per Durable Object instance: assigns ids, owns the sockets, and turns
 * the runtime's hibernation callbacks into handler calls. All of its state can
 * be rebuilt from durable storage and the sockets' attachments, which is what
 * happens after the object wakes from hibernation.
 */
export class WebSocketManager<Env, Data extends object, Message>
  implements Manager<Env, Data, Message>, ConnectionHost<Env, Data, Message>
{
  readonly ctx: DurableObjectState
  readonly env: Env
  readonly #behaviour: ObjectBehaviour<Env, Data, Message>
  readonly #open = new Map<number, Connection<Env, Data, Message>>()
  readonly #bySocket = new WeakMap<WebSocket, Connection<Env, Data, Message>>()
  readonly #ids: IdCounter
  #hydrated = false

  constructor(ctx: DurableObjectState, env: Env, behaviour: ObjectBehaviour<Env, Data, Message>) {
    this.ctx = ctx
    this.env = env
    this.#behaviour = behaviour
    this.#ids = new IdCounter(ctx.storage.kv)
  }

  get manager(): this {
    return this
  }

  get storage(): DurableObjectStorage {
    return this.ctx.storage
  }

  get room(): string | undefined {
    return this.ctx.id.name
  }

  get serializer(): Serializer<Message> | undefined {
    return this.#behaviour.serializer
  }

  get lastId(): number {
    return this.#ids.last
  }

  connections(tag?: string): Map<number, Connection<Env, Data, Message>> {
    if (tag === undefined) {
      this.#hydrate()
      return new Map(this.#open)
    }
    const tagged = new Map<number, Connection<Env, Data, Message>>()
    for (const conn of this.#tagged(tag)) tagged.set(conn.id, conn)
    return tagged
  }

  connection(id: number): Connection<Env, Data, Message> | undefined {
    this.#hydrate()
    return this.#open.get(id)
  }

  count(): number {
    this.#hydrate()
    return this.#open.size
  }

  ids(): number[] {
    this.#hydrate()
    return [...this.#open.keys()].sort((a, b) => a - b)
  }

  broadcast(message: Outgoing<Message>, options: BroadcastOptions = {}): number {
    this.#hydrate()
    return fanOut(this.#open.values(), toFrame(message, this.serializer), options, this.#sendFailed)
  }

  to(tag: string): TaggedGroup<Message> {
    return {
      send: (message, options = {}) =>
        fanOut(this.#tagged(tag), toFrame(message, this.serializer), options, this.#sendFailed),
    }
  }

  /** Closes connections silent for longer than `idleTimeout`; called from the object's alarm. */
  async reapIdleConnections(): Promise<void> {
    const timeout = this.#behaviour.limits.idleTimeout
    if (timeout === undefined) return
    this.#hydrate()
    const next = reapIdle(this.#open.values(), this.ctx, timeout, Date.now())
    if (next !== undefined) await alarmNoLaterThan(this.storage, next)
  }

  /** A connection whose send throws in a fan-out is closed with 1011. */
  readonly #sendFailed = (conn: Connection<Env, Data, Message>, error: unknown): void => {
    log.error(`sending to ${conn.label} failed, disconnecting it:`, error)
    this.#closeQuietly(conn, CloseCode.INTERNAL_ERROR, 'Internal Error')
  };

  *#tagged(tag: string): Generator<Connection<Env, Data, Message>> {
    for (const socket of this.ctx.getWebSockets(tag)) {
      const conn = this.#connectionFor(socket)
      if (conn !== undefined && !conn.closed) yield conn
    }
  }

  /**
   * Accepts an upgrade that the Worker already checked, and answers 101, or
   * 503 when the object is full: refused before acceptance, never accepted
   * and then dropped.
   */
  async accept(request: Request, locals: Locals): Promise<Response> {
    const { maxConnections, idleTimeout } = this.#behaviour.limits
    if (maxConnections !== undefined && this.count() >= maxConnections) {
      return new Response('Service Unavailable: this room is full, try again shortly.\n', {
        status: 503,
        headers: { 'Retry-After': String(RETRY_AFTER_SECONDS) },
      })
    }
    // Tags are checked before an id is spent, so a refused connection leaves no gap in the ids.
    const pickTags = this.#behaviour.tags
    let tags: string[] = []
    let protocol: string | undefined
    try {
      if (pickTags !== undefined) tags = validateTags(pickTags(request, locals), this.lastId + 1)
      protocol = chooseProtocol(request, locals, this.#behaviour.protocol)
    } catch (error) {
      log.error(`refusing an upgrade${this.room === undefined ? '' : ` to room ${this.room}`}:`, error)
      return new Response('Internal Server Error\n', { status: 500 })
    }
    const id = this.#ids.next()
    const pair = new WebSocketPair()
    const client = pair[0]
    const server = pair[1]
    this.ctx.acceptWebSocket(server, tags)
    // Not stored yet: the record is written once `open` is done (#persistAfter), the one write a
    // hand-written object makes too. Until then the connection lives in memory, and the object
    // cannot hibernate while `open` is still running.
    const record = { id, data: {} as Data, seen: Date.now() }
    const conn = new Connection<Env, Data, Message>(server, record, this, false)
    this.#track(conn)
    if (idleTimeout !== undefined) await alarmNoLaterThan(this.storage, Date.now() + idleTimeout)
    const opening = conn.queue.run(() => this.#invoke(conn, 'open', (open) => open(conn, request, locals)))
    if (opening !== undefined) this.ctx.waitUntil(opening)
    // Refuses permessage-deflate: the runtime inflates a frame before any size check of ours, so a
    // small compressed frame could cost 32 MiB. An empty value counts as absent and the runtime
    // would fill in the client's offer; one that names no extension it knows leaves compression
    // off on every hop to the client. test/e2e/deflate.test.ts pins it.
    const headers: Record<string, string> = { 'Sec-WebSocket-Extensions': 'no-compression' }
    if (protocol !== undefined) headers['Sec-WebSocket-Protocol'] = protocol
    return new Response(null, { status: 101, webSocket: client, headers })
  }

  webSocketMessage(socket: WebSocket, raw: string | ArrayBuffer): Promise<void> | undefined {
    const conn = this.#connectionFor(socket)
    // The flag, not the socket's state: the runtime delivers a message before the close that
    // followed it, and a message the client sent before closing is still handled.
    if (conn === undefined || conn.closeHandled) return undefined
    const limit = this.#behaviour.limits.maxMessageBytes
    if (exceedsBytes(raw, limit)) {
      log.warn(`${conn.label} sent a message over ${String(limit)} bytes, closing it with 1009`)
      this.#closeQuietly(conn, CloseCode.MESSAGE_TOO_BIG, 'Message too big')
      return undefined
    }
    // Only idle reaping reads the activity time; without it, not even the clock is read.
    if (this.#behaviour.limits.idleTimeout !== undefined) conn.touch(Date.now())
    // Deferred behind a slow handler, a message is dropped once `close` is queued.
    return conn.queue.run(() => (conn.closeHandled ? undefined : this.#onMessage(conn, raw)))
  }

  webSocketClose(socket: WebSocket, code: number, reason: string): Promise<void> | undefined {
    const conn = this.#connectionFor(socket)
    if (socket.readyState !== CLOSED) answerClose(socket, code, reason)
    if (conn === undefined || conn.closeHandled) return undefined
    return this.#finish(conn, code, reason)
  }

  webSocketError(socket: WebSocket, error: unknown): Promise<void> | undefined {
    const conn = this.#connectionFor(socket)
    log.warn(`socket error on ${conn === undefined ? 'an unknown connection' : conn.label}:`, error)
    if (conn === undefined || conn.closeHandled) return undefined
    return this.#finish(conn, 1006, '')
  }

  closedByServer(conn: Connection<Env, Data, Message>, code: number, reason: string): void {
    const closing = this.#finish(conn, code, reason)
    if (closing !== undefined) this.ctx.waitUntil(closing)
  }

  #onMessage(conn: Connection<Env, Data, Message>, raw: string | ArrayBuffer): unknown {
    const serializer = this.serializer
    if (typeof raw !== 'string' || serializer === undefined) {
      return this.#invoke(conn, 'message', (message) => message(conn, raw as Incoming<Message>))
    }
    let decoded: Message
    try {
      decoded = serializer.decode(raw)
      checkShape(this.#behaviour.validate, decoded)
    } catch (error) {
      if (this.#behaviour.handlers.get('malformed_message') === undefined) {
        // Neither the error nor the text goes into the log: both hold what the client sent.
        const what = isInvalidMessage(error) ? 'that failed validate' : 'the serializer cannot decode'
        log.warn(`${conn.label} sent a message ${what}, closing it with 1007`)
        this.#closeQuietly(conn, CloseCode.INVALID_PAYLOAD, 'Malformed message')
        return undefined
      }
      return this.#invoke(conn, 'malformed_message', (malformed) => malformed(conn, raw, error))
    }
    return this.#invoke(conn, 'message', (message) => message(conn, decoded))
  }

  /**
   * Runs one handler. Whatever it throws or rejects with is logged here and
   * costs only its own connection (closed with 1011); afterwards `data` is
   * persisted so mutations made in the handler survive hibernation.
   */
  #invoke<E extends Exclude<EventName, 'error'>>(
    conn: Connection<Env, Data, Message>,
    event: E,
    call: (handler: EventHandlers<Env, Data, Message>[E]) => unknown,
  ): unknown {
    const handler = this.#behaviour.handlers.get(event)
    if (handler === undefined) {
      // Nothing changed `data`, but the activity time still has to reach the attachment.
      this.#persistAfter(conn, event)
      return undefined
    }
    let result: unknown
    try {
      result = call(handler)
    } catch (error) {
      this.#handlerFailed(conn, event, error)
      return undefined
    }
    if (result instanceof Promise) {
      return result.then(
        () => this.#persistAfter(conn, event),
        (error: unknown) => this.#handlerFailed(conn, event, error),
      )
    }
    this.#persistAfter(conn, event)
    return undefined
  }

  /**
   * Stores `data` after a handler, unless the handler never read it: an
   * attachment write per message is the largest cost a plain echo pays
   * (bench/RESULTS.md). With idle reaping on, the activity time is stored
   * every time too, since a woken object only knows what the attachment says.
   */
  #persistAfter(conn: Connection<Env, Data, Message>, event: EventName): void {
    if (!conn.mayHaveChanged && this.#behaviour.limits.idleTimeout === undefined) return
    if (conn.closed) return
    try {
      conn.persist()
    } catch (error) {
      log.error(`after the ${event} handler, ${conn.label}:`, error)
    }
  }

  #handlerFailed(conn: Connection<Env, Data, Message>, event: EventName, error: unknown): void {
    if (conn.closed) {
      log.error(`the ${event} handler failed for ${conn.label}:`, error)
      return
    }
    log.error(`the ${event} handler failed for ${conn.label}, closing it with 1011:`, error)
    this.#closeQuietly(conn, CloseCode.INTERNAL_ERROR, 'Internal Error')
  }

  /** Removes the connection and queues `close` behind its pending handlers; runs at most once. */
  #finish(conn: Connection<Env, Data, Message>, code: number, reason: string): Promise<void> | undefined {
    conn.markCloseHandled()
    this.#open.delete(conn.id)
    return conn.queue.run(() => this.#invoke(conn, 'close', (close) => close(conn, code, reason)))
  }

  #closeQuietly(conn: Connection<Env, Data, Message>, code: number, reason = ''): void {
    try {
      conn.close(code, reason)
    } catch (error) {
      log.warn(`closing ${conn.label} failed:`, error)
      if (!conn.closeHandled) void this.#finish(conn, code, reason)
    }
  }

  #track(conn: Connection<Env, Data, Message>): void {
    this.#bySocket.set(conn.socket, conn)
    if (!conn.closed) this.#open.set(conn.id, conn)
  }

  /** After a wake the in-memory maps are empty; the attachments still know every connection. */
  #connectionFor(socket: WebSocket): Connection<Env, Data, Message> | undefined {
    const known = this.#bySocket.get(socket)
    if (known !== undefined) return known
    const record = readRecord<Data>(socket)
    if (record === undefined) return undefined
    const conn = new Connection<Env, Data, Message>(socket, record, this)
    this.#track(conn)
    return conn
  }

  #hydrate(): void {
    if (this.#hydrated) return
    for (const socket of this.ctx.getWebSockets()) this.#connectionFor(socket)
    this.#hydrated = true
  }
}
