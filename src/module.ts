import { HandlerRegistry, type EventHandlers, type EventName } from './core/events.js'
import { DurableWebSocketError, describe } from './core/errors.js'
import { resolveSerializer, type Serializer, type SerializerOption } from './core/serializer.js'
import { resolveLimits, type Heartbeat, type Limits } from './core/limits.js'
import type { ObjectRouter } from './core/manager.js'
import type { MiddlewareEntry, MiddlewareHandler } from './mount/middleware.js'
import { createUpgradeHandler, objectStub, type FetchHandler, type RoomFunction } from './mount/forward.js'
import { mountAt, type App, type MountedWorker } from './mount/mount.js'
import { DEFAULT_ROOM } from './mount/roomName.js'
import type { ObjectBehaviour, ProtocolFunction, TagsFunction, Validator } from './object/behaviour.js'
import type { WebSocketObject } from './object/WebSocketObject.js'
import { register } from './object/registry.js'

export interface WebSocketOptions<Env, Data extends object, Message> {
  /** The name of the Durable Object namespace binding in wrangler.toml (e.g. "WEBSOCKET"). */
  binding: string
  /** `'json'` or your own `{ encode, decode }`. Default: none (strings and bytes only). */
  serializer?: SerializerOption<Message>
  /** `[factory, options]` pairs run in order in the Worker before a request reaches the object. */
  middleware?: readonly MiddlewareEntry<Env>[]
  /** Receives requests that reach the object and are not upgrades. Default: 404. */
  objectRouter?: ObjectRouter<Env, Data, Message>
  /**
   * Picks the room (the Durable Object's name) for an upgrade, after the
   * middleware ran, e.g. a tenant id a middleware verified and put in
   * `locals`. Default: the `:room` path segment, else "default".
   */
  room?: RoomFunction<Env>
  /**
   * Picks the subprotocol to answer with from those the client offered in
   * Sec-WebSocket-Protocol. Default: none is named.
   */
  protocol?: ProtocolFunction
  /** Checks each decoded message; one that fails goes to `malformed_message` (else close 1007). */
  validate?: Validator
  /** Decides a connection's hibernation tags (at most 10, each 1-256 characters) before it is accepted. */
  tags?: TagsFunction
  /** Open connections one object accepts; past it, upgrades get 503 with Retry-After. Default: no limit of ours. */
  maxConnections?: number
  /** A larger incoming message closes its connection with 1009. Default: 1 MiB. */
  maxMessageBytes?: number
  /** Close connections silent (no message, no heartbeat) for this many ms, with 1001. Default: never. */
  idleTimeout?: number
  /** Text the runtime answers without waking the object. Default: `{ request: 'ping', response: 'pong' }`. */
  heartbeat?: Heartbeat | false
}

/**
 * One WebSocket endpoint: its handlers, serializer and middleware. Make it at
 * module scope, so the Durable Object, which runs in the same script, finds it.
 */
export class WebSocketModule<
  Env = Cloudflare.Env,
  Data extends object = Record<string, unknown>,
  Message = unknown,
> {
  readonly binding: string
  readonly serializer: Serializer<Message> | undefined
  readonly objectRouter: ObjectRouter<Env, Data, Message> | undefined
  readonly limits: Limits
  readonly #room: RoomFunction<Env> | undefined
  readonly #tags: TagsFunction | undefined
  readonly #protocol: ProtocolFunction | undefined
  readonly #validate: Validator | undefined
  readonly #handlers = new HandlerRegistry<Env, Data, Message>()
  readonly #middleware: readonly MiddlewareEntry<Env>[]
  readonly #chain: readonly MiddlewareHandler<Env>[]

  constructor(options: WebSocketOptions<Env, Data, Message>) {
    if (typeof options !== 'object' || (options as unknown) === null) {
      throw invalid(`websocket() takes an options object, got ${describe(options)}.`)
    }
    const { binding, serializer, middleware = [], objectRouter, room, tags, protocol, validate } = options
    if (typeof binding !== 'string' || binding === '') {
      throw invalid(
        'options.binding must name the Durable Object binding from wrangler.toml, e.g. "WEBSOCKET".',
      )
    }
    if (!Array.isArray(middleware))
      throw invalid('options.middleware must be an array of [factory, options] pairs.')
    if (objectRouter !== undefined && typeof objectRouter.fetch !== 'function') {
      throw invalid('options.objectRouter must have a fetch(request, manager) method.')
    }
    if (room !== undefined && typeof room !== 'function') {
      throw invalid('options.room must be a function (request, env) => room name.')
    }
    if (tags !== undefined && typeof tags !== 'function') {
      throw invalid('options.tags must be a function (request, locals) => string[].')
    }
    if (protocol !== undefined && typeof protocol !== 'function') {
      throw invalid('options.protocol must be a function (offered, request, locals) => string | undefined.')
    }
    if (validate !== undefined && typeof validate !== 'function') {
      throw invalid('options.validate must be a function (message) => boolean.')
    }
    if (validate !== undefined && serializer === undefined) {
      throw invalid('options.validate checks decoded messages, so it needs a serializer too.')
    }
    this.binding = binding
    this.serializer = resolveSerializer(serializer)
    this.objectRouter = objectRouter
    this.limits = resolveLimits(options)
    this.#room = room
    this.#tags = tags
    this.#protocol = protocol
    this.#validate = validate
    this.#middleware = [...middleware]
    this.#chain = this.#middleware.map(createMiddleware)
    register(this)
  }

  /** Registers the handler for an event, replacing any earlier one. Returns the module, for chaining. */
  add<E extends EventName>(event: E, handler: EventHandlers<Env, Data, Message>[E]): this {
    this.#handlers.add(event, handler)
    return this
  }

  /** The `[factory, options]` pairs this module was made with. */
  middleware(): MiddlewareEntry<Env>[] {
    return [...this.#middleware]
  }

  /** The seed's `psgi`: checks the upgrade and forwards it to the object, with no middleware. */
  handler(): FetchHandler<Env> {
    return createUpgradeHandler(this, [])
  }

  /** The seed's `run`: the same as handler(), behind this module's middleware. */
  run(): FetchHandler<Env> {
    return createUpgradeHandler(this, this.#chain)
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
  room<Target extends Rpc.DurableObjectBranded | undefined = WebSocketObject<Env, Data, Message>>(
    env: Env,
    name: string = DEFAULT_ROOM,
  ): DurableObjectStub<Target> {
    return objectStub<Target>(env, this.binding, name)
  }

  /** @internal What the Durable Object runs. */
  get behaviour(): ObjectBehaviour<Env, Data, Message> {
    return {
      handlers: this.#handlers,
      serializer: this.serializer,
      objectRouter: this.objectRouter,
      limits: this.limits,
      tags: this.#tags,
      protocol: this.#protocol,
      validate: this.#validate,
    }
  }

  /** @internal */
  roomFunction(): RoomFunction<Env> | undefined {
    return this.#room
  }

  /** @internal */
  errorHandler(): EventHandlers<Env, Data, Message>['error'] | undefined {
    return this.#handlers.get('error')
  }
}

function invalid(message: string): DurableWebSocketError {
  return new DurableWebSocketError('ERR_DWS_INVALID_OPTIONS', message)
}

function createMiddleware<Env>(entry: MiddlewareEntry<Env>, index: number): MiddlewareHandler<Env> {
  if (!Array.isArray(entry) || typeof entry[0] !== 'function') {
    throw invalid(
      `options.middleware[${String(index)}] must be a [factory, options] pair, got ${describe(entry)}.`,
    )
  }
  const [factory, options] = entry
  const handler = factory(options as never)
  if (typeof handler !== 'function') {
    throw invalid(
      `options.middleware[${String(index)}]: the factory must return a function (request, context).`,
    )
  }
  return handler
}

/** Makes a WebSocket module; see {@link WebSocketModule}. */
export function websocket<
  Env = Cloudflare.Env,
  Data extends object = Record<string, unknown>,
  Message = unknown,
>(options: WebSocketOptions<Env, Data, Message>): WebSocketModule<Env, Data, Message> {
  return new WebSocketModule<Env, Data, Message>(options)
}
