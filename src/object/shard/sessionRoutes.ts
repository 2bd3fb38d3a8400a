import type { NumberedMessage } from './messages.js'

/**
 * What a leaf that adopted a claimed session tells the root (shard/claims.ts):
 * session `id` lives on `leaf` now, its client has seen the room's numbers
 * through `after`, it holds `tags`, and it cannot outlive `until` (its
 * `maxAge`), after which the root forgets the route.
 */
export interface MoveNotice {
  readonly id: number
  readonly leaf: number
  readonly after: number
  readonly tags: readonly string[]
  readonly until: number
}

/**
 * The root's answer to a {@link MoveNotice}: the rows numbered after the
 * client's position that were for the session (its id or its tags), which
 * the new leaf may have been spared, and the root's head when the move was
 * registered (every later row for the session is routed to the new leaf);
 * or `trimmed` when the log no longer reaches the client's position.
 */
export type MoveAnswer =
  | { readonly kind: 'rows'; readonly head: number; readonly messages: readonly NumberedMessage[] }
  | { readonly kind: 'trimmed' }

/**
 * Where the sessions that moved between leaves live now, on the root
 * (docs/sharding.md, "Moved sessions"): the leaf of an id is
 * `leafOfId(id)` (names.ts) unless the id is here. Kept in the root's SQLite, and in
 * memory for the routing of every batch, until the session's `maxAge`: ids
 * are never handed out twice in a room, so a route that outlives its
 * session is harmless, and keeping it spares the leaves a call at every end.
 */
export class SessionRoutes {
  readonly #sql: SqlStorage
  #routes: Map<number, { readonly leaf: number; readonly until: number }> | undefined

  constructor(sql: SqlStorage) {
    this.#sql = sql
  }

  /** The leaf session `id` moved to, while its route holds; undefined for one that never moved. */
  leafOf(id: number, now = Date.now()): number | undefined {
    const route = this.#all().get(id)
    return route !== undefined && route.until > now ? route.leaf : undefined
  }

  /** Session `id` lives on `leaf` from now on; a later move replaces this one. */
  record(id: number, leaf: number, until: number): void {
    this.#table().exec(
      'INSERT OR REPLACE INTO dws_shard_routes (id, leaf, until) VALUES (?, ?, ?)',
      id,
      leaf,
      until,
    )
    this.#all().set(id, { leaf, until })
  }

  /** Forgets the routes of sessions past their `maxAge` (the root's alarm calls it). */
  prune(now: number): void {
    const routes = this.#all()
    if (routes.size === 0) return
    this.#table().exec('DELETE FROM dws_shard_routes WHERE until <= ?', now)
    for (const [id, route] of routes) if (route.until <= now) routes.delete(id)
  }

  #all(): Map<number, { readonly leaf: number; readonly until: number }> {
    this.#routes ??= new Map(
      this.#table()
        .exec<{ id: number; leaf: number; until: number }>('SELECT id, leaf, until FROM dws_shard_routes')
        .toArray()
        .map(({ id, leaf, until }) => [id, { leaf, until }]),
    )
    return this.#routes
  }

  #table(): SqlStorage {
    this.#sql.exec(
      'CREATE TABLE IF NOT EXISTS dws_shard_routes (id INTEGER PRIMARY KEY, leaf INTEGER NOT NULL, until INTEGER NOT NULL)',
    )
    return this.#sql
  }
}
