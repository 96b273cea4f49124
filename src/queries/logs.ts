import {sql} from 'kysely'

import type {Db} from '../schema/db.js'
import type {JobStatus} from '../schema/definition.js'
import type {JobLogRow} from '../schema/types.js'

/** Operator reads of job_log: one row per attempt. */

export interface SlowJob {
  id: string
  job_id: string | null
  plugin: string
  command: string
  attempt: number
  started_at: string | null
  completed_at: string
  duration_sec: number | null
  duration_ms: number | null
}

/** Windows up to this long are read by completed_at and sorted; longer ones from the slowest down. */
export const SLOWEST_RANGE_SCAN_MAX_MS = 6 * 3_600_000

/** Rows tied with the limit-th at its whole second that are sorted by their exact duration (the newest first). */
export const SLOWEST_TIES_MAX = 1000

type SlowRow = SlowJob & {duration_days: number | null}

const bySlowest = (a: SlowRow, b: SlowRow) =>
  (b.duration_sec ?? -Infinity) - (a.duration_sec ?? -Infinity) || (b.duration_days ?? -Infinity) - (a.duration_days ?? -Infinity)

/**
 * Reference: "Find the slowest successful jobs in the last 24 hours". Ordered by the reference's own
 * whole-second duration, then by the exact duration, so the rows are the reference's rows.
 *
 * A short window holds few rows: they are read by completed_at and sorted. A long one is read from
 * job_log_succeeded_sec_idx, the index in the reference's own order (whole seconds, slowest first), from the
 * top down, skipping rows outside the window, until `limit` are found; then the rows tied with the last of
 * them at its whole second (up to SLOWEST_TIES_MAX, the newest first) are read too and all are sorted by the
 * exact duration.
 */
export function findSlowestJobs(db: Db, completedAfter: string, limit: number, windowMs: number): SlowJob[] {
  if (!(limit >= 1)) return []
  const sec = db.dialect.durationSecExpr()
  const base = (n: number) =>
    db.k
      .selectFrom('job_log')
      .select([
        'id',
        'job_id',
        'plugin',
        'command',
        'attempt',
        'started_at',
        'completed_at',
        sec.as('duration_sec'),
        db.dialect.durationMsExpr().as('duration_ms'),
        db.dialect.durationDaysExpr().as('duration_days'),
      ])
      // A literal, not a parameter: SQLite uses a partial index only when the query's WHERE implies the index's.
      .where('status', '=', sql.lit('succeeded'))
      .where('completed_at', '>', completedAfter)
      // A literal: with a bound LIMIT, SQLite took 10× as long here.
      .limit(sql.lit(Math.floor(n)))
  const strip = (rows: SlowRow[]) => rows.slice(0, limit).map(({duration_days: _d, ...r}) => r)
  if (windowMs <= SLOWEST_RANGE_SCAN_MAX_MS) {
    const q = base(limit).orderBy(sec, 'desc').orderBy(db.dialect.durationDaysExpr(), 'desc')
    return strip(db.all(db.dialect.withIndex(q, 'job_log', 'job_log_completed_at_idx')))
  }
  const pin = <Q extends ReturnType<typeof base>>(q: Q) => db.dialect.withIndex(q, 'job_log', 'job_log_succeeded_sec_idx')
  const top = db.all(pin(base(limit).orderBy(sec, 'desc').orderBy('completed_at', 'desc')))
  const edge = top.length === limit ? top[limit - 1]?.duration_sec : undefined
  if (edge == null) return strip(top.sort(bySlowest))
  // One whole second: the index is in completed_at order within it (ordering by the expression too made
  // SQLite sort the rows).
  const ties = db.all(pin(base(SLOWEST_TIES_MAX).where(sec, '=', edge).orderBy('completed_at', 'desc')))
  return strip([...top.filter((r) => (r.duration_sec ?? -Infinity) > edge), ...ties].sort(bySlowest))
}

/** The attempt statuses `jobs errors` shows. */
export const ERROR_STATUSES = ['failed', 'timed_out'] as const

export interface FailedAttempt {
  id: string
  job_id: string | null
  plugin: string
  command: string
  /** failed or timed_out */
  status: JobStatus
  attempt: number
  completed_at: string
  last_error: string | null
  stderr: string | null
}

/**
 * Reference: "Get the latest error for a specific plugin" (every plugin when none is given), widened to
 * timed-out attempts: the newest `limit` attempts that failed or timed out. Each status is read from the
 * top of its own index (failures of a plugin from the partial failure index; timeouts, which are rare, from
 * the status index) and the two short lists are merged.
 */
export function findLatestErrors(db: Db, opts: {plugin?: string; limit: number; statuses?: readonly ('failed' | 'timed_out')[]}): FailedAttempt[] {
  const statuses = opts.statuses ?? ERROR_STATUSES
  const newest = (status: 'failed' | 'timed_out', index: string) => {
    let q = db.k
      .selectFrom('job_log')
      .select(['id', 'job_id', 'plugin', 'command', 'status', 'attempt', 'completed_at', 'last_error', 'stderr'])
      .where('status', '=', sql.lit(status))
    if (opts.plugin) q = q.where('plugin', '=', opts.plugin)
    const ordered = q.orderBy('completed_at', 'desc').orderBy('id', 'desc').limit(opts.limit)
    return db.all(db.dialect.withIndex(ordered, 'job_log', index))
  }
  // One plugin's failures straight from the partial index, even for a plugin that never failed (the
  // (status, completed_at) index would walk every failure of every plugin to learn that).
  const byStatus = 'job_log_unsucceeded_status_completed_idx'
  const rows = [
    ...(statuses.includes('failed') ? newest('failed', opts.plugin ? 'job_log_failed_plugin_completed_idx' : byStatus) : []),
    ...(statuses.includes('timed_out') ? newest('timed_out', byStatus) : []),
  ]
  rows.sort((a, b) => (a.completed_at === b.completed_at ? (a.id < b.id ? 1 : -1) : a.completed_at < b.completed_at ? 1 : -1))
  return rows.slice(0, opts.limit)
}

export interface LogSearch {
  plugin?: string
  command?: string
  status?: JobStatus
  submittedBy?: string
  jobId?: string
  from?: string
  to?: string
  /** Case-insensitive text in last_error, stderr or result. */
  query?: string
  limit: number
  /** Only rows after this (completed_at, id) position, oldest first: the follow cursor. */
  after?: {completedAt: string; id: string}
  /** Only rows before this (completed_at, id) position, newest first: the next page of a listing. */
  before?: {completedAt: string; id: string}
  /** With `query`: look at this many rows at most (see searchJobLogs). */
  scanLimit?: number
}

function escapeLike(text: string): string {
  return text.replace(/[\\%_]/g, (m) => `\\${m}`)
}

/**
 * Search job_log, newest first. Returns one row more than the limit is not needed by callers: `truncated`
 * says whether more rows match (a full count would scan the table). Pages by keyset (`before`): a page
 * deep in a million rows starts at its position in the completed_at index, not after the rows before it.
 * Free text with `scanLimit` looks at that many rows at most (the newest that pass the other filters): a
 * rare word does not read the whole table for one page; `next` says where the look stopped, and the next
 * page goes on from there.
 */
export function searchJobLogs(db: Db, s: LogSearch): {rows: JobLogRow[]; truncated: boolean; next?: {completedAt: string; id: string}} {
  let q = db.k.selectFrom('job_log').selectAll()
  if (s.plugin) q = q.where('plugin', '=', s.plugin)
  if (s.command) q = q.where('command', '=', s.command)
  // A literal: a partial index serves a status only when the query names it (see the schema's indexes).
  if (s.status) q = q.where('status', '=', sql.lit(s.status))
  if (s.submittedBy) q = q.where('submitted_by', '=', s.submittedBy)
  if (s.jobId) q = q.where('job_id', '=', s.jobId)
  if (s.from) q = q.where('completed_at', '>=', s.from)
  if (s.to) q = q.where('completed_at', '<=', s.to)
  const pattern = s.query ? `%${escapeLike(s.query.toLowerCase())}%` : null
  const text = (p: string) =>
    sql<boolean>`(${sql.join(
      (['last_error', 'stderr', 'result'] as const).map((col) => sql`lower(${sql.ref(col)}) LIKE ${p} ESCAPE '\\'`),
      sql` OR `,
    )})`
  if (s.after) {
    const {completedAt, id} = s.after
    if (pattern) q = q.where(text(pattern))
    q = q.where((eb) => eb.or([eb('completed_at', '>', completedAt), eb.and([eb('completed_at', '=', completedAt), eb('id', '>', id)])]))
    const rows = db.all(
      q
        .orderBy('completed_at', 'asc')
        .orderBy('id', 'asc')
        .limit(s.limit + 1),
    )
    return {rows: rows.slice(0, s.limit), truncated: rows.length > s.limit}
  }
  if (s.before) {
    const {completedAt, id} = s.before
    // The bound alone is what the index can seek to; the OR only breaks ties within one completed_at.
    q = q.where('completed_at', '<=', completedAt).where((eb) => eb.or([eb('completed_at', '<', completedAt), eb('id', '<', id)]))
  }
  if (pattern && s.scanLimit) {
    const window = q.orderBy('completed_at', 'desc').orderBy('id', 'desc').limit(s.scanLimit)
    const rows = db.all(
      db.k
        .selectFrom(window.as('w'))
        .selectAll()
        .where(text(pattern))
        .orderBy('completed_at', 'desc')
        .orderBy('id', 'desc')
        .limit(s.limit + 1),
    )
    if (rows.length > s.limit) return {rows: rows.slice(0, s.limit), truncated: true}
    // Fewer than a page in the window: where the window ended, if the table goes on past it.
    const edge = db.get(
      q
        .clearSelect()
        .select(['completed_at', 'id'])
        .orderBy('completed_at', 'desc')
        .orderBy('id', 'desc')
        .offset(s.scanLimit - 1)
        .limit(1),
    )
    return {rows, truncated: edge !== undefined, next: edge ? {completedAt: edge.completed_at, id: edge.id} : undefined}
  }
  if (pattern) q = q.where(text(pattern))
  const rows = db.all(
    q
      .orderBy('completed_at', 'desc')
      .orderBy('id', 'desc')
      .limit(s.limit + 1),
  )
  return {rows: rows.slice(0, s.limit), truncated: rows.length > s.limit}
}

export function listJobLogsForJob(db: Db, jobId: string): JobLogRow[] {
  return db.all(db.k.selectFrom('job_log').selectAll().where('job_id', '=', jobId).orderBy('attempt'))
}

/** The newest attempt's job_log row of each job (its result, error and stderr), by job id. */
export function latestAttemptLogs(db: Db, jobIds: readonly string[]): Map<string, JobLogRow> {
  const out = new Map<string, JobLogRow>()
  for (let i = 0; i < jobIds.length; i += 500) {
    const rows = db.all(
      db.k
        .selectFrom('job_log')
        .selectAll()
        .where('job_id', 'in', jobIds.slice(i, i + 500))
        .orderBy('attempt'),
    )
    for (const r of rows) if (r.job_id) out.set(r.job_id, r)
  }
  return out
}
