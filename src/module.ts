import { DurableWebSocketError } from './core/errors.js'
import type { EventHandlers, EventName, Incoming, Locals, MessageInfo } from './core/events.js'
import { createUpgradeHandler, objectStub, type FetchHandler } from './mount/forward.js'
import type { MiddlewareEntry } from './mount/middleware.js'
import { mountAt, type App, type MountedWorker } from './mount/mount.js'
import { register } from './object/registry.js'
import type { WebSocketObject } from './object/WebSocketObject.js'
import {
  resolveOptions,
  type Limits,
  type ObjectSide,
  type WebSocketOptions,
  type WorkerSide,
} from './options.js'
import { DEFAULT_ROOM } from './shared/roomName.js'
import type { Serializer } from './shared/serializer.js'
import { isStandardSchema, type SchemaOutput, type StandardSchemaV1 } from './shared/standardSchema.js'
import { describe } from './shared/describe.js'
import type { Connection } from './object/connection.js'

/**
 * One WebSocket endpoint: its handlers, serializer and middleware. Make it at
 * module scope, so the Durable Object, which runs in the same script, finds it.
 *
 * `In` is what clients send (decoded), `Out` what the server sends (it
 * defaults to `In`), and `L` what the middleware puts in `locals`.
 */
export class WebSocketModule<
  Env = Cloudflare.Env,
  Data extends object = Record<string, unknown>,
  In = unknown,
  Out = In,
  L extends object = Locals,
> {
  readonly binding: string
  readonly #worker: WorkerSide<Env, L>
  readonly #object: ObjectSide<Env, Data, In, Out, L>

  constructor(options: WebSocketOptions<Env, Data, In, Out, L>) {
    const { worker, object } = resolveOptions(options)
    this.binding = worker.binding
    this.#worker = worker
    this.#object = object
    register(this, object)
  }

  /** The resolved serializer, or undefined. */
  get serializer(): Serializer<In, Out> | undefined {
    return this.#object.serializer
  }

  /** The limits the module was made with, defaults filled in. */
  get limits(): Limits {
    const { maxConnections, maxMessageBytes, idleTimeout, heartbeat } = this.#object
    return { maxConnections, maxMessageBytes, idleTimeout, heartbeat }
  }

  /** Registers the handler for an event, replacing any earlier one. Returns the module, for chaining. */
  add<E extends EventName>(event: E, handler: EventHandlers<Env, Data, In, Out, L>[E]): this
  /**
   * Registers the `message` handler behind a Standard Schema of its own: it
   * runs after the module's `validate`, on what that returned, and the
   * handler gets the schema's output. A message it refuses goes to
   * `malformed_message` (else close 1007). Needs a serializer.
   */
  add<S extends StandardSchemaV1>(
    event: 'message',
    schema: S,
    handler: (
      conn: Connection<Env, Data, In, Out>,
      message: Incoming<SchemaOutput<S>>,
      info: MessageInfo,
    ) => unknown,
  ): this
  add(event: EventName, ...rest: [handler: unknown] | [schema: unknown, handler: unknown]): this {
    if (rest.length === 1) {
      this.#object.handlers.add(event, rest[0] as never)
      return this
    }
    const [schema, handler] = rest
    if (event !== 'message' || !isStandardSchema(schema)) {
      throw new DurableWebSocketError(
        'ERR_DWS_INVALID_OPTIONS',
        `add(event, schema, handler) takes "message" and a Standard Schema (zod, valibot…), got "${event}" and ${describe(schema)}.`,
      )
    }
    if (this.#object.serializer === undefined) {
      throw new DurableWebSocketError(
        'ERR_DWS_INVALID_OPTIONS',
        "add('message', schema, handler) checks decoded messages, so the module needs a serializer, e.g. serializer: 'json'.",
      )
    }
    this.#object.handlers.add('message', handler as never, schema)
    return this
  }

  /** The `[factory, options]` pairs this module was made with. */
  middleware(): MiddlewareEntry<Env, L>[] {
    return [...this.#worker.middleware]
  }

  /** Checks the upgrade and forwards it to the object, with no middleware. */
  handler(): FetchHandler<Env> {
    return createUpgradeHandler(this.#worker, false)
  }

  /** The same as handler(), behind this module's middleware. */
  run(): FetchHandler<Env> {
    return createUpgradeHandler(this.#worker, true)
  }

  /** A Worker: `path` goes to the object, every other request to `app`, untouched. */
  mount(path: string, app: App<Env>): MountedWorker<Env> {
    return mountAt(path, this.run(), app)
  }

  /**
   * The stub of a room's object, for calling it over RPC from a Worker route,
   * a cron or a queue consumer: `broadcast`, `send`, `close`, `count`, `ids`,
   * and your subclass's own methods with `ws.room<Hub>(env, 'lobby')`.
   */
  room<Target extends Rpc.DurableObjectBranded | undefined = WebSocketObject<Env, Data, In, Out>>(
    env: Env,
    name: string = DEFAULT_ROOM,
  ): DurableObjectStub<Target> {
    return objectStub<Target>(env, this.binding, name)
  }
}

/** Makes a WebSocket module; see {@link WebSocketModule}. */
export function websocket<
  Env = Cloudflare.Env,
  Data extends object = Record<string, unknown>,
  In = unknown,
  Out = In,
  L extends object = Locals,
>(options: WebSocketOptions<Env, Data, In, Out, L>): WebSocketModule<Env, Data, In, Out, L> {
  return new WebSocketModule<Env, Data, In, Out, L>(options)
}
