import { DurableWebSocketError } from '../core/errors.js'
import type { Frame } from '../core/outgoing.js'
import { exceedsBytes } from '../shared/byteSize.js'

/**
 * The largest frame the log takes, in bytes: SQLite in a Durable Object
 * refuses a row over 2 MB, and the row holds a few numbers besides the frame.
 */
export const MAX_LOGGED_FRAME_BYTES = 1_900_000

/**
 * Every session socket carries this hibernation tag, so a woken object finds
 * them without a scan. It is the package's, not the app's: `conn.tags` leaves it out.
 */
export const SESSION_TAG = 'dws.session'

/** 32 random bytes, base64url: 256 bits, far past the 128 a guess would need to beat. */
export function newToken(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32))
  let binary = ''
  for (const byte of bytes) binary += String.fromCharCode(byte)
  return btoa(binary).replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, '')
}

/** Only a hash is stored, so a copy of the database does not hand out live sessions. */
export async function hashToken(token: string): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(token))
  let hex = ''
  for (const byte of new Uint8Array(digest)) hex += byte.toString(16).padStart(2, '0')
  return hex
}

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

/** One logged outgoing message, as a resume replays it. */
export interface LoggedFrame {
  readonly seq: number
  readonly frame: Frame
}

/** A page of what a session has still to be sent from the log (SessionStore's pending). */
export interface PendingPage {
  /** The messages for the session, oldest first, with their sizes as stored. */
  readonly pending: readonly { readonly seq: number; readonly size: number }[]
  /** The last log row looked at; undefined when there was none. */
  readonly through: number | undefined
  /** Whether the page was cut at its row limit, so more may follow. */
  readonly full: boolean
}

/**
 * A room's sessions and the log of what it sent to them, in the object's
 * SQLite storage. A message goes into the log once, however many sessions
 * it reached: a broadcast is one row, `to(tag)` one row naming the tag, and
 * a send one row naming its connection. Replays filter by those columns.
 */
export class SessionStore {
  readonly #sql: SqlStorage
  readonly #window: number
  readonly #maxMessages: number
  #ready = false
  #head: number | undefined
  #oldest: number | undefined

  readonly #maxAge: number

  constructor(sql: SqlStorage, window: number, maxMessages: number, maxAge: number) {
    this.#sql = sql
    this.#window = window
    this.#maxMessages = maxMessages
    this.#maxAge = maxAge
  }

  get maxAge(): number {
    return this.#maxAge
  }

  get window(): number {
    return this.#window
  }

  /** The schema is made on first use, so an object with only plain clients never gets the tables. */
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
      this.#sql.exec(`CREATE TABLE IF NOT EXISTS dws_log (
        seq INTEGER PRIMARY KEY,
        at INTEGER NOT NULL,
        target INTEGER,
        tag TEXT,
        excluded TEXT,
        frame BLOB NOT NULL
      )`)
      this.#ready = true
    }
    return this.#sql
  }

  /** Whether the tables exist: an object that never had a session has nothing to reconcile. */
  exists(): boolean {
    if (this.#ready) return true
    const found = this.#sql.exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'dws_sessions'")
    return found.toArray().length > 0
  }

  /** A new session, whose floor is the log's head: its resumes never replay what came before it. */
  create(
    id: number,
    tokenHash: string,
    data: unknown,
    tags: readonly string[],
    now: number,
    owner: string | undefined,
  ): void {
    this.#ensure().exec(
      'INSERT INTO dws_sessions (id, token, data, tags, floor, created_at, owner) VALUES (?, ?, ?, ?, ?, ?, ?)',
      id,
      tokenHash,
      JSON.stringify(data),
      JSON.stringify(tags),
      this.head(),
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
    if (row === undefined) return undefined
    return {
      id: row.id,
      data: row.data,
      tags: row.tags,
      handled: row.handled,
      suspendedAt: row.suspended_at,
      matchedPrevious: row.previous === tokenHash,
      floor: row.floor,
      createdAt: row.created_at,
      owner: row.owner,
    }
  }

  /**
   * A resume hands out a new token and keeps the one just used as the
   * previous, until the client shows it has the new one ({@link confirm}):
   * a cut right after the resume then leaves it a token that still works.
   * Resuming with the previous token retires the unconfirmed current one.
   */
  rotate(id: number, newHash: string, usedHash: string): void {
    this.#ensure().exec(
      'UPDATE dws_sessions SET previous = ?2, token = ?3, suspended_at = NULL WHERE id = ?1',
      id,
      usedHash,
      newHash,
    )
  }

  /** The client used its new token's connection: the previous token stops working. */
  confirm(id: number): void {
    this.#ensure().exec('UPDATE dws_sessions SET previous = NULL WHERE id = ? AND previous IS NOT NULL', id)
  }

  saveData(id: number, data: unknown): void {
    this.#ensure().exec('UPDATE dws_sessions SET data = ? WHERE id = ?', JSON.stringify(data), id)
  }

  saveHandled(id: number, handled: number): void {
    this.#ensure().exec('UPDATE dws_sessions SET handled = ? WHERE id = ?', handled, id)
  }

  handled(id: number): number {
    const row = this.#ensure()
      .exec<{ handled: number }>('SELECT handled FROM dws_sessions WHERE id = ?', id)
      .toArray()[0]
    return row?.handled ?? 0
  }

  suspend(id: number, now: number): void {
    this.#ensure().exec(
      'UPDATE dws_sessions SET suspended_at = ? WHERE id = ? AND suspended_at IS NULL',
      now,
      id,
    )
  }

  /** Ends a session; the last one to end takes the log with it, all but the row that keeps the numbering. */
  remove(id: number): void {
    const sql = this.#ensure()
    sql.exec('DELETE FROM dws_sessions WHERE id = ?', id)
    if (this.count() > 0) return
    const head = this.head()
    sql.exec('DELETE FROM dws_log WHERE seq < ?', head)
    this.#oldest = head === 0 ? undefined : head
  }

  count(): number {
    return this.#ensure().exec<{ n: number }>('SELECT count(*) AS n FROM dws_sessions').one().n
  }

  /** Ids of sessions that believe a socket is attached. */
  attachedIds(): number[] {
    return this.#ensure()
      .exec<{ id: number }>('SELECT id FROM dws_sessions WHERE suspended_at IS NULL')
      .toArray()
      .map((row) => row.id)
  }

  /** A session that is suspended and still within its window, with what its `close` handler needs. */
  suspended(id: number, now: number): { data: string; tags: string } | undefined {
    return this.#ensure()
      .exec<{ data: string; tags: string }>(
        'SELECT data, tags FROM dws_sessions WHERE id = ? AND suspended_at IS NOT NULL AND suspended_at > ?',
        id,
        now - this.#window,
      )
      .toArray()[0]
  }

  /** Sessions whose window ended by `now`, with what their `close` handler needs. */
  expired(now: number): { id: number; data: string; tags: string }[] {
    return this.#ensure()
      .exec<{ id: number; data: string; tags: string }>(
        'SELECT id, data, tags FROM dws_sessions WHERE suspended_at IS NOT NULL AND suspended_at <= ? ORDER BY id',
        now - this.#window,
      )
      .toArray()
  }

  /** Sessions that began `maxAge` or more before `now`, connected or not, with what their `close` needs. */
  tooOld(now: number): { id: number; data: string; tags: string }[] {
    return this.#ensure()
      .exec<{ id: number; data: string; tags: string }>(
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

  /**
   * The last sequence number handed out; 0 before the first. It is the
   * log's highest row, which trimming never deletes, so a number is never
   * handed out twice.
   */
  head(): number {
    if (this.#head === undefined) {
      const row = this.#ensure()
        .exec<{ seq: number | null }>('SELECT max(seq) AS seq FROM dws_log')
        .toArray()[0]
      this.#head = row?.seq ?? 0
    }
    return this.#head
  }

  /**
   * Appends one outgoing message and returns its sequence number. Trimming
   * deletes a range of the primary key at most once per 1/16 of
   * `maxMessages`, never a scan per message.
   */
  append(
    target: number | null,
    tag: string | null,
    except: readonly number[] | null,
    frame: Frame,
    now: number,
  ): number {
    if (exceedsBytes(frame, MAX_LOGGED_FRAME_BYTES)) {
      throw new DurableWebSocketError(
        'ERR_DWS_MESSAGE_TOO_LARGE',
        `a message of more than ${String(MAX_LOGGED_FRAME_BYTES)} bytes cannot be kept for session clients' resumes, so it was not sent to anyone. Send large payloads in parts, or keep them in storage and send a reference.`,
      )
    }
    const stored = typeof frame === 'string' || frame instanceof ArrayBuffer ? frame : copyBytes(frame)
    // The number is the store's, not SQLite's: no RETURNING to read back, and
    // no AUTOINCREMENT, whose sqlite_sequence row would be one more page per commit.
    const seq = this.head() + 1
    this.#ensure().exec(
      'INSERT INTO dws_log (seq, at, target, tag, excluded, frame) VALUES (?, ?, ?, ?, ?, ?)',
      seq,
      now,
      target,
      tag,
      except === null || except.length === 0 ? null : JSON.stringify(except),
      stored,
    )
    this.#head = seq
    this.#oldest ??= this.#firstSeq() ?? seq
    if (seq - this.#oldest >= this.#maxMessages + Math.max(1, this.#maxMessages >> 4))
      this.#trimTo(seq - this.#maxMessages)
    return seq
  }

  /** Drops log rows no session can still need: older than the window, or past `maxMessages`. */
  trim(now: number): void {
    if (!this.exists()) return
    const sql = this.#ensure()
    const row = sql
      .exec<{ seq: number | null }>('SELECT max(seq) AS seq FROM dws_log WHERE at < ?', now - this.#window)
      .toArray()[0]
    if (row?.seq !== null && row?.seq !== undefined) this.#trimTo(row.seq)
  }

  /** The oldest row the log keeps (or the next to be written, when it keeps none): one query per instance, then cached. */
  get oldestKept(): number {
    this.#oldest ??= this.#firstSeq() ?? this.head() + 1
    return this.#oldest
  }

  /** Everything up to here was deleted (or never written): a client behind it may have missed something. */
  trimmedThrough(): number {
    const first = this.#firstSeq()
    return first === undefined ? this.head() : first - 1
  }

  /**
   * The next messages after `after` that were for session `id` (addressed
   * to everyone, to its id, or to one of its tags), at most `rows` log rows
   * looked at, with their sizes but not their frames: a replay decides from
   * the sizes how many fit its window, and reads only those ({@link frames}),
   * so its memory is bounded by the window whatever the log holds.
   * `through` is the last row looked at, for the next page.
   */
  pending(id: number, tags: readonly string[], after: number, rows: number): PendingPage {
    const found = this.#ensure()
      .exec<{ seq: number; tag: string | null; excluded: string | null; size: number }>(
        'SELECT seq, tag, excluded, length(frame) AS size FROM dws_log WHERE seq > ? AND (target IS NULL OR target = ?) ORDER BY seq LIMIT ?',
        after,
        id,
        rows,
      )
      .toArray()
    const pending: { seq: number; size: number }[] = []
    for (const row of found) {
      if (row.tag !== null && !tags.includes(row.tag)) continue
      if (row.excluded !== null && (JSON.parse(row.excluded) as number[]).includes(id)) continue
      pending.push({ seq: row.seq, size: row.size })
    }
    return { pending, through: found.at(-1)?.seq, full: found.length === rows }
  }

  /** The frames of these logged messages, in the order given. */
  frames(seqs: readonly number[]): LoggedFrame[] {
    if (seqs.length === 0) return []
    return this.#ensure()
      .exec<{ seq: number; frame: string | ArrayBuffer }>(
        `SELECT seq, frame FROM dws_log WHERE seq IN (${seqs.map(() => '?').join(', ')}) ORDER BY seq`,
        ...seqs,
      )
      .toArray()
  }

  #firstSeq(): number | undefined {
    const row = this.#ensure()
      .exec<{ seq: number | null }>('SELECT min(seq) AS seq FROM dws_log')
      .toArray()[0]
    return row?.seq ?? undefined
  }

  /** Deletes through `seq`, but never the newest row: it is what `head` reads after a wake. */
  #trimTo(seq: number): void {
    const through = Math.min(seq, this.head() - 1)
    if (through < (this.#oldest ?? 1)) return
    this.#ensure().exec('DELETE FROM dws_log WHERE seq <= ?', through)
    this.#oldest = through + 1
  }
}

/**
 * Tables made by an earlier version lack the newer columns: add them once.
 * Their sessions get floor 0, as before (a resume may start anywhere the log
 * reaches), and start their `maxAge` now.
 */
function addMissingColumns(sql: SqlStorage, now: number): void {
  const table = sql
    .exec<{ sql: string }>("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'dws_sessions'")
    .toArray()[0]
  if (table === undefined) return
  if (!/\bfloor\b/.test(table.sql))
    sql.exec('ALTER TABLE dws_sessions ADD COLUMN floor INTEGER NOT NULL DEFAULT 0')
  if (!/\bowner\b/.test(table.sql)) sql.exec('ALTER TABLE dws_sessions ADD COLUMN owner TEXT')
  if (!/\bcreated_at\b/.test(table.sql)) {
    sql.exec('ALTER TABLE dws_sessions ADD COLUMN created_at INTEGER NOT NULL DEFAULT 0')
    sql.exec('UPDATE dws_sessions SET created_at = ?', now)
  }
}

function copyBytes(view: ArrayBufferView): ArrayBuffer {
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength).slice().buffer
}
