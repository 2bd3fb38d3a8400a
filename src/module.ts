import type { EventHandlers, EventName, Locals } from './core/events.js'
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
  add<E extends EventName>(event: E, handler: EventHandlers<Env, Data, In, Out, L>[E]): this {
    this.#object.handlers.add(event, handler)
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
