import { HandlerRegistry, type Locals } from './core/events.js'
import { toMessageCheck, type MessageCheck } from './core/messageCheck.js'
import type { ObjectRouter } from './core/types.js'
import type { MiddlewareEntry, MiddlewareHandler } from './mount/middleware.js'
import type { RoomFunction } from './mount/forward.js'
import { describe } from './shared/describe.js'
import { invalid, optionalFunction, positiveInteger } from './optionChecks.js'
import { resolvePresence, type PresenceOptions, type ResolvedPresence } from './presenceOptions.js'
import { resolveShards, type ResolvedShards, type ShardOptions } from './shardOptions.js'
import {
  SERIALIZER_EXPECTED,
  serializerFrom,
  type Serializer,
  type SerializerOption,
} from './shared/serializer.js'
import { isStandardSchema, type StandardSchemaV1 } from './shared/standardSchema.js'

/** Decides a connection's hibernation tags before its socket is accepted. */
export type TagsFunction<L = Locals> = (request: Request, locals: L) => string[]

/** Picks one of the subprotocols the client offered, or none. */
export type ProtocolFunction<L = Locals> = (
  offered: string[],
  request: Request,
  locals: L,
) => string | undefined

/**
 * Says whether a decoded message has the shape the handlers expect. Written
 * as a type guard (`(m): m is ChatMessage => …`), it is what makes `In` true:
 * `websocket({ serializer: 'json', validate: isChatMessage })` infers
 * `In = ChatMessage`, so `message` handlers get a `ChatMessage` (or bytes).
 * A plain boolean check is accepted too, and then `In` is only your word.
 */
export type Validator<In = unknown> = unknown extends In
  ? (message: unknown) => boolean
  : (message: unknown) => message is In

/**
 * What `validate` takes: a {@link Validator}, or a Standard Schema (zod 4,
 * valibot 1, ArkType…) whose output type becomes `In` and whose output value
 * is what `message` handlers get, so a schema may transform.
 */
export type ValidateOption<In = unknown> = Validator<In> | StandardSchemaV1<unknown, In>

export interface Heartbeat {
  /** The exact text a client sends. */
  request: string
  /** The text the runtime answers with, without waking the object. */
  response: string
}

export const DEFAULT_HEARTBEAT: Heartbeat = { request: 'ping', response: 'pong' }

/** Names who a session belongs to, from the upgrade and the locals the app's middleware set. */
export type SessionOwnerFunction<L = Locals> = (request: Request, locals: L) => string

export interface ResumeOptions<L = Locals> {
  /**
   * Binds each session to an identity, e.g. the user id a middleware put in
   * `locals`: a resume whose owner differs (a token used by someone else) is
   * refused with 3904, and the session stays its owner's. 1 to 256 characters.
   * Default: none, a token alone resumes its session.
   */
  owner?: SessionOwnerFunction<L>
  /** How long a dropped session waits for its client, in ms. Default: 120000. */
  window?: number
  /** How many outgoing messages the log keeps for resumes. Default: 5000. */
  maxMessages?: number
  /**
   * How many bytes of outgoing messages the log keeps (characters for
   * text), whatever their count; past it, the oldest go first. Default:
   * 33554432 (32 MiB).
   */
  maxBytes?: number
  /**
   * How long a session may live, from its first open, in ms; then it ends
   * (3905), connected or not, and the client starts a new one. Default: 86400000 (a day).
   */
  maxAge?: number
}

/** Resume options with every default filled in; `owner` stays optional. */
export interface ResolvedResume<L = Locals> {
  readonly window: number
  readonly maxMessages: number
  readonly maxBytes: number
  readonly maxAge: number
  readonly owner: SessionOwnerFunction<L> | undefined
}

export const DEFAULT_RESUME = {
  window: 120_000,
  maxMessages: 5_000,
  maxBytes: 33_554_432,
  maxAge: 86_400_000,
} as const

export {
  DEFAULT_PRESENCE,
  type PresenceKeyFunction,
  type PresenceMetaFunction,
  type PresenceOptions,
  type ResolvedPresence,
} from './presenceOptions.js'
export { MAX_SHARDS, type ResolvedShards, type ShardOptions } from './shardOptions.js'

/** Derives the key `maxConnectionsPerKey` counts sockets by, before the socket is accepted. */
export type ConnectionKeyFunction<L = Locals> = (request: Request, locals: L) => string

export interface ConnectionsPerKey<L = Locals> {
  /** The key of an upgrade, e.g. the user a middleware verified and put in `locals`. */
  key: ConnectionKeyFunction<L>
  /** How many open sockets of one object may share a key. */
  max: number
}

/** A token bucket per connection: `messages` at once, refilled at `messages` per `per` ms. */
export interface RateLimit {
  messages: number
  /** In ms. */
  per: number
}

/** How much may wait in one connection's queue behind a handler that is still running. */
export interface QueueLimit {
  /** Default: 1000. */
  messages?: number
  /** Counted as UTF-16 code units for text and bytes for binary. Default: 8 MiB. */
  bytes?: number
}

export const DEFAULT_MAX_QUEUED: Required<QueueLimit> = { messages: 1_000, bytes: 8_388_608 }

/** How far a session client may fall behind live sends before it is held back and catches up from the log. */
export interface SendWindow {
  /** Data frames sent and not yet acknowledged. Default: 500. */
  messages?: number
  /** Their size, in UTF-16 code units for text and bytes for binary. Default: 1 MiB. */
  bytes?: number
}

export const DEFAULT_SEND_WINDOW: Required<SendWindow> = { messages: 500, bytes: 1_048_576 }

/** The default for `handlerTimeout`: long enough for any fetch or storage call a handler should wait on. */
export const DEFAULT_HANDLER_TIMEOUT = 30_000

/** The default for `maxRequests`: far more than a page waits on at once, far less than a queue can hold. */
export const DEFAULT_MAX_REQUESTS = 64

/** The default for `maxMessageBytes`: far below workerd's own 32 MiB, which few apps want to buffer. */
export const DEFAULT_MAX_MESSAGE_BYTES = 1_048_576

/** workerd closes a socket whose incoming message is larger than this with 1009 itself. */
export const RUNTIME_MAX_MESSAGE_BYTES = 33_554_432

/**
 * `In` is what clients send (after decoding), `Out` what the server sends;
 * `L` is what the middleware puts in `locals`.
 */
export interface WebSocketOptions<Env, Data extends object, In, Out = In, L extends object = Locals> {
  /** The name of the Durable Object namespace binding in wrangler.toml (e.g. "WEBSOCKET"). */
  binding: string
  /** `'json'` or your own `{ encode, decode }`. Default: none (strings and bytes only). */
  serializer?: SerializerOption<In, Out>
  /** `[factory, options]` pairs run in order in the Worker before a request reaches the object. */
  middleware?: readonly MiddlewareEntry<Env, L>[]
  /** Receives requests that reach the object and are not upgrades. Default: 404. */
  objectRouter?: ObjectRouter<Env, Data, In, Out>
  /**
   * Picks the room (the Durable Object's name) for an upgrade, after the
   * middleware ran, e.g. a tenant id a middleware verified and put in
   * `locals`. Default: the `:room` path segment, else "default".
   */
  room?: RoomFunction<Env, L>
  /** Picks the subprotocol to answer with from those the client offered. Default: none is named. */
  protocol?: ProtocolFunction<L>
  /**
   * Checks each decoded message; one that fails goes to `malformed_message`
   * (else close 1007). A type guard sets `In`; a Standard Schema (zod,
   * valibot…) sets `In` to its output, and handlers get its output value.
   */
  validate?: ValidateOption<In>
  /** Decides a connection's hibernation tags (at most 10, each 1-256 characters) before it is accepted. */
  tags?: TagsFunction<L>
  /** Open connections one object accepts; past it, upgrades get 503 with Retry-After. Default: no limit of ours. */
  maxConnections?: number
  /** A larger incoming message closes its connection with 1009. Default: 1 MiB. */
  maxMessageBytes?: number
  /** Open sockets per key the app derives; past it, upgrades get 429 with Retry-After. Default: no limit. */
  maxConnectionsPerKey?: ConnectionsPerKey<L>
  /** Messages one connection may send, as a token bucket; past it, close 1008. Default: no limit. */
  rateLimit?: RateLimit
  /** Messages waiting behind a running handler, per connection; past it, close 1013. Default: 1000 and 8 MiB. */
  maxQueued?: QueueLimit
  /** Requests one session may have waiting for their replies; past it, close 3906. Default: 64. */
  maxRequests?: number
  /** A handler still pending after this many ms counts as failed (close 1011). `false`: no limit. Default: 30000. */
  handlerTimeout?: number | false
  /** How far a session client may fall behind before live sends to it stop. Default: 500 frames and 1 MiB. */
  sendWindow?: SendWindow
  /** Close connections silent (no message, no heartbeat) for this many ms, with 1001. Default: never. */
  idleTimeout?: number
  /** Text the runtime answers without waking the object. Default: `{ request: 'ping', response: 'pong' }`. */
  heartbeat?: Heartbeat | false
  /**
   * Durable sessions for clients that speak them (docs/protocol.md): a
   * dropped session waits `window` ms for its client, with what it missed.
   * `false` still speaks the protocol, but a drop ends the session. Default: on.
   */
  resume?: ResumeOptions<L> | false
  /**
   * Who is in the room, one member per key the app names (docs/api.md):
   * session clients get the list and its changes. Default: off.
   */
  presence?: PresenceOptions<L>
  /** Spreads each room over several objects (docs/sharding.md). Default: one object per room. */
  shards?: ShardOptions
}

/** The limits a module was made with, defaults filled in. */
export interface Limits {
  readonly maxConnections: number | undefined
  readonly maxMessageBytes: number
  readonly idleTimeout: number | undefined
  readonly heartbeat: Heartbeat | undefined
}

/** What the Durable Object runs. */
export interface ObjectSide<Env, Data extends object, In, Out, L extends object> extends Limits {
  readonly handlers: HandlerRegistry<Env, Data, In, Out, L>
  readonly serializer: Serializer<In, Out> | undefined
  readonly objectRouter: ObjectRouter<Env, Data, In, Out> | undefined
  readonly tags: TagsFunction<L> | undefined
  readonly protocol: ProtocolFunction<L> | undefined
  /** `validate`, made into one check when the module was made. */
  readonly validate: MessageCheck | undefined
  readonly resume: ResolvedResume<L> | undefined
  readonly maxConnectionsPerKey: ConnectionsPerKey<L> | undefined
  readonly rateLimit: RateLimit | undefined
  readonly maxQueued: Required<QueueLimit>
  readonly maxRequests: number
  readonly handlerTimeout: number | undefined
  readonly sendWindow: Required<SendWindow>
  readonly presence: ResolvedPresence<L> | undefined
  readonly shards: ResolvedShards | undefined
}

/** What the Worker runs before a request reaches the object. */
export interface WorkerSide<Env, L extends object> {
  readonly binding: string
  readonly middleware: readonly MiddlewareEntry<Env, L>[]
  readonly chain: readonly MiddlewareHandler<Env, L>[]
  readonly room: RoomFunction<Env, L> | undefined
  /** Read at request time, since `add('error', …)` may come after `websocket()`. */
  readonly handlers: HandlerRegistry<Env, object, unknown, unknown, L>
  readonly shards: ResolvedShards | undefined
}

export interface ResolvedOptions<Env, Data extends object, In, Out, L extends object> {
  readonly worker: WorkerSide<Env, L>
  readonly object: ObjectSide<Env, Data, In, Out, L>
}

/**
 * Checks every option once, when the module is made, so a mistake fails at
 * start-up with a message that says what to pass, never on the first request.
 */
export function resolveOptions<Env, Data extends object, In, Out, L extends object>(
  options: WebSocketOptions<Env, Data, In, Out, L>,
): ResolvedOptions<Env, Data, In, Out, L> {
  if (typeof options !== 'object' || (options as unknown) === null) {
    throw invalid(`websocket() takes an options object, got ${describe(options)}.`)
  }
  const { binding, middleware = [], objectRouter, room, tags, protocol, validate } = options
  if (typeof binding !== 'string' || binding === '') {
    throw invalid(
      'options.binding must name the Durable Object binding from wrangler.toml, e.g. "WEBSOCKET".',
    )
  }
  const givenMiddleware: unknown = middleware
  if (!Array.isArray(givenMiddleware))
    throw invalid('options.middleware must be an array of [factory, options] pairs.')
  if (objectRouter !== undefined && typeof objectRouter.fetch !== 'function') {
    throw invalid('options.objectRouter must have a fetch(request, manager) method.')
  }
  optionalFunction('room', room, '(request, env, locals) => room name')
  optionalFunction('tags', tags, '(request, locals) => string[]')
  optionalFunction('protocol', protocol, '(offered, request, locals) => string | undefined')
  if (validate !== undefined && typeof validate !== 'function' && !isStandardSchema(validate)) {
    throw invalid(
      `options.validate must be a function (message) => boolean or a Standard Schema (zod, valibot…), got ${describe(validate)}.`,
    )
  }
  const serializer = resolveSerializer<In, Out>(options.serializer)
  if (validate !== undefined && serializer === undefined) {
    throw invalid('options.validate checks decoded messages, so it needs a serializer too.')
  }
  const shards = resolveShards(options.shards, binding)
  if (shards !== undefined && options.presence !== undefined)
    throw invalid(
      'options.shards and options.presence cannot be combined yet: presence needs one object per room.',
    )
  const handlers = new HandlerRegistry<Env, Data, In, Out, L>()
  const frozenMiddleware = [...middleware]
  return {
    worker: {
      binding,
      middleware: frozenMiddleware,
      chain: frozenMiddleware.map(createMiddleware),
      room,
      handlers: handlers as unknown as HandlerRegistry<Env, object, unknown, unknown, L>,
      shards,
    },
    object: {
      handlers,
      serializer,
      objectRouter,
      tags,
      protocol,
      validate: validate === undefined ? undefined : toMessageCheck(validate),
      // A leaf refuses past its share, so the Worker places the upgrade on the next one.
      maxConnections: lowest(
        positiveInteger('maxConnections', options.maxConnections),
        shards?.socketsPerShard,
      ),
      maxMessageBytes:
        positiveInteger('maxMessageBytes', options.maxMessageBytes, RUNTIME_MAX_MESSAGE_BYTES) ??
        DEFAULT_MAX_MESSAGE_BYTES,
      idleTimeout: positiveInteger('idleTimeout', options.idleTimeout),
      heartbeat: resolveHeartbeat(options.heartbeat),
      resume: resolveResume(options.resume),
      maxConnectionsPerKey: resolvePerKey(options.maxConnectionsPerKey),
      rateLimit: resolveRateLimit(options.rateLimit),
      maxQueued: resolvePair('maxQueued', options.maxQueued, DEFAULT_MAX_QUEUED),
      maxRequests: positiveInteger('maxRequests', options.maxRequests) ?? DEFAULT_MAX_REQUESTS,
      handlerTimeout: resolveHandlerTimeout(options.handlerTimeout),
      sendWindow: resolvePair('sendWindow', options.sendWindow, DEFAULT_SEND_WINDOW),
      presence: resolvePresence(options.presence),
      shards,
    },
  }
}

export function resolveSerializer<In, Out>(option: unknown): Serializer<In, Out> | undefined {
  if (option === undefined) return undefined
  const serializer = serializerFrom<In, Out>(option)
  if (serializer === undefined) {
    throw invalid(`The serializer option must be ${SERIALIZER_EXPECTED}, got ${describe(option)}.`)
  }
  return serializer
}

function resolveResume<L>(value: unknown): ResolvedResume<L> | undefined {
  if (value === false) return undefined
  if (value === undefined) return { ...DEFAULT_RESUME, owner: undefined }
  if (typeof value !== 'object' || value === null) {
    throw invalid(
      `options.resume must be false or { window, maxMessages, maxBytes, maxAge, owner }, got ${describe(value)}.`,
    )
  }
  const { window, maxMessages, maxBytes, maxAge, owner } = value as ResumeOptions<L>
  if (owner !== undefined && typeof owner !== 'function') {
    throw invalid(
      `options.resume.owner must be a function (request, locals) => string, got ${describe(owner)}.`,
    )
  }
  return {
    window: positiveInteger('resume.window', window) ?? DEFAULT_RESUME.window,
    maxMessages: positiveInteger('resume.maxMessages', maxMessages) ?? DEFAULT_RESUME.maxMessages,
    maxBytes: positiveInteger('resume.maxBytes', maxBytes) ?? DEFAULT_RESUME.maxBytes,
    maxAge: positiveInteger('resume.maxAge', maxAge) ?? DEFAULT_RESUME.maxAge,
    owner,
  }
}

function lowest(a: number | undefined, b: number | undefined): number | undefined {
  return a === undefined ? b : b === undefined ? a : Math.min(a, b)
}

function resolvePerKey<L>(value: unknown): ConnectionsPerKey<L> | undefined {
  if (value === undefined) return undefined
  const perKey = value as Partial<ConnectionsPerKey<L>> | null
  if (typeof perKey !== 'object' || perKey === null || typeof perKey.key !== 'function') {
    throw invalid(
      `options.maxConnectionsPerKey must be { key: (request, locals) => string, max }, got ${describe(value)}.`,
    )
  }
  const max = positiveInteger('maxConnectionsPerKey.max', perKey.max)
  if (max === undefined) throw invalid('options.maxConnectionsPerKey.max is required: a whole number from 1.')
  return { key: perKey.key, max }
}

function resolveRateLimit(value: unknown): RateLimit | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'object' || value === null) {
    throw invalid(`options.rateLimit must be { messages, per } (per in ms), got ${describe(value)}.`)
  }
  const { messages, per } = value as Partial<RateLimit>
  const resolved = {
    messages: positiveInteger('rateLimit.messages', messages),
    per: positiveInteger('rateLimit.per', per),
  }
  if (resolved.messages === undefined || resolved.per === undefined) {
    throw invalid('options.rateLimit needs both messages and per (in ms), e.g. { messages: 20, per: 1000 }.')
  }
  return { messages: resolved.messages, per: resolved.per }
}

/** `{ messages, bytes }`, each optional, each a whole number from 1. */
function resolvePair(name: string, value: unknown, defaults: Required<QueueLimit>): Required<QueueLimit> {
  if (value === undefined) return defaults
  if (typeof value !== 'object' || value === null) {
    throw invalid(`options.${name} must be { messages, bytes }, got ${describe(value)}.`)
  }
  const { messages, bytes } = value as QueueLimit
  return {
    messages: positiveInteger(`${name}.messages`, messages) ?? defaults.messages,
    bytes: positiveInteger(`${name}.bytes`, bytes) ?? defaults.bytes,
  }
}

function resolveHandlerTimeout(value: unknown): number | undefined {
  if (value === false) return undefined
  return positiveInteger('handlerTimeout', value) ?? DEFAULT_HANDLER_TIMEOUT
}

function resolveHeartbeat(value: unknown): Heartbeat | undefined {
  if (value === false) return undefined
  if (value === undefined) return DEFAULT_HEARTBEAT
  const pair: Partial<Heartbeat> | null = value
  if (
    typeof pair !== 'object' ||
    pair === null ||
    typeof pair.request !== 'string' ||
    typeof pair.response !== 'string' ||
    pair.request === ''
  ) {
    throw invalid(
      `options.heartbeat must be false or { request, response } with a non-empty request text, got ${describe(value)}.`,
    )
  }
  return { request: pair.request, response: pair.response }
}

function createMiddleware<Env, L extends object>(
  entry: MiddlewareEntry<Env, L>,
  index: number,
): MiddlewareHandler<Env, L> {
  if (!Array.isArray(entry) || typeof entry[0] !== 'function') {
    throw invalid(
      `options.middleware[${String(index)}] must be a [factory, options] pair, got ${describe(entry)}.`,
    )
  }
  const [factory, factoryOptions] = entry
  const handler = factory(factoryOptions as never)
  if (typeof handler !== 'function') {
    throw invalid(
      `options.middleware[${String(index)}]: the factory must return a function (request, context).`,
    )
  }
  return handler
}
