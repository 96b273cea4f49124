import type {Db} from '../schema/db.js'
import type {EngineRow} from '../schema/types.js'

/**
 * The engines table: every engine registers at start, beats its heartbeat while it runs, and is marked stopped
 * by its clean stop or, once its heartbeat is older than the lease, by the live engine that recovers its jobs.
 */

export interface NewEngine {
  id: string
  host: string
  pid: number
  pidNamespace: string | null
  version: string
  now: string
}

export function registerEngine(db: Db, e: NewEngine): void {
  db.run(
    db.k.insertInto('engines').values({
      id: e.id,
      host: e.host,
      pid: e.pid,
      pid_namespace: e.pidNamespace,
      started_at: e.now,
      heartbeat_at: e.now,
      version: e.version,
      stopped_at: null,
      stop_reason: null,
    }),
  )
}

/** The heartbeat. False when the engine is no longer registered as running: another engine declared it dead. */
export function beatHeartbeat(db: Db, id: string, now: string): boolean {
  return db.run(db.k.updateTable('engines').set({heartbeat_at: now}).where('id', '=', id).where('stopped_at', 'is', null)).changes > 0
}

export function markEngineStopped(db: Db, id: string, now: string, reason: string): void {
  db.run(db.k.updateTable('engines').set({stopped_at: now, stop_reason: reason}).where('id', '=', id).where('stopped_at', 'is', null))
}

/** Engines registered as running, oldest heartbeat first. */
export function listLiveEngines(db: Db): EngineRow[] {
  return db.all(db.k.selectFrom('engines').selectAll().where('stopped_at', 'is', null).orderBy('heartbeat_at'))
}

/** Every engine, newest start first (doctor, db info). */
export function listEngines(db: Db, limit = 50): EngineRow[] {
  return db.all(db.k.selectFrom('engines').selectAll().orderBy('started_at', 'desc').limit(limit))
}

/**
 * Declare an engine dead, once: only if it is still registered as running and its heartbeat is still the one
 * that was judged (`heartbeatAt`). True for the one engine that did it: that engine recovers its jobs.
 */
export function declareEngineDead(db: Db, id: string, heartbeatAt: string, now: string, reason: string): boolean {
  return (
    db.run(
      db.k
        .updateTable('engines')
        .set({stopped_at: now, stop_reason: reason})
        .where('id', '=', id)
        .where('stopped_at', 'is', null)
        .where('heartbeat_at', '=', heartbeatAt),
    ).changes > 0
  )
}

/**
 * Running jobs that no live engine answers for: their current attempt names no engine (claimed before
 * engines registered, copied from another database, written by hand) or one registered as stopped.
 */
export function runningJobsWithoutLiveEngine(db: Db): Set<string> {
  const rows = db.all(
    db.k
      .selectFrom('job_queue as q')
      .leftJoin('job_attempts as a', (j) => j.onRef('a.job_id', '=', 'q.id').onRef('a.attempt', '=', 'q.attempt'))
      .leftJoin('engines as e', (j) => j.onRef('e.id', '=', 'a.engine_id').on('e.stopped_at', 'is', null))
      .select('q.id')
      .where('q.status', '=', 'running')
      .where('e.id', 'is', null),
  )
  return new Set(rows.map((r) => r.id))
}

/** Ids of the running jobs whose current attempt an engine claimed. */
export function runningJobsOfEngine(db: Db, engineId: string): Set<string> {
  const rows = db.all(
    db.k
      .selectFrom('job_queue as q')
      .innerJoin('job_attempts as a', (j) => j.onRef('a.job_id', '=', 'q.id').onRef('a.attempt', '=', 'q.attempt'))
      .select('q.id')
      .where('q.status', '=', 'running')
      .where('a.engine_id', '=', engineId),
  )
  return new Set(rows.map((r) => r.id))
}
