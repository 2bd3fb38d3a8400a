import { DurableWebSocketError } from '../core/errors.js'
import { describe } from '../shared/describe.js'
import {
  SERIALIZER_EXPECTED,
  serializerFrom,
  type Serializer,
  type SerializerOption,
} from '../shared/serializer.js'
import { HandshakeError } from './HandshakeError.js'
import { TestSocket } from './TestSocket.js'

/**
 * Whatever reaches your worker: `exports.default` from `cloudflare:workers`,
 * `SELF` from `cloudflare:test`, or a service binding.
 */
export interface Fetchable {
  fetch(request: Request): Response | Promise<Response>
}

export interface OpenSocketOptions<Message> {
  /** Extra headers for the upgrade request, e.g. `Authorization` or `Origin`. */
  headers?: HeadersInit | undefined
  /**
   * Encodes what `send` is given and decodes what `nextMessage` returns; use
   * the same as the module under test. `false` sends and reads strings as
   * they are. Default: `'json'`.
   */
  serializer?: SerializerOption<Message> | false | undefined
  /** How long `nextMessage`, `nextFrame`, `nextClose` and `close` wait by default, in ms. Default: 2000. */
  timeout?: number | undefined
  /** What a relative `path` is resolved against. Default: `http://localhost`. */
  base?: string | undefined
}

const DEFAULT_TIMEOUT_MS = 2_000
const DEFAULT_BASE = 'http://localhost'

/**
 * Opens a WebSocket to your worker the way a client on the network would: a
 * GET with `Upgrade: websocket` through its `fetch`, so routing, the mount
 * and middleware all run. Rejects with a {@link HandshakeError} when the
 * answer is not a 101. Runs inside workerd (`@cloudflare/vitest-plugin`).
 */
export function openSocket(
  worker: Fetchable,
  path: string,
  options: OpenSocketOptions<string> & { serializer: false },
): Promise<TestSocket<string>>
export function openSocket<Message = unknown>(
  worker: Fetchable,
  path: string,
  options?: OpenSocketOptions<Message>,
): Promise<TestSocket<Message>>
export async function openSocket<Message>(
  worker: Fetchable,
  path: string,
  options: OpenSocketOptions<Message> = {},
): Promise<TestSocket<Message>> {
  const { headers: extra, serializer = 'json', timeout = DEFAULT_TIMEOUT_MS, base = DEFAULT_BASE } = options
  if (typeof timeout !== 'number' || !(timeout > 0)) {
    throw new TypeError(
      `openSocket(): options.timeout must be a positive number of ms, got ${String(timeout)}.`,
    )
  }
  const resolved = serializer === false ? undefined : testSerializer<Message>(serializer)
  const url = new URL(path, base).href
  const headers = new Headers(extra)
  if (!headers.has('Upgrade')) headers.set('Upgrade', 'websocket')
  const response = await worker.fetch(new Request(url, { headers }))
  if (response.status !== 101 || response.webSocket === null) {
    throw new HandshakeError(url, response, await response.text())
  }
  return new TestSocket<Message>(response.webSocket, resolved, timeout)
}

function testSerializer<Message>(option: unknown): Serializer<Message> {
  const serializer = serializerFrom<Message, Message>(option)
  if (serializer !== undefined) return serializer
  throw new DurableWebSocketError(
    'ERR_DWS_INVALID_OPTIONS',
    `openSocket(): options.serializer must be false, ${SERIALIZER_EXPECTED}, got ${describe(option)}.`,
  )
}
