import { handlesQueued, isLive } from '../core/lifecycle.js'
import type { Frame } from '../core/outgoing.js'
import type { ConnectionEntry, TransportRecord } from './connection.js'
import type { Answer } from './dispatch.js'
import { sizeOf } from '../shared/byteSize.js'
import type { MessageLimits } from './messageLimits.js'

/**
 * What a fan-out hands each of its targets: the frame as plain sockets get
 * it, and for sessions the numbered frame, made (and logged) once, on the
 * first session that needs it.
 */
export interface Outbound {
  readonly frame: Frame
  numbered(): { readonly seq: number; readonly frame: Frame }
}

/**
 * How one connection's frames travel. Chosen once, when the socket is
 * accepted or found again after a wake, and never asked again: a plain
 * socket takes and sends frames as they are ({@link PlainTransport}); a
 * session's socket numbers, logs, windows and acknowledges them
 * (session/link.ts).
 */
export interface Transport<Env, Data extends object, In, Out> {
  /** Whether this socket resumed an earlier session. */
  readonly resumed: boolean
  /** A frame from the client, as the runtime delivered it. */
  receive(entry: ConnectionEntry<Env, Data, In, Out>, raw: string | ArrayBuffer): Promise<void> | undefined
  /** Whether `conn.send` can still reach anyone, asked before anything is encoded. */
  canSend(entry: ConnectionEntry<Env, Data, In, Out>): boolean
  /** `conn.send` with the frame encoded: true when it was sent, or will be on a resume. */
  send(entry: ConnectionEntry<Env, Data, In, Out>, frame: Frame): boolean
  /** One target of a broadcast or `to(tag)`. */
  deliver(entry: ConnectionEntry<Env, Data, In, Out>, outbound: Outbound): boolean
  /** Whether the connection outlives a close with `code` from that side: a session then suspends. */
  survives(code: number, by: 'server' | 'peer'): boolean
  /** The connection ended for good; whatever the transport kept for it goes. */
  ended(entry: ConnectionEntry<Env, Data, In, Out>): void
  /** The socket is gone but the connection lives on: `suspend` runs, and it waits for a resume. */
  suspend(entry: ConnectionEntry<Env, Data, In, Out>, code: number, reason: string): Promise<void>
  /**
   * After a handler, when the socket can no longer be written (gone or
   * closing) but the connection lives on: stores `data` where a resume reads
   * it and returns true. False leaves the store to the attachment.
   */
  keepsData(entry: ConnectionEntry<Env, Data, In, Out>): boolean
  /** Adds what the transport must find again after a wake to the socket's record. */
  describe(record: TransportRecord): void
  /** The record was written. */
  stored(entry: ConnectionEntry<Env, Data, In, Out>): void
  /** The socket's hibernation tags as the app sees them. */
  visibleTags(tags: string[]): string[]
}

/**
 * Hands one message to its handler (Dispatch's `message`): `seq` is the
 * session's number for it, and `after` runs once the handler is done, either
 * way, in the same turn as its `data` is stored.
 */
export type HandleMessage<Env, Data extends object, In, Out> = (
  entry: ConnectionEntry<Env, Data, In, Out>,
  raw: string | ArrayBuffer,
  seq?: number,
  after?: () => void,
) => unknown

/** Hands one request to the `request` handler (Dispatch's `request`); `answer` gets its reply. */
export type HandleRequest<Env, Data extends object, In, Out> = (
  entry: ConnectionEntry<Env, Data, In, Out>,
  raw: string | ArrayBuffer,
  seq: number,
  answer: (outcome: Answer) => void,
  after: () => void,
) => unknown

/** A plain socket: a frame in is a message, a message out is a frame. One serves every plain connection. */
export class PlainTransport<Env, Data extends object, In, Out> implements Transport<Env, Data, In, Out> {
  readonly resumed = false
  readonly #limits: MessageLimits<Env, Data, In, Out>
  readonly #handle: HandleMessage<Env, Data, In, Out>

  constructor(limits: MessageLimits<Env, Data, In, Out>, handle: HandleMessage<Env, Data, In, Out>) {
    this.#limits = limits
    this.#handle = handle
  }

  receive(entry: ConnectionEntry<Env, Data, In, Out>, raw: string | ArrayBuffer): Promise<void> | undefined {
    if (!this.#limits.admit(entry, raw)) return undefined
    return entry.queue.run(
      () => (handlesQueued(entry.state) ? this.#handle(entry, raw) : undefined),
      sizeOf(raw),
    )
  }

  canSend(entry: ConnectionEntry<Env, Data, In, Out>): boolean {
    return isLive(entry.state)
  }

  send(entry: ConnectionEntry<Env, Data, In, Out>, frame: Frame): boolean {
    return entry.sendFrame(frame)
  }

  deliver(entry: ConnectionEntry<Env, Data, In, Out>, outbound: Outbound): boolean {
    return entry.sendFrame(outbound.frame)
  }

  survives(): boolean {
    return false
  }

  ended(): void {
    // A plain connection keeps nothing beyond its socket.
  }

  suspend(): Promise<void> {
    return Promise.resolve()
  }

  keepsData(): boolean {
    return false
  }

  describe(): void {
    // Nothing beyond the connection's own record.
  }

  stored(): void {
    // The attachment is all there is.
  }

  visibleTags(tags: string[]): string[] {
    return tags
  }
}
