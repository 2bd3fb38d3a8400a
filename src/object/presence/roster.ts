import type { JsonValue, PresenceMember } from '../../shared/presenceFrames.js'
import { tableSql } from '../tableSql.js'

/** One member as the roster holds it: the metadata as stored (JSON) and parsed, and its connections' ids. */
interface Held {
  metaText: string
  meta: Record<string, JsonValue>
  readonly ids: Set<number>
}

/** Whether a connection the tables name still exists; `session` says it was accepted as one. */
export type StillThere = (id: number, session: boolean) => boolean

/**
 * The room's members, in the object's SQLite storage and in memory: one row
 * per member (its key and metadata) and one per connection (its id, its
 * member, whether it is a session). A member is there while it has a
 * connection, and a suspended session still counts, so a restart, an
 * eviction or a drop that ends in a resume changes nothing here.
 *
 * Read once per instance, on first use; every change is written through.
 * The tables are made on the first write, so a room where nobody ever
 * joined has none.
 */
export class Roster {
  readonly #sql: SqlStorage
  readonly #stillThere: StillThere
  #members: Map<string, Held> | undefined
  readonly #keyOf = new Map<number, string>()
  #ready = false

  constructor(sql: SqlStorage, stillThere: StillThere) {
    this.#sql = sql
    this.#stillThere = stillThere
  }

  has(key: string): boolean {
    return this.#view().has(key)
  }

  count(): number {
    return this.#view().size
  }

  /** The members in the order they joined. */
  list(): PresenceMember[] {
    return [...this.#view()].map(([key, held]) => memberOf(key, held))
  }

  get(key: string): PresenceMember | undefined {
    const held = this.#view().get(key)
    return held === undefined ? undefined : memberOf(key, held)
  }

  /** The member a connection belongs to, if it joined. */
  keyOf(id: number): string | undefined {
    this.#view()
    return this.#keyOf.get(id)
  }

  /**
   * Connection `id` is one of `key`'s: a new member takes `metaText` as its
   * metadata; one already there keeps its own. An id already known (a
   * resumed session) changes nothing.
   */
  connect(id: number, key: string, metaText: string, session: boolean): void {
    const members = this.#view()
    if (this.#keyOf.has(id)) return
    const sql = this.#ensure()
    let held = members.get(key)
    if (held === undefined) {
      held = { metaText, meta: JSON.parse(metaText) as Record<string, JsonValue>, ids: new Set() }
      members.set(key, held)
      sql.exec('INSERT OR REPLACE INTO dws_presence_members (key, meta) VALUES (?, ?)', key, metaText)
    }
    held.ids.add(id)
    this.#keyOf.set(id, key)
    sql.exec(
      'INSERT OR REPLACE INTO dws_presence_connections (id, key, session) VALUES (?, ?, ?)',
      id,
      key,
      session ? 1 : 0,
    )
  }

  /** Connection `id` ended for good; its member goes with its last one. Returns the member's key. */
  disconnect(id: number): string | undefined {
    const members = this.#view()
    const key = this.#keyOf.get(id)
    if (key === undefined) return undefined
    this.#keyOf.delete(id)
    const sql = this.#ensure()
    sql.exec('DELETE FROM dws_presence_connections WHERE id = ?', id)
    const held = members.get(key)
    held?.ids.delete(id)
    if (held === undefined || held.ids.size === 0) {
      members.delete(key)
      sql.exec('DELETE FROM dws_presence_members WHERE key = ?', key)
    }
    return key
  }

  /** New metadata for a member that is there; false when it is not. */
  setMeta(key: string, metaText: string): boolean {
    const held = this.#view().get(key)
    if (held === undefined) return false
    held.metaText = metaText
    held.meta = JSON.parse(metaText) as Record<string, JsonValue>
    this.#ensure().exec('UPDATE dws_presence_members SET meta = ? WHERE key = ?', metaText, key)
    return true
  }

  /** Forgets everything read: `deleteAll` dropped the tables. */
  reset(): void {
    this.#members = undefined
    this.#keyOf.clear()
    this.#ready = false
  }

  /**
   * The members, read on first use. A plain connection whose socket is gone
   * (the object restarted, and its close never came) and a session that is
   * no longer stored are dropped here, with their member when it was their
   * last. Nobody is told: only a restart loses sockets that way, and every
   * client that comes back gets the whole list after its welcome.
   */
  #view(): Map<string, Held> {
    if (this.#members !== undefined) return this.#members
    const members = new Map<string, Held>()
    this.#members = members
    if (!this.#exists()) return members
    this.#ready = true
    const sql = this.#sql
    for (const { key, meta } of sql.exec<{ key: string; meta: string }>(
      'SELECT key, meta FROM dws_presence_members ORDER BY rowid',
    )) {
      members.set(key, {
        metaText: meta,
        meta: JSON.parse(meta) as Record<string, JsonValue>,
        ids: new Set(),
      })
    }
    const rows = sql
      .exec<{ id: number; key: string; session: number }>(
        'SELECT id, key, session FROM dws_presence_connections',
      )
      .toArray()
    for (const { id, key, session } of rows) {
      const held = members.get(key)
      if (held !== undefined && this.#stillThere(id, session === 1)) {
        held.ids.add(id)
        this.#keyOf.set(id, key)
      } else {
        sql.exec('DELETE FROM dws_presence_connections WHERE id = ?', id)
      }
    }
    for (const [key, held] of members) {
      if (held.ids.size > 0) continue
      members.delete(key)
      sql.exec('DELETE FROM dws_presence_members WHERE key = ?', key)
    }
    return members
  }

  #exists(): boolean {
    return tableSql(this.#sql, 'dws_presence_connections') !== undefined
  }

  #ensure(): SqlStorage {
    if (!this.#ready) {
      this.#sql.exec(
        'CREATE TABLE IF NOT EXISTS dws_presence_members (key TEXT PRIMARY KEY, meta TEXT NOT NULL)',
      )
      this.#sql.exec(`CREATE TABLE IF NOT EXISTS dws_presence_connections (
        id INTEGER PRIMARY KEY,
        key TEXT NOT NULL,
        session INTEGER NOT NULL
      )`)
      this.#ready = true
    }
    return this.#sql
  }
}

function memberOf(key: string, held: Held): PresenceMember {
  return { key, meta: held.meta, connections: held.ids.size }
}
