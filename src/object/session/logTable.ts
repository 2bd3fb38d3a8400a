import { tableSql } from '../tableSql.js'

/**
 * The session log's table (log.ts), made on first use. Each row is one
 * message sent to sessions: its number, when, to whom (everyone, one
 * connection or a tag, less some connections), the handled stamp it may
 * carry (handledStamps.ts), the frame, and a reply's mark.
 */
export function createLogTable(sql: SqlStorage): void {
  // The stamps come before the frame: a scan that reads them then never walks a large frame's pages.
  sql.exec(`CREATE TABLE IF NOT EXISTS dws_log (
    seq INTEGER PRIMARY KEY,
    at INTEGER NOT NULL,
    target INTEGER,
    tag TEXT,
    excluded TEXT,
    handled_for INTEGER,
    handled INTEGER,
    frame BLOB NOT NULL,
    mark TEXT NOT NULL DEFAULT ''
  )`)
  addMissingColumns(sql)
}

/** Whether the table exists with its stamp columns: a woken object may read stamps before the log is first used. */
export function logHasStamps(sql: SqlStorage): boolean {
  const table = tableSql(sql, 'dws_log')
  return table !== undefined && /\bhandled_for\b/.test(table)
}

/**
 * A table made by an earlier version lacks the newer columns: added once.
 * Replies' marks are '' for every old row; the stamps go last there, after
 * the frame.
 */
function addMissingColumns(sql: SqlStorage): void {
  const table = tableSql(sql, 'dws_log')
  if (table === undefined) return
  if (!/\bmark\b/.test(table)) sql.exec("ALTER TABLE dws_log ADD COLUMN mark TEXT NOT NULL DEFAULT ''")
  if (!/\bhandled_for\b/.test(table)) {
    sql.exec('ALTER TABLE dws_log ADD COLUMN handled_for INTEGER')
    sql.exec('ALTER TABLE dws_log ADD COLUMN handled INTEGER')
  }
}
