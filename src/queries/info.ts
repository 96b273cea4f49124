import type {Db} from '../schema/db.js'
import {TABLES} from '../schema/definition.js'

/** Row counts per table (db info). Tables missing from an older file are reported as null. */
export function countRowsPerTable(db: Db): {table: string; rows: number | null}[] {
  const present = new Set((db.sqlite.prepare(`SELECT name FROM sqlite_master WHERE type = 'table'`).all() as {name: string}[]).map((r) => r.name))
  return TABLES.map((t) => ({
    table: t.name,
    rows: present.has(t.name) ? Number((db.sqlite.prepare(`SELECT COUNT(*) AS n FROM ${t.name}`).get() as {n: number}).n) : null,
  }))
}
