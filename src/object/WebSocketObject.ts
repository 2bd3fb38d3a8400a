import { DurableObject } from 'cloudflare:workers'
import type { Locals } from '../core/events.js'
import { LocalsTickets } from '../core/locals.js'
import type { BroadcastOptions, Manager, ObjectRouter, Outgoing, PresenceMember } from '../core/types.js'
import { isWebSocketUpgrade } from '../mount/upgrade.js'
import type { ObjectSide } from '../options.js'
import { WebSocketManager } from './manager.js'
import { resolveModule, type ServedModule } from './registry.js'
import type { Batch, ClaimAnswer, Publication, TagReport } from './shard/messages.js'
import type { ShardStats } from './shard/stats.js'
import type { MoveAnswer, MoveNotice } from './shard/sessionRoutes.js'

/**
 * The Durable Object that holds the sockets. Extend it, export the subclass
 * and bind it in wrangler.toml; add RPC methods, alarms or storage as with
 * any Durable Object. Sockets use the Hibernation API, so an idle object is
 * evicted from memory while its clients stay connected.
 */
export class WebSocketObject<
  Env = Cloudflare.Env,
  Data extends object = Record<string, unknown>,
  In = unknown,
  Out = In,
> extends DurableObject<Env> {
  /** The module this class serves, when the script makes more than one. */
  static websocket: ServedModule | undefined

  readonly #manager: WebSocketManager<Env, Data, In, Out, Locals>
  readonly #objectRouter: ObjectRouter<Env, Data, In, Out> | undefined
  readonly #locals = new LocalsTickets()

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env)
    // The registry cannot know this subclass's type parameters; the user's declaration states them.
    const options = resolveModule(new.target).objectSide as ObjectSide<Env, Data, In, Out, Locals>
    this.#manager = new WebSocketManager(ctx, env, options)
    this.#objectRouter = options.objectRouter
    const heartbeat = options.heartbeat
    // The runtime answers these pings itself, so a client can keep its connection alive without waking us.
    if (heartbeat !== undefined) {
      ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair(heartbeat.request, heartbeat.response))
    }
  }

  /** This object's connections, broadcast, storage and env: the same object handlers see as `conn.manager`. */
  protected get manager(): Manager<Env, Data, In, Out> {
    return this.#manager
  }

  /** RPC: sends to every open connection but `options.except`; returns how many were sent to. */
  broadcast(message: Outgoing<Out>, options?: BroadcastOptions): number {
    return this.#manager.broadcast(message, options)
  }

  /**
   * RPC: sends to one connection, or logs it for a suspended session's
   * resume; false when the id is neither. In a sharded room, the leaf that
   * handed the id out answers.
   */
  send(id: number, message: Outgoing<Out>): boolean | Promise<boolean> {
    return this.#manager.sendToId(id, message)
  }

  /**
   * RPC: closes one connection, or ends a suspended session (its `close`
   * runs with this code); false when the id is neither. In a sharded room,
   * the leaf that handed the id out closes it.
   */
  close(id: number, code?: number, reason?: string): boolean | Promise<boolean> {
    return this.#manager.closeId(id, code, reason)
  }

  /** RPC: how many connections are open; in a sharded room, on all its leaves together. */
  count(): number | Promise<number> {
    return this.#manager.sharded ? this.#manager.roomCount() : this.#manager.count()
  }

  /** RPC: the ids of the open connections, ascending; in a sharded room, of all its leaves. */
  ids(): number[] | Promise<number[]> {
    return this.#manager.sharded ? this.#manager.roomIds() : this.#manager.ids()
  }

  /**
   * RPC: the room's members, in the order they joined, each with its key,
   * metadata and number of connections. Throws ERR_DWS_PRESENCE_OFF without
   * the `presence` option.
   */
  members(): PresenceMember[] {
    return this.#manager.presence.list()
  }

  /**
   * Reaps idle connections when `idleTimeout` is set, and ends sessions
   * whose window passed. A subclass with its own alarm must call
   * `super.alarm()`, and keep in mind that an object has a single alarm: the
   * package only ever moves it earlier, but a later time set by a subclass
   * replaces the package's.
   */
  override async alarm(): Promise<void> {
    await this.#manager.alarm()
  }

  /**
   * RPC, for the Worker side of this package: keeps the locals its
   * middleware made for the upgrade that follows, and answers the ticket
   * that upgrade carries.
   */
  issueLocalsTicket(locals: Locals): string {
    return this.#locals.issue(locals)
  }

  /** RPC between the objects of a sharded room (docs/sharding.md), on the root: a leaf's messages to number. */
  shardPublish(publication: Publication): number {
    return this.#manager.shards().root().take(publication)
  }

  /** RPC on the root: what a leaf that missed a batch asks for, the numbers after `after`; `leaf` is the one asking. */
  shardSince(after: number, leaf?: number): Batch {
    return this.#manager.shards().root().since(after, leaf)
  }

  /** RPC on a leaf: a batch in the root's order; answers the last number the leaf applied. */
  shardApply(batch: Batch): Promise<number> {
    return this.#manager.shards().leaf().apply(batch)
  }

  /**
   * RPC on a leaf, from another leaf where a session resumes: hands over the
   * session whose token has this hash, or says where it went.
   */
  shardClaim(tokenHash: string, owner: string | null, to: number): Promise<ClaimAnswer> {
    return this.#manager.shards().claims().handOver(tokenHash, owner, to)
  }

  /**
   * RPC on the root: a leaf adopted a session claimed from another leaf; the
   * root routes the id there from now on and answers what the leaf may lack.
   */
  shardMoved(notice: MoveNotice): MoveAnswer {
    return this.#manager.shards().root().moved(notice)
  }

  /** RPC on the root: the tags a leaf holds, so `to(tag)` rows go only where they are needed; answers the version it holds. */
  shardTags(report: TagReport): number {
    return this.#manager.shards().root().learnTags(report)
  }

  /** RPC on a leaf, for the Worker placing an upgrade: whether it takes one more socket. */
  shardHasRoom(): boolean {
    return this.#manager.shardHasRoom()
  }

  /** RPC on a leaf, for the room-wide `count()`: its own open connections. */
  shardCount(): number {
    this.#manager.shards().leaf()
    return this.#manager.count()
  }

  /** RPC on a leaf, for the room-wide `ids()`: its own, ascending. */
  shardIds(): number[] {
    this.#manager.shards().leaf()
    return this.#manager.ids()
  }

  /** RPC on a leaf, from another object of its room: closes `id` if this leaf holds it, asking no one else. */
  shardCloseHere(id: number, code?: number, reason?: string): boolean {
    this.#manager.shards().leaf()
    return this.#manager.closeHere(id, code, reason)
  }

  /** RPC on the root, asked by a leaf whose send or close by id found no one: where the session moved. */
  shardRouteOf(id: number): number | undefined {
    return this.#manager.shards().root().leafOfId(id)
  }

  /** RPC on a leaf, asked before a send from elsewhere in the room is numbered: whether it holds `id`. */
  shardHolds(id: number): boolean {
    return this.#manager.shardHolds(id)
  }

  /**
   * RPC on the root or a leaf of a sharded room: the calls this object made
   * to the room's other objects and took from them since it started (the
   * bench's `--shards` reads these).
   */
  shardStats(): ShardStats {
    return this.#manager.shards().stats()
  }

  override async fetch(request: Request): Promise<Response> {
    if (isWebSocketUpgrade(request)) {
      const locals = this.#locals.redeem(request)
      // Only a client forwarded by hand can bring a header that names no ticket.
      if (locals === undefined)
        return new Response('Bad Request: unexpected locals header.\n', { status: 400 })
      return this.#manager.accept(request, locals)
    }
    const answer = await this.#objectRouter?.fetch(request, this.#manager)
    return answer ?? new Response('Not Found\n', { status: 404 })
  }

  override webSocketMessage(socket: WebSocket, message: string | ArrayBuffer): Promise<void> | undefined {
    return this.#manager.webSocketMessage(socket, message)
  }

  override webSocketClose(
    socket: WebSocket,
    code: number,
    reason: string,
    wasClean?: boolean,
  ): Promise<void> | undefined {
    return this.#manager.webSocketClose(socket, code, reason, wasClean)
  }

  override webSocketError(socket: WebSocket, error: unknown): Promise<void> | undefined {
    return this.#manager.webSocketError(socket, error)
  }
}
