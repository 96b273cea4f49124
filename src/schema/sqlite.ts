import type BetterSqlite3 from 'better-sqlite3'
import {type CompiledQuery, type Compilable, type RawBuilder, sql} from 'kysely'
import {statSync} from 'node:fs'

import {DuctileError} from '../errors.js'
import type {Dialect} from './dialect.js'

/** The connection these functions need (the Db of db.ts is one). */
interface Db {
  sqlite: BetterSqlite3.Database
  path: string
  statement(sqlText: string): BetterSqlite3.Statement
}

/**
 * SQLite-only expressions, pragmas and maintenance: everything here has a different spelling on another
 * dialect (PostgreSQL has settings, not pragmas), so it is kept in one place.
 */

/** The WAL is truncated back to this size after checkpoints (it would otherwise keep its largest size). */
export const JOURNAL_SIZE_LIMIT = 64 * 1024 * 1024
/** SQLite's default wal_autocheckpoint: a COMMIT that leaves this many WAL pages or more runs a PASSIVE checkpoint. */
export const DEFAULT_WAL_AUTOCHECKPOINT = 1000

/** Per-connection settings that write nothing to the file. */
export function applyConnectionPragmas(sqlite: BetterSqlite3.Database, mode: 'read' | 'write' | 'create', busyTimeoutMs: number): void {
  sqlite.pragma(`busy_timeout = ${busyTimeoutMs}`)
  // synchronous is per connection: readers carry the same value so `db info` shows what Ductile runs with.
  sqlite.pragma('synchronous = NORMAL')
  if (mode === 'read') sqlite.pragma('query_only = ON')
  else sqlite.pragma('foreign_keys = ON')
}

/** What a writer sets in the file itself: WAL mode (the header) and the WAL's size limit. */
export function applyWriterPragmas(sqlite: BetterSqlite3.Database): void {
  const jm = sqlite.pragma('journal_mode = WAL', {simple: true})
  if (String(jm).toLowerCase() !== 'wal') {
    throw new DuctileError('db_error', `could not switch ${sqlite.name} to WAL journal mode (got ${jm})`, {
      hint: 'WAL needs a local filesystem that supports shared memory; move the database off network storage',
    })
  }
  sqlite.pragma(`journal_size_limit = ${JOURNAL_SIZE_LIMIT}`)
}

/** WAL pages a COMMIT may leave before it checkpoints itself (0: never; another thread checkpoints). */
export function setAutocheckpoint(db: Db, pages = DEFAULT_WAL_AUTOCHECKPOINT): void {
  db.sqlite.pragma(`wal_autocheckpoint = ${pages}`)
}

/** Let SQLite refresh the statistics its planner uses (cheap; run before closing a long-lived connection). */
export function optimize(db: Db): void {
  db.sqlite.pragma('optimize')
}

/** Changes when another connection commits (this connection's own commits do not change it). */
export function dataVersion(db: Db): number {
  // A cached statement: the engine's idle poll reads it four times a second.
  return db.statement('PRAGMA data_version').pluck().get() as number
}

/**
 * For a run of batch deletes: no automatic checkpoint inside each batch's COMMIT and a 32 MiB page cache.
 * Returns what puts the connection back as it was.
 */
export function tuneForBatches(db: Db): () => void {
  const autocheckpoint = db.sqlite.pragma('wal_autocheckpoint', {simple: true})
  const cache = db.sqlite.pragma('cache_size', {simple: true})
  db.sqlite.pragma('wal_autocheckpoint = 0')
  db.sqlite.pragma('cache_size = -32768')
  return () => {
    db.sqlite.pragma(`wal_autocheckpoint = ${autocheckpoint}`)
    db.sqlite.pragma(`cache_size = ${cache}`)
  }
}

/** 0 none, 1 full, 2 incremental. */
export function autoVacuumMode(db: Db): number {
  return Number(db.sqlite.pragma('auto_vacuum', {simple: true}))
}

/**
 * Whole-second duration exactly as the reference computes it: strftime('%s', end) - strftime('%s', start).
 * The same expression is the first key of job_log_succeeded_sec_idx.
 */
export function durationSecExpr(): RawBuilder<number | null> {
  return sql<number | null>`(strftime('%s', completed_at) - strftime('%s', started_at))`
}

/** Fractional-day duration: the exact order among attempts of the same whole-second duration. */
export function durationDaysExpr(): RawBuilder<number | null> {
  return sql<number | null>`(julianday(completed_at) - julianday(started_at))`
}

/** Millisecond duration between a job_log row's started_at and completed_at. */
export function durationMsExpr(): RawBuilder<number | null> {
  return sql<number | null>`CAST(ROUND((julianday(completed_at) - julianday(started_at)) * 86400000) AS INTEGER)`
}

/**
 * Pin a compiled query's table to an index (SQLite's INDEXED BY). Used only where the planner cannot know
 * that an ORDER BY … LIMIT read from the top of an index beats a range scan and sort (it has no statistics
 * on how many rows a time window holds).
 */
export function withIndex<O>(query: Compilable<O>, table: string, index: string): Compilable<O> {
  return {
    compile(): CompiledQuery<O> {
      const c = query.compile()
      const from = new RegExp(`from "${table}"( as "\\w+")?`)
      const m = from.exec(c.sql)
      if (!m) throw new Error(`withIndex: from "${table}" not found in ${c.sql}`)
      return {...c, sql: c.sql.replace(from, `${m[0]} INDEXED BY ${index}`)}
    },
  }
}

export function fileSize(path: string): number {
  try {
    return statSync(path).size
  } catch {
    return 0
  }
}

export interface FileStats {
  path: string
  fileBytes: number
  walBytes: number
  shmBytes: number
  pageSize: number
  pageCount: number
  freelistCount: number
  journalMode: string
  synchronous: number
  autoVacuum: number
}

export function fileStats(db: Db): FileStats {
  const p = (name: string) => db.sqlite.pragma(name, {simple: true}) as number | string
  return {
    path: db.path,
    fileBytes: fileSize(db.path),
    walBytes: fileSize(`${db.path}-wal`),
    shmBytes: fileSize(`${db.path}-shm`),
    pageSize: Number(p('page_size')),
    pageCount: Number(p('page_count')),
    freelistCount: Number(p('freelist_count')),
    journalMode: String(p('journal_mode')),
    synchronous: Number(p('synchronous')),
    autoVacuum: Number(p('auto_vacuum')),
  }
}

export type CheckpointMode = 'PASSIVE' | 'FULL' | 'RESTART' | 'TRUNCATE'

export function checkpoint(db: Db, mode: CheckpointMode): {busy: number; log: number; checkpointed: number} {
  const [row] = db.sqlite.pragma(`wal_checkpoint(${mode})`) as {busy: number; log: number; checkpointed: number}[]
  if (!row) throw new Error(`wal_checkpoint(${mode}) returned no row`)
  return row
}

export function quickCheck(db: Db): string[] {
  return (db.sqlite.pragma('quick_check') as {quick_check: string}[]).map((r) => r.quick_check)
}

export function integrityCheck(db: Db): string[] {
  return (db.sqlite.pragma('integrity_check') as {integrity_check: string}[]).map((r) => r.integrity_check)
}

/** The plan of a query as SQLite would run it (the plan tests and benchmarks read this). */
export function explainPlan(db: Db, sqlText: string, params: readonly unknown[]): string[] {
  const rows = db.sqlite.prepare(`EXPLAIN QUERY PLAN ${sqlText}`).all(...(params as unknown[])) as {detail: string}[]
  return rows.map((r) => r.detail)
}

/** Free pages in steps: each step is a short write, so writers are barely delayed. */
export async function incrementalVacuum(
  db: Db,
  opts: {stepPages?: number; yieldMs?: number; onProgress?: (freed: number, left: number) => void} = {},
): Promise<number> {
  const step = opts.stepPages ?? 2048
  let freed = 0
  for (;;) {
    const before = Number(db.sqlite.pragma('freelist_count', {simple: true}))
    if (before === 0) break
    db.sqlite.pragma(`incremental_vacuum(${step})`)
    const after = Number(db.sqlite.pragma('freelist_count', {simple: true}))
    freed += before - after
    opts.onProgress?.(freed, after)
    if (after >= before) break
    await new Promise((r) => setTimeout(r, opts.yieldMs ?? 2))
  }
  return freed
}

/** A full VACUUM, switching the file to incremental auto-vacuum on the way (it holds the write lock throughout). */
export function fullVacuum(db: Db): void {
  db.sqlite.pragma('auto_vacuum = INCREMENTAL')
  db.sqlite.exec('VACUUM')
}

/** A compacted copy in another file; the live file is only read. */
export function vacuumInto(db: Db, target: string): void {
  db.sqlite.prepare('VACUUM INTO ?').run(target)
}

/** An online, consistent copy through SQLite's backup API (writers keep going while it copies). */
export async function backupTo(db: Db, target: string, onProgress?: (done: number, total: number) => void): Promise<{pages: number}> {
  let pages = 0
  await db.sqlite.backup(target, {
    progress: ({totalPages, remainingPages}) => {
      pages = totalPages
      onProgress?.(totalPages - remainingPages, totalPages)
      return 256
    },
  })
  return {pages}
}

/** The SQLite side of the query modules' differences (dialect.ts). */
export const sqliteDialect: Dialect = {durationSecExpr, durationDaysExpr, durationMsExpr, withIndex, rowId: 'rowid'}
