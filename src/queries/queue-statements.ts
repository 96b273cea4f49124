import {sql} from 'kysely'

import {type Db, type Param, perHandle} from '../schema/db.js'
import type {JobStatus} from '../schema/definition.js'
import type {JobLogRow} from '../schema/types.js'

/**
 * The statements of the job state machine (queue.ts), compiled once per handle: the engine runs them for
 * every job, and compiling a Kysely query costs more than running it.
 */

/** Queued jobs that may start now, oldest first: retries wait for next_retry_at, a dedupe key runs one at a time. */
function nextQueuedBase(k: Db['k'], p: Param<{now: string}>) {
  return k
    .selectFrom('job_queue as q')
    .selectAll('q')
    .where('q.status', '=', sql.lit('queued'))
    .where((eb) => eb.or([eb('q.next_retry_at', 'is', null), eb('q.next_retry_at', '=', ''), eb('q.next_retry_at', '<=', p('now'))]))
    .where((eb) =>
      eb.or([
        eb('q.dedupe_key', 'is', null),
        eb.not(
          eb.exists(
            eb
              .selectFrom('job_queue as r')
              .select('r.id')
              .where('r.status', '=', sql.lit('running'))
              .whereRef('r.dedupe_key', '=', 'q.dedupe_key')
              .whereRef('r.plugin', '=', 'q.plugin')
              .whereRef('r.command', '=', 'q.command'),
          ),
        ),
      ]),
    )
    .orderBy('q.created_at')
    .orderBy('q.id')
}

interface TransitionRow {
  job_id: string
  from_status: JobStatus | null
  to_status: JobStatus
  reason: string | null
  created_at: string
}

interface NewJobRow {
  id: string
  plugin: string
  command: string
  payload: string | null
  max_attempts: number
  submitted_by: string
  dedupe_key: string | null
  now: string
  parent_job_id: string | null
  source_event_id: string | null
  event_context_id: string | null
  snapshot: string | null
}

/** The engine's hot statements, compiled once per handle. */
export const stmts = perHandle((db: Db) => {
  const k = db.k
  return {
    insertTransition: db.prepare((p: Param<TransitionRow>) =>
      k.insertInto('job_transitions').values({
        job_id: p('job_id'),
        from_status: p('from_status'),
        to_status: p('to_status'),
        reason: p('reason'),
        created_at: p('created_at'),
      }),
    ),
    insertAttempt: db.prepare((p: Param<{job_id: string; attempt: number; created_at: string; engine_pid: number; engine_id: string | null}>) =>
      k
        .insertInto('job_attempts')
        .values({
          job_id: p('job_id'),
          attempt: p('attempt'),
          created_at: p('created_at'),
          engine_pid: p('engine_pid'),
          plugin_pid: null,
          plugin_started_at: null,
          engine_id: p('engine_id'),
        })
        .onConflict((oc) => oc.columns(['job_id', 'attempt']).doNothing()),
    ),
    setAttemptPid: db.prepare((p: Param<{job_id: string; attempt: number; plugin_pid: number; plugin_started_at: string | null}>) =>
      k
        .updateTable('job_attempts')
        .set({plugin_pid: p('plugin_pid'), plugin_started_at: p('plugin_started_at')})
        .where('job_id', '=', p('job_id'))
        .where('attempt', '=', p('attempt')),
    ),
    // Pinned to the partial FIFO index: the planner, without statistics, prefers (status, created_at) and
    // then sorts every queued row of the same millisecond by id. The usual claim (no plugin at its cap) asks
    // for one row with a literal LIMIT: bound as a parameter, SQLite took several times as long here.
    nextQueued: db.prepare((p: Param<{now: string; limit: number}>) =>
      db.dialect.withIndex(nextQueuedBase(k, p).limit(p('limit')), 'job_queue', 'job_queue_queued_fifo_idx'),
    ),
    nextQueuedOne: db.prepare((p: Param<{now: string}>) =>
      db.dialect.withIndex(nextQueuedBase(k, p).limit(sql.lit(1)), 'job_queue', 'job_queue_queued_fifo_idx'),
    ),
    // When the next retry among queued jobs becomes runnable (the idle engine's poll sleeps until then).
    nextRetryAt: db.prepare((p: Param<{now: string}>) =>
      k
        .selectFrom('job_queue')
        .select((eb) => eb.fn.min('next_retry_at').as('at'))
        .where('status', '=', sql.lit('queued'))
        .where('next_retry_at', '>', p('now')),
    ),
    markRunning: db.prepare((p: Param<{id: string; now: string; snapshot: string | null}>) =>
      k
        .updateTable('job_queue')
        .set({status: 'running', started_at: p('now'), started_config_snapshot_id: p('snapshot')})
        .where('id', '=', p('id'))
        .where('status', '=', 'queued'),
    ),
    findJob: db.prepare((p: Param<{id: string}>) => k.selectFrom('job_queue').selectAll().where('id', '=', p('id'))),
    finish: db.prepare((p: Param<{id: string; attempt: number; status: JobStatus; now: string; last_error: string | null}>) =>
      k
        .updateTable('job_queue')
        .set({status: p('status'), completed_at: p('now'), last_error: p('last_error')})
        .where('id', '=', p('id'))
        .where('status', '=', 'running')
        .where('attempt', '=', p('attempt')),
    ),
    requeue: db.prepare((p: Param<{id: string; attempt: number; next_attempt: number; next_retry_at: string | null; last_error: string | null}>) =>
      k
        .updateTable('job_queue')
        .set({status: 'queued', attempt: p('next_attempt'), next_retry_at: p('next_retry_at'), last_error: p('last_error')})
        .where('id', '=', p('id'))
        .where('status', '=', 'running')
        .where('attempt', '=', p('attempt')),
    ),
    insertLog: db.prepare((p: Param<JobLogRow>) =>
      k
        .insertInto('job_log')
        .values({
          id: p('id'),
          job_id: p('job_id'),
          plugin: p('plugin'),
          command: p('command'),
          status: p('status'),
          result: p('result'),
          attempt: p('attempt'),
          submitted_by: p('submitted_by'),
          created_at: p('created_at'),
          completed_at: p('completed_at'),
          last_error: p('last_error'),
          stderr: p('stderr'),
          parent_job_id: p('parent_job_id'),
          source_event_id: p('source_event_id'),
          event_context_id: p('event_context_id'),
          enqueued_config_snapshot_id: p('enqueued_config_snapshot_id'),
          started_config_snapshot_id: p('started_config_snapshot_id'),
          started_at: p('started_at'),
        })
        .onConflict((oc) => oc.column('id').doNothing()),
    ),
    insertJob: db.prepare((p: Param<NewJobRow>) =>
      k
        .insertInto('job_queue')
        .values({
          id: p('id'),
          plugin: p('plugin'),
          command: p('command'),
          payload: p('payload'),
          status: 'queued',
          attempt: 1,
          max_attempts: p('max_attempts'),
          submitted_by: p('submitted_by'),
          dedupe_key: p('dedupe_key'),
          created_at: p('now'),
          started_at: null,
          completed_at: null,
          next_retry_at: null,
          last_error: null,
          parent_job_id: p('parent_job_id'),
          source_event_id: p('source_event_id'),
          event_context_id: p('event_context_id'),
          enqueued_config_snapshot_id: p('snapshot'),
          started_config_snapshot_id: null,
        })
        .onConflict((oc) => oc.doNothing()),
    ),
    recentSuccess: db.prepare((p: Param<{key: string; since: string; plugin: string; command: string}>) =>
      k
        .selectFrom('job_queue')
        .select('id')
        .where('dedupe_key', '=', p('key'))
        .where('status', '=', 'succeeded')
        // Strictly inside the window: a schedule due exactly one interval after a success is not a duplicate.
        .where('completed_at', '>', p('since'))
        .where('plugin', '=', p('plugin'))
        .where('command', '=', p('command'))
        .orderBy('completed_at', 'desc')
        .limit(1),
    ),
    insertDedupeHit: db.prepare(
      (p: Param<{job_id: string; plugin: string; command: string; dedupe_key: string | null; submitted_by: string; reason: string; created_at: string}>) =>
        k.insertInto('dedupe_hits').values({
          job_id: p('job_id'),
          plugin: p('plugin'),
          command: p('command'),
          dedupe_key: p('dedupe_key'),
          submitted_by: p('submitted_by'),
          reason: p('reason'),
          created_at: p('created_at'),
        }),
    ),
    outstanding: db.prepare((p: Param<{key: string; plugin: string; command: string}>) =>
      k
        .selectFrom('job_queue')
        .select('id')
        .where('dedupe_key', '=', p('key'))
        .where('status', 'in', ['queued', 'running'])
        .where('plugin', '=', p('plugin'))
        .where('command', '=', p('command'))
        .orderBy('created_at', 'desc')
        .limit(1),
    ),
  }
})
