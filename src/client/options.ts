import { describe } from '../shared/describe.js'
import {
  SERIALIZER_EXPECTED,
  serializerFrom,
  type Serializer,
  type SerializerOption,
} from '../shared/serializer.js'
import { ClientError } from './ClientError.js'
import { isRetryableClose, type CloseEventInfo } from './closeCodes.js'
import { resolveProtocols, type ProtocolsOption, type ResolvedProtocols } from './protocols.js'
import { RESUME_PREFIX, SESSION_PROTOCOL, isSessionProtocolName } from '../shared/sessionProtocol.js'
import type { SessionStore } from './StoredSession.js'

/** Any WHATWG-style WebSocket class: the browser's, Node 22's global one, or the `ws` package's. */
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => object

export interface ReconnectOptions {
  /** The ceiling of the first retry's delay, in ms. Default: 500. */
  initialDelay?: number
  /** The ceiling never grows past this, in ms. Default: 10000, or initialDelay if that is larger. */
  maxDelay?: number
  /** Retries in a row without an open connection before the client gives up. Default: Infinity. */
  maxAttempts?: number
}

export interface HeartbeatOptions {
  /** Send `request` this often while connected, in ms. */
  interval: number
  /** When nothing at all arrives this long after a ping, the connection counts as dead and is replaced. Default: `interval`. */
  timeout?: number
  /** Default: 'ping', the server's default. */
  request?: string
  /** Swallowed, never a `message` event. Default: 'pong', the server's default. */
  response?: string
}

export interface ClientOptions<Incoming = unknown, Outgoing = Incoming> {
  /** The same choice as the server's: 'json' or `{ encode, decode }`. Default: 'json'. */
  serializer?: SerializerOption<Incoming, Outgoing>
  /** Backoff for automatic reconnects, or `false` for none. Default: `{ initialDelay: 500, maxDelay: 10000, maxAttempts: Infinity }`. */
  reconnect?: ReconnectOptions | false
  /** Which closes to retry. Default: codes 1001, 1006, 1011, 1012, 1013 and 1014. */
  shouldReconnect?: (close: CloseEventInfo) => boolean
  /**
   * Messages the client holds: those waiting for a connection and, with a
   * session, those sent but not yet acknowledged. Past it `send` returns
   * false. 0 turns queueing off (plain mode only). Default: 100.
   */
  maxQueued?: number
  /** Keep-alive pings, as an interval in ms or options; `false` for none. Default: false. */
  heartbeat?: number | HeartbeatOptions | false
  /**
   * Subprotocols to offer in Sec-WebSocket-Protocol, the one header a browser
   * lets a page set: a name, an array of names, or a function called before
   * every attempt (it may be async), e.g. `() => ['dws.auth', token]`. The
   * server's `protocol` option must pick one, or the handshake fails. Default: none.
   */
  protocols?: ProtocolsOption
  /** The WebSocket class to use. Default: `globalThis.WebSocket`. */
  WebSocket?: WebSocketConstructor
  /**
   * Offer a durable session (subprotocol `dws.session.v1`): a reconnect
   * resumes it, nothing sent is lost or doubled. `false` speaks plain
   * WebSocket only. Default: true.
   */
  session?: boolean
  /** Where the session is kept, e.g. `sessionStorage`, so a page reload resumes it too. Default: memory only. */
  store?: SessionStore
  /** The key under which `store` keeps the session. Default: `'durable-websocket:' + url`. */
  storeKey?: string
}

export const DEFAULT_MAX_QUEUED = 100
export const DEFAULT_INITIAL_DELAY = 500
export const DEFAULT_MAX_DELAY = 10_000

export interface ResolvedHeartbeat {
  readonly interval: number
  readonly timeout: number
  readonly request: string
  readonly response: string
}

export interface ResolvedOptions<Incoming, Outgoing> {
  readonly serializer: Serializer<Incoming, Outgoing>
  readonly reconnect: Required<ReconnectOptions> | undefined
  readonly shouldReconnect: (close: CloseEventInfo) => boolean
  readonly maxQueued: number
  readonly heartbeat: ResolvedHeartbeat | undefined
  readonly protocols: ResolvedProtocols
  readonly WebSocket: WebSocketConstructor
  readonly session: boolean
  readonly store: SessionStore | undefined
  readonly storeKey: string | undefined
}

function invalid(message: string): ClientError {
  return new ClientError('ERR_DWS_INVALID_OPTIONS', message)
}

/** Timers take at most 2^31 - 1 ms; a longer delay would fire at once. */
const MAX_TIMER_MS = 2_147_483_647

function wholeNumber(name: string, value: unknown, fallback: number, min: number, unit: string): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > MAX_TIMER_MS) {
    throw invalid(
      `options.${name} must be a whole number${unit} from ${String(min)} to ${String(MAX_TIMER_MS)}, got ${describe(value)}.`,
    )
  }
  return value
}

function milliseconds(name: string, value: unknown, fallback: number): number {
  return wholeNumber(name, value, fallback, 1, ' of milliseconds')
}

function resolveReconnect(value: unknown): Required<ReconnectOptions> | undefined {
  if (value === false) return undefined
  if (value !== undefined && (typeof value !== 'object' || value === null)) {
    throw invalid(
      `options.reconnect must be false or { initialDelay, maxDelay, maxAttempts }, got ${describe(value)}.`,
    )
  }
  const { initialDelay, maxDelay, maxAttempts } = (value ?? {}) as Record<string, unknown>
  const initial = milliseconds('reconnect.initialDelay', initialDelay, DEFAULT_INITIAL_DELAY)
  const max = milliseconds('reconnect.maxDelay', maxDelay, Math.max(DEFAULT_MAX_DELAY, initial))
  if (max < initial) {
    throw invalid(
      `options.reconnect.maxDelay (${String(max)}) must not be below initialDelay (${String(initial)}).`,
    )
  }
  const attempts = maxAttempts ?? Infinity
  if (
    typeof attempts !== 'number' ||
    attempts < 0 ||
    (!Number.isInteger(attempts) && attempts !== Infinity)
  ) {
    throw invalid(
      `options.reconnect.maxAttempts must be a whole number from 0, or Infinity, got ${describe(attempts)}.`,
    )
  }
  return { initialDelay: initial, maxDelay: max, maxAttempts: attempts }
}

function resolveHeartbeat(value: unknown): ResolvedHeartbeat | undefined {
  if (value === undefined || value === false) return undefined
  const options = typeof value === 'number' ? { interval: value } : value
  if (typeof options !== 'object' || options === null) {
    throw invalid(
      `options.heartbeat must be false, an interval in ms or { interval, timeout, request, response }, got ${describe(value)}.`,
    )
  }
  const { interval, timeout, request = 'ping', response = 'pong' } = options as Record<string, unknown>
  if (interval === undefined)
    throw invalid('options.heartbeat.interval is required: how often to ping, in ms.')
  const every = milliseconds('heartbeat.interval', interval, 1)
  if (typeof request !== 'string' || request === '' || typeof response !== 'string' || response === '') {
    throw invalid('options.heartbeat.request and .response must be non-empty strings, as set on the server.')
  }
  return { interval: every, timeout: milliseconds('heartbeat.timeout', timeout, every), request, response }
}

function resolveWebSocket(value: unknown): WebSocketConstructor {
  const constructor = value ?? (globalThis as { WebSocket?: unknown }).WebSocket
  if (typeof constructor !== 'function') {
    throw invalid(
      value === undefined
        ? "There is no global WebSocket here (Node before 22?): pass options.WebSocket, e.g. the ws package's WebSocket."
        : `options.WebSocket must be a WebSocket class, got ${describe(value)}.`,
    )
  }
  return constructor as WebSocketConstructor
}

function resolveStore(value: unknown, session: boolean): SessionStore | undefined {
  if (value === undefined) return undefined
  const store: Partial<Record<keyof SessionStore, unknown>> | null = value
  if (
    typeof store !== 'object' ||
    store === null ||
    typeof store.getItem !== 'function' ||
    typeof store.setItem !== 'function' ||
    typeof store.removeItem !== 'function'
  ) {
    throw invalid(
      `options.store must be sessionStorage, localStorage or an object with getItem, setItem and removeItem, got ${describe(value)}.`,
    )
  }
  if (!session) throw invalid('options.store keeps a session, so it cannot go with session: false.')
  return value as SessionStore
}

/**
 * The server's serializer seen from the other end: `decode` makes what the
 * server sends (`Incoming`), `encode` takes what the client sends (`Outgoing`).
 */
function resolveSerializer<Incoming, Outgoing>(option: unknown): Serializer<Incoming, Outgoing> {
  // JSON makes whatever the server sent; the type parameters are the caller's word for what that is.
  const serializer = serializerFrom<Incoming, Outgoing>(option ?? 'json')
  if (serializer !== undefined) return serializer
  throw invalid(`options.serializer must be ${SERIALIZER_EXPECTED}, got ${describe(option)}.`)
}

/** Checks every option once, when the client is made, and fills in the defaults. */
export function resolveOptions<Incoming, Outgoing>(
  options: ClientOptions<Incoming, Outgoing> | undefined,
): ResolvedOptions<Incoming, Outgoing> {
  if (options !== undefined && (typeof options !== 'object' || (options as unknown) === null)) {
    throw invalid(`connect() takes an options object as its second argument, got ${describe(options)}.`)
  }
  const {
    serializer,
    reconnect,
    shouldReconnect,
    maxQueued,
    heartbeat,
    protocols,
    WebSocket,
    session = true,
    store,
    storeKey,
  } = options ?? {}
  if (shouldReconnect !== undefined && typeof shouldReconnect !== 'function') {
    throw invalid(
      `options.shouldReconnect must be a function (close) => boolean, got ${describe(shouldReconnect)}.`,
    )
  }
  if (typeof session !== 'boolean')
    throw invalid(`options.session must be true or false, got ${describe(session)}.`)
  if (storeKey !== undefined && (typeof storeKey !== 'string' || storeKey === '')) {
    throw invalid(`options.storeKey must be a non-empty string, got ${describe(storeKey)}.`)
  }
  const queue = wholeNumber('maxQueued', maxQueued, DEFAULT_MAX_QUEUED, 0, '')
  if (session && queue === 0) {
    throw invalid(
      'options.maxQueued is 0, but a session keeps every message until the server acknowledges it: give at least 1, or pass session: false.',
    )
  }
  const offer = resolveProtocols(protocols)
  if (session && typeof offer !== 'function' && offer.some(isSessionProtocolName)) {
    throw invalid(
      `options.protocols names a dws.session.* or ${RESUME_PREFIX}* subprotocol, which the client offers itself (${SESSION_PROTOCOL}); leave it out.`,
    )
  }
  return {
    serializer: resolveSerializer(serializer),
    reconnect: resolveReconnect(reconnect),
    shouldReconnect: shouldReconnect ?? isRetryableClose,
    maxQueued: queue,
    heartbeat: resolveHeartbeat(heartbeat),
    protocols: offer,
    WebSocket: resolveWebSocket(WebSocket),
    session,
    store: resolveStore(store, session),
    storeKey,
  }
}
