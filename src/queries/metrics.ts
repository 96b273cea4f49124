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
