import { DurableWebSocketError } from '../../core/errors.js'
import type { Frame } from '../../core/outgoing.js'
import { numbered } from '../../shared/dataFrames.js'
import { exceedsBytes, sizeOf } from '../../shared/byteSize.js'
import type { HandledStamps } from './handledStamps.js'
import { createLogTable } from './logTable.js'
import { LogTail } from './logTail.js'

/**
 * The largest frame the log takes, in bytes: SQLite in a Durable Object
 * refuses a row over 2 MB, and the row holds a few numbers besides the frame.
 */
export const MAX_LOGGED_FRAME_BYTES = 1_900_000

/** One logged outgoing message, as a resume replays it, with its mark (a reply's `=c`), '' for none. */
export interface LoggedFrame {
  readonly seq: number
  readonly frame: Frame
  readonly mark: string
}

/** One whole row, as {@link SessionLog.rows} reads it. */
export interface LoggedRow extends LoggedFrame {
  readonly target: number | null
  readonly tag: string | null
  readonly except: readonly number[] | null
}

/** A page of what a session has still to be sent from the log ({@link SessionLog.pending}). */
export interface PendingPage {
  /** The messages for the session, oldest first, with their sizes as stored. */
  readonly pending: readonly { readonly seq: number; readonly size: number }[]
  /** The last log row looked at; undefined when there was none. */
  readonly through: number | undefined
  /** Whether the page was cut at its row limit, so more may follow. */
  readonly full: boolean
}

export interface LogBounds {
  /** How long a row is kept for a suspended session, in ms: the resume window. */
  readonly window: number
  readonly maxMessages: number
  readonly maxBytes: number
}

/**
 * What the room sent to its sessions, in the object's SQLite storage, for
 * resumes to replay. A message goes in once however many sessions it
 * reached: a broadcast is one row, `to(tag)` one row naming the tag, and a
 * send one row naming its connection; replays filter by those columns. Its
 * row numbers are the sessions' `g`. Bounded by age, rows and bytes.
 */
export class SessionLog {
  readonly #sql: SqlStorage
  readonly #bounds: LogBounds
  readonly #stamps: HandledStamps
  #ready = false
  #head: number | undefined
  #oldest: number | undefined
  /** The bytes of every frame kept; read once per instance, then kept up as rows come and go. */
  #bytes: number | undefined
  /** The newest rows in memory, for the replays of a storm (logTail.ts). */
  readonly #tail = new LogTail()

  constructor(sql: SqlStorage, bounds: LogBounds, stamps: HandledStamps) {
    this.#sql = sql
    this.#bounds = bounds
    this.#stamps = stamps
  }

  #ensure(): SqlStorage {
    if (!this.#ready) {
      createLogTable(this.#sql)
      this.#ready = true
    }
    return this.#sql
  }

  /**
   * `deleteAll` dropped the table, which held `head` (read before the
   * delete): the numbering goes on from there, with a row no session is sent,
   * so live clients never see a number go back.
   */
  reset(head: number): void {
    this.#tail.forget()
    this.#stamps.forget()
    this.#ready = false
    this.#oldest = undefined
    this.#bytes = undefined
    this.#head = head
    if (head > 0)
      this.#ensure().exec(
        'INSERT INTO dws_log (seq, at, target, tag, excluded, frame) VALUES (?, ?, ?, NULL, NULL, ?)',
        head,
        Date.now(),
        NOBODY,
        '',
      )
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
   * `maxMessages` or `maxBytes`, never a scan per message.
   */
  append(
    target: number | null,
    tag: string | null,
    except: readonly number[] | null,
    frame: Frame,
    now: number,
    mark = '',
    at?: number,
  ): number {
    // A sharded room's leaf logs at the root's number (shard/leaf.ts), and has dropped copies before.
    if (at !== undefined && at <= this.head()) return at
    if (exceedsBytes(frame, MAX_LOGGED_FRAME_BYTES)) {
      throw new DurableWebSocketError(
        'ERR_DWS_MESSAGE_TOO_LARGE',
        `a message of more than ${String(MAX_LOGGED_FRAME_BYTES)} bytes cannot be kept for session clients' resumes, so it was not sent to anyone. Send large payloads in parts, or keep them in storage and send a reference.`,
      )
    }
    const stored = typeof frame === 'string' || frame instanceof ArrayBuffer ? frame : copyBytes(frame)
    const bytes = this.#totalBytes()
    // The number is the log's, not SQLite's: no RETURNING to read back, and
    // no AUTOINCREMENT, whose sqlite_sequence row would be one more page per commit.
    const seq = at ?? this.head() + 1
    // A leaf's rows come from the root, outside any handler: never stamped.
    const stamp = at === undefined ? this.#stamps.pending() : undefined
    this.#ensure().exec(
      'INSERT INTO dws_log (seq, at, target, tag, excluded, handled_for, handled, frame, mark) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
      seq,
      now,
      target,
      tag,
      except === null || except.length === 0 ? null : JSON.stringify(except),
      stamp?.[0] ?? null,
      stamp?.[1] ?? null,
      stored,
      mark,
    )
    if (stamp !== undefined) this.#stamps.stamped(seq)
    this.#head = seq
    const size = sizeOf(stored)
    this.#bytes = bytes + size
    this.#tail.appended({
      seq,
      target,
      tag,
      except: except?.length ? except : null,
      frame: stored,
      mark,
      size,
    })
    this.#oldest ??= this.#firstSeq() ?? seq
    const { maxMessages, maxBytes } = this.#bounds
    if (seq - this.#oldest >= maxMessages + Math.max(1, maxMessages >> 4)) this.#trimTo(seq - maxMessages)
    if (this.#bytes > maxBytes + (maxBytes >> 4)) this.#trimBytes(maxBytes)
    return seq
  }

  /**
   * Drops rows older than the window: no suspended session can still need
   * them. A sharded room's root passes `notPast`, the lowest number every
   * leaf confirmed, so a leaf that is behind still finds its rows.
   */
  trim(now: number, notPast = Infinity): void {
    const row = this.#ensure()
      .exec<{ seq: number | null }>(
        'SELECT max(seq) AS seq FROM dws_log WHERE at < ?',
        now - this.#bounds.window,
      )
      .toArray()[0]
    if (row?.seq !== null && row?.seq !== undefined) this.#trimTo(Math.min(row.seq, notPast))
  }

  /** No session is left: everything goes but the newest row, which keeps the numbering. */
  dropAllButHead(): void {
    const head = this.head()
    this.#stamps.fold(head - 1)
    this.#ensure().exec('DELETE FROM dws_log WHERE seq < ?', head)
    this.#tail.trimmed(head - 1)
    this.#oldest = head === 0 ? undefined : head
    this.#bytes = undefined
  }

  /** The oldest row the log keeps (or the next to be written, when it keeps none): one query per instance, then cached. */
  get oldestKept(): number {
    this.#oldest ??= this.#firstSeq() ?? this.head() + 1
    return this.#oldest
  }

  /**
   * Everything up to here was deleted (or never written): a client behind it
   * may have missed something. Cached, since a storm asks it for every held
   * socket on every broadcast.
   */
  trimmedThrough(): number {
    return this.oldestKept - 1
  }

  /**
   * The next messages after `after` that were for session `id` (addressed
   * to everyone, to its id, or to one of its tags), at most `rows` log rows
   * looked at, with their sizes but not their frames: a replay decides from
   * the sizes how many fit its window, and reads only those ({@link replayFrames}),
   * so its memory is bounded by the window whatever the log holds.
   * `through` is the last row looked at, for the next page.
   */
  pending(id: number, tags: readonly string[], after: number, rows: number): PendingPage {
    if (!this.#tail.covers(after))
      this.#tail.warm(after, this.head(), (from, through) =>
        this.#readRows('WHERE seq > ? AND seq <= ? ORDER BY seq', from, through).map((row) => ({
          ...row,
          size: sizeOf(row.frame),
        })),
      )
    if (this.#tail.covers(after)) return this.#tail.pending(id, tags, after, rows)
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

  /** The frames of these logged messages as SQLite holds them, in the order given. */
  #frames(seqs: readonly number[]): LoggedFrame[] {
    if (seqs.length === 0) return []
    return this.#ensure()
      .exec<{ seq: number; frame: string | ArrayBuffer; mark: string }>(
        `SELECT seq, frame, mark FROM dws_log WHERE seq IN (${seqs.map(() => '?').join(', ')}) ORDER BY seq`,
        ...seqs,
      )
      .toArray()
  }

  /**
   * What a replay sends for these logged messages: each frame with its
   * number (and mark), in the order given. From the tail when it holds them,
   * where each frame is numbered once for every session that replays it.
   */
  replayFrames(seqs: readonly number[]): { seq: number; frame: Frame }[] {
    return (
      this.#tail.numberedFrames(seqs) ??
      this.#frames(seqs).map((logged) => ({
        seq: logged.seq,
        frame: numbered(logged.seq, logged.frame, logged.mark),
      }))
    )
  }

  /** Every row after `after`, at most `rows`, oldest first: what a sharded room's root sends its leaves. */
  rows(after: number, rows: number): LoggedRow[] {
    return this.#readRows('WHERE seq > ? ORDER BY seq LIMIT ?', after, rows)
  }

  /**
   * The rows after `after` for session `id`: sent to its id, or to one of
   * `tags` (rows that exclude it included; a replay filters them). What a
   * sharded room's root hands a leaf a session moved to (shard/root.ts).
   */
  rowsFor(id: number, tags: readonly string[], after: number): LoggedRow[] {
    return this.#readRows('WHERE seq > ? AND (target = ? OR tag IS NOT NULL) ORDER BY seq', after, id).filter(
      (row) => row.target === id || (row.tag !== null && tags.includes(row.tag)),
    )
  }

  /** Whole rows, `except` parsed, chosen by the rest of a query (`WHERE … ORDER BY …`). */
  #readRows(where: string, ...bindings: number[]): LoggedRow[] {
    return this.#ensure()
      .exec<{
        seq: number
        target: number | null
        tag: string | null
        excluded: string | null
        frame: string | ArrayBuffer
        mark: string
      }>(`SELECT seq, target, tag, excluded, frame, mark FROM dws_log ${where}`, ...bindings)
      .toArray()
      .map(({ excluded, ...row }) => ({
        ...row,
        except: excluded === null ? null : (JSON.parse(excluded) as number[]),
      }))
  }

  /**
   * Logs a row at a number already passed: one a sharded room's leaf skipped
   * because it was for another leaf then, and which a session that moved
   * here needs for its replay (shard/claims.ts). A row that is there already
   * stays as it is; one older than what the log keeps is not written (the
   * resume then finds the log trimmed, as it would anyway). Never moves the
   * head back.
   */
  insertOlder({ seq, target, tag, except, frame, mark }: LoggedRow, now: number): void {
    if (seq < this.oldestKept) return
    const stored = typeof frame === 'string' || frame instanceof ArrayBuffer ? frame : copyBytes(frame)
    const bytes = this.#totalBytes()
    const written = this.#ensure().exec(
      'INSERT OR IGNORE INTO dws_log (seq, at, target, tag, excluded, frame, mark) VALUES (?, ?, ?, ?, ?, ?, ?)',
      seq,
      now,
      target,
      tag,
      except === null || except.length === 0 ? null : JSON.stringify(except),
      stored,
      mark,
    ).rowsWritten
    if (written === 0) return
    // The tail holds every row after where it starts, in order: one written in between is not followed.
    if (this.#tail.covers(seq - 1)) this.#tail.forget()
    this.#bytes = bytes + sizeOf(stored)
    this.#head = Math.max(this.head(), seq)
  }

  /** The bytes the log holds, as `length(frame)` counts them. */
  bytes(): number {
    return this.#totalBytes()
  }

  #totalBytes(): number {
    this.#bytes ??=
      this.#ensure().exec<{ bytes: number | null }>('SELECT sum(length(frame)) AS bytes FROM dws_log').one()
        .bytes ?? 0
    return this.#bytes
  }

  #firstSeq(): number | undefined {
    const row = this.#ensure()
      .exec<{ seq: number | null }>('SELECT min(seq) AS seq FROM dws_log')
      .toArray()[0]
    return row?.seq ?? undefined
  }

  /** Drops the oldest rows until at most `limit` bytes are left (but never the newest row). */
  #trimBytes(limit: number): void {
    let excess = this.#totalBytes() - limit
    let through: number | undefined
    for (let after = 0; excess > 0;) {
      const rows = this.#ensure()
        .exec<{ seq: number; size: number }>(
          'SELECT seq, length(frame) AS size FROM dws_log WHERE seq > ? ORDER BY seq LIMIT 256',
          after,
        )
        .toArray()
      if (rows.length === 0) break
      for (const row of rows) {
        through = row.seq
        excess -= row.size
        if (excess <= 0) break
      }
      after = rows.at(-1)?.seq ?? after
    }
    if (through !== undefined) this.#trimTo(through)
  }

  /** Deletes through `seq`, but never the newest row: it is what `head` reads after a wake. */
  #trimTo(seq: number): void {
    const through = Math.min(seq, this.head() - 1)
    if (through < (this.#oldest ?? 1)) return
    const sql = this.#ensure()
    if (this.#bytes !== undefined) {
      const gone = sql
        .exec<{ bytes: number | null }>(
          'SELECT sum(length(frame)) AS bytes FROM dws_log WHERE seq <= ?',
          through,
        )
        .one().bytes
      this.#bytes -= gone ?? 0
    }
    this.#stamps.fold(through)
    sql.exec('DELETE FROM dws_log WHERE seq <= ?', through)
    this.#tail.trimmed(through)
    this.#oldest = through + 1
  }
}

/** A target no connection has: the row only keeps the numbering. */
const NOBODY = -1

function copyBytes(view: ArrayBufferView): ArrayBuffer {
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength).slice().buffer
}
