import { DurableWebSocketError } from '../../core/errors.js'
import type { ShardStub } from './messages.js'

/**
 * Room names never hold `#` (shared/roomName.ts), so a leaf's name can never
 * be an ordinary room's, and a root keeps the room's own name: an RPC call to
 * `ws.room(env, name)` reaches the root without knowing the room is sharded.
 */
const LEAF_SEPARATOR = '#'

/** The name of a room's leaf number `index`, counted from 0. */
export function leafName(room: string, index: number): string {
  return `${room}${LEAF_SEPARATOR}${String(index)}`
}

/** What one object of a sharded room is, read from its name. */
export type ShardPart =
  | { readonly kind: 'root'; readonly room: string }
  | { readonly kind: 'leaf'; readonly room: string; readonly index: number }

export function shardPart(name: string): ShardPart {
  const at = name.lastIndexOf(LEAF_SEPARATOR)
  if (at < 0) return { kind: 'root', room: name }
  return { kind: 'leaf', room: name.slice(0, at), index: Number(name.slice(at + 1)) }
}

/** The stub of one object of a sharded room, by its name; the binding was checked when the module was made. */
export function shardStub(env: unknown, binding: string, name: string): ShardStub {
  const namespace = (env as Record<string, DurableObjectNamespace | undefined>)[binding]
  if (namespace === undefined)
    throw new DurableWebSocketError(
      'ERR_DWS_MISSING_BINDING',
      `env.${binding} is not a Durable Object namespace, so ${name} of a sharded room cannot be reached: bind your WebSocketObject subclass as "${binding}" in wrangler.toml.`,
    )
  return namespace.getByName(name) as unknown as ShardStub
}
