import { DurableWebSocketError } from '../core/errors.js'
import { closedByServer, isLive, move, type ConnectionState, type LifecycleEvent } from '../core/lifecycle.js'
import type { ConnectionPresence, Manager, Outgoing } from '../core/types.js'
import { SerialQueue } from '../core/serialQueue.js'
import type { Frame } from '../core/outgoing.js'
import { CloseCode, closeReasonProblem, isSendableCloseCode } from '../shared/closeCodes.js'
import { describe } from '../shared/describe.js'
import type { Transport } from './transport.js'

/** workerd refuses attachments whose serialized form is over 16 KiB. */
export const MAX_ATTACHMENT_BYTES = 16_384

/** WebSocket ready states, fixed by the WHATWG spec; a global lookup per message showed in a profile. */
export const OPEN = 1
export const CLOSED = 3

/**
 * Library state sits under one key, and the user's `conn.data` one level
 * below it, so nothing a handler stores can overwrite the id or the state.
 */
export const ATTACHMENT_KEY = 'durable-websocket'

/** What a socket's attachment holds, so a woken object knows the connection again. */
interface StoredRecord<Data> extends TransportRecord {
  id: number
  data: Data
  /** When the client last sent a message (ms since the epoch); what idle reaping looks at. */
  seen: number
  /**
   * Present once the server closed, or once a resume moved the session to
   * another socket: a late close event after a wake is then only answered.
   */
  state?: 'closedByServer' | 'replaced'
  /** What `maxConnectionsPerKey` counted this socket under, when that option is set. */
  key?: string
}

/** What a socket's transport keeps in its record to find itself again after a wake (transport.ts). */
export interface TransportRecord {
  /** Present on a session's socket; the rest of the session lives in SQLite (session/store.ts). */
  session?: { resumed: boolean; batches?: true }
  /** A session socket whose live sends are held back: the last `g` it was sent (session/link.ts). */
  held?: number
}

/** What a connection needs from the manager that owns it; never reachable from the public view. */
export interface ConnectionHost<Env, Data extends object, In, Out> {
  readonly manager: Manager<Env, Data, In, Out>
  encode(message: Outgoing<Out>): Frame
  /** The server starts the close: the frame is sent, and `close` is queued. */
  close(entry: ConnectionEntry<Env, Data, In, Out>, code: number, reason: string): void
  /** The transport of a socket found again after a wake, from what its record says. */
  transportFor(id: number, record: TransportRecord): Transport<Env, Data, In, Out>
  /** `send` was given a value that cannot go on the wire. */
  unsendable(entry: ConnectionEntry<Env, Data, In, Out>, error: unknown): void
  /** `conn.presence`; throws ERR_DWS_PRESENCE_OFF without the option. */
  presence(id: number): ConnectionPresence
}

/**
 * The manager's record of one connection: its one lifecycle state, its data
 * and its queue. Handlers see only {@link Connection}, the public view.
 */
export class ConnectionEntry<Env, Data extends object, In, Out> {
  readonly id: number
  readonly socket: WebSocket
  /**
   * Messages and lifecycle events of this connection run through here, one
   * at a time. A resumed session takes over its previous socket's queue, so
   * its order holds across the two.
   */
  readonly queue: SerialQueue
  readonly view: Connection<Env, Data, In, Out>
  /** Plain or session, chosen once: how frames travel on this socket. */
  readonly transport: Transport<Env, Data, In, Out>
  state: ConnectionState
  data: Data
  /** When the client last sent a message, in ms since the epoch. */
  seen: number
  /** Set when a handler read `data`: it may have changed in place and must be stored again. */
  dataRead = false
  /** The tags of a session whose window ended: it has no socket to ask the runtime. */
  detachedTags: string[] | undefined
  /** What `maxConnectionsPerKey` counts this connection under. */
  key: string | undefined

  constructor(
    socket: WebSocket,
    id: number,
    data: Data,
    seen: number,
    state: ConnectionState,
    host: ConnectionHost<Env, Data, In, Out>,
    transport: Transport<Env, Data, In, Out>,
    queue = new SerialQueue(),
  ) {
    this.socket = socket
    this.id = id
    this.data = data
    this.seen = seen
    this.state = state
    this.transport = transport
    this.queue = queue
    this.view = new Connection(this, host)
  }

  /** The entry a socket's attachment describes, or undefined for a socket this package never stored. */
  static fromAttachment<Env, Data extends object, In, Out>(
    socket: WebSocket,
    host: ConnectionHost<Env, Data, In, Out>,
  ): ConnectionEntry<Env, Data, In, Out> | undefined {
    const record = readRecord<Data>(socket)
    if (record === undefined) return undefined
    const entry = new ConnectionEntry(
      socket,
      record.id,
      record.data,
      record.seen,
      record.state ?? 'open',
      host,
      host.transportFor(record.id, record),
    )
    entry.key = record.key
    return entry
  }

  /** How logs name this connection: its id and room, never anything the client sent. */
  label(room: string | undefined): string {
    return room === undefined
      ? `connection ${String(this.id)}`
      : `connection ${String(this.id)} in room ${room}`
  }

  /** Moves the lifecycle; returns false when the event means nothing in the current state. */
  move(event: LifecycleEvent): boolean {
    const next = move(this.state, event)
    if (next === undefined) return false
    this.state = next
    // A rebuilt object must not run `close` when the client answers our close frame: not again
    // after the server's close, and not at all for a socket whose session went on elsewhere.
    if ((closedByServer(next) || next === 'replaced') && this.socket.readyState === OPEN) this.writeQuietly()
    return true
  }

  /** Whether `data` must be written after a handler: never stored yet, or read since. */
  get needsStore(): boolean {
    return this.dataRead || this.state === 'opening'
  }

  /**
   * Writes the record. When that fails (data over the limit or not
   * cloneable) the in-memory data goes back to what the attachment last held,
   * so the connection goes on as it was; one whose first write fails goes on
   * with `{}`, stored at once, so that a woken object still knows it.
   */
  store(): void {
    this.dataRead = false
    try {
      this.#write()
    } catch (error) {
      const lastGood = readRecord<Data>(this.socket)
      this.data = lastGood?.data ?? ({} as Data)
      if (lastGood === undefined) this.writeQuietly()
      throw error
    } finally {
      this.move('stored')
    }
  }

  /**
   * Sends an already encoded frame. The socket's state is read only when the
   * send fails: that read crosses into the runtime, and a profile of the echo
   * path showed it.
   */
  sendFrame(frame: Frame): boolean {
    if (!isLive(this.state)) return false
    try {
      this.socket.send(frame)
    } catch (error) {
      if (this.socket.readyState !== OPEN) return false
      throw error
    }
    return true
  }

  #write(): void {
    const record: StoredRecord<Data> = { id: this.id, data: this.data, seen: this.seen }
    if (closedByServer(this.state)) record.state = 'closedByServer'
    else if (this.state === 'replaced') record.state = 'replaced'
    if (this.key !== undefined) record.key = this.key
    this.transport.describe(record)
    writeRecord(this.socket, record)
    // A replaced socket's data is the session's no more: the socket that took it over owns it.
    if (this.state !== 'replaced') this.transport.stored(this)
  }

  /** Writes the record where nothing can be done about a failure: a state change, not new data. */
  writeQuietly(): void {
    try {
      this.#write()
    } catch {
      // Empty data always fits; only a socket the runtime already closed refuses it.
    }
  }
}

/**
 * One client socket as handlers see it: its stable id, the user's data
 * (kept in the socket's attachment so it survives hibernation) and the ways
 * to talk to it.
 */
export class Connection<
  Env = unknown,
  Data extends object = Record<string, unknown>,
  In = unknown,
  Out = In,
> {
  readonly #entry: ConnectionEntry<Env, Data, In, Out>
  readonly #host: ConnectionHost<Env, Data, In, Out>

  /** Made by the object for each socket it accepts or finds again after a wake; not by user code. */
  constructor(entry: ConnectionEntry<Env, Data, In, Out>, host: ConnectionHost<Env, Data, In, Out>) {
    this.#entry = entry
    this.#host = host
  }

  /** An integer from 1, one more per connection of this object, never reused. */
  get id(): number {
    return this.#entry.id
  }

  /** The underlying server-side WebSocket, for what this package does not wrap. */
  get socket(): WebSocket {
    return this.#entry.socket
  }

  get manager(): Manager<Env, Data, In, Out> {
    return this.#host.manager
  }

  /** The room (the object's name) this connection belongs to. */
  get room(): string | undefined {
    return this.#host.manager.room
  }

  /** The hibernation tags the socket was accepted with, the same on every socket of a session. */
  get tags(): string[] {
    const entry = this.#entry
    if (entry.detachedTags !== undefined) return entry.detachedTags
    return entry.transport.visibleTags(this.#host.manager.ctx.getTags(entry.socket))
  }

  /** True once either side has started closing; such a connection is out of `connections()`. */
  get closed(): boolean {
    return !isLive(this.#entry.state) || this.#entry.socket.readyState !== OPEN
  }

  get data(): Data {
    // Whoever reads `data` may change it in place; only then must it be stored again.
    this.#entry.dataRead = true
    return this.#entry.data
  }

  /** Replacing `data` stores it at once, so a value over the limit throws right here. */
  set data(value: Data) {
    if (typeof value !== 'object' || (value as unknown) === null || Array.isArray(value)) {
      throw new DurableWebSocketError(
        'ERR_DWS_DATA_NOT_STORABLE',
        `conn.data must be a plain object, got ${describe(value)}.`,
      )
    }
    const entry = this.#entry
    const previous = entry.data
    entry.data = value
    try {
      entry.store()
    } catch (error) {
      entry.data = previous
      throw error
    }
  }

  /**
   * Sends one message. Returns false when the server has closed the
   * connection (nothing is sent). A value that cannot go on the wire is a bug
   * in the sender, but the fault is charged to this connection alone: it is
   * closed with 1011 and the reason is logged, so a loop over many
   * connections never throws.
   */
  send(message: Outgoing<Out>): boolean {
    const entry = this.#entry
    const transport = entry.transport
    if (!transport.canSend(entry)) return false
    let frame: Frame
    try {
      frame = this.#host.encode(message)
    } catch (error) {
      this.#host.unsendable(entry, error)
      return false
    }
    return transport.send(entry, frame)
  }

  /**
   * Who is in the room, and this connection's own member (its `key`, and
   * `update(meta)`). Throws ERR_DWS_PRESENCE_OFF without the `presence` option.
   */
  get presence(): ConnectionPresence {
    return this.#host.presence(this.#entry.id)
  }

  /** True when this connection resumed an earlier session (same id, data and tags); false for a new one. */
  get resumed(): boolean {
    return this.#entry.transport.resumed
  }

  /**
   * Starts the closing handshake. Bad codes and over-long reasons throw before
   * anything is sent. Closing twice is a no-op.
   */
  close(code: number = CloseCode.NORMAL, reason = ''): void {
    validateClose(code, reason)
    if (this.closed) return
    this.#host.close(this.#entry, code, reason)
  }
}

/** Throws ERR_DWS_INVALID_CLOSE for a code a server may not send or a reason over the limit. */
export function validateClose(code: number, reason: unknown): void {
  if (!isSendableCloseCode(code)) {
    throw new DurableWebSocketError(
      'ERR_DWS_INVALID_CLOSE',
      `Close code ${String(code)} cannot be sent: use 1000, 1001-1003, 1007-1014 or an application code from 3000 to 4999.`,
    )
  }
  const problem = closeReasonProblem(reason)
  if (problem !== undefined) throw new DurableWebSocketError('ERR_DWS_INVALID_CLOSE', problem)
}

function readRecord<Data>(socket: WebSocket): StoredRecord<Data> | undefined {
  const stored = socket.deserializeAttachment() as Record<string, StoredRecord<Data> | undefined> | null
  return stored?.[ATTACHMENT_KEY]
}

function writeRecord<Data>(socket: WebSocket, record: StoredRecord<Data>): void {
  try {
    socket.serializeAttachment({ [ATTACHMENT_KEY]: record })
  } catch (cause) {
    // The runtime's message for either failure is not a contract; a clone that succeeds means size was the problem.
    const tooLarge = isCloneable(record)
    throw new DurableWebSocketError(
      tooLarge ? 'ERR_DWS_ATTACHMENT_TOO_LARGE' : 'ERR_DWS_DATA_NOT_STORABLE',
      tooLarge
        ? `conn.data of connection ${String(record.id)} is over the ${String(MAX_ATTACHMENT_BYTES)}-byte attachment limit; the connection keeps its last stored data. Keep bulky state in manager.storage instead.`
        : `conn.data of connection ${String(record.id)} cannot be stored (it must be structured-cloneable: no functions, no class instances with private state); the connection keeps its last stored data.`,
      { cause },
    )
  }
}

function isCloneable(value: unknown): boolean {
  try {
    structuredClone(value)
    return true
  } catch {
    return false
  }
}
