import type { Frame } from '../../core/outgoing.js'
import type { ResolvedShards } from '../../options.js'
import { validateClose } from '../connection.js'
import type { RoomOrder, ShardStub } from './messages.js'
import { leafName, leafOfId, shardStub, type ShardPart } from './names.js'

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
 * combined; a send or close to one id goes to the leaf that handed it out
 * (names.ts `leafOfId`), which no other object needs to be asked about.
 * "Every leaf" is every leaf the room has had (shard/span.ts), so sockets
 * left on leaves past a lowered `count` are still counted and reached.
 */
export class RoomWide {
  readonly #env: unknown
  readonly #binding: string
  readonly #room: string
  /** How many leaves the room has had at most: this object's part knows (shard/span.ts). */
  readonly #span: () => number
  /** This object's leaf, or undefined on the root. */
  readonly #self: number | undefined
  readonly #order: RoomOrder
  readonly #local: LocalConnections
  /** On the root: the leaf a session moved to, which holds its id now (shard/sessionRoutes.ts). */
  readonly #movedTo: ((id: number) => number | undefined) | undefined

  constructor(
    env: unknown,
    shards: ResolvedShards,
    part: ShardPart,
    order: RoomOrder,
    span: () => number,
    local: LocalConnections,
    movedTo?: (id: number) => number | undefined,
  ) {
    this.#env = env
    this.#binding = shards.binding
    this.#room = part.room
    this.#span = span
    this.#self = part.kind === 'leaf' ? part.index : undefined
    this.#order = order
    this.#local = local
    this.#movedTo = movedTo
  }

  /**
   * Whether `id` is this object's to answer for: a leaf answers for what it
   * holds, open or suspended, whoever handed the id out. An id it handed out
   * whose session moved on goes to where it is now (send, close).
   */
  isHere(id: number): boolean {
    return this.#self !== undefined && this.#local.shardHolds(id)
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
    if (leaf === undefined) return false
    if (!(await this.#holds(leaf, id))) {
      // On a leaf, a session that moved to a third leaf is known only to the root's routes.
      const moved = await this.#movedFrom(leaf, id)
      if (moved === undefined || !(await this.#holds(moved, id))) return false
    }
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
    // This object's own answer is known: the caller found it does not hold the id.
    if (leaf !== this.#self && (await this.#leaf(leaf).shardCloseHere(id, code, reason))) return true
    const moved = await this.#movedFrom(leaf, id)
    return moved !== undefined && this.#leaf(moved).shardCloseHere(id, code, reason)
  }

  /** Whether leaf `index` holds `id`: this object's own answer is read here, not over RPC. */
  #holds(index: number, id: number): boolean | Promise<boolean> {
    return index === this.#self ? this.#local.shardHolds(id) : this.#leaf(index).shardHolds(id)
  }

  /**
   * On a leaf, where the root's routes say session `id` lives when `asked`
   * (the leaf this object took for its holder) does not hold it: a session
   * that moved after another leaf claimed it (shard/sessionRoutes.ts).
   * Undefined on the root, whose routes were read already, and when the
   * root names no other leaf.
   */
  async #movedFrom(asked: number, id: number): Promise<number | undefined> {
    if (this.#self === undefined) return undefined
    const routed = await shardStub(this.#env, this.#binding, this.#room).shardRouteOf(id)
    return routed === undefined || routed === asked || routed === this.#self || routed >= this.#span()
      ? undefined
      : routed
  }

  /**
   * The leaf holding `id` now: the one it moved to, as far as this object
   * knows, else its own; undefined past every leaf the room has had, which
   * cannot have handed it out.
   */
  #holderOf(id: number): number | undefined {
    const leaf = leafOfId(id)
    const holder = leaf === undefined ? undefined : (this.#movedTo?.(id) ?? leaf)
    return holder !== undefined && holder < this.#span() ? holder : undefined
  }

  /** Every leaf at once; this object's own part is read locally. */
  #askEveryLeaf<T>(here: () => T, there: (leaf: ShardStub) => Promise<T>): Promise<T[]> {
    return Promise.all(
      Array.from({ length: this.#span() }, (_, index) =>
        index === this.#self ? here() : there(this.#leaf(index)),
      ),
    )
  }

  #leaf(index: number): ShardStub {
    return shardStub(this.#env, this.#binding, leafName(this.#room, index))
  }
}
