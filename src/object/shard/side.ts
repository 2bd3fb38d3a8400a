import type { Frame } from '../../core/outgoing.js'
import type { BroadcastOptions } from '../../core/types.js'
import { MAX_SHARDS, type ObjectSide } from '../../options.js'
import type { IdSpacing } from '../connectionTable.js'
import type { SessionDesk } from '../session/desk.js'
import { SessionClaims, type ClaimChecks } from './claims.js'
import { ShardLeaf } from './leaf.js'
import type { NumberedMessage, RoomMessage } from './messages.js'
import { leafTokenPrefix, shardPart } from './names.js'
import { notThePart, roomWideOf, shardOf } from './part.js'
import { ShardRoot } from './root.js'
import type { LocalConnections, RoomWide } from './roomWide.js'
import type { ShardStats } from './stats.js'

/**
 * What being part of a sharded room adds to one object (docs/sharding.md):
 * its part (the root, or a leaf), the room-wide view, and on a leaf the
 * claims of sessions that resume here though another leaf holds them. The
 * manager makes one at construction when the room is sharded, and an
 * ordinary room has none, so no path of an ordinary room asks about shards.
 */
export class ShardSide<Env, Data extends object, In, Out> {
  readonly part: ShardRoot | ShardLeaf
  readonly wide: RoomWide
  #claims: SessionClaims<Env, Data, In, Out> | undefined

  private constructor(part: ShardRoot | ShardLeaf, wide: RoomWide) {
    this.part = part
    this.wide = wide
  }

  /** This object's side of its sharded room, from its name; undefined for an ordinary room. */
  static of<Env, Data extends object, In, Out, L extends object>(
    ctx: DurableObjectState,
    env: Env,
    options: ObjectSide<Env, Data, In, Out, L>,
    local: LocalConnections,
    deliver: (message: NumberedMessage) => void,
  ): ShardSide<Env, Data, In, Out> | undefined {
    const part = shardOf(ctx, env, options, deliver)
    const wide = roomWideOf(ctx, env, options.shards, part, local)
    return part === undefined || wide === undefined ? undefined : new ShardSide(part, wide)
  }

  /**
   * On a leaf, the ids it hands out: n+1, n+1+64, … spaced by the most
   * leaves a room can have, not by its `count`, so they are unique in the
   * room with no call, and name their leaf (names.ts `leafOfId`) whatever
   * `count` was when they were handed out.
   */
  idSpacing(): IdSpacing | undefined {
    const part = this.part
    return part instanceof ShardLeaf ? { first: part.index + 1, every: MAX_SHARDS } : undefined
  }

  /** On a leaf, what it puts in front of the tokens it hands out, so a resume finds its way back. */
  get tokenPrefix(): string | undefined {
    return this.part instanceof ShardLeaf ? leafTokenPrefix(this.part.index) : undefined
  }

  /** On a leaf, once its session desk exists: the claims of sessions resumed here. */
  claimWith(
    ctx: DurableObjectState,
    env: unknown,
    options: Pick<ObjectSide<Env, Data, In, Out, object>, 'shards'>,
    desk: SessionDesk<Env, Data, In, Out>,
    checks: ClaimChecks,
  ): void {
    if (this.part instanceof ShardLeaf)
      this.#claims = new SessionClaims(ctx, env, this.part, options, desk, checks)
  }

  /** The logical room an object of it is named for: `lobby` for `lobby#2`. */
  static room(name: string): string {
    return shardPart(name).room
  }

  /**
   * A broadcast or `to(tag)`: the root numbers it, and every leaf delivers
   * it in the root's order. How many it reached is not known yet when this
   * returns: 0.
   */
  publish(frame: Frame, tag: string | null, { except }: BroadcastOptions): number {
    const excluded = except === undefined ? null : typeof except === 'number' ? [except] : [...except]
    const message: RoomMessage = { target: null, tag, except: excluded, frame, mark: '' }
    this.part.publish(message)
    return 0
  }

  /** The room's root, for the other objects' RPC calls. */
  root(): ShardRoot {
    if (this.part instanceof ShardRoot) return this.part
    throw notThePart('root')
  }

  /** A leaf of the room, for the root's RPC calls. */
  leaf(): ShardLeaf {
    if (this.part instanceof ShardLeaf) return this.part
    throw notThePart('leaf')
  }

  /** A leaf, for another leaf claiming a session (claims.ts). */
  claims(): SessionClaims<Env, Data, In, Out> {
    if (this.#claims !== undefined) return this.#claims
    throw notThePart('leaf')
  }

  /** On a leaf, what the claims do before a resume's checks; nothing on the root. */
  get claimsHere(): SessionClaims<Env, Data, In, Out> | undefined {
    return this.#claims
  }

  /** This object's counters of calls within its room (stats.ts). */
  stats(): ShardStats {
    return this.part.stats()
  }

  /** The runtime's alarm: the root's part of it (retries, resends, trimming), or a leaf's (its outbox). */
  async alarm(now: number): Promise<void> {
    if (this.part instanceof ShardRoot) await this.part.alarm(now)
    else await this.part.alarm()
  }

  /** An accepted socket's tags, which a leaf reports to the root so `to(tag)` rows find it. */
  accepted(tags: readonly string[]): void {
    if (this.part instanceof ShardLeaf) this.part.holds(tags)
  }
}
