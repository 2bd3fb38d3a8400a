import { Client } from './Client.js'
import type { ClientOptions } from './options.js'
import type { ConnectTarget } from './target.js'

/**
 * Opens a connection to a mount (`'wss://example.com/ws'`) or to one of its
 * rooms (`{ url: '/chat/ws', room: 'lobby' }`) and keeps it open: it
 * reconnects after drops and queues messages meanwhile. Bad options throw
 * `ERR_DWS_INVALID_OPTIONS` here, before anything connects.
 */
export function connect<Message = unknown>(
  target: string | URL | ConnectTarget,
  options?: ClientOptions<Message>,
): Client<Message> {
  return new Client<Message>(target, options)
}
