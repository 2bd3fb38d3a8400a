/**
 * The CREATE statement SQLite keeps for table `name` in the object's
 * storage, or undefined when there is no such table: whether a table exists,
 * and which columns a table made by an earlier version still lacks.
 */
export function tableSql(sql: SqlStorage, name: string): string | undefined {
  return sql
    .exec<{ sql: string }>("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", name)
    .toArray()[0]?.sql
}
