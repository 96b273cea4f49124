import BetterSqlite3 from 'better-sqlite3'

import {TABLES, createTableSql} from '../../src/schema/definition.js'
import {INDEXES, createIndexSql} from '../../src/schema/indexes.js'

/**
 * A database as the original Go Ductile writes it: its tables, columns and indexes only (no job_log.started_at,
 * none of our indexes, no schema_migrations), RFC 3339 timestamps. `withoutIndexes` leaves named indexes out.
 */
export function createOriginalDb(path: string, opts: {withoutIndexes?: string[]} = {}): BetterSqlite3.Database {
  const db = new BetterSqlite3(path)
  db.pragma('journal_mode = WAL')
  for (const t of TABLES) {
    db.exec(createTableSql({...t, columns: t.columns.filter((c) => !c.ours)}))
  }
  for (const i of INDEXES) {
    if (i.ours || opts.withoutIndexes?.includes(i.name)) continue
    db.exec(createIndexSql(i))
  }
  return db
}
