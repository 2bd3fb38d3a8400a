import { DurableWebSocketError } from '../../core/errors.js'
import { DEFAULT_RESUME, type ObjectSide, type ResolvedShards } from '../../options.js'
import { ShardLeaf } from './leaf.js'
import type { NumberedMessage, RoomOrder } from './messages.js'
import { shardPart } from './names.js'
import { ShardRoot } from './root.js'
import { RoomWide, type LocalConnections } from './roomWide.js'

/** This object's part of a sharded room, from its name; undefined for an ordinary room. */
export function shardOf<Env, Data extends object, In, Out, L extends object>(
  ctx: DurableObjectState,
  env: Env,
  options: ObjectSide<Env, Data, In, Out, L>,
  deliver: (message: NumberedMessage) => void,
): ShardRoot | ShardLeaf | undefined {
  const { shards } = options
  const name = ctx.id.name
  if (shards === undefined || name === undefined) return undefined
  const part = shardPart(name)
  if (part.kind === 'leaf') return new ShardLeaf(ctx, env, part.room, part.index, shards, deliver)
  // The root keeps the room's log whether or not sessions resume: leaves catch up from it.
  return new ShardRoot(ctx, env, part.room, shards, options.resume ?? DEFAULT_RESUME)
}

export function notThePart(part: 'root' | 'leaf'): DurableWebSocketError {
  return new DurableWebSocketError(
    'ERR_DWS_INVALID_OPTIONS',
    `this object is not the ${part} of a sharded room: the shard* methods are for the objects of a module made with the shards option, which call each other.`,
  )
}

/**
 * The room-wide view of a sharded room's object (roomWide.ts), around the
 * part `shardOf` made: what it numbers goes through that part's order.
 */
export function roomWideOf(
  ctx: DurableObjectState,
  env: unknown,
  shards: ResolvedShards | undefined,
  order: RoomOrder | undefined,
  local: LocalConnections,
): RoomWide | undefined {
  const name = ctx.id.name
  if (shards === undefined || name === undefined || order === undefined) return undefined
  // The root knows where sessions moved; a leaf goes by the id alone (docs/sharding.md, moved sessions).
  const movedTo = order instanceof ShardRoot ? (id: number) => order.leafOfId(id) : undefined
  const span = (): number =>
    order instanceof ShardRoot || order instanceof ShardLeaf ? order.span : shards.count
  return new RoomWide(env, shards, shardPart(name), order, span, local, movedTo)
}
