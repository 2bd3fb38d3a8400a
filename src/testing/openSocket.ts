import type { SerializerOption } from '../shared/serializer.js'
import { TestSocket } from './TestSocket.js'
import { upgrade, upgradeRequest } from './upgrade.js'

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
  const request = upgradeRequest('openSocket', path, options)
  const { webSocket } = await upgrade(worker, request)
  return new TestSocket<Message>(webSocket, request.serializer, request.timeout)
}
