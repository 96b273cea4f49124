import {sql} from 'kysely'

import type {Db} from '../schema/db.js'
import {parseTs} from '../schema/time.js'
import {TERMINAL_STATUSES} from '../schema/definition.js'

/** The reads `ductile doctor` judges (its checks and thresholds are in src/cli/doctor.ts). */

/** Up to `limit` jobs running since before `cutoff`, oldest first. */
export function runningSince(db: Db, cutoff: string, limit = 5) {
  return db.all(
    db.k
      .selectFrom('job_queue')
      .select(['id', 'plugin', 'started_at'])
      .where('status', '=', 'running')
      .where('started_at', '<', cutoff)
      .orderBy('started_at')
      .limit(limit),
  )
}

/** The oldest queued job that is due now (no retry delay left). */
export function oldestDueJob(db: Db, now: string) {
  return db.get(
    db.k
      .selectFrom('job_queue')
      .select(['id', 'plugin', 'created_at'])
      .where('status', '=', sql.lit('queued'))
      .where((eb) => eb.or([eb('next_retry_at', 'is', null), eb('next_retry_at', '=', ''), eb('next_retry_at', '<=', now)]))
      .orderBy('created_at')
      .limit(1),
  )
}

/** When the newest attempt started (the engine's last claim), or null. */
export function lastClaimAt(db: Db): string | null {
  return db.get(db.k.selectFrom('job_attempts').select('created_at').orderBy('created_at', 'desc').limit(1))?.created_at ?? null
}

/** Breakers that are open or half-open. */
export function breakersNotClosed(db: Db) {
  return db.all(db.k.selectFrom('circuit_breakers').select(['plugin', 'command', 'state']).where('state', '!=', 'closed'))
}

/** Active schedules that have a next run. */
export function activeSchedules(db: Db) {
  return db.all(
    db.k
      .selectFrom('schedule_entries')
      .select(['plugin', 'schedule_id', 'next_run_at', 'interval_ms'])
      .where('status', '=', sql.lit('active'))
      .where('next_run_at', 'is not', null),
  )
}

/**
 * Active schedules that are overdue: their next run is further past than one interval (an hour without one)
 * plus one scheduler tick, since between ticks every due schedule waits up to a tick.
 */
export function lateSchedules<T extends {next_run_at: string | null; interval_ms: number | null}>(rows: T[], now: Date, tickMs = 0): T[] {
  return rows.filter((r) => {
    const next = parseTs(r.next_run_at)?.getTime()
    return next !== undefined && now.getTime() - next > (r.interval_ms ?? 3_600_000) + tickMs
  })
}

/** Finished job_queue rows completed before `cutoff` (prune should have removed them). */
export function countFinishedBefore(db: Db, cutoff: string): number {
  return Number(
    db.get(
      db.k
        .selectFrom('job_queue')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('status', 'in', [...TERMINAL_STATUSES])
        .where('completed_at', '<', cutoff),
    )?.n ?? 0,
  )
}
