import {type SelectQueryBuilder, sql} from 'kysely'

import type {Db} from '../schema/db.js'
import {TERMINAL_STATUSES} from '../schema/definition.js'
import {checkpoint, fileSize} from '../schema/sqlite.js'
import {type Clock, formatTs, systemClock} from '../schema/time.js'

/**
 * Retention (spec decisions 11 and 15): delete old rows in short BEGIN IMMEDIATE batches, yield between
 * batches so other writers get the lock, PASSIVE checkpoint between batches and TRUNCATE at the end.
 * `ductile prune` and the engine's periodic retention both call `prune`.
 */

export const PRUNE_TABLES = ['job_log', 'job_queue', 'job_transitions', 'job_attempts', 'circuit_breaker_transitions'] as const
export type PruneTable = (typeof PRUNE_TABLES)[number]

const DAY = 86_400_000
export const DEFAULT_RETENTION_MS: Record<PruneTable, number> = {
  job_log: 30 * DAY,
  job_queue: DAY,
  job_transitions: 30 * DAY,
  job_attempts: 30 * DAY,
  circuit_breaker_transitions: 90 * DAY,
}

export interface PruneOptions {
  tables?: readonly PruneTable[]
  /** Retention per table in ms (defaults above); 0 or less disables that table. */
  retention?: Partial<Record<PruneTable, number>>
  /** Keep the newest failed job_log row per (plugin, command) whatever its age (default true). */
  keepLastFailure?: boolean
  dryRun?: boolean
  /** Rows per transaction to start with; adapts to keep the work inside each transaction near `batchTargetMs`. */
  batchSize?: number
  batchTargetMs?: number
  /** Pause between batches so other writers get the lock. */
  yieldMs?: number
  clock?: Clock
  onProgress?: (p: {table: PruneTable; deleted: number; total: number}) => void
}

export interface PruneTableResult {
  table: PruneTable
  /** Rows older than this were deleted (or counted, on a dry run). */
  cutoff: string
  retention_ms: number
  deleted: number
  /** Old rows kept on purpose (the newest failure per plugin and command; history of unfinished jobs). */
  kept: number
  batches: number
}

export interface PruneResult {
  dry_run: boolean
  tables: PruneTableResult[]
  total_deleted: number
  duration_ms: number
  wal_bytes_after: number
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** The newest failed job_log row per (plugin, command): `jobs errors` can always show the last failure. */
export function findLastFailureIds(db: Db): string[] {
  const newest = db.all(
    db.k
      .selectFrom('job_log')
      .select(['plugin', 'command', (eb) => eb.fn.max('completed_at').as('completed_at')])
      .where('status', '=', sql.lit('failed'))
      .groupBy(['plugin', 'command']),
  )
  const ids: string[] = []
  for (const n of newest) {
    const row = db.get(
      db.k
        .selectFrom('job_log')
        .select('id')
        .where('status', '=', sql.lit('failed'))
        .where('plugin', '=', n.plugin)
        .where('command', '=', n.command)
        .where('completed_at', '=', n.completed_at as string)
        .orderBy('id', 'desc')
        .limit(1),
    )
    if (row) ids.push(row.id)
  }
  return ids
}

// The five tables differ in columns; prune only needs each candidate's id.
type IdQuery = SelectQueryBuilder<any, any, {id: string | number}>

/** The candidate rows of one table, oldest first by its time index. `keep` ids are never candidates. */
function candidates(db: Db, table: PruneTable, cutoff: string, keep: string[]): {q: IdQuery} {
  const k = db.k
  const unfinished = k.selectFrom('job_queue').select('id').where('status', 'in', ['queued', 'running'])
  switch (table) {
    case 'job_log': {
      let q = k.selectFrom('job_log').select('id').where('completed_at', '<', cutoff)
      if (keep.length) q = q.where('id', 'not in', keep)
      return {q: q.orderBy('completed_at')}
    }
    case 'job_queue':
      return {
        q: k
          .selectFrom('job_queue')
          .select('id')
          .where('status', 'in', [...TERMINAL_STATUSES])
          .where('completed_at', 'is not', null)
          .where('completed_at', '<', cutoff),
      }
    case 'job_transitions':
    case 'job_attempts':
      // History of a job still queued or running stays with it.
      return {
        q: k.selectFrom(table).select('id').where('created_at', '<', cutoff).where('job_id', 'not in', unfinished).orderBy('created_at') as IdQuery,
      }
    case 'circuit_breaker_transitions':
      return {q: k.selectFrom(table).select('id').where('created_at', '<', cutoff).orderBy('created_at')}
  }
}

function countOld(db: Db, table: PruneTable, cutoff: string): number {
  const k = db.k
  const base: SelectQueryBuilder<any, any, object> =
    table === 'job_log'
      ? k.selectFrom('job_log').where('completed_at', '<', cutoff)
      : table === 'job_queue'
        ? k.selectFrom('job_queue').where('status', 'in', [...TERMINAL_STATUSES]).where('completed_at', '<', cutoff)
        : (k.selectFrom(table) as SelectQueryBuilder<any, any, object>).where('created_at', '<', cutoff)
  return Number(db.get(base.select((eb) => eb.fn.countAll<number>().as('n')))?.n ?? 0)
}

export async function prune(db: Db, opts: PruneOptions = {}): Promise<PruneResult> {
  const started = Date.now()
  const clock = opts.clock ?? systemClock
  const tables = opts.tables ?? PRUNE_TABLES
  const keepLastFailure = opts.keepLastFailure ?? true
  const target = opts.batchTargetMs ?? 40
  const yieldMs = opts.yieldMs ?? 20
  const results: PruneTableResult[] = []

  for (const table of tables) {
    const retention = opts.retention?.[table] ?? DEFAULT_RETENTION_MS[table]
    const cutoff = formatTs(new Date(clock().getTime() - Math.max(retention, 0)))
    const result: PruneTableResult = {table, cutoff, retention_ms: retention, deleted: 0, kept: 0, batches: 0}
    results.push(result)
    if (retention <= 0) continue
    const keep = table === 'job_log' && keepLastFailure ? findLastFailureIds(db) : []
    const total = countOld(db, table, cutoff)
    const {q} = candidates(db, table, cutoff, keep)
    if (opts.dryRun) {
      const n = Number(db.get(db.k.selectFrom(q.clearOrderBy().as('c')).select((eb) => eb.fn.countAll<number>().as('n')))?.n ?? 0)
      result.deleted = n
      result.kept = total - n
      continue
    }
    let size = opts.batchSize ?? 5000
    for (;;) {
      const ids = q.limit(size)
      let took = 0
      const changes = db.tx(() => {
        // Time the work inside the lock only (waiting for BEGIN IMMEDIATE is not ours to shorten).
        const t0 = performance.now()
        const n = Number(db.run((db.k.deleteFrom(table) as any).where('id', 'in', ids)).changes)
        took = performance.now() - t0
        return n
      })
      result.deleted += changes
      result.batches++
      opts.onProgress?.({table, deleted: result.deleted, total})
      if (changes < size) break
      // Keep each write transaction short, whatever the row size and disk.
      if (took > target && size > 500) size = Math.max(500, Math.floor((size * target) / took))
      else if (took < target / 2 && size < 20_000) size = Math.min(20_000, Math.floor(size * 1.5))
      checkpoint(db, 'PASSIVE')
      // Long enough that a writer asleep in SQLite's busy handler (it backs off in steps of up to 25 ms)
      // wakes inside the gap and gets the lock: shorter gaps starved such writers for 100+ ms here.
      await sleep(yieldMs)
    }
    result.kept = Math.max(0, total - result.deleted)
  }
  if (!opts.dryRun) checkpoint(db, 'TRUNCATE')
  return {
    dry_run: Boolean(opts.dryRun),
    tables: results,
    total_deleted: results.reduce((n, r) => n + r.deleted, 0),
    duration_ms: Date.now() - started,
    wal_bytes_after: fileSize(db.path + '-wal'),
  }
}
