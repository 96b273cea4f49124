import {sql} from 'kysely'

import type {Db} from '../schema/db.js'

/** The reads behind `ductile metrics`: completions and durations over a window, by index range. */

export function completionsSince(db: Db, since: string): {plugin: string; status: string; n: number}[] {
  return db.all(
    db.k
      .selectFrom('job_log')
      .select(['plugin', 'status', (eb) => eb.fn.countAll<number>().as('n')])
      .where('completed_at', '>', since)
      .groupBy(['plugin', 'status']),
  )
}

export function durationsSince(db: Db, since: string): {plugin: string; duration_ms: number | null}[] {
  return db.all(
    db.k
      .selectFrom('job_log')
      .select(['plugin', db.dialect.durationMsExpr().as('duration_ms')])
      .where('completed_at', '>', since)
      .where('started_at', 'is not', null),
  )
}

export function overdueSchedules(db: Db, now: string): {plugin: string; schedule_id: string; next_run_at: string | null}[] {
  return db.all(
    db.k.selectFrom('schedule_entries').select(['plugin', 'schedule_id', 'next_run_at']).where('status', '=', 'active').where('next_run_at', '<', now),
  )
}

/**
 * Completions per time bucket since `since`, by status: the bucket is the first `prefix` characters of
 * completed_at (16: the minute, 13: the hour), the same text in both stores. One index range scan.
 */
export function completionBuckets(db: Db, since: string, prefix: 13 | 16): {bucket: string; status: string; n: number}[] {
  return db.all(
    db.k
      .selectFrom('job_log')
      .select([sql<string>`substr(completed_at, 1, ${sql.lit(prefix)})`.as('bucket'), 'status', (eb) => eb.fn.countAll<number>().as('n')])
      .where('completed_at', '>=', since)
      .groupBy([sql`substr(completed_at, 1, ${sql.lit(prefix)})`, 'status']),
  )
}

/** A plugin's latest completed attempts, newest first: status and duration (the web's plugin page). */
export function recentRuns(
  db: Db,
  plugin: string,
  limit: number,
): {id: string; job_id: string | null; command: string; status: string; completed_at: string; duration_ms: number | null}[] {
  return db.all(
    db.k
      .selectFrom('job_log')
      .select(['id', 'job_id', 'command', 'status', 'completed_at', db.dialect.durationMsExpr().as('duration_ms')])
      .where('plugin', '=', plugin)
      .orderBy('completed_at', 'desc')
      .orderBy('id', 'desc')
      .limit(limit),
  )
}
