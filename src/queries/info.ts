import type {Db} from '../schema/db.js'
import {TABLES} from '../schema/definition.js'
import {existingTables} from '../schema/migrations.js'

/** Row counts per table (db info). Tables missing from an older file are reported as null. */
export function countRowsPerTable(db: Db): {table: string; rows: number | null}[] {
  const present = existingTables(db)
  return TABLES.map((t) => ({
    table: t.name,
    rows: present.has(t.name) ? Number(db.query(`SELECT COUNT(*) AS n FROM ${t.name}`)[0]?.n ?? 0) : null,
  }))
}
