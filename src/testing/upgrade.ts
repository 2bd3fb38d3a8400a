import { DurableWebSocketError } from '../core/errors.js'
import { describe } from '../shared/describe.js'
import { SERIALIZER_EXPECTED, serializerFrom, type Serializer } from '../shared/serializer.js'
import { HandshakeError } from './HandshakeError.js'
import type { Fetchable, OpenSocketOptions } from './openSocket.js'

const DEFAULT_TIMEOUT_MS = 2_000
const DEFAULT_BASE = 'http://localhost'

/** What `openSocket` and `openSession` make of their options, once, before the first upgrade. */
export interface UpgradeRequest<Message> {
  readonly url: string
  readonly headers: Headers
  readonly serializer: Serializer<Message> | undefined
  readonly timeout: number
}

/** Checks the options shared by every helper that opens a socket; `caller` names it in the errors. */
export function upgradeRequest<Message>(
  caller: string,
  path: string,
  options: OpenSocketOptions<Message>,
): UpgradeRequest<Message> {
  const { headers, serializer = 'json', timeout = DEFAULT_TIMEOUT_MS, base = DEFAULT_BASE } = options
  if (typeof timeout !== 'number' || !(timeout > 0)) {
    throw new TypeError(
      `${caller}(): options.timeout must be a positive number of ms, got ${String(timeout)}.`,
    )
  }
  return {
    url: new URL(path, base).href,
    headers: new Headers(headers),
    serializer: serializer === false ? undefined : testSerializer<Message>(caller, serializer),
    timeout,
  }
}

/**
 * Sends the upgrade through the worker's `fetch`, offering `protocols` when
 * given, and returns the 101 with its socket; anything else is a
 * {@link HandshakeError}.
 */
export async function upgrade(
  worker: Fetchable,
  request: UpgradeRequest<unknown>,
  protocols: readonly string[] = [],
): Promise<{ response: Response; webSocket: WebSocket }> {
  const headers = new Headers(request.headers)
  if (!headers.has('Upgrade')) headers.set('Upgrade', 'websocket')
  if (protocols.length > 0) headers.set('Sec-WebSocket-Protocol', protocols.join(', '))
  const response = await worker.fetch(new Request(request.url, { headers }))
  if (response.status !== 101 || response.webSocket === null) {
    throw new HandshakeError(request.url, response, await response.text())
  }
  return { response, webSocket: response.webSocket }
}

function testSerializer<Message>(caller: string, option: unknown): Serializer<Message> {
  const serializer = serializerFrom<Message, Message>(option)
  if (serializer !== undefined) return serializer
  throw new DurableWebSocketError(
    'ERR_DWS_INVALID_OPTIONS',
    `${caller}(): options.serializer must be false, ${SERIALIZER_EXPECTED}, got ${describe(option)}.`,
  )
}
