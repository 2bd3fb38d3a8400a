import type { Connection } from '../object/connection.js'
import { DurableWebSocketError, InvalidHandlerError } from './errors.js'
import { toMessageCheck, type MessageCheck } from './messageCheck.js'
import type { StandardSchemaV1 } from '../shared/standardSchema.js'
import type { Outgoing } from './types.js'

/** Values a middleware attached in the Worker; they reach `open` in the object. */
export type Locals = Record<string, unknown>

/** What a text message becomes once decoded; binary frames stay bytes. */
export type Incoming<In> = In | ArrayBuffer

/** What the object knows about one message besides its content. */
export interface MessageInfo {
  /**
   * A session message's number: stable across resends and resumes, one more
   * per message of the session, so `${conn.id}:${seq}` is an idempotency key
   * for effects outside storage (docs/guarantees.md). Undefined on a plain
   * connection.
   */
  readonly seq: number | undefined
}

export interface EventHandlers<Env, Data extends object, In, Out = In, L extends object = Locals> {
  /** A connection was accepted; `request` is the upgrade request. */
  open: (conn: Connection<Env, Data, In, Out>, request: Request, locals: L) => unknown
  /** One decoded text message (a string without a serializer) or one binary frame as an ArrayBuffer. */
  message: (conn: Connection<Env, Data, In, Out>, message: Incoming<In>, info: MessageInfo) => unknown
  /**
   * A request from a session client (`client.request()`): what the handler
   * returns, or its promise resolves to, is the reply. A `ReplyError` it
   * throws reaches the client with its code; anything else as `failed`.
   */
  request: (
    conn: Connection<Env, Data, In, Out>,
    message: Incoming<In>,
    info: MessageInfo,
  ) => Outgoing<Out> | null | undefined | Promise<Outgoing<Out> | null | undefined>
  /** A text frame the serializer could not decode. Without this handler the connection closes with 1007. */
  malformed_message: (conn: Connection<Env, Data, In, Out>, raw: string, error: unknown) => unknown
  /**
   * A session's socket dropped and the session waits for a resume (only
   * sessions; never for the close that ends one). If the client comes back
   * within the window, `open` runs again with `conn.resumed` true; if not,
   * `close` runs with 3902. Not after a restart of the object, which never
   * saw its sockets go.
   */
  suspend: (conn: Connection<Env, Data, In, Out>, code: number, reason: string) => unknown
  /** Runs once per connection, however it ended. */
  close: (conn: Connection<Env, Data, In, Out>, code: number, reason: string) => unknown
  /** Answers a request to the mount path that is not a valid WebSocket upgrade. Runs in the Worker. */
  error: (request: Request, env: Env) => Response | Promise<Response>
}

export type EventName = keyof EventHandlers<unknown, object, unknown>

export const EVENT_NAMES: readonly EventName[] = [
  'open',
  'message',
  'request',
  'malformed_message',
  'suspend',
  'close',
  'error',
]

function isEventName(value: unknown): value is EventName {
  return (EVENT_NAMES as readonly unknown[]).includes(value)
}

/** One handler per event: adding again replaces the old one, and the message handler's schema with it. */
export class HandlerRegistry<Env, Data extends object, In, Out, L extends object> {
  readonly #handlers: Partial<EventHandlers<Env, Data, In, Out, L>> = {}
  #messageCheck: MessageCheck | undefined

  /** The schema given with the `message` handler, if any, run after the module's `validate`. */
  get messageCheck(): MessageCheck | undefined {
    return this.#messageCheck
  }

  add<E extends EventName>(
    event: E,
    handler: EventHandlers<Env, Data, In, Out, L>[E],
    schema?: StandardSchemaV1,
  ): void {
    if (!isEventName(event)) {
      throw new DurableWebSocketError(
        'ERR_DWS_UNKNOWN_EVENT',
        `Unknown event "${String(event)}". Known events: ${EVENT_NAMES.join(', ')}.`,
      )
    }
    if (typeof handler !== 'function') throw new InvalidHandlerError(event, handler)
    this.#handlers[event] = handler
    if (event === 'message') this.#messageCheck = schema === undefined ? undefined : toMessageCheck(schema)
  }

  get<E extends EventName>(event: E): EventHandlers<Env, Data, In, Out, L>[E] | undefined {
    return this.#handlers[event]
  }
}
