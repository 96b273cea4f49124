import {type CompiledQuery, type Compilable, type RawBuilder, sql} from 'kysely'
import {statSync} from 'node:fs'

import type {Db} from './db.js'

/**
 * SQLite-only expressions and maintenance (spec decision 17): everything here has a different spelling on
 * another dialect, so it is kept in one place.
 */

/**
 * Whole-second duration exactly as the reference computes it: strftime('%s', end) - strftime('%s', start).
 * The same expression is the first key of job_log_succeeded_duration_idx.
 */
export function durationSecExpr(): RawBuilder<number | null> {
  return sql<number | null>`(strftime('%s', completed_at) - strftime('%s', started_at))`
}

/** Fractional-day duration, the index's second key (ties of the whole-second duration). */
export function durationDaysExpr(): RawBuilder<number | null> {
  return sql<number | null>`(julianday(completed_at) - julianday(started_at))`
}

/** The UTC hour of completed_at, `YYYY-MM-DD HH` (the first key of job_log_succeeded_duration_idx). */
export function utcHourExpr(): RawBuilder<string> {
  return sql<string>`substr(completed_at, 1, 13)`
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
    walBytes: fileSize(db.path + '-wal'),
    shmBytes: fileSize(db.path + '-shm'),
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
  const row = db.sqlite.pragma(`wal_checkpoint(${mode})`) as {busy: number; log: number; checkpointed: number}[]
  return row[0]
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

/** Free pages in steps (spec decision 14): each step is a short write, so writers are barely delayed. */
export async function incrementalVacuum(db: Db, opts: {stepPages?: number; yieldMs?: number; onProgress?: (freed: number, left: number) => void} = {}): Promise<number> {
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
