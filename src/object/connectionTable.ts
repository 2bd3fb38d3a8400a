import { isLive } from '../core/lifecycle.js'
import { ConnectionEntry, OPEN, type ConnectionHost } from './connection.js'

const LAST_ID_KEY = 'durable-websocket:last-connection-id'

/** Where a table's ids start and how far apart they are, so the leaves of one room never share one. */
export interface IdSpacing {
  readonly first: number
  readonly every: number
}

/**
 * The object's connections: the live ones by id, every known one by socket,
 * and the durable counter that hands out their ids. After a wake the maps
 * are empty; the sockets' attachments fill them again on first use.
 */
export class ConnectionTable<Env, Data extends object, In, Out> {
  readonly #ctx: DurableObjectState
  readonly #host: ConnectionHost<Env, Data, In, Out>
  readonly #open = new Map<number, ConnectionEntry<Env, Data, In, Out>>()
  readonly #bySocket = new WeakMap<WebSocket, ConnectionEntry<Env, Data, In, Out>>()
  /** Runs once before the first look at every socket (sessions compare themselves with them). */
  readonly #beforeHydrate: () => void
  #hydrated = false
  #lastId: number | undefined

  /** The first id, and the step between ids: a sharded room's leaf n hands out n+1, n+1+64, … (shard/side.ts) */
  readonly #spacing: IdSpacing

  constructor(
    ctx: DurableObjectState,
    host: ConnectionHost<Env, Data, In, Out>,
    beforeHydrate: () => void,
    spacing: IdSpacing = { first: 1, every: 1 },
  ) {
    this.#ctx = ctx
    this.#host = host
    this.#beforeHydrate = beforeHydrate
    this.#spacing = spacing
  }

  /** The counter lives in durable storage: read once per instance, written once per connection. */
  get lastId(): number {
    this.#lastId ??= this.#ctx.storage.kv.get<number>(LAST_ID_KEY) ?? 0
    return this.#lastId
  }

  /**
   * The next id after the last one of this table's series (`first`, then
   * every `every`). Counted from the series, not by adding the step to the
   * last id, so a leaf whose ids were spaced otherwise before (an older
   * version spaced them by `count`) still lands in its own series.
   */
  nextId(): number {
    const { first, every } = this.#spacing
    const last = this.lastId
    const id = last < first ? first : last + every - ((((last - first) % every) + every) % every)
    this.#ctx.storage.kv.put(LAST_ID_KEY, id)
    this.#lastId = id
    return id
  }

  /** Writes the counter again, after `deleteAll` took it: ids go on from where they were. */
  keepLastId(lastId: number): void {
    this.#lastId = lastId
    if (lastId > 0) this.#ctx.storage.kv.put(LAST_ID_KEY, lastId)
  }

  /** The live connection with this id. */
  get(id: number): ConnectionEntry<Env, Data, In, Out> | undefined {
    this.#hydrate()
    return this.#open.get(id)
  }

  live(): IterableIterator<ConnectionEntry<Env, Data, In, Out>> {
    this.#hydrate()
    return this.#open.values()
  }

  /** The live connections carrying `tag`, by the runtime's tag index rather than a scan. */
  *tagged(tag: string): Generator<ConnectionEntry<Env, Data, In, Out>> {
    for (const socket of this.#ctx.getWebSockets(tag)) {
      const entry = this.entryFor(socket)
      if (entry !== undefined && isLive(entry.state) && socket.readyState === OPEN) yield entry
    }
  }

  count(): number {
    this.#hydrate()
    return this.#open.size
  }

  ids(): number[] {
    this.#hydrate()
    return [...this.#open.keys()].sort((a, b) => a - b)
  }

  /** How many live connections `maxConnectionsPerKey` counted under `key`. */
  countKey(key: string): number {
    let count = 0
    for (const entry of this.live()) if (entry.key === key) count++
    return count
  }

  /** Knows a connection by its socket, and by its id while it is live. */
  track(entry: ConnectionEntry<Env, Data, In, Out>): void {
    this.#bySocket.set(entry.socket, entry)
    if (isLive(entry.state) && entry.socket.readyState === OPEN) this.#open.set(entry.id, entry)
  }

  /** A connection that closed or moved on is live no more; a newer socket under its id stays. */
  remove(entry: ConnectionEntry<Env, Data, In, Out>): void {
    if (this.#open.get(entry.id) === entry) this.#open.delete(entry.id)
  }

  /**
   * The connection of a socket, found again from its attachment after a
   * wake. Every event of a socket carries the same WebSocket object
   * (test/workerd/runtime.test.ts), which the WeakMap relies on.
   */
  entryFor(socket: WebSocket): ConnectionEntry<Env, Data, In, Out> | undefined {
    const known = this.#bySocket.get(socket)
    if (known !== undefined) return known
    const entry = ConnectionEntry.fromAttachment(socket, this.#host)
    if (entry !== undefined) this.track(entry)
    return entry
  }

  #hydrate(): void {
    if (this.#hydrated) return
    this.#beforeHydrate()
    for (const socket of this.#ctx.getWebSockets()) this.entryFor(socket)
    this.#hydrated = true
  }
}
