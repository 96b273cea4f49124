import type {Db} from '../schema/db.js'
import type {JobStatus} from '../schema/definition.js'
import type {EventContextRow, Job, JobAttempt, JobLogRow, JobTransition} from '../schema/types.js'
import {contextLineage} from './context.js'
import {listJobLogsForJob} from './logs.js'

/** Operator reads of job_queue and its fact tables (job_transitions, job_attempts). */

export interface StatusCount {
  status: JobStatus
  count: number
}

/** Reference: System Health, "Count jobs by status". */
export function countJobsByStatus(db: Db, opts: {plugin?: string} = {}): StatusCount[] {
  let q = db.k
    .selectFrom('job_queue')
    .select(['status', (eb) => eb.fn.countAll<number>().as('count')])
    .groupBy('status')
    .orderBy('status')
  if (opts.plugin) q = q.where('plugin', '=', opts.plugin)
  return db.all(q)
}

export interface PluginStatusCount extends StatusCount {
  plugin: string
}

export function countJobsByPluginAndStatus(db: Db, opts: {plugin?: string} = {}): PluginStatusCount[] {
  let q = db.k
    .selectFrom('job_queue')
    .select(['plugin', 'status', (eb) => eb.fn.countAll<number>().as('count')])
    .groupBy(['plugin', 'status'])
    .orderBy('plugin')
    .orderBy('status')
  if (opts.plugin) q = q.where('plugin', '=', opts.plugin)
  return db.all(q)
}

export interface ListJobsOptions {
  status?: JobStatus
  plugin?: string
  command?: string
  /** created_at at or after this stored timestamp */
  since?: string
  limit: number
}

/** Queue rows, newest first. */
export function listJobs(db: Db, o: ListJobsOptions): Job[] {
  let q = db.k.selectFrom('job_queue').selectAll()
  if (o.status) q = q.where('status', '=', o.status)
  if (o.plugin) q = q.where('plugin', '=', o.plugin)
  if (o.command) q = q.where('command', '=', o.command)
  if (o.since) q = q.where('created_at', '>=', o.since)
  return db.all(q.orderBy('created_at', 'desc').orderBy('id', 'desc').limit(o.limit))
}

export interface RunningJob {
  id: string
  plugin: string
  command: string
  started_at: string | null
  attempt: number
  max_attempts: number
  engine_pid: number | null
  plugin_pid: number | null
  plugin_started_at: string | null
  engine_id: string | null
}

/** Reference: "Check for stuck running jobs (orphans)": running and started before the cutoff. */
export function findStuckJobs(db: Db, startedBefore: string): RunningJob[] {
  return runningJobs(db, startedBefore)
}

/** Every running job (the watch view and orphan recovery). */
export function listRunningJobs(db: Db): RunningJob[] {
  return runningJobs(db)
}

/** Running jobs with the process facts of their current attempt, oldest first. */
function runningJobs(db: Db, startedBefore?: string): RunningJob[] {
  let q = db.k
    .selectFrom('job_queue as q')
    .leftJoin('job_attempts as a', (j) => j.onRef('a.job_id', '=', 'q.id').onRef('a.attempt', '=', 'q.attempt'))
    .select([
      'q.id',
      'q.plugin',
      'q.command',
      'q.started_at',
      'q.attempt',
      'q.max_attempts',
      'a.engine_pid',
      'a.plugin_pid',
      'a.plugin_started_at',
      'a.engine_id',
    ])
    .where('q.status', '=', 'running')
  if (startedBefore) q = q.where('q.started_at', '<', startedBefore)
  return db.all(q.orderBy('q.started_at'))
}

export function findJob(db: Db, id: string): Job | undefined {
  return db.get(db.k.selectFrom('job_queue').selectAll().where('id', '=', id))
}

export function listTransitions(db: Db, jobId: string): JobTransition[] {
  return db.all(db.k.selectFrom('job_transitions').selectAll().where('job_id', '=', jobId).orderBy('created_at').orderBy('id'))
}

export function listAttempts(db: Db, jobId: string): JobAttempt[] {
  return db.all(db.k.selectFrom('job_attempts').selectAll().where('job_id', '=', jobId).orderBy('created_at').orderBy('id'))
}

export interface ChildJob {
  id: string
  plugin: string
  command: string
  status: JobStatus
  submitted_by: string
  created_at: string
  source_event_id: string | null
}

export function listChildJobs(db: Db, parentId: string): ChildJob[] {
  return db.all(
    db.k
      .selectFrom('job_queue')
      .select(['id', 'plugin', 'command', 'status', 'submitted_by', 'created_at', 'source_event_id'])
      .where('parent_job_id', '=', parentId)
      .orderBy('created_at')
      .orderBy('id'),
  )
}

/** A job and its descendants by parent_job_id (breadth first, at most `max` rows), from the queue. */
export function findJobTree(db: Db, rootId: string, max = 1000): Job[] {
  const root = findJob(db, rootId)
  if (!root) return []
  const out: Job[] = [root]
  let level = [root.id]
  while (level.length > 0 && out.length < max) {
    const children = db.all(
      db.k
        .selectFrom('job_queue')
        .selectAll()
        .where('parent_job_id', 'in', level)
        .orderBy('created_at')
        .orderBy('id')
        .limit(max - out.length),
    )
    out.push(...children)
    level = children.map((c) => c.id)
  }
  return out
}

/** Everything about one job (`jobs inspect`, the web job page). */
export interface JobInspection {
  job: Job
  transitions: JobTransition[]
  attempts: JobAttempt[]
  logs: JobLogRow[]
  /** event_context rows from the pipeline's root to this job's step. */
  lineage: EventContextRow[]
  pipeline: string | null
  step: string | null
  /** The accumulated baggage at this job's step (the leaf of the lineage). */
  baggage: unknown
  children: ChildJob[]
  /** Does the latest transition agree with the cached status, and the latest attempt with the cached attempt? */
  consistent: {status: boolean; attempt: boolean}
}

/** A job's queue row, transitions, attempts, job_log rows, lineage and children, in one snapshot; undefined when not in the queue. */
export function inspectJob(db: Db, id: string): JobInspection | undefined {
  return db.read((): JobInspection | undefined => {
    const job = findJob(db, id)
    if (!job) return undefined
    const transitions = listTransitions(db, id)
    const attempts = listAttempts(db, id)
    const lineage = job.event_context_id ? contextLineage(db, job.event_context_id) : []
    const leaf = lineage[lineage.length - 1]
    const lastT = transitions[transitions.length - 1]
    const lastA = attempts[attempts.length - 1]
    return {
      job,
      transitions,
      attempts,
      logs: listJobLogsForJob(db, id),
      lineage,
      pipeline: leaf?.pipeline_name ?? null,
      step: leaf?.step_id || null,
      baggage: leaf ? JSON.parse(leaf.accumulated_json) : null,
      children: listChildJobs(db, id),
      consistent: {
        status: lastT ? lastT.to_status === job.status : true,
        attempt: lastA ? lastA.attempt === job.attempt || (job.status === 'queued' && lastA.attempt === job.attempt - 1) : true,
      },
    }
  })
}
