import { readRecord, writeRecord, type ConnectionRecord } from './attachment.js'
import { CloseCode, validateClose } from './closeCodes.js'
import { DurableWebSocketError, describe } from './errors.js'
import { log } from './log.js'
import type { Manager, Outgoing } from './manager.js'
import { toFrame } from './outgoing.js'
import { OPEN } from './readyState.js'
import { SerialQueue } from './serialQueue.js'

/** What a connection needs from the object that owns it. */
export interface ConnectionHost<Env, Data extends object, Message> {
  readonly manager: Manager<Env, Data, Message>
  /** Called once, when the server side starts the close. */
  closedByServer(conn: Connection<Env, Data, Message>, code: number, reason: string): void
}

/**
 * One client socket: its stable id, the user's data (persisted in the
 * socket's attachment so it survives hibernation) and the ways to talk to it.
 */
export class Connection<Env = unknown, Data extends object = Record<string, unknown>, Message = unknown> {
  readonly id: number
  readonly socket: WebSocket
  /** @internal Messages and lifecycle events of this connection run through here, one at a time. */
  readonly queue = new SerialQueue()
  readonly #host: ConnectionHost<Env, Data, Message>
  #data: Data
  #closeHandled: boolean
  #dataExposed = false
  #stored: boolean
  #seen: number

  /**
   * `stored` is false for a connection just accepted: its record is written
   * once, after `open`, rather than once before and again after.
   */
  constructor(
    socket: WebSocket,
    record: ConnectionRecord<Data>,
    host: ConnectionHost<Env, Data, Message>,
    stored = true,
  ) {
    this.socket = socket
    this.id = record.id
    this.#data = record.data
    this.#closeHandled = record.closing === true
    this.#seen = record.seen
    this.#stored = stored
    this.#host = host
  }

  get manager(): Manager<Env, Data, Message> {
    return this.#host.manager
  }

  /** How logs name this connection: its id and room, never anything the client sent. */
  get label(): string {
    const room = this.room
    return room === undefined
      ? `connection ${String(this.id)}`
      : `connection ${String(this.id)} in room ${room}`
  }

  /** The room (the object's name) this connection belongs to. */
  get room(): string | undefined {
    return this.#host.manager.room
  }

  /** The hibernation tags the socket was accepted with. */
  get tags(): string[] {
    return this.#host.manager.ctx.getTags(this.socket)
  }

  /** @internal True when the record was never written, or `data` was handed out since, so it may have changed. */
  get mayHaveChanged(): boolean {
    return this.#dataExposed || !this.#stored
  }

  /** @internal When the client last sent a message, in ms since the epoch. */
  get seen(): number {
    return this.#seen
  }

  /** @internal Records activity; it reaches the attachment with the next persist. */
  touch(now: number): void {
    this.#seen = now
  }

  get data(): Data {
    // Whoever reads `data` may change it in place; only then must it be stored again.
    this.#dataExposed = true
    return this.#data
  }

  /** Replacing `data` stores it at once, so a value over the limit throws right here. */
  set data(value: Data) {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw new DurableWebSocketError(
        'ERR_DWS_DATA_NOT_STORABLE',
        `conn.data must be a plain object, got ${describe(value)}.`,
      )
    }
    const previous = this.#data
    this.#data = value
    try {
      this.persist()
    } catch (error) {
      this.#data = previous
      throw error
    }
  }

  /** True once either side has started closing; such a connection is out of `connections()`. */
  get closed(): boolean {
    return this.#closeHandled || this.socket.readyState !== OPEN
  }

  /** @internal True once `close` has been queued for this connection, so it never runs twice. */
  get closeHandled(): boolean {
    return this.#closeHandled
  }

  /**
   * @internal Writes `data` to the attachment. On failure the in-memory data is reset
   * to what the attachment last held, so the connection goes on as it was; a
   * connection whose first write fails goes on with empty data, stored at once,
   * so that a woken object still knows it.
   */
  persist(): void {
    this.#dataExposed = false
    try {
      this.#write()
    } catch (error) {
      const lastGood = readRecord<Data>(this.socket)
      this.#data = lastGood?.data ?? ({} as Data)
      if (lastGood === undefined) this.#storeQuietly()
      throw error
    }
  }

  #write(): void {
    writeRecord(this.socket, this.#record())
    this.#stored = true
  }

  #storeQuietly(): void {
    try {
      this.#write()
    } catch {
      // Empty data always fits; only a socket the runtime already closed refuses it.
    }
  }

  /**
   * Sends one message. Returns false when the connection is already closed
   * (nothing is sent). A value that cannot go on the wire is a bug in the
   * sender, but the fault is charged to this connection alone: it is closed
   * with 1011 and the reason is logged, so a broadcast loop never throws.
   */
  send(message: Outgoing<Message>): boolean {
    if (this.#closeHandled) return false
    let frame
    try {
      frame = toFrame(message, this.manager.serializer)
    } catch (error) {
      log.error(`invalid data sent to ${this.label}, disconnecting:`, error)
      this.close(CloseCode.INTERNAL_ERROR, 'Internal Error')
      return false
    }
    return this.sendFrame(frame)
  }

  /**
   * @internal Sends an already encoded frame; broadcast uses it to encode once.
   * The socket's state is read only when the send fails, not before every
   * send: that read crosses into the runtime, and a profile of the echo path
   * showed it.
   */
  sendFrame(frame: string | ArrayBuffer | ArrayBufferView): boolean {
    if (this.#closeHandled) return false
    try {
      this.socket.send(frame)
    } catch (error) {
      if (this.socket.readyState !== OPEN) return false
      throw error
    }
    return true
  }

  /**
   * Starts the closing handshake. Bad codes and over-long reasons throw before
   * anything is sent. Closing twice is a no-op.
   */
  close(code: number = CloseCode.NORMAL, reason = ''): void {
    validateClose(code, reason)
    if (this.closed) return
    this.markCloseHandled()
    this.socket.close(code, reason)
    this.#host.closedByServer(this, code, reason)
  }

  /**
   * @internal Records that `close` is queued. While the socket is still open
   * (the server is the one closing) the flag goes into the attachment too, so
   * the client's answering close event, if it comes after a wake, is
   * recognised. A socket already closed delivers no more events, so there is
   * nothing to write.
   */
  markCloseHandled(): void {
    if (this.#closeHandled) return
    this.#closeHandled = true
    if (this.socket.readyState !== OPEN) return
    try {
      this.#write()
    } catch {
      // A socket the runtime already closed may refuse writes; the in-memory flag still holds.
    }
  }

  #record(): ConnectionRecord<Data> {
    const record: ConnectionRecord<Data> = { id: this.id, data: this.#data, seen: this.#seen }
    if (this.#closeHandled) record.closing = true
    return record
  }
}
