import type {Db} from '../schema/db.js'
import type {
  BreakerTransition,
  CircuitBreaker,
  DedupeHit,
  EventContextRow,
  Job,
  JobAttempt,
  JobLogRow,
  JobTransition,
  ScheduleDecision,
  ScheduleEntry,
} from '../schema/types.js'
import {findBreaker, listBreakerTransitions} from './breakers.js'
import {contextLineage} from './context.js'
import {findJob, listAttempts, listTransitions} from './jobs.js'
import {listJobLogsForJob} from './logs.js'
import {listScheduleDecisions, listSchedules} from './schedules.js'

/** The config snapshot a job was enqueued or started under, as `explain job` names it. */
export interface SnapshotRef {
  id: string
  loaded_at: string
  reason: string
  config_hash: string
  /** The config then, secrets masked (the retry backoff a job's retries were planned with). */
  sanitized_config: string | null
}

/** The job a job came from (a retry's original, a pipeline step's upstream job, a hook's trigger). */
export interface ParentRef {
  id: string
  plugin: string
  command: string
  status: string
}

/**
 * Every row `explain job` tells a job's story from, read in one snapshot: the queue row (null once pruned,
 * after a day; job_log keeps the attempts for 30), its transitions, attempts and job_log rows, the pipeline
 * lineage, the parent job and the config snapshots. Each is an index search by job id or primary key.
 */
export interface JobRecord {
  id: string
  job: Job | null
  transitions: JobTransition[]
  attempts: JobAttempt[]
  logs: JobLogRow[]
  lineage: EventContextRow[]
  parent: ParentRef | null
  snapshots: {enqueued: SnapshotRef | null; started: SnapshotRef | null}
  /** The scheduler's decision that enqueued it (schedule and slot), when a schedule did. */
  fired: Pick<ScheduleDecision, 'id' | 'schedule_id' | 'slot' | 'decision'> | null
  /** Enqueues deduplicated against this job (the first 50), oldest first. */
  dedupeHits: DedupeHit[]
}

function snapshot(db: Db, id: string | null | undefined): SnapshotRef | null {
  if (!id) return null
  return db.get(db.k.selectFrom('config_snapshots').select(['id', 'loaded_at', 'reason', 'config_hash', 'sanitized_config']).where('id', '=', id)) ?? null
}

function parent(db: Db, id: string | null | undefined): ParentRef | null {
  if (!id) return null
  const queued = db.get(db.k.selectFrom('job_queue').select(['id', 'plugin', 'command', 'status']).where('id', '=', id))
  if (queued) return queued
  // Pruned from the queue: its newest attempt in job_log still says what it was.
  const logged = db.get(
    db.k.selectFrom('job_log').select(['job_id', 'plugin', 'command', 'status']).where('job_id', '=', id).orderBy('attempt', 'desc').limit(1),
  )
  return logged ? {id, plugin: logged.plugin, command: logged.command, status: logged.status} : null
}

/** The rows of one job's story, or null when the database has no trace of it. */
export function readJobRecord(db: Db, id: string): JobRecord | null {
  return db.read(() => {
    const job = findJob(db, id) ?? null
    const transitions = listTransitions(db, id)
    const logs = listJobLogsForJob(db, id)
    if (!job && transitions.length === 0 && logs.length === 0) return null
    const attempts = listAttempts(db, id)
    const last = logs[logs.length - 1]
    const fired =
      db.get(db.k.selectFrom('schedule_decisions').select(['id', 'schedule_id', 'slot', 'decision']).where('job_id', '=', id).orderBy('id').limit(1)) ?? null
    const contextId = job?.event_context_id ?? last?.event_context_id
    return {
      id,
      job,
      transitions,
      attempts,
      logs,
      lineage: contextId ? contextLineage(db, contextId) : [],
      parent: parent(db, job?.parent_job_id ?? last?.parent_job_id),
      snapshots: {
        enqueued: snapshot(db, job?.enqueued_config_snapshot_id ?? last?.enqueued_config_snapshot_id),
        started: snapshot(db, job?.started_config_snapshot_id ?? last?.started_config_snapshot_id),
      },
      fired,
      dedupeHits: db.all(db.k.selectFrom('dedupe_hits').selectAll().where('job_id', '=', id).orderBy('id').limit(50)),
    }
  })
}

/** What `explain breaker` tells a breaker's state from. */
export interface BreakerRecord {
  plugin: string
  command: string
  breaker: CircuitBreaker | null
  /** Its transitions, oldest first (the newest 100). */
  transitions: BreakerTransition[]
  /** The failed attempts that count now: the breaker's failures in a row, newest first. */
  counted: Pick<JobLogRow, 'id' | 'job_id' | 'status' | 'completed_at' | 'last_error'>[]
  /** The config snapshot in force when it opened (else the newest): its threshold and cooldown. */
  snapshot: SnapshotRef | null
}

export function readBreakerRecord(db: Db, plugin: string, command: string): BreakerRecord {
  return db.read(() => {
    const breaker = findBreaker(db, plugin, command) ?? null
    const transitions = listBreakerTransitions(db, plugin, command, 100).reverse()
    const n = Math.min(breaker?.failure_count ?? 0, 100)
    const counted =
      n > 0
        ? db.all(
            db.k
              .selectFrom('job_log')
              .select(['id', 'job_id', 'status', 'completed_at', 'last_error'])
              .where('plugin', '=', plugin)
              .where('command', '=', command)
              .where('status', '!=', 'succeeded')
              .where('completed_at', '<=', breaker?.last_failure_at ?? '9999')
              .orderBy('completed_at', 'desc')
              .limit(n),
          )
        : []
    let q = db.k.selectFrom('config_snapshots').select(['id', 'loaded_at', 'reason', 'config_hash', 'sanitized_config'])
    if (breaker?.opened_at) q = q.where('loaded_at', '<=', breaker.opened_at)
    const snapshot = db.get(q.orderBy('loaded_at', 'desc').limit(1)) ?? null
    return {plugin, command, breaker, transitions, counted, snapshot}
  })
}

/** What `explain schedule` tells one schedule from. */
export interface ScheduleRecord {
  entry: ScheduleEntry
  /** Its recorded decisions, oldest first (the newest 50). */
  decisions: ScheduleDecision[]
  /** The job of its last fire, where the database still has it. */
  lastJob: {id: string; status: string; last_error: string | null} | null
  breaker: CircuitBreaker | null
}

export function readScheduleRecords(db: Db, plugin: string, scheduleId?: string): ScheduleRecord[] {
  return db.read(() =>
    listSchedules(db, {all: true, plugin})
      .filter((e) => !scheduleId || e.schedule_id === scheduleId)
      .map((entry) => {
        const decisions = listScheduleDecisions(db, plugin, entry.schedule_id, 50).reverse()
        const fire = [...decisions].reverse().find((d) => d.decision !== 'skipped' && d.job_id)
        return {entry, decisions, lastJob: fire?.job_id ? lastJobOf(db, fire.job_id) : null, breaker: findBreaker(db, plugin, entry.command) ?? null}
      }),
  )
}

/** A job's status and error from the queue, or (pruned from it) from its newest job_log row. */
function lastJobOf(db: Db, id: string): ScheduleRecord['lastJob'] {
  const q = db.get(db.k.selectFrom('job_queue').select(['status', 'last_error']).where('id', '=', id))
  const l = q ?? db.get(db.k.selectFrom('job_log').select(['status', 'last_error']).where('job_id', '=', id).orderBy('attempt', 'desc').limit(1))
  return l ? {id, status: l.status, last_error: l.last_error} : null
}
