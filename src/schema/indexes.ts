import {type IndexDef, TERMINAL_STATUSES} from './definition.js'

/** The reference's first facts ORDER BY term, as it spells it (an index serves only the same expression). */
export const FACTS_NULL_SEQ_LAST = 'CASE WHEN seq IS NULL THEN 1 ELSE 0 END'

/** Every job_log status but succeeded, as OR terms: `status = 'failed'` in a query implies one of them. */
const UNSUCCEEDED = TERMINAL_STATUSES.filter((s) => s !== 'succeeded')
  .map((s) => `status = '${s}'`)
  .join(' OR ')

/** Indexes of earlier releases that `db migrate` drops (replaced by the ones above). */
export const DROPPED_INDEXES = ['job_log_status_completed_idx', 'job_log_succeeded_duration_idx', 'plugin_facts_plugin_seq_created_idx']

/**
 * Every index of the schema: the original's, and ours, each with the query it serves. The plan tests
 * (test/queries/plans.test.ts) hold each read to the index named here.
 */

export const INDEXES: IndexDef[] = [
  // The original's indexes.
  {name: 'job_queue_status_created_at_idx', table: 'job_queue', columns: ['status', 'created_at']},
  {name: 'job_queue_plugin_command_status_idx', table: 'job_queue', columns: ['plugin', 'command', 'status']},
  {name: 'job_queue_dedupe_status_completed_idx', table: 'job_queue', columns: ['dedupe_key', 'status', 'completed_at']},
  {
    name: 'job_queue_event_source_idx',
    table: 'job_queue',
    columns: ['parent_job_id', 'source_event_id', 'plugin', 'command'],
    unique: true,
    where: 'source_event_id IS NOT NULL',
  },
  {name: 'job_transitions_job_created_at_idx', table: 'job_transitions', columns: ['job_id', 'created_at']},
  {name: 'job_transitions_created_at_idx', table: 'job_transitions', columns: ['created_at']},
  {name: 'job_attempts_job_created_at_idx', table: 'job_attempts', columns: ['job_id', 'created_at']},
  {name: 'job_attempts_created_at_idx', table: 'job_attempts', columns: ['created_at']},
  {name: 'plugin_facts_plugin_created_at_idx', table: 'plugin_facts', columns: ['plugin_name', 'created_at']},
  {
    name: 'plugin_facts_plugin_type_created_at_idx',
    table: 'plugin_facts',
    columns: ['plugin_name', 'fact_type', 'created_at'],
  },
  {name: 'plugin_facts_plugin_seq_idx', table: 'plugin_facts', columns: ['plugin_name', 'seq']},
  {name: 'plugin_facts_plugin_type_seq_idx', table: 'plugin_facts', columns: ['plugin_name', 'fact_type', 'seq']},
  {name: 'job_log_job_id_attempt_idx', table: 'job_log', columns: ['job_id', 'attempt']},
  {name: 'job_log_completed_at_idx', table: 'job_log', columns: ['completed_at']},
  {
    name: 'circuit_breaker_transitions_plugin_command_created_idx',
    table: 'circuit_breaker_transitions',
    columns: ['plugin', 'command', 'created_at'],
  },
  {name: 'circuit_breaker_transitions_created_at_idx', table: 'circuit_breaker_transitions', columns: ['created_at']},
  {name: 'job_stopwatch_job_attempt_idx', table: 'job_stopwatch', columns: ['job_id', 'attempt']},
  {name: 'job_stopwatch_pipeline_idx', table: 'job_stopwatch', columns: ['pipeline', 'pipeline_instance_id']},
  {
    name: 'job_stopwatch_rollup_pipeline_day_idx',
    table: 'job_stopwatch_rollup_daily',
    columns: ['pipeline', 'step_id', 'day_utc'],
  },
  {name: 'job_stopwatch_rollup_plugin_day_idx', table: 'job_stopwatch_rollup_daily', columns: ['plugin', 'day_utc']},
  {name: 'vault_audit_created_at_idx', table: 'vault_audit', columns: ['created_at']},
  {name: 'vault_audit_principal_created_idx', table: 'vault_audit', columns: ['principal', 'created_at']},

  // Ours: every operator query is an index search.
  // The engine's claim: queued jobs in FIFO order (created_at, then the time-ordered id), only queued rows.
  {name: 'job_queue_queued_fifo_idx', table: 'job_queue', columns: ['created_at', 'id'], where: "status = 'queued'", ours: true},
  // jobs stuck; doctor's stuck check.
  {name: 'job_queue_status_started_at_idx', table: 'job_queue', columns: ['status', 'started_at'], ours: true},
  // prune of terminal queue rows; doctor's retention check.
  {name: 'job_queue_status_completed_at_idx', table: 'job_queue', columns: ['status', 'completed_at'], ours: true},
  // jobs list, newest first, with and without a plugin filter.
  {name: 'job_queue_created_at_idx', table: 'job_queue', columns: ['created_at'], ours: true},
  {name: 'job_queue_plugin_created_at_idx', table: 'job_queue', columns: ['plugin', 'created_at'], ours: true},
  // jobs inspect: child jobs (retries and hook jobs have no source_event_id, so the UNIQUE index misses them).
  {name: 'job_queue_parent_job_idx', table: 'job_queue', columns: ['parent_job_id'], ours: true},
  // jobs errors: the newest failed attempt of a plugin.
  {
    name: 'job_log_failed_plugin_completed_idx',
    table: 'job_log',
    columns: ['plugin', 'completed_at'],
    where: "status = 'failed'",
    ours: true,
  },
  // prune keeps the newest failure per (plugin, command): one probe per pair instead of a scan of every failure.
  {
    name: 'job_log_failed_plugin_command_idx',
    table: 'job_log',
    columns: ['plugin', 'command', 'completed_at'],
    where: "status = 'failed'",
    ours: true,
  },
  // jobs slowest over a long window, and the reference's "Find the slowest successful jobs in the last 24
  // hours" pasted into sqlite3: read in the reference's ORDER BY, from the slowest down, until LIMIT rows fall
  // in the window (sqlite3 3.40 chooses it once no (status, completed_at) index offers it a range over every
  // success instead). Duration first costs prune one run of leaves per distinct whole-second duration in
  // each batch, not a scatter: within a duration the rows are in completed_at order. It replaced an index
  // keyed by UTC hour and the (status, completed_at) index: prune takes about 10% longer on the bench
  // (bench/RESULTS.md, Speed), and the engine writes one index fewer per job.
  {
    name: 'job_log_succeeded_sec_idx',
    table: 'job_log',
    columns: ["(strftime('%s', completed_at) - strftime('%s', started_at)) DESC", 'completed_at DESC'],
    where: "status = 'succeeded'",
    ours: true,
  },
  // jobs logs --plugin.
  {name: 'job_log_plugin_completed_idx', table: 'job_log', columns: ['plugin', 'completed_at'], ours: true},
  // jobs logs --status, jobs errors, watch --status, for every status but succeeded (whose rows are most of
  // the table: newest first by job_log_completed_at_idx). Partial, so that it offers the reference's
  // slowest-jobs query no range; the status is a literal in those queries, which implies one of the terms.
  {
    name: 'job_log_unsucceeded_status_completed_idx',
    table: 'job_log',
    columns: ['status', 'completed_at'],
    where: UNSUCCEEDED,
    ours: true,
  },
  // facts, and the reference's "Inspect recent append-only plugin facts" pasted into sqlite3: its exact ORDER
  // BY (seq DESC with NULLs last, then created_at DESC), straight off the index.
  {
    name: 'plugin_facts_reference_order_idx',
    table: 'plugin_facts',
    columns: ['plugin_name', FACTS_NULL_SEQ_LAST, 'seq DESC', 'created_at DESC'],
    ours: true,
  },
  // explain schedule: a schedule's decisions, newest first; prune by created_at.
  {name: 'schedule_decisions_schedule_idx', table: 'schedule_decisions', columns: ['plugin', 'schedule_id', 'id'], ours: true},
  {name: 'schedule_decisions_created_at_idx', table: 'schedule_decisions', columns: ['created_at'], ours: true},
  // explain job: the enqueues deduplicated against a job; prune by created_at.
  {name: 'dedupe_hits_job_idx', table: 'dedupe_hits', columns: ['job_id'], ours: true},
  {name: 'dedupe_hits_created_at_idx', table: 'dedupe_hits', columns: ['created_at'], ours: true},
  // explain job: the schedule and slot a scheduler's job was fired for.
  {name: 'schedule_decisions_job_idx', table: 'schedule_decisions', columns: ['job_id'], where: 'job_id IS NOT NULL', ours: true},
  // schedules list (status active, by next_run_at).
  {name: 'schedule_entries_status_next_run_idx', table: 'schedule_entries', columns: ['status', 'next_run_at'], ours: true},
  // Engines alive (heartbeat order) for recovery and doctor; the running attempts of one engine.
  {name: 'engines_alive_idx', table: 'engines', columns: ['heartbeat_at'], where: 'stopped_at IS NULL', ours: true},
  {name: 'job_attempts_engine_idx', table: 'job_attempts', columns: ['engine_id'], where: 'engine_id IS NOT NULL', ours: true},
  // breakers list (state != closed) stays a scan of a tiny table; lineage walks event_context by primary key.
]

export function createIndexSql(i: IndexDef): string {
  return `CREATE ${i.unique ? 'UNIQUE ' : ''}INDEX IF NOT EXISTS ${i.name} ON ${i.table} (${i.columns.join(', ')})${i.where ? ` WHERE ${i.where}` : ''}`
}
