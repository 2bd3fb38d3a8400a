import { DurableWebSocketError, describe } from './errors.js'

/** The default for `maxMessageBytes`: far below workerd's own 32 MiB, which few apps want to buffer. */
export const DEFAULT_MAX_MESSAGE_BYTES = 1_048_576

/** workerd closes a socket whose incoming message is larger than this with 1009 itself. */
export const RUNTIME_MAX_MESSAGE_BYTES = 33_554_432

export interface Heartbeat {
  /** The exact text a client sends. */
  request: string
  /** The text the runtime answers with, without waking the object. */
  response: string
}

export const DEFAULT_HEARTBEAT: Heartbeat = { request: 'ping', response: 'pong' }

export interface LimitOptions {
  maxConnections?: number | undefined
  maxMessageBytes?: number | undefined
  idleTimeout?: number | undefined
  heartbeat?: Heartbeat | false | undefined
}

export interface Limits {
  readonly maxConnections: number | undefined
  readonly maxMessageBytes: number
  readonly idleTimeout: number | undefined
  readonly heartbeat: Heartbeat | undefined
}

function invalid(message: string): DurableWebSocketError {
  return new DurableWebSocketError('ERR_DWS_INVALID_OPTIONS', message)
}

function positiveInteger(name: string, value: unknown, max = Number.MAX_SAFE_INTEGER): number | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > max) {
    throw invalid(`options.${name} must be a whole number from 1 to ${String(max)}, got ${describe(value)}.`)
  }
  return value
}

function resolveHeartbeat(value: unknown): Heartbeat | undefined {
  if (value === false) return undefined
  if (value === undefined) return DEFAULT_HEARTBEAT
  const pair = value as Partial<Heartbeat> | null
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

export function resolveLimits(options: LimitOptions): Limits {
  return {
    maxConnections: positiveInteger('maxConnections', options.maxConnections),
    maxMessageBytes:
      positiveInteger('maxMessageBytes', options.maxMessageBytes, RUNTIME_MAX_MESSAGE_BYTES) ??
      DEFAULT_MAX_MESSAGE_BYTES,
    idleTimeout: positiveInteger('idleTimeout', options.idleTimeout),
    heartbeat: resolveHeartbeat(options.heartbeat),
  }
}
