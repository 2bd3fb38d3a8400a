import type { Frame } from '../../core/outgoing.js'
import { numbered } from '../../shared/dataFrames.js'

/** How much of the log's newest end the tail keeps at most: rows and bytes of frames. */
export interface TailLimits {
  readonly rows: number
  readonly bytes: number
}

/** The defaults: a few seconds of a busy room, enough for a storm's every resume. */
export const TAIL_LIMITS: TailLimits = { rows: 1_024, bytes: 4 * 1_048_576 }

/** One log row as the tail keeps it: `except` parsed, the size as stored, the numbered frame once made. */
export interface TailRow {
  readonly seq: number
  readonly target: number | null
  readonly tag: string | null
  readonly except: readonly number[] | null
  readonly frame: Frame
  readonly mark: string
  readonly size: number
}

interface KeptRow extends TailRow {
  numbered: Frame | undefined
}

/**
 * The newest rows of the session log (log.ts), in memory: after a deploy
 * every session resumes within seconds, each missing the same last few
 * rows, and without the tail each one reads them from SQLite and numbers
 * each frame again. With it the rows are read once and each frame is
 * numbered once, however many sessions replay it.
 *
 * Its one rule: every row the log holds after {@link after} is in the tail,
 * in order. The log keeps that true: it adds each row it writes, passes on
 * every trim, and forgets the tail when a row goes in out of order.
 * Bounded by {@link TailLimits}: past them the oldest rows leave, and a
 * replay from before them reads SQLite as it would without a tail.
 */
export class LogTail {
  readonly #limits: TailLimits
  /** Every row after this is held; undefined while the tail knows nothing (a new instance). */
  #after: number | undefined
  #rows: KeptRow[] = []
  /** Index of the oldest row still held: leaving rows are skipped, and cut off now and then. */
  #start = 0
  #bytes = 0

  constructor(limits: TailLimits = TAIL_LIMITS) {
    this.#limits = limits
  }

  /** Whether every row after `after` is held. */
  covers(after: number): boolean {
    return this.#after !== undefined && after >= this.#after
  }

  /** Where what the tail holds begins (every row after it); undefined while it holds nothing known. */
  get after(): number | undefined {
    return this.#after
  }

  get rows(): number {
    return this.#rows.length - this.#start
  }

  /** Whether `rows` more rows of `bytes` would fit beside what is held. */
  fits(rows: number, bytes: number): boolean {
    return this.rows + rows <= this.#limits.rows && this.#bytes + bytes <= this.#limits.bytes
  }

  /**
   * Reads the log's newest rows in when a replay starts from near them, as
   * every resume of a storm does: the first resume reads them once, the
   * rest find them here. `read(from, through)` is every row the log holds
   * numbered in (from, through]. A replay from further back than the tail
   * can hold is not read in: it reads SQLite, as it would without a tail.
   */
  warm(after: number, head: number, read: (from: number, through: number) => TailRow[]): void {
    const known = this.#after
    // From `after`; for a tail that knows nothing yet, at most its size back from the head.
    const from = known === undefined ? Math.max(after, head - this.#limits.rows) : after
    const through = known ?? head
    if (through <= from || through - from + this.rows > this.#limits.rows) return
    const rows = read(from, through)
    if (
      !this.fits(
        rows.length,
        rows.reduce((sum, row) => sum + row.size, 0),
      )
    )
      return
    this.learned(from, rows)
  }

  /**
   * The log wrote a row past everything it held: kept, if the tail knows
   * where it stands, with its own copies of what the app may still hold
   * and change (a buffer, the list of exclusions); SQLite took its own.
   */
  appended(row: TailRow): void {
    if (this.#after === undefined) return
    const { frame, except } = row
    this.#rows.push({
      ...row,
      frame: frame instanceof ArrayBuffer ? frame.slice(0) : frame,
      except: except === null ? null : [...except],
      numbered: undefined,
    })
    this.#bytes += row.size
    while (this.rows > this.#limits.rows || (this.#bytes > this.#limits.bytes && this.rows > 1)) this.#leave()
    this.#compact()
  }

  /**
   * The log read every row it holds after `after` (`rows`, oldest first,
   * through its head): the tail now starts there. Rows the tail already
   * holds are kept; older ones are put in front.
   */
  learned(after: number, rows: readonly TailRow[]): void {
    const held = this.#after
    if (held !== undefined && after >= held) return
    // A tail that knows nothing holds no rows: every row read goes in.
    const older = held === undefined ? rows : rows.filter((row) => row.seq <= held)
    this.#rows = [...older.map((row) => ({ ...row, numbered: undefined })), ...this.#rows.slice(this.#start)]
    this.#start = 0
    this.#bytes += older.reduce((sum, row) => sum + row.size, 0)
    this.#after = after
  }

  /** The log deleted every row through `seq`. */
  trimmed(seq: number): void {
    if (this.#after === undefined || seq <= this.#after) return
    while (this.#start < this.#rows.length && (this.#rows[this.#start]?.seq ?? Infinity) <= seq) this.#leave()
    this.#after = Math.max(this.#after, seq)
    this.#compact()
  }

  /** The log changed in a way the tail does not follow (a row written out of order, the table dropped). */
  forget(): void {
    this.#after = undefined
    this.#rows = []
    this.#start = 0
    this.#bytes = 0
  }

  /**
   * The held rows after `after` for session `id`, at most `limit` looked at:
   * what `SessionLog.pending` reads from SQLite, with the same filter (to
   * everyone, to its id or one of its tags, and not excluding it).
   */
  pending(
    id: number,
    tags: readonly string[],
    after: number,
    limit: number,
  ): { pending: { seq: number; size: number }[]; through: number | undefined; full: boolean } {
    const pending: { seq: number; size: number }[] = []
    let looked = 0
    let through: number | undefined
    for (let i = this.#firstAfter(after); i < this.#rows.length && looked < limit; i++) {
      const row = this.#rows[i]
      if (row === undefined) break
      if (row.target !== null && row.target !== id) continue
      looked++
      through = row.seq
      if (row.tag !== null && !tags.includes(row.tag)) continue
      if (row.except?.includes(id) === true) continue
      pending.push({ seq: row.seq, size: row.size })
    }
    return { pending, through, full: looked === limit }
  }

  /**
   * The numbered frames of these held rows, in the order given; each frame
   * is numbered once for every replay. Undefined if one is not held.
   */
  numberedFrames(seqs: readonly number[]): { seq: number; frame: Frame }[] | undefined {
    const out: { seq: number; frame: Frame }[] = []
    let i = this.#firstAfter((seqs[0] ?? 0) - 1)
    for (const seq of seqs) {
      while (i < this.#rows.length && (this.#rows[i]?.seq ?? Infinity) < seq) i++
      const row = this.#rows[i]
      if (row?.seq !== seq) return undefined
      row.numbered ??= numbered(row.seq, row.frame, row.mark)
      out.push({ seq, frame: row.numbered })
    }
    return out
  }

  /** The index of the first held row numbered after `after`: a binary search, as rows are in order. */
  #firstAfter(after: number): number {
    let low = this.#start
    let high = this.#rows.length
    while (low < high) {
      const mid = (low + high) >>> 1
      if ((this.#rows[mid]?.seq ?? Infinity) <= after) low = mid + 1
      else high = mid
    }
    return low
  }

  #leave(): void {
    const row = this.#rows[this.#start]
    if (row === undefined) return
    this.#bytes -= row.size
    this.#after = row.seq
    this.#rows[this.#start] = undefined as unknown as KeptRow
    this.#start++
  }

  /** Cuts the rows that left off the array once they are half of it. */
  #compact(): void {
    if (this.#start >= 256 && this.#start * 2 >= this.#rows.length) {
      this.#rows = this.#rows.slice(this.#start)
      this.#start = 0
    }
  }
}
