import type { Frame } from '../../core/outgoing.js'
import type { ResolvedShards } from '../../options.js'
import { validateClose } from '../connection.js'
import type { RoomOrder, ShardStub } from './messages.js'
import { leafName, shardStub, type ShardPart } from './names.js'

/** What this object itself holds: asked directly, never over RPC to itself. */
export interface LocalConnections {
  count(): number
  ids(): number[]
  /** On a leaf: whether it holds `id`, open or suspended; a session that moved here is one it did not hand out. */
  shardHolds(id: number): boolean
}

/**
 * The whole logical room, seen from any one of its objects (docs/sharding.md,
 * "Room-wide calls"): counts and ids are asked of every leaf at once and
 * combined; a send or close to one id goes to the leaf that handed it out,
 * `(id - 1) % count`, which no other object needs to be asked about.
 */
export class RoomWide {
  readonly #env: unknown
  readonly #binding: string
  readonly #room: string
  readonly #count: number
  /** This object's leaf, or undefined on the root. */
  readonly #self: number | undefined
  readonly #order: RoomOrder
  readonly #local: LocalConnections
  /** On the root: the leaf a session moved to, which holds its id now (shard/sessionRoutes.ts). */
  readonly #movedTo: ((id: number) => number) | undefined

  constructor(
    env: unknown,
    shards: ResolvedShards,
    part: ShardPart,
    order: RoomOrder,
    local: LocalConnections,
    movedTo?: (id: number) => number,
  ) {
    this.#env = env
    this.#binding = shards.binding
    this.#room = part.room
    this.#count = shards.count
    this.#self = part.kind === 'leaf' ? part.index : undefined
    this.#order = order
    this.#local = local
    this.#movedTo = movedTo
  }

  /** The leaf that hands out `id` (ids are spaced by the count); undefined for what no leaf hands out. */
  leafOf(id: number): number | undefined {
    return Number.isSafeInteger(id) && id > 0 ? (id - 1) % this.#count : undefined
  }

  /** Whether `id` belongs to this object: a leaf answers for its own ids, and for sessions that moved to it. */
  isHere(id: number): boolean {
    return this.#self !== undefined && (this.leafOf(id) === this.#self || this.#local.shardHolds(id))
  }

  /** How many connections are open on all the leaves together. */
  async count(): Promise<number> {
    const counts = await this.#askEveryLeaf(
      () => this.#local.count(),
      (leaf) => leaf.shardCount(),
    )
    return counts.reduce((sum, count) => sum + count, 0)
  }

  /** The ids of every open connection of the room, ascending. */
  async ids(): Promise<number[]> {
    const ids = await this.#askEveryLeaf(
      () => this.#local.ids(),
      (leaf) => leaf.shardIds(),
    )
    return ids.flat().sort((a, b) => a - b)
  }

  /**
   * A send to one id from another object of the room: its leaf is asked
   * whether it holds the id (open, or a suspended session), and only then is
   * the message handed to this object's part to publish, so it is numbered by the root like every
   * other message to a session, and an unknown id costs no row in the log.
   * The answer comes before the number: a call awaited before the next one
   * keeps its place in the room's order.
   */
  async send(id: number, frame: Frame): Promise<boolean> {
    const leaf = this.#holderOf(id)
    if (leaf === undefined || !(await this.#leaf(leaf).shardHolds(id))) return false
    this.#order.publish({ target: id, tag: null, except: null, frame, mark: '' })
    return true
  }

  /**
   * A close of one id from another object of the room: its leaf closes it,
   * and answers. A code or reason a close may not carry throws here, for
   * any id, as in an ordinary room.
   */
  close(id: number, code: number, reason: string): Promise<boolean> {
    validateClose(code, reason)
    return this.#closeOnLeaf(id, code, reason)
  }

  async #closeOnLeaf(id: number, code: number, reason: string): Promise<boolean> {
    const leaf = this.#holderOf(id)
    if (leaf === undefined) return false
    return this.#leaf(leaf).close(id, code, reason)
  }

  /** The leaf holding `id` now: the one it moved to, as far as this object knows, else its own. */
  #holderOf(id: number): number | undefined {
    const leaf = this.leafOf(id)
    return leaf === undefined ? undefined : (this.#movedTo?.(id) ?? leaf)
  }

  /** Every leaf at once; this object's own part is read locally. */
  #askEveryLeaf<T>(here: () => T, there: (leaf: ShardStub) => Promise<T>): Promise<T[]> {
    return Promise.all(
      Array.from({ length: this.#count }, (_, index) =>
        index === this.#self ? here() : there(this.#leaf(index)),
      ),
    )
  }

  #leaf(index: number): ShardStub {
    return shardStub(this.#env, this.#binding, leafName(this.#room, index))
  }
}
