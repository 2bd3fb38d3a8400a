import { readRecord } from '../core/attachment.js'
import { CloseCode, isSendableCloseCode } from '../core/closeCodes.js'
import { Connection, type ConnectionHost } from '../core/connection.js'
import type { EventHandlers, EventName, HandlerRegistry, Incoming, Locals } from '../core/events.js'
import type { BroadcastOptions, Manager, ObjectRouter } from '../core/manager.js'
import { toFrame } from '../core/outgoing.js'
import type { Serializer } from '../core/serializer.js'
import { log } from '../core/log.js'

/** The slice of a module that the object runs. */
export interface ObjectBehaviour<Env, Data extends object, Message> {
  readonly handlers: HandlerRegistry<Env, Data, Message>
  readonly serializer: Serializer<Message> | undefined
  readonly objectRouter: ObjectRouter<Env, Data, Message> | undefined
}

const LAST_ID_KEY = 'durable-websocket:last-connection-id'

/**
 * Close codes the runtime reports when no close frame arrived (1006: the peer
 * vanished; 1015: TLS failed), so there is nothing to answer. 1005 is not one
 * of them: it is a close frame with no code, which must be answered too.
 */
const NO_CLOSE_FRAME_CODES = new Set([1006, 1015])

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
  #hydrated = false
  #lastId: number | undefined

  constructor(ctx: DurableObjectState, env: Env, behaviour: ObjectBehaviour<Env, Data, Message>) {
    this.ctx = ctx
    this.env = env
    this.#behaviour = behaviour
  }

  get manager(): this {
    return this
  }

  get storage(): DurableObjectStorage {
    return this.ctx.storage
  }

  get name(): string | undefined {
    return this.ctx.id.name
  }

  get serializer(): Serializer<Message> | undefined {
    return this.#behaviour.serializer
  }

  get lastId(): number {
    this.#lastId ??= this.storage.kv.get<number>(LAST_ID_KEY) ?? 0
    return this.#lastId
  }

  connections(): Map<number, Connection<Env, Data, Message>> {
    this.#hydrate()
    return new Map(this.#open)
  }

  broadcast(message: Message | ArrayBuffer | ArrayBufferView, options: BroadcastOptions = {}): number {
    const frame = toFrame(message, this.serializer)
    const except = options.except
    this.#hydrate()
    let sent = 0
    for (const conn of this.#open.values()) {
      if (
        except !== undefined &&
        (typeof except === 'number' ? except === conn.id : except.includes(conn.id))
      ) {
        continue
      }
      try {
        if (conn.sendFrame(frame)) sent++
      } catch (error) {
        log.error(`broadcast to connection ${String(conn.id)} failed, disconnecting it:`, error)
        this.#closeQuietly(conn, CloseCode.INTERNAL_ERROR)
      }
    }
    return sent
  }

  /** Accepts an upgrade that the Worker already checked, and answers 101. */
  accept(request: Request, locals: Locals): Response {
    const pair = new WebSocketPair()
    const client = pair[0]
    const server = pair[1]
    this.ctx.acceptWebSocket(server)
    const conn = new Connection<Env, Data, Message>(server, { id: this.#nextId(), data: {} as Data }, this)
    conn.persist()
    this.#track(conn)
    const opening = conn.queue.run(() => this.#invoke(conn, 'open', (open) => open(conn, request, locals)))
    if (opening !== undefined) this.ctx.waitUntil(opening)
    return new Response(null, { status: 101, webSocket: client })
  }

  webSocketMessage(socket: WebSocket, raw: string | ArrayBuffer): Promise<void> | undefined {
    const conn = this.#connectionFor(socket)
    if (conn === undefined || conn.closed) return undefined
    return conn.queue.run(() => (conn.closed ? undefined : this.#onMessage(conn, raw)))
  }

  webSocketClose(socket: WebSocket, code: number, reason: string): Promise<void> | undefined {
    const conn = this.#connectionFor(socket)
    if (!NO_CLOSE_FRAME_CODES.has(code) && socket.readyState !== WebSocket.CLOSED) {
      // workerd does not answer a close frame on a hibernatable socket itself, not even at
      // compatibility date 2026-10-23 (test/workerd/runtime.test.ts pins this).
      this.#closeSocketQuietly(socket, code, reason)
    }
    if (conn === undefined || conn.closeHandled) return undefined
    return this.#finish(conn, code, reason)
  }

  webSocketError(socket: WebSocket, error: unknown): Promise<void> | undefined {
    const conn = this.#connectionFor(socket)
    log.warn(`socket error on connection ${conn === undefined ? '(unknown)' : String(conn.id)}:`, error)
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
    } catch (error) {
      if (this.#behaviour.handlers.get('malformed_message') === undefined) {
        log.warn(
          `connection ${String(conn.id)} sent a message the serializer cannot decode, closing it with 1007`,
        )
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
    if (handler === undefined) return undefined
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

  #persistAfter(conn: Connection<Env, Data, Message>, event: EventName): void {
    if (conn.closed) return
    try {
      conn.persist()
    } catch (error) {
      log.error(`after the ${event} handler, connection ${String(conn.id)}:`, error)
    }
  }

  #handlerFailed(conn: Connection<Env, Data, Message>, event: EventName, error: unknown): void {
    if (conn.closed) {
      log.error(`the ${event} handler failed for connection ${String(conn.id)}:`, error)
      return
    }
    log.error(`the ${event} handler failed for connection ${String(conn.id)}, closing it with 1011:`, error)
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
      log.warn(`closing connection ${String(conn.id)} failed:`, error)
      if (!conn.closeHandled) void this.#finish(conn, code, reason)
    }
  }

  #closeSocketQuietly(socket: WebSocket, code: number, reason: string): void {
    try {
      // Echo the peer's code where it may be sent back; 1005 (no code) and codes reserved for
      // reporting get an empty close frame, which is always valid.
      if (isSendableCloseCode(code)) socket.close(code, reason)
      else socket.close()
    } catch {
      // Already closed by the runtime: nothing left to answer.
    }
  }

  #nextId(): number {
    const id = this.lastId + 1
    this.storage.kv.put(LAST_ID_KEY, id)
    this.#lastId = id
    return id
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
