import { logHasStamps } from './logTable.js'

/** The message whose handler's synchronous part is running now, and what its stamp became. */
interface OpenStamp {
  readonly id: number
  readonly seq: number
  /** The first log row that carries the stamp; undefined while none does. */
  first: number | undefined
  /** Set once the handler finished inside the window, as a plain function's does. */
  finished: boolean
}

/**
 * A session's `handled` count without a write of its own for most messages.
 * A handler that sends while it runs (a reply, a broadcast) already writes a
 * log row in the transaction that must mark its message handled; that row
 * carries the mark too (`handled_for`, `handled`), so the session's row is
 * written only for a message whose handler sent nothing. What `handled` is,
 * read back, is the larger of the session's row and its newest stamp; rows
 * the log is about to delete fold their stamps into the sessions' rows first.
 *
 * A stamp is only good if the handler finishes in the same transaction as
 * the row. Rows are stamped while the synchronous part of a plain function's
 * handler runs; if it returns a promise instead of finishing, the stamps come
 * off again in the same turn, and its end is stored the usual way.
 * docs/guarantees.md: exactly once.
 */
export class HandledStamps {
  readonly #sql: SqlStorage
  #open: OpenStamp | undefined
  /** The newest stamp of each session, read from the log once per instance, then kept up. */
  #latest: Map<number, number> | undefined

  constructor(sql: SqlStorage) {
    this.#sql = sql
  }

  /** Runs `call`, the synchronous part of message `seq`'s handler, while log rows appended carry its stamp. */
  during<T>(id: number, seq: number, call: () => T): T {
    const open: OpenStamp = { id, seq, first: undefined, finished: false }
    this.#open = open
    try {
      return call()
    } finally {
      this.#open = undefined
      if (open.first !== undefined && !open.finished) this.#unstamp(open)
    }
  }

  /** The session and message a row appended now is to carry, if a handler's window is open. */
  pending(): readonly [id: number, seq: number] | undefined {
    const open = this.#open
    return open === undefined ? undefined : [open.id, open.seq]
  }

  /** Row `row` was written with the pending stamp. */
  stamped(row: number): void {
    const open = this.#open
    if (open === undefined) return
    open.first ??= row
    this.#latest?.set(open.id, open.seq)
  }

  /**
   * Message `seq` of session `id` is handled: true when a log row of this
   * turn carries that, so the session's row needs no write of its own.
   */
  carried(id: number, seq: number): boolean {
    const open = this.#open
    if (open?.id !== id || open.seq !== seq) return false
    open.finished = true
    return open.first !== undefined
  }

  /** The newest stamp of session `id`, 0 for none. */
  latest(id: number): number {
    return this.#stamps().get(id) ?? 0
  }

  /**
   * The log deletes its rows through `through`: their stamps go into the
   * sessions' rows first, in the same transaction, so no count goes back.
   */
  fold(through: number): void {
    if (this.#stamps().size === 0) return
    this.#sql.exec(
      `UPDATE dws_sessions SET handled = stamps.seq
       FROM (SELECT handled_for AS id, max(handled) AS seq FROM dws_log
             WHERE seq <= ? AND handled_for IS NOT NULL GROUP BY handled_for) AS stamps
       WHERE dws_sessions.id = stamps.id AND dws_sessions.handled < stamps.seq`,
      through,
    )
  }

  /** `deleteAll` dropped the log and the sessions. */
  forget(): void {
    this.#latest = undefined
  }

  /** A handler that went on past its window: its message is not handled in this transaction after all. */
  #unstamp(open: OpenStamp): void {
    this.#sql.exec(
      'UPDATE dws_log SET handled_for = NULL, handled = NULL WHERE seq >= ? AND handled_for = ? AND handled = ?',
      open.first,
      open.id,
      open.seq,
    )
    this.#latest = undefined
  }

  #stamps(): Map<number, number> {
    if (this.#latest === undefined) {
      const latest = new Map<number, number>()
      if (logHasStamps(this.#sql))
        for (const row of this.#sql.exec<{ id: number; seq: number }>(
          'SELECT handled_for AS id, max(handled) AS seq FROM dws_log WHERE handled_for IS NOT NULL GROUP BY handled_for',
        ))
          latest.set(row.id, row.seq)
      this.#latest = latest
    }
    return this.#latest
  }
}

/**
 * Whether a handler is worth stamping for: a plain function, which usually
 * finishes in the turn it was called in. An `async` one goes on past it as
 * often as not, and its stamps would only come off again.
 */
export function finishesInItsTurn(handler: unknown): boolean {
  return typeof handler === 'function' && Object.prototype.toString.call(handler) !== '[object AsyncFunction]'
}
