import { DurableWebSocketError } from '../../core/errors.js'
import { readSessionOffer } from '../../shared/sessionProtocol.js'
import { MAX_SHARDS } from '../../shardOptions.js'
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

/**
 * What a leaf puts in front of the session tokens it hands out: `l<n>_`,
 * base64url like the rest, so a resume can be sent back to the leaf that
 * holds its session (docs/sharding.md, "What does not work yet").
 */
export function leafTokenPrefix(index: number): string {
  return `l${String(index)}_`
}

const LEAF_TOKEN = /^l(\d{1,2})_/

/** The leaf whose session an upgrade asks to resume, read from its resume entry's token; undefined for any other upgrade. */
export function homeLeaf(request: Request): number | undefined {
  const offered = (request.headers.get('Sec-WebSocket-Protocol') ?? '')
    .split(',')
    .map((entry) => entry.trim())
  const token = readSessionOffer(offered).resume?.token
  return token === undefined ? undefined : tokenLeaf(token)
}

/**
 * The leaf that handed out this session token, from its `l<n>_` prefix;
 * undefined when it names no leaf a room can have. Not bounded by today's
 * `count`: a leaf left beyond a lowered count still holds its sessions.
 */
export function tokenLeaf(token: string): number | undefined {
  const index = LEAF_TOKEN.exec(token)?.[1]
  if (index === undefined || Number(index) >= MAX_SHARDS) return undefined
  return Number(index)
}

/**
 * The leaf that handed out connection `id`; undefined for a number no leaf
 * hands out (0, negative, not an integer). Leaf n hands out n+1, n+1+64,
 * n+1+128, … whatever the room's `count` (shard/side.ts's `idSpacing`), so
 * the answer needs no call and stays true when `count` changes. Where a
 * session moved since, only the root knows (shard/sessionRoutes.ts).
 */
export function leafOfId(id: number): number | undefined {
  return Number.isSafeInteger(id) && id > 0 ? (id - 1) % MAX_SHARDS : undefined
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
