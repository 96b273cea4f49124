import {usageError} from '../errors.js'
import {payloadDepthProblem} from '../lib/json.js'
import type {Db} from '../schema/db.js'
import {type JobStatus, TERMINAL_STATUSES} from '../schema/definition.js'
import {jobLogId, uuidv7} from '../schema/ids.js'
import {formatTs, parseTs} from '../schema/time.js'
import type {Job} from '../schema/types.js'
import {stmts} from './queue-statements.js'

/**
 * The job state machine: every status change writes job_transitions in the same transaction,
 * every claim writes job_attempts, and every finished attempt writes its own job_log row.
 * Statements on the engine's hot path are compiled once per handle.
 */

export const STDERR_LOG_CAP = 65_536

/** The channel engines LISTEN on (PostgreSQL): an enqueue's or a recovery's transaction NOTIFYs it. */
export const JOBS_CHANNEL = 'ductile_jobs'

export interface NewJobInput {
  plugin: string
  command: string
  payload: unknown
  submittedBy: string
  maxAttempts: number
  dedupeKey?: string | null
  parentJobId?: string | null
  sourceEventId?: string | null
  eventContextId?: string | null
  configSnapshotId?: string | null
  /** Dedupe window for (dedupe_key, plugin, command) against succeeded jobs; 0 disables. */
  dedupeTtlMs: number
  /** When set, also drop the enqueue while a job of the same identity is queued or running. */
  dedupeOutstanding?: boolean
  now: string
}

export type EnqueueResult =
  | {status: 'enqueued'; job: Job}
  | {status: 'deduplicated'; existingJobId: string; reason: string}
  | {status: 'duplicate_event'; reason: string}

export function recordTransition(db: Db, jobId: string, from: JobStatus | null, to: JobStatus, reason: string | null, now: string): void {
  stmts(db).insertTransition.write({job_id: jobId, from_status: from, to_status: to, reason, created_at: now})
}

/** Enqueue a job with its first transition, after the dedupe checks. One transaction: the caller's, if it has one. */
export function enqueueJob(db: Db, input: NewJobInput): EnqueueResult {
  const s = stmts(db)
  const key = input.dedupeKey?.trim() || null
  // Refused before anything is written (an error here aborts a caller's transaction as it should).
  const deep = payloadDepthProblem(input.payload)
  if (deep) throw usageError(`job for ${input.plugin}: ${deep}`, 'flatten the payload, or pass a reference (a path or a URL) to the data')
  // A dedupe hit is kept as a fact (dedupe_hits): `explain job` tells the enqueues a job absorbed.
  const hit = (existingJobId: string, reason: string): EnqueueResult => {
    s.insertDedupeHit.write({
      job_id: existingJobId,
      plugin: input.plugin,
      command: input.command,
      dedupe_key: key,
      submitted_by: input.submittedBy,
      reason,
      created_at: input.now,
    })
    return {status: 'deduplicated', existingJobId, reason}
  }
  return db.join((): EnqueueResult => {
    // Two enqueues of the same key check and insert one after the other (a shared database).
    if (key) db.serialize(`dedupe:${input.plugin}:${input.command}:${key}`)
    if (key) {
      if (input.dedupeOutstanding) {
        const o = s.outstanding.get({key, plugin: input.plugin, command: input.command})
        if (o) return hit(o.id, `job deduplicated for key "${key}" (existing job ${o.id} is still queued or running)`)
      }
      if (input.dedupeTtlMs > 0) {
        const since = formatTs(new Date((parseTs(input.now)?.getTime() ?? Date.now()) - input.dedupeTtlMs))
        const r = s.recentSuccess.get({key, since, plugin: input.plugin, command: input.command})
        if (r) return hit(r.id, `job deduplicated for key "${key}" (existing job ${r.id} succeeded within the dedupe window)`)
      }
    }
    const id = uuidv7()
    const payload = input.payload === undefined || input.payload === null ? null : JSON.stringify(input.payload)
    const res = s.insertJob.run({
      id,
      plugin: input.plugin,
      command: input.command,
      payload,
      max_attempts: input.maxAttempts > 0 ? input.maxAttempts : 4,
      submitted_by: input.submittedBy,
      dedupe_key: key,
      now: input.now,
      parent_job_id: input.parentJobId ?? null,
      source_event_id: input.sourceEventId ?? null,
      event_context_id: input.eventContextId ?? null,
      snapshot: input.configSnapshotId ?? null,
    })
    if (res.changes === 0) return {status: 'duplicate_event', reason: 'a job for this source event and target already exists'}
    s.insertTransition.write({job_id: id, from_status: null, to_status: 'queued', reason: null, created_at: input.now})
    db.notify(JOBS_CHANNEL)
    const job = s.findJob.get({id})
    if (!job) throw new Error(`job ${id} was inserted but cannot be read back`)
    return {status: 'enqueued', job}
  })
}

export interface ClaimOptions {
  now: string
  /** Plugins at their parallelism cap. */
  excludePlugins: Set<string>
  snapshotId: string | null
  enginePid: number
  /** The engines row of the claiming engine (recovery on a shared database is by engine). */
  engineId: string | null
  /** Plugins whose parallelism is global (see pg-schema.ts ductile_claim), with their limit; PostgreSQL only. */
  globalCaps?: Record<string, number>
}

/**
 * Claim the oldest eligible queued job (FIFO by created_at; retries keep their place; next_retry_at
 * honoured; a job whose dedupe key is running waits) in one short write transaction (the caller's, if it has one).
 */
export function claimNextJob(db: Db, o: ClaimOptions): Job | null {
  if (db.kind === 'postgres') return claimOnPostgres(db, o)
  const s = stmts(db)
  return db.join(() => {
    // Candidates in FIFO order; skipping capped plugins in code keeps the statement compiled once.
    let offset = 0
    for (let window = o.excludePlugins.size === 0 ? 1 : 16; ; window *= 4) {
      const rows = window === 1 ? s.nextQueuedOne.all({now: o.now}) : s.nextQueued.all({now: o.now, limit: window + offset})
      const pick = rows.slice(offset).find((r) => !o.excludePlugins.has(r.plugin))
      if (pick) {
        const changed = s.markRunning.run({id: pick.id, now: o.now, snapshot: o.snapshotId}).changes
        if (changed === 0) return null
        s.insertTransition.write({job_id: pick.id, from_status: 'queued', to_status: 'running', reason: null, created_at: o.now})
        s.insertAttempt.write({job_id: pick.id, attempt: pick.attempt, created_at: o.now, engine_pid: o.enginePid, engine_id: o.engineId})
        return {...pick, status: 'running', started_at: o.now, started_config_snapshot_id: o.snapshotId}
      }
      if (rows.length < window + offset) return null
      offset = rows.length
    }
  })
}

/** The same claim on PostgreSQL: one statement (pg-schema.ts, ductile_claim), whatever the number of engines. */
function claimOnPostgres(db: Db, o: ClaimOptions): Job | null {
  const rows = db.query('SELECT * FROM ductile_claim(?, ?, ?, ?, ?::jsonb, ?::text[])', [
    o.now,
    o.snapshotId,
    o.enginePid,
    o.engineId,
    JSON.stringify(o.globalCaps ?? {}),
    [...o.excludePlugins],
  ])
  return (rows[0] as Job | undefined) ?? null
}

/** The earliest next_retry_at after `now` among queued jobs (null: none waits for a time). */
export function nextRetryAt(db: Db, now: string): string | null {
  return stmts(db).nextRetryAt.get({now})?.at ?? null
}

/** Record the plugin process of a running attempt (orphan detection by liveness). */
export function recordAttemptProcess(db: Db, jobId: string, attempt: number, pid: number, startedAt: string | null): void {
  stmts(db).setAttemptPid.write({job_id: jobId, attempt, plugin_pid: pid, plugin_started_at: startedAt})
}

export interface AttemptRecord {
  status: JobStatus
  result: string | null
  lastError: string | null
  stderr: string | null
  now: string
}

function logAttempt(db: Db, job: Job, rec: AttemptRecord): void {
  stmts(db).insertLog.write({
    id: jobLogId(job.id, job.attempt),
    job_id: job.id,
    plugin: job.plugin,
    command: job.command,
    status: rec.status,
    result: rec.result,
    attempt: job.attempt,
    submitted_by: job.submitted_by,
    created_at: job.created_at,
    completed_at: rec.now,
    last_error: rec.lastError,
    stderr: rec.stderr === null ? null : truncateUtf8(rec.stderr, STDERR_LOG_CAP),
    parent_job_id: job.parent_job_id,
    source_event_id: job.source_event_id,
    event_context_id: job.event_context_id,
    enqueued_config_snapshot_id: job.enqueued_config_snapshot_id,
    started_config_snapshot_id: job.started_config_snapshot_id,
    started_at: job.started_at,
  })
}

/** Cut a string to at most `bytes` UTF-8 bytes without splitting a character. */
export function truncateUtf8(text: string, bytes: number): string {
  const buf = Buffer.from(text, 'utf8')
  if (buf.length <= bytes) return text
  let end = bytes
  while (end > 0 && ((buf[end] ?? 0) & 0xc0) === 0x80) end--
  return buf.subarray(0, end).toString('utf8')
}

/**
 * Terminal completion of the running attempt: status, transition, job_log row. Returns false when the job
 * was no longer this attempt's (recovered or cancelled meanwhile): nothing is written then.
 * Call inside a transaction together with the attempt's other writes (facts, state, routed jobs).
 */
export function completeAttempt(db: Db, job: Job, rec: AttemptRecord): boolean {
  const s = stmts(db)
  const changed = s.finish.run({id: job.id, attempt: job.attempt, status: rec.status, now: rec.now, last_error: rec.lastError}).changes
  if (changed === 0) return false
  s.insertTransition.write({job_id: job.id, from_status: 'running', to_status: rec.status, reason: rec.lastError, created_at: rec.now})
  logAttempt(db, job, rec)
  return true
}

/** A failed attempt that will be retried: its own job_log row, then back to queued with attempt + 1. */
export function retryAttempt(db: Db, job: Job, rec: AttemptRecord, nextRetryAt: string): boolean {
  const s = stmts(db)
  const changed = s.requeue.run({
    id: job.id,
    attempt: job.attempt,
    next_attempt: job.attempt + 1,
    next_retry_at: nextRetryAt,
    last_error: rec.lastError,
  }).changes
  if (changed === 0) return false
  s.insertTransition.write({job_id: job.id, from_status: 'running', to_status: 'queued', reason: rec.lastError, created_at: rec.now})
  logAttempt(db, job, rec)
  return true
}

export interface RecoveryResult {
  requeued: string[]
  dead: string[]
}

/**
 * Crash recovery: running rows whose engine is gone. The interrupted attempt gets its own
 * job_log row; the job is requeued with attempt + 1, or marked dead when that was its last.
 * `filter` picks which running rows are orphans (all of them at engine start).
 */
export function recoverRunningJobs(
  db: Db,
  now: string,
  filter: (job: Job) => boolean = () => true,
  why = 'the engine stopped while this attempt ran (recovered at engine start)',
): RecoveryResult {
  const out: RecoveryResult = {requeued: [], dead: []}
  db.tx(() => {
    const running = db.all(db.k.selectFrom('job_queue').selectAll().where('status', '=', 'running').orderBy('created_at'))
    for (const job of running) {
      if (!filter(job)) continue
      if (job.attempt < job.max_attempts) {
        const reason = `interrupted: ${why}`
        const s = stmts(db)
        // Another engine may have recovered it since it was read (a shared database): then nothing is written.
        if (s.requeue.run({id: job.id, attempt: job.attempt, next_attempt: job.attempt + 1, next_retry_at: null, last_error: reason}).changes === 0) continue
        s.insertTransition.write({job_id: job.id, from_status: 'running', to_status: 'queued', reason, created_at: now})
        logAttempt(db, job, {status: 'failed', result: null, lastError: reason, stderr: null, now})
        out.requeued.push(job.id)
      } else {
        const reason = `Job marked dead during crash recovery: max attempts (${job.max_attempts}) reached`
        if (completeAttempt(db, job, {status: 'dead', result: null, lastError: reason, stderr: null, now})) out.dead.push(job.id)
      }
    }
    if (out.requeued.length) db.notify(JOBS_CHANNEL)
  })
  return out
}

export function findQueueJob(db: Db, id: string): Job | undefined {
  return stmts(db).findJob.get({id})
}

/** Operator cancel: a queued job becomes dead with the reason. Running or finished jobs are refused. */
export function cancelQueuedJob(db: Db, id: string, now: string, reason = 'cancelled by operator'): {ok: true} | {ok: false; status: JobStatus | null} {
  return db.tx(() => {
    const job = findQueueJob(db, id)
    if (!job) return {ok: false as const, status: null}
    if (job.status !== 'queued') return {ok: false as const, status: job.status}
    db.run(db.k.updateTable('job_queue').set({status: 'dead', completed_at: now, last_error: reason}).where('id', '=', id).where('status', '=', 'queued'))
    recordTransition(db, id, 'queued', 'dead', reason, now)
    return {ok: true as const}
  })
}

/**
 * Run a finished job again (`jobs retry`, the web's retry): a new job with its plugin, command, payload, max
 * attempts and event context, parent_job_id = the old one. Only terminal jobs; the new job skips dedupe.
 */
export function retryJob(
  db: Db,
  id: string,
  now: string,
  submittedBy: string,
): {ok: true; job: Job; old: Job} | {ok: false; status: JobStatus | null; reason?: string} {
  return db.tx(() => {
    const old = findQueueJob(db, id)
    if (!old) return {ok: false as const, status: null}
    if (!isTerminal(old.status)) return {ok: false as const, status: old.status}
    const r = enqueueJob(db, {
      plugin: old.plugin,
      command: old.command,
      payload: old.payload === null ? null : JSON.parse(old.payload),
      submittedBy,
      maxAttempts: old.max_attempts,
      parentJobId: old.id,
      eventContextId: old.event_context_id,
      dedupeTtlMs: 0,
      now,
    })
    if (r.status !== 'enqueued') return {ok: false as const, status: old.status, reason: r.reason}
    return {ok: true as const, job: r.job, old}
  })
}

/** Scheduler if_running=cancel: outstanding jobs of (plugin, command, submitter) become dead. */
export function cancelOutstandingJobs(db: Db, plugin: string, command: string, submittedBy: string, now: string, reason: string): string[] {
  return db.tx(() => {
    const rows = db.all(
      db.k
        .selectFrom('job_queue')
        .select(['id', 'status'])
        .where('plugin', '=', plugin)
        .where('command', '=', command)
        .where('submitted_by', '=', submittedBy)
        .where('status', 'in', ['queued', 'running']),
    )
    for (const r of rows) {
      db.run(db.k.updateTable('job_queue').set({status: 'dead', completed_at: now, last_error: reason}).where('id', '=', r.id).where('status', '=', r.status))
      recordTransition(db, r.id, r.status, 'dead', reason, now)
    }
    return rows.map((r) => r.id)
  })
}

export function isTerminal(status: string): boolean {
  return (TERMINAL_STATUSES as readonly string[]).includes(status)
}
