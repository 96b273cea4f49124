import {sql} from 'kysely'

import type {Db} from '../schema/db.js'
import {durationDaysExpr, durationMsExpr, durationSecExpr, utcDayExpr, withIndex} from '../schema/sqlite.js'
import type {JobLogRow} from '../schema/types.js'

/** Operator reads of job_log: one row per attempt (spec decision 3). */

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

/** Windows up to this long are read by completed_at and sorted; longer ones day by day from the index. */
export const SLOWEST_RANGE_SCAN_MAX_MS = 6 * 3_600_000

const bySlowest = (a: SlowJob & {duration_days: number | null}, b: SlowJob & {duration_days: number | null}) =>
  (b.duration_sec ?? -Infinity) - (a.duration_sec ?? -Infinity) || (b.duration_days ?? -Infinity) - (a.duration_days ?? -Infinity)

/**
 * Reference: "Find the slowest successful jobs in the last 24 hours". Ordered by the reference's own
 * whole-second duration, then by the exact duration, so the rows are the reference's rows.
 *
 * A short window holds few rows: they are read by completed_at and sorted. A long one is read day by day from
 * job_log_succeeded_duration_idx (UTC day, duration): each day's slowest rows come from the top of its range,
 * skipping the rows of the first day that are outside the window, and the days are merged here.
 */
export function findSlowestJobs(db: Db, completedAfter: string, limit: number, windowMs: number, now: Date = new Date()): SlowJob[] {
  const sec = durationSecExpr()
  const days = durationDaysExpr()
  const base = (q: ReturnType<typeof db.k.selectFrom<'job_log'>>) =>
    q
      .select(['id', 'job_id', 'plugin', 'command', 'attempt', 'started_at', 'completed_at', sec.as('duration_sec'), durationMsExpr().as('duration_ms'), days.as('duration_days')])
      // A literal, not a parameter: SQLite uses a partial index only when the query's WHERE implies the index's.
      .where('status', '=', sql.lit('succeeded'))
      .where('completed_at', '>', completedAfter)
      .orderBy(sec, 'desc')
      .orderBy(days, 'desc')
      .limit(limit)
  let rows: (SlowJob & {duration_days: number | null})[]
  if (windowMs <= SLOWEST_RANGE_SCAN_MAX_MS) rows = db.all(base(db.k.selectFrom('job_log')))
  else {
    rows = []
    const perDay = db.prepare((p) => withIndex(base(db.k.selectFrom('job_log')).where(utcDayExpr(), '=', p('day')), 'job_log', 'job_log_succeeded_duration_idx'))
    for (const day of utcDaysBetween(completedAfter.slice(0, 10), now)) rows.push(...perDay.all({day}))
    rows.sort(bySlowest)
  }
  return rows.slice(0, limit).map(({duration_days: _d, ...r}) => r)
}

/** Every UTC date from `first` (YYYY-MM-DD) to `now`'s, inclusive. */
function utcDaysBetween(first: string, now: Date): string[] {
  const out: string[] = []
  const last = now.toISOString().slice(0, 10)
  for (let d = new Date(`${first}T00:00:00Z`); ; d = new Date(d.getTime() + 86_400_000)) {
    const day = d.toISOString().slice(0, 10)
    out.push(day)
    if (day >= last || out.length > 3660) break
  }
  return out
}

export interface FailedAttempt {
  id: string
  job_id: string | null
  plugin: string
  command: string
  attempt: number
  completed_at: string
  last_error: string | null
  stderr: string | null
}

/** Reference: "Get the latest error for a specific plugin" (every plugin when none is given). */
export function findLatestErrors(db: Db, opts: {plugin?: string; limit: number}): FailedAttempt[] {
  let q = db.k
    .selectFrom('job_log')
    .select(['id', 'job_id', 'plugin', 'command', 'attempt', 'completed_at', 'last_error', 'stderr'])
    .where('status', '=', sql.lit('failed'))
  if (!opts.plugin) return db.all(q.orderBy('completed_at', 'desc').orderBy('id', 'desc').limit(opts.limit))
  // One plugin: its failed rows newest first straight from the partial index, even for a plugin that never
  // failed (the (status, completed_at) index would walk every failure of every plugin to learn that).
  q = q.where('plugin', '=', opts.plugin)
  return db.all(withIndex(q.orderBy('completed_at', 'desc').orderBy('id', 'desc').limit(opts.limit), 'job_log', 'job_log_failed_plugin_completed_idx'))
}

export interface LogSearch {
  plugin?: string
  command?: string
  status?: string
  submittedBy?: string
  jobId?: string
  from?: string
  to?: string
  /** Case-insensitive text in last_error, stderr or result. */
  query?: string
  limit: number
  /** Only rows after this (completed_at, id) position, oldest first: the follow cursor. */
  after?: {completedAt: string; id: string}
}

function escapeLike(text: string): string {
  return text.replace(/[\\%_]/g, (m) => '\\' + m)
}

/**
 * Search job_log, newest first. Returns one row more than the limit is not needed by callers: `truncated`
 * says whether more rows match (a full count would scan the table).
 */
export function searchJobLogs(db: Db, s: LogSearch): {rows: JobLogRow[]; truncated: boolean} {
  let q = db.k.selectFrom('job_log').selectAll()
  if (s.plugin) q = q.where('plugin', '=', s.plugin)
  if (s.command) q = q.where('command', '=', s.command)
  if (s.status) q = q.where('status', '=', s.status)
  if (s.submittedBy) q = q.where('submitted_by', '=', s.submittedBy)
  if (s.jobId) q = q.where('job_id', '=', s.jobId)
  if (s.from) q = q.where('completed_at', '>=', s.from)
  if (s.to) q = q.where('completed_at', '<=', s.to)
  if (s.query) {
    const pattern = `%${escapeLike(s.query.toLowerCase())}%`
    q = q.where((eb) =>
      eb.or((['last_error', 'stderr', 'result'] as const).map((col) => sql<boolean>`lower(${sql.ref(col)}) LIKE ${pattern} ESCAPE '\\'`)),
    )
  }
  if (s.after) {
    const {completedAt, id} = s.after
    q = q.where((eb) =>
      eb.or([eb('completed_at', '>', completedAt), eb.and([eb('completed_at', '=', completedAt), eb('id', '>', id)])]),
    )
    const rows = db.all(q.orderBy('completed_at', 'asc').orderBy('id', 'asc').limit(s.limit + 1))
    return {rows: rows.slice(0, s.limit), truncated: rows.length > s.limit}
  }
  const rows = db.all(q.orderBy('completed_at', 'desc').orderBy('id', 'desc').limit(s.limit + 1))
  return {rows: rows.slice(0, s.limit), truncated: rows.length > s.limit}
}

export function listJobLogsForJob(db: Db, jobId: string): JobLogRow[] {
  return db.all(db.k.selectFrom('job_log').selectAll().where('job_id', '=', jobId).orderBy('attempt'))
}
