import type { ResolvedShards } from '../options.js'
import { isFullLeafAnswer } from '../object/shard/leafFull.js'
import type { ShardStub } from '../object/shard/messages.js'
import { homeLeaf, leafName } from '../object/shard/names.js'
import { placementHints } from './leafPlacement.js'

/**
 * Hands the upgrade to one object and returns its answer. With a ticket, a
 * full leaf may answer "full, try the next" (object/shard/leafFull.ts)
 * instead of refusing the client.
 */
export type ForwardUpgrade = (stub: DurableObjectStub, ticket: string | undefined) => Promise<Response>

/**
 * A sharded room's upgrade goes to the first leaf with room (docs/sharding.md,
 * "Placement"), asked in turn from the one this isolate placed the room's
 * last upgrade on (leafPlacement.ts). A resume goes first to the leaf that
 * holds its session, which its token names, while that leaf has room; when
 * it is full, the resume is placed like a new upgrade, and the leaf it lands
 * on claims the session (object/shard/claims.ts).
 *
 * `shardHasRoom()` is only a hint: upgrades racing for a leaf's last places
 * all hear yes. So the upgrade carries a ticket, and a leaf that is full when
 * it comes to accept it answers "full" without accepting anything; the
 * upgrade then goes on to the next leaf. The last leaf in the turn gets no
 * ticket: when every leaf is full, it refuses the client exactly as an
 * ordinary full room does (503 with Retry-After, or 1013 for a session).
 */
export async function placeOnLeaf(
  request: Request,
  namespace: DurableObjectNamespace,
  room: string,
  { count, binding }: ResolvedShards,
  forward: ForwardUpgrade,
): Promise<Response> {
  const ticket = crypto.randomUUID()
  // A token may name a leaf past a lowered count: the resume is placed on today's leaves, which claim it from there.
  const named = homeLeaf(request)
  const home = named !== undefined && named < count ? named : undefined
  if (home !== undefined && count > 1) {
    const leaf = namespace.getByName(leafName(room, home))
    if (await hasRoom(leaf)) {
      const answer = await forward(leaf, ticket)
      if (!isFullLeafAnswer(answer, ticket)) return answer
    }
  }
  const key = `${binding}/${room}`
  // The resume's own leaf said no or sent it on: it comes last, and gets it only when every other leaf is full.
  const order = placementHints.order(key, count)
  if (home !== undefined && count > 1) order.push(...order.splice(order.indexOf(home), 1))
  const last = order.pop() ?? 0
  for (const index of order) {
    const leaf = namespace.getByName(leafName(room, index))
    if (!(await hasRoom(leaf))) continue
    const answer = await forward(leaf, ticket)
    if (isFullLeafAnswer(answer, ticket)) continue
    placementHints.placed(key, index)
    return answer
  }
  placementHints.placed(key, last)
  return forward(namespace.getByName(leafName(room, last)), undefined)
}

function hasRoom(leaf: DurableObjectStub): Promise<boolean> {
  return (leaf as unknown as ShardStub).shardHasRoom()
}
