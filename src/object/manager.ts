import { isLive } from '../core/lifecycle.js'
import { log } from '../core/log.js'
import { toFrame } from '../core/outgoing.js'
import { DurableWebSocketError } from '../core/errors.js'
import type { BroadcastOptions, Manager, Outgoing, RoomPresence, TaggedGroup } from '../core/types.js'
import type { ObjectSide } from '../options.js'
import { CloseCode } from '../shared/closeCodes.js'
import type { Serializer } from '../shared/serializer.js'
import { Admission } from './admission.js'
import { alarmNoLaterThan } from './alarm.js'
import { Closing } from './closing.js'
import { validateClose, type Connection, type ConnectionEntry, type ConnectionHost } from './connection.js'
import { ConnectionTable } from './connectionTable.js'
import { Dispatch } from './dispatch.js'
import { MessageLimits } from './messageLimits.js'
import { PresenceDesk } from './presence/desk.js'
import { forgetfulStorage } from './forgetfulStorage.js'
import { RoomSends } from './roomSends.js'
import { SessionDesk } from './session/desk.js'
import { notThePart } from './shard/part.js'
import { ShardSide } from './shard/side.js'
import { PlainTransport } from './transport.js'
import { Upgrades } from './upgrades.js'

type Entry<Env, Data extends object, In, Out> = ConnectionEntry<Env, Data, In, Out>

/**
 * One per Durable Object instance: what `conn.manager` is, and where the
 * runtime's callbacks arrive. It wires the parts that each own one concern:
 * the table of connections, admission, upgrades (upgrades.ts), the
 * per-message limits, dispatch to handlers, sends to many (roomSends.ts),
 * closing, and the session desk. All of their state can be rebuilt
 * from durable storage and the sockets' attachments, which is what happens
 * after the object wakes from hibernation.
 *
 * A message's path: {@link webSocketMessage} finds the connection and hands
 * the frame to its transport (transport.ts, or session/link.ts for a
 * session), which checks the limits (messageLimits.ts) and queues it for its
 * handler (dispatch.ts).
 */
export class WebSocketManager<Env, Data extends object, In, Out, L extends object> implements Manager<
  Env,
  Data,
  In,
  Out
> {
  readonly ctx: DurableObjectState
  readonly env: Env
  readonly #options: ObjectSide<Env, Data, In, Out, L>
  readonly #table: ConnectionTable<Env, Data, In, Out>
  readonly #admission: Admission<Env, Data, In, Out, L>
  readonly #dispatch: Dispatch<Env, Data, In, Out, L>
  readonly #closing: Closing<Env, Data, In, Out>
  readonly #desk: SessionDesk<Env, Data, In, Out>
  /** Who is in the room; undefined without the `presence` option. */
  readonly #presence: PresenceDesk<L> | undefined
  readonly #plain: PlainTransport<Env, Data, In, Out>
  /** In a sharded room (docs/sharding.md), what this object's part of it adds; none in an ordinary room. */
  readonly #shard: ShardSide<Env, Data, In, Out> | undefined
  /** Broadcasts and `to(tag)`, and on a sharded room's leaf the root's numbered messages. */
  readonly #roomSends: RoomSends<Env, Data, In, Out>
  /** From an upgrade request to the 101 or a refusal. */
  readonly #upgrades: Upgrades<Env, Data, In, Out, L>
  /** What `manager.storage` hands out: the object's storage, with a `deleteAll` that also forgets the caches. */
  readonly #storage: DurableObjectStorage

  constructor(ctx: DurableObjectState, env: Env, options: ObjectSide<Env, Data, In, Out, L>) {
    this.ctx = ctx
    this.env = env
    this.#options = options
    const room = ctx.id.name
    const close = (
      entry: Entry<Env, Data, In, Out>,
      code: number,
      reason: string,
      event?: 'serverClose' | 'drain',
    ) => {
      this.#closing.byServer(entry, code, reason, event)
    }
    // What connections call back into; private, so nothing of it is reachable from a Connection.
    const host: ConnectionHost<Env, Data, In, Out> = {
      manager: this,
      encode: (message) => toFrame(message, options.serializer),
      close,
      unsendable: (entry, error) => {
        log.error(`invalid data sent to ${entry.label(room)}, disconnecting:`, error)
        close(entry, CloseCode.INTERNAL_ERROR, 'Internal Error')
      },
      transportFor: (id, record) =>
        record.session === undefined ? this.#plain : this.#desk.transportFor(id, record),
      presence: (id) => this.#presenceDesk().forConnection(id),
    }
    const shard = ShardSide.of(ctx, env, options, this, (message) => {
      this.#roomSends.deliverOrdered(message)
    })
    this.#shard = shard
    this.#table = new ConnectionTable(
      ctx,
      host,
      () => {
        this.#desk.reconcile()
      },
      shard?.idSpacing(),
    )
    this.#dispatch = new Dispatch(options, room, close)
    // Every connection that ends for good comes through here, once: its member leaves with the last one.
    const queueEvent = (
      entry: Entry<Env, Data, In, Out>,
      event: 'close' | 'suspend',
      code: number,
      reason: string,
    ): Promise<void> | undefined => {
      if (event === 'close') this.#presence?.left(entry.id)
      return this.#dispatch.queueEvent(entry, event, code, reason)
    }
    this.#closing = new Closing(ctx, this.#table, queueEvent)
    const limits = new MessageLimits<Env, Data, In, Out>(options, room, close)
    const handle = this.#dispatch.message.bind(this.#dispatch)
    this.#plain = new PlainTransport(limits, handle)
    const presence = options.presence
    this.#presence =
      presence === undefined
        ? undefined
        : new PresenceDesk(presence, {
            sql: ctx.storage.sql,
            room,
            stillThere: (id, session) => {
              const store = this.#desk.store
              return session && store?.exists() === true ? store.has(id) : this.#table.get(id) !== undefined
            },
            listeners: () => this.#sessionSockets(),
          })
    this.#admission = new Admission(options, this.#table, room, this.#presence)
    this.#desk = new SessionDesk({
      ctx,
      options: options as unknown as ObjectSide<Env, Data, In, Out, object>,
      table: this.#table,
      host,
      limits,
      handle,
      request: this.#dispatch.request.bind(this.#dispatch),
      close,
      queueEvent,
      relay: shard?.part,
      tokenPrefix: shard?.tokenPrefix,
    })
    shard?.claimWith(ctx, env, options, this.#desk, {
      hasRoom: () => this.shardHasRoom(),
      notYours: (id) => this.#admission.notYours(id),
    })
    this.#roomSends = new RoomSends({
      table: this.#table,
      sends: this.#desk.sends,
      log: () => this.#desk.log,
      shard,
    })
    this.#upgrades = new Upgrades({
      ctx,
      options,
      table: this.#table,
      admission: this.#admission,
      desk: this.#desk,
      dispatch: this.#dispatch,
      host,
      plain: this.#plain,
      shard,
      presence: this.#presence,
    })
    this.#storage = forgetfulStorage(ctx.storage, () => {
      const lastId = this.#table.lastId
      const forgetSessions = this.#desk.beforeDeleteAll()
      return () => {
        forgetSessions()
        this.#presence?.reset()
        this.#table.keepLastId(lastId)
      }
    })
  }

  get storage(): DurableObjectStorage {
    return this.#storage
  }

  /** The room's name; on a sharded room's leaf, the logical room's, not the leaf's own (`<room>#<n>`). */
  get room(): string | undefined {
    const name = this.ctx.id.name
    return this.#shard === undefined || name === undefined ? name : ShardSide.room(name)
  }

  get serializer(): Serializer<In, Out> | undefined {
    return this.#options.serializer
  }

  get presence(): RoomPresence {
    return this.#presenceDesk().view
  }

  #presenceDesk(): PresenceDesk<L> {
    if (this.#presence !== undefined) return this.#presence
    throw new DurableWebSocketError(
      'ERR_DWS_PRESENCE_OFF',
      'Presence is off in this module: pass presence: { key: (request, locals) => memberKey } to websocket().',
    )
  }

  /**
   * Reads the members before a session may end without a socket (the alarm,
   * an RPC close): on a woken object the roster would otherwise be read only
   * after the session's row went, drop its connection unannounced, and the
   * pages still there would never see that member leave or lose a connection.
   */
  #membersBeforeEnding(): void {
    this.#presence?.view.count()
  }

  /** The live session sockets: what hears about presence. */
  *#sessionSockets(): Generator<Entry<Env, Data, In, Out>> {
    for (const entry of this.#table.live()) if (entry.transport !== this.#plain) yield entry
  }

  get lastId(): number {
    return this.#table.lastId
  }

  connections(tag?: string): Map<number, Connection<Env, Data, In, Out>> {
    const found = new Map<number, Connection<Env, Data, In, Out>>()
    const entries = tag === undefined ? this.#table.live() : this.#table.tagged(tag)
    for (const entry of entries) found.set(entry.id, entry.view)
    return found
  }

  connection(id: number): Connection<Env, Data, In, Out> | undefined {
    return this.#table.get(id)?.view
  }

  count(): number {
    return this.#table.count()
  }

  ids(): number[] {
    return this.#table.ids()
  }

  /** Whether this object is a part of a sharded room, whose room-wide answers need calls to its leaves. */
  get sharded(): boolean {
    return this.#shard !== undefined
  }

  roomCount(): Promise<number> {
    return this.#shard?.wide.count() ?? Promise.resolve(this.count())
  }

  roomIds(): Promise<number[]> {
    return this.#shard?.wide.ids() ?? Promise.resolve(this.ids())
  }

  /**
   * A send to one id from outside the object (RPC): an open connection gets
   * it now; a suspended session gets it in the log, so its resume replays
   * it. False for any other id. In a sharded room, an id another leaf
   * handed out is that leaf's to answer for.
   */
  sendToId(id: number, message: Outgoing<Out>): boolean | Promise<boolean> {
    const wide = this.#shard?.wide
    if (wide?.isHere(id) === false) return wide.send(id, toFrame(message, this.serializer))
    const open = this.connection(id)
    if (open !== undefined) return open.send(message)
    return this.#desk.sendToSuspended(id, toFrame(message, this.serializer))
  }

  /**
   * A close of one id from outside the object (RPC): an open connection
   * starts its closing handshake; a suspended session ends at once, and its
   * `close` runs with this code and reason. False for any other id.
   */
  closeId(id: number, code: number = CloseCode.NORMAL, reason = ''): boolean | Promise<boolean> {
    const wide = this.#shard?.wide
    if (wide?.isHere(id) === false) return wide.close(id, code, reason)
    return this.closeHere(id, code, reason)
  }

  /**
   * {@link closeId} for what this object holds, asking no one else: how
   * another object of a sharded room closes an id on this leaf, so a close
   * is passed on at most once.
   */
  closeHere(id: number, code: number = CloseCode.NORMAL, reason = ''): boolean {
    const open = this.connection(id)
    if (open !== undefined) {
      open.close(code, reason)
      return true
    }
    validateClose(code, reason)
    this.#membersBeforeEnding()
    return this.#desk.endSuspended(id, code, reason)
  }

  broadcast(message: Outgoing<Out>, options: BroadcastOptions = {}): number {
    return this.#roomSends.send(toFrame(message, this.serializer), null, options)
  }

  to(tag: string): TaggedGroup<Out> {
    return {
      send: (message, options = {}) => this.#roomSends.send(toFrame(message, this.serializer), tag, options),
    }
  }

  /** This object's side of its sharded room, for the RPC calls between the room's objects. */
  shards(): ShardSide<Env, Data, In, Out> {
    if (this.#shard !== undefined) return this.#shard
    throw notThePart('leaf')
  }

  /** Whether this leaf takes one more socket: the Worker asks before it places an upgrade. */
  shardHasRoom(): boolean {
    this.shards().leaf()
    const max = this.#options.maxConnections
    return max === undefined || this.#table.count() < max
  }

  /** Whether this leaf holds `id`, open or suspended: asked before a send from elsewhere is numbered. */
  shardHolds(id: number): boolean {
    this.shards().leaf()
    return this.connection(id) !== undefined || this.#desk.holdsSuspended(id)
  }

  /**
   * Accepts an upgrade that the Worker already checked, and answers 101, or
   * a refusal before acceptance: never accepted and then dropped (upgrades.ts).
   */
  accept(request: Request, locals: L): Promise<Response> {
    return this.#upgrades.accept(request, locals)
  }

  webSocketMessage(socket: WebSocket, raw: string | ArrayBuffer): Promise<void> | undefined {
    const entry = this.#table.entryFor(socket)
    // The state, not the socket's: the runtime delivers a message before the close that followed
    // it, and a message the client sent before closing is still handled.
    if (entry === undefined || !isLive(entry.state)) return undefined
    return entry.transport.receive(entry, raw)
  }

  webSocketClose(
    socket: WebSocket,
    code: number,
    reason: string,
    wasClean = false,
  ): Promise<void> | undefined {
    return this.#closing.closed(this.#table.entryFor(socket), socket, code, reason, wasClean)
  }

  webSocketError(socket: WebSocket, error: unknown): Promise<void> | undefined {
    const entry = this.#table.entryFor(socket)
    log.warn(
      `socket error on ${entry === undefined ? 'an unknown connection' : entry.label(this.room)}:`,
      error,
    )
    if (entry === undefined) return undefined
    return this.#closing.byPeer(entry, 1006, '')
  }

  /**
   * The object's alarm: closes connections silent for longer than
   * `idleTimeout`, ends sessions whose window or age passed, trims the log,
   * and sets the alarm again for whichever comes next; a sharded room's root
   * runs its own part after (shard/root.ts).
   */
  async alarm(): Promise<void> {
    this.#desk.reconcile()
    this.#membersBeforeEnding()
    const now = Date.now()
    const idle = this.#closing.reapIdle(now, this.#options.idleTimeout)
    const expiry = this.#desk.alarm(now)
    const next = idle === undefined ? expiry : expiry === undefined ? idle : Math.min(idle, expiry)
    if (next !== undefined) await alarmNoLaterThan(this.ctx.storage, next)
    await this.#shard?.alarm(now)
  }
}
