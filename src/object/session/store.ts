import { tableSql } from '../tableSql.js'
import type { HandledStamps } from './handledStamps.js'

/**
 * Every session socket carries this hibernation tag, so a woken object finds
 * them without a scan. It is the package's, not the app's: `conn.tags` leaves it out.
 */
export const SESSION_TAG = 'dws.session'

export interface SessionRecord {
  readonly id: number
  readonly data: string
  readonly tags: string
  readonly handled: number
  /** Null while a socket is attached; otherwise when the session lost it, in ms since the epoch. */
  readonly suspendedAt: number | null
  /** True when the token that matched is the previous one, which the client never confirmed replacing. */
  readonly matchedPrevious: boolean
  /** The log's head when the session began: a resume never goes back before it, whatever `last` it offers. */
  readonly floor: number
  /** When the session began, in ms since the epoch; `maxAge` counts from here. */
  readonly createdAt: number
  /** Who the session belongs to (`resume.owner`); null when the module names no owner. */
  readonly owner: string | null
}

/**
 * A session row whole, hashes included: what one leaf of a sharded room
 * hands another when a session resumes there (shard/claims.ts).
 */
export interface SessionRow {
  readonly id: number
  readonly token: string
  readonly previous: string | null
  readonly data: string
  readonly tags: string
  readonly handled: number
  readonly suspendedAt: number | null
  readonly floor: number
  readonly createdAt: number
  readonly owner: string | null
}

/** What a session's `close` handler needs once it has no socket. */
export interface EndedSession {
  readonly id: number
  readonly data: string
  readonly tags: string
}

/** The row shape of an {@link EndedSession}, as SQL reads it. */
type EndedRow = Record<'data' | 'tags', string> & Record<'id', number>

/**
 * A room's sessions, one row each in the object's SQLite storage: the token
 * that resumes it (hashed), its data and tags, how far its client's messages
 * were handled, and when it was suspended. What was sent to sessions is in
 * the log (log.ts).
 */
export class SessionStore {
  readonly #sql: SqlStorage
  readonly #window: number
  readonly #maxAge: number
  readonly #stamps: HandledStamps
  #ready = false
  /**
   * Sessions whose client used its new token, their previous one not yet
   * cleared in SQLite: it already fails here ({@link find}), and is written
   * for many sessions at once, a moment later ({@link confirm}).
   */
  readonly #confirmed = new Set<number>()

  constructor(sql: SqlStorage, window: number, maxAge: number, stamps: HandledStamps) {
    this.#sql = sql
    this.#window = window
    this.#maxAge = maxAge
    this.#stamps = stamps
  }

  get maxAge(): number {
    return this.#maxAge
  }

  get window(): number {
    return this.#window
  }

  /** The table is made on first use, so an object with only plain clients never gets it. */
  #ensure(): SqlStorage {
    if (!this.#ready) {
      this.#sql.exec(`CREATE TABLE IF NOT EXISTS dws_sessions (
        id INTEGER PRIMARY KEY,
        token TEXT NOT NULL,
        previous TEXT,
        data TEXT NOT NULL,
        tags TEXT NOT NULL,
        handled INTEGER NOT NULL DEFAULT 0,
        suspended_at INTEGER,
        floor INTEGER NOT NULL DEFAULT 0,
        created_at INTEGER NOT NULL DEFAULT 0,
        owner TEXT
      )`)
      addMissingColumns(this.#sql, Date.now())
      this.#sql.exec('CREATE INDEX IF NOT EXISTS dws_sessions_token ON dws_sessions (token)')
      this.#sql.exec('CREATE INDEX IF NOT EXISTS dws_sessions_previous ON dws_sessions (previous)')
      this.#ready = true
    }
    return this.#sql
  }

  /** Whether the table exists: an object that never had a session has nothing to reconcile. */
  exists(): boolean {
    if (this.#ready) return true
    return tableSql(this.#sql, 'dws_sessions') !== undefined
  }

  /** Forgets that the table was made: `deleteAll` dropped it. */
  reset(): void {
    this.#ready = false
    this.#confirmed.clear()
  }

  /** A new session; `floor` is the log's head, so its resumes never replay what came before it. */
  create(
    id: number,
    tokenHash: string,
    tags: readonly string[],
    floor: number,
    now: number,
    owner: string | undefined,
  ): void {
    this.#ensure().exec(
      'INSERT INTO dws_sessions (id, token, data, tags, floor, created_at, owner) VALUES (?, ?, ?, ?, ?, ?, ?)',
      id,
      tokenHash,
      '{}',
      JSON.stringify(tags),
      floor,
      now,
      owner ?? null,
    )
  }

  find(tokenHash: string): SessionRecord | undefined {
    const row = this.#ensure()
      .exec<{
        id: number
        data: string
        tags: string
        handled: number
        suspended_at: number | null
        previous: string | null
        floor: number
        created_at: number
        owner: string | null
      }>(
        'SELECT id, data, tags, handled, suspended_at, previous, floor, created_at, owner FROM dws_sessions WHERE token = ?1 OR previous = ?1 LIMIT 1',
        tokenHash,
      )
      .toArray()[0]
    if (row === undefined || this.#retired(row, tokenHash)) return undefined
    return {
      id: row.id,
      data: row.data,
      tags: row.tags,
      handled: this.#handled(row),
      suspendedAt: row.suspended_at,
      matchedPrevious: row.previous === tokenHash,
      floor: row.floor,
      createdAt: row.created_at,
      owner: row.owner,
    }
  }

  /** The whole row whose current or previous token has this hash. */
  row(tokenHash: string): SessionRow | undefined {
    if (!this.exists()) return undefined
    // The row goes to another object as it is: with every retired token cleared first.
    this.flushConfirmed()
    const row = this.#ensure()
      .exec<{
        id: number
        token: string
        previous: string | null
        data: string
        tags: string
        handled: number
        suspended_at: number | null
        floor: number
        created_at: number
        owner: string | null
      }>(
        'SELECT id, token, previous, data, tags, handled, suspended_at, floor, created_at, owner FROM dws_sessions WHERE token = ?1 OR previous = ?1 LIMIT 1',
        tokenHash,
      )
      .toArray()[0]
    if (row === undefined) return undefined
    return {
      id: row.id,
      token: row.token,
      previous: row.previous,
      data: row.data,
      tags: row.tags,
      handled: this.#handled(row),
      suspendedAt: row.suspended_at,
      floor: row.floor,
      createdAt: row.created_at,
      owner: row.owner,
    }
  }

  /** A session another object handed over, kept as it was there, but suspended: no socket carries it here yet. */
  adopt(row: SessionRow, now: number): void {
    this.#confirmed.delete(row.id)
    this.#ensure().exec(
      `INSERT OR REPLACE INTO dws_sessions (id, token, previous, data, tags, handled, suspended_at, floor, created_at, owner)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      row.id,
      row.token,
      row.previous,
      row.data,
      row.tags,
      row.handled,
      row.suspendedAt ?? now,
      row.floor,
      row.createdAt,
      row.owner,
    )
  }

  /**
   * A resume hands out a new token and keeps the one just used as the
   * previous, until the client shows it has the new one ({@link confirm}):
   * a cut right after the resume then leaves it a token that still works.
   * Resuming with the previous token retires the unconfirmed current one.
   */
  rotate(id: number, newHash: string, usedHash: string): void {
    // The token just used becomes the previous: a confirm still waiting was for the one before it.
    this.#confirmed.delete(id)
    this.#ensure().exec(
      'UPDATE dws_sessions SET previous = ?2, token = ?3, suspended_at = NULL WHERE id = ?1',
      id,
      usedHash,
      newHash,
    )
  }

  /**
   * The client used its new token's connection: the previous token stops
   * working now, and is cleared in SQLite with the others confirmed in the
   * same moment, in one statement on a timer of its own. A storm's resumes
   * confirm by the thousand, mostly in an acknowledgement that writes
   * nothing else: one write each would be a commit each. Should the object
   * go before the timer runs, those previous tokens work until the next
   * resume of their session replaces them, as if the client had not used
   * its new connection yet.
   */
  confirm(id: number): void {
    if (this.#confirmed.size === 0) setTimeout(() => this.flushConfirmed(), CONFIRM_DELAY_MS)
    this.#confirmed.add(id)
  }

  /** Clears the previous token of every session confirmed since the last time. */
  flushConfirmed(): void {
    if (this.#confirmed.size === 0) return
    const ids = JSON.stringify([...this.#confirmed])
    this.#confirmed.clear()
    this.#ensure().exec(
      'UPDATE dws_sessions SET previous = NULL WHERE id IN (SELECT value FROM json_each(?)) AND previous IS NOT NULL',
      ids,
    )
  }

  /** Whether `tokenHash` matched a previous token that its client already replaced. */
  #retired(row: { id: number; previous: string | null }, tokenHash: string): boolean {
    return row.previous === tokenHash && this.#confirmed.has(row.id)
  }

  saveData(id: number, data: unknown): void {
    this.#ensure().exec('UPDATE dws_sessions SET data = ? WHERE id = ?', JSON.stringify(data), id)
  }

  /** Message `handled` of session `id` is done: written unless a log row of this turn says so (handledStamps.ts). */
  saveHandled(id: number, handled: number): void {
    if (this.#stamps.carried(id, handled)) return
    this.#ensure().exec('UPDATE dws_sessions SET handled = ? WHERE id = ?', handled, id)
  }

  handled(id: number): number {
    const row = this.#ensure()
      .exec<{ id: number; handled: number }>('SELECT id, handled FROM dws_sessions WHERE id = ?', id)
      .toArray()[0]
    return row === undefined ? 0 : this.#handled(row)
  }

  /** A row's count, or the newest stamp in the log if that is further. */
  #handled(row: { id: number; handled: number }): number {
    return Math.max(row.handled, this.#stamps.latest(row.id))
  }

  suspend(id: number, now: number): void {
    this.#ensure().exec(
      'UPDATE dws_sessions SET suspended_at = ? WHERE id = ? AND suspended_at IS NULL',
      now,
      id,
    )
  }

  /** Ends a session; returns whether any is left. */
  remove(id: number): boolean {
    this.#confirmed.delete(id)
    this.#ensure().exec('DELETE FROM dws_sessions WHERE id = ?', id)
    return this.any()
  }

  /** Whether any session is stored: one row read, not a count of the table. */
  any(): boolean {
    return this.#ensure().exec('SELECT 1 FROM dws_sessions LIMIT 1').toArray().length > 0
  }

  /** Whether session `id` is stored, attached or suspended. */
  has(id: number): boolean {
    return this.#ensure().exec('SELECT 1 FROM dws_sessions WHERE id = ?', id).toArray().length > 0
  }

  /** Ids of sessions that believe a socket is attached. */
  attachedIds(): number[] {
    return this.#ensure()
      .exec<{ id: number }>('SELECT id FROM dws_sessions WHERE suspended_at IS NULL')
      .toArray()
      .map((row) => row.id)
  }

  /** A session that is suspended and still within its window, with what its `close` handler needs. */
  suspended(id: number, now: number): EndedSession | undefined {
    return this.#ensure()
      .exec<EndedRow>(
        'SELECT id, data, tags FROM dws_sessions WHERE id = ? AND suspended_at IS NOT NULL AND suspended_at > ?',
        id,
        now - this.#window,
      )
      .toArray()[0]
  }

  /** Sessions whose window ended by `now`. */
  expired(now: number): EndedSession[] {
    return this.#ensure()
      .exec<EndedRow>(
        'SELECT id, data, tags FROM dws_sessions WHERE suspended_at IS NOT NULL AND suspended_at <= ? ORDER BY id',
        now - this.#window,
      )
      .toArray()
  }

  /** Sessions that began `maxAge` or more before `now`, connected or not. */
  tooOld(now: number): EndedSession[] {
    return this.#ensure()
      .exec<EndedRow>(
        'SELECT id, data, tags FROM dws_sessions WHERE created_at <= ? ORDER BY id',
        now - this.#maxAge,
      )
      .toArray()
  }

  /** When the next session ends by itself: a suspended one's window, or any one's `maxAge`. */
  nextExpiry(): number | undefined {
    const row = this.#ensure()
      .exec<{ suspended: number | null; created: number | null }>(
        'SELECT min(suspended_at) AS suspended, min(created_at) AS created FROM dws_sessions',
      )
      .toArray()[0]
    const ends: number[] = []
    if (row?.suspended !== null && row?.suspended !== undefined) ends.push(row.suspended + this.#window)
    if (row?.created !== null && row?.created !== undefined) ends.push(row.created + this.#maxAge)
    return ends.length === 0 ? undefined : Math.min(...ends)
  }
}

/** How long a confirmed token's retirement waits to be written with others ({@link SessionStore.confirm}). */
const CONFIRM_DELAY_MS = 10

/**
 * Tables made by an earlier version lack the newer columns: add them once.
 * Their sessions get floor 0, as before (a resume may start anywhere the log
 * reaches), and start their `maxAge` now.
 */
function addMissingColumns(sql: SqlStorage, now: number): void {
  const table = tableSql(sql, 'dws_sessions')
  if (table === undefined) return
  if (!/\bfloor\b/.test(table))
    sql.exec('ALTER TABLE dws_sessions ADD COLUMN floor INTEGER NOT NULL DEFAULT 0')
  if (!/\bowner\b/.test(table)) sql.exec('ALTER TABLE dws_sessions ADD COLUMN owner TEXT')
  if (!/\bcreated_at\b/.test(table)) {
    sql.exec('ALTER TABLE dws_sessions ADD COLUMN created_at INTEGER NOT NULL DEFAULT 0')
    sql.exec('UPDATE dws_sessions SET created_at = ?', now)
  }
}
