import {sql} from 'kysely'

import type {Db} from '../schema/db.js'
import {TABLES, type TableDef} from '../schema/definition.js'
import {existingTables} from '../schema/migrations.js'

/**
 * `db copy`: every table of one database into another, whichever the stores (SQLite to PostgreSQL, and back,
 * or file to file). Rows are read in primary-key order, a batch at a time (keyset: never an OFFSET), inside
 * one read snapshot of the source, and written one batch per transaction to the destination. The
 * destination's identity sequences continue after the copied ids.
 */

export interface CopyProgress {
  table: string
  copied: number
  total: number
}

export interface CopiedTable {
  table: string
  rows: number
}

/** Rows per INSERT: well under both stores' parameter limits for our widest table (job_log, 18 columns). */
const ROWS_PER_INSERT = 500

function keyset(db: Db, t: TableDef, after: Record<string, unknown> | null, limit: number) {
  // biome-ignore lint/suspicious/noExplicitAny: a table chosen at run time
  const k = db.k as any
  let q = k.selectFrom(t.name).selectAll()
  if (after) {
    const cols = t.primaryKey
    q =
      cols.length === 1
        ? q.where(cols[0], '>', after[cols[0] as string])
        : q.where(sql`(${sql.join(cols.map((c) => sql.ref(c)))})`, '>', sql`(${sql.join(cols.map((c) => after[c]))})`)
  }
  for (const c of t.primaryKey) q = q.orderBy(c)
  return q.limit(limit)
}

/** Copy every table `src` has into `dst` (a database just given the schema, by initSchema). */
export function copyDatabase(src: Db, dst: Db, o: {batchSize: number; onProgress?: (p: CopyProgress) => void}): CopiedTable[] {
  const present = existingTables(src)
  const out: CopiedTable[] = []
  // A new schema may hold seed rows (SQLite's migrations seed storage_sequences): the source's replace them.
  dst.tx(() => {
    for (const t of TABLES) dst.exec(`DELETE FROM ${t.name}`)
  })
  src.read(() => {
    for (const t of TABLES) {
      if (!present.has(t.name)) continue
      const total = Number(src.query(`SELECT COUNT(*) AS n FROM ${t.name}`)[0]?.n ?? 0)
      let copied = 0
      let after: Record<string, unknown> | null = null
      o.onProgress?.({table: t.name, copied, total})
      for (;;) {
        const rows = src.all(keyset(src, t, after, o.batchSize)) as Record<string, unknown>[]
        if (rows.length === 0) break
        dst.tx(() => {
          for (let i = 0; i < rows.length; i += ROWS_PER_INSERT) {
            // biome-ignore lint/suspicious/noExplicitAny: a table chosen at run time
            dst.run((dst.k as any).insertInto(t.name).values(rows.slice(i, i + ROWS_PER_INSERT)))
          }
        })
        copied += rows.length
        after = rows[rows.length - 1] ?? null
        o.onProgress?.({table: t.name, copied, total})
        if (rows.length < o.batchSize) break
      }
      out.push({table: t.name, rows: copied})
    }
  })
  if (dst.kind === 'postgres') {
    // Identity columns continue after the highest copied id (SQLite's AUTOINCREMENT does so by itself).
    for (const t of TABLES.filter((x) => x.autoincrement)) {
      const key = t.primaryKey[0] as string
      dst.query(`SELECT setval(pg_get_serial_sequence('${t.name}', '${key}'), COALESCE((SELECT MAX(${key}) FROM ${t.name}), 0) + 1, false)`)
    }
  }
  return out
}
