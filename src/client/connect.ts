import type { ClientSends, MessageSchemas, ServerOut } from '../shared/standardSchema.js'
import { Client } from './Client.js'
import type { ClientOptions } from './options.js'
import type { ConnectTarget } from './target.js'

/**
 * Opens a connection to a mount (`'wss://example.com/ws'`) or to one of its
 * rooms (`{ url: '/chat/ws', room: 'lobby' }`) and keeps it open: it
 * reconnects after drops and queues messages meanwhile. `Incoming` types what
 * the server sends, `Outgoing` what `send` takes (by default the same). Bad
 * options throw `ERR_DWS_INVALID_OPTIONS` here, before anything connects.
 */
export function connect<Incoming = unknown, Outgoing = Incoming>(
  target: string | URL | ConnectTarget,
  options?: ClientOptions<Incoming, Outgoing>,
): Client<Incoming, Outgoing> {
  return new Client<Incoming, Outgoing>(target, options)
}

/**
 * The client for an endpoint declared with {@link MessageSchemas}, typed from
 * the same file as the server: it receives the server's `Out` and sends what
 * the `in` schema accepts. Types only; nothing validates on this side.
 * `const chat: ClientFor<typeof messages> = connect('/ws')`.
 */
export type ClientFor<M extends MessageSchemas> = Client<ServerOut<M>, ClientSends<M>>
