import type {ColumnType, Generated, Insertable, Selectable, Updateable} from 'kysely'

import type {JobStatus} from './definition.js'

/**
 * The typed Kysely view of every table (see definition.ts for the DDL). Timestamps are text in the stored
 * layout (time.ts). JSON columns are text: callers parse and serialise.
 */

type AutoId = Generated<number>
/** A column with a SQL default: optional on insert. */
type Defaulted<T> = ColumnType<T, T | undefined, T>

export interface JobQueueTable {
  id: string
  plugin: string
  command: string
  payload: string | null
  status: JobStatus
  attempt: Defaulted<number>
  max_attempts: Defaulted<number>
  submitted_by: string
  dedupe_key: string | null
  created_at: string
  started_at: string | null
  completed_at: string | null
  next_retry_at: string | null
  last_error: string | null
  parent_job_id: string | null
  source_event_id: string | null
  event_context_id: string | null
  enqueued_config_snapshot_id: string | null
  started_config_snapshot_id: string | null
}

export interface JobTransitionsTable {
  id: AutoId
  job_id: string
  from_status: JobStatus | null
  to_status: JobStatus
  reason: string | null
  created_at: string
}

export interface JobAttemptsTable {
  id: AutoId
  job_id: string
  attempt: number
  created_at: string
  engine_pid: number | null
  plugin_pid: number | null
  plugin_started_at: string | null
  engine_id: string | null
}

export interface EnginesTable {
  id: string
  host: string
  pid: number
  pid_namespace: string | null
  started_at: string
  heartbeat_at: string
  version: string
  stopped_at: string | null
  stop_reason: string | null
}

export interface ConfigSnapshotsTable {
  id: string
  config_hash: string
  source_hash: string | null
  source_path: string | null
  source: string | null
  reason: string
  loaded_at: string
  ductile_version: string | null
  binary_path: string | null
  snapshot_format: Defaulted<number>
  semantics: string | null
  plugin_fingerprints: string | null
  sanitized_config: string | null
  secret_fingerprints: string | null
}

export interface PluginStateTable {
  plugin_name: string
  state: Defaulted<string>
  updated_at: string | null
}

export interface StorageSequencesTable {
  name: string
  value: Defaulted<number>
}

export interface PluginFactsTable {
  id: string
  seq: number | null
  plugin_name: string
  fact_type: string
  job_id: string
  command: string
  fact_json: string
  created_at: string
}

export interface EventContextTable {
  id: string
  parent_id: string | null
  pipeline_name: string | null
  step_id: string | null
  accumulated_json: string
  created_at: string
}

export interface JobLogTable {
  id: string
  job_id: string | null
  plugin: string
  command: string
  status: JobStatus
  result: string | null
  attempt: number
  submitted_by: string
  created_at: string
  completed_at: string
  last_error: string | null
  stderr: string | null
  parent_job_id: string | null
  source_event_id: string | null
  event_context_id: string | null
  enqueued_config_snapshot_id: string | null
  started_config_snapshot_id: string | null
  started_at: string | null
}

export interface CircuitBreakersTable {
  plugin: string
  command: string
  state: Defaulted<string>
  failure_count: Defaulted<number>
  opened_at: string | null
  last_failure_at: string | null
  last_job_id: string | null
  updated_at: string
}

export interface ScheduleDecisionsTable {
  id: AutoId
  plugin: string
  schedule_id: string
  /** fired, skipped or catch_up */
  decision: string
  /** The scheduler's reason not to fire (SkipReason), for skips. */
  reason: string | null
  detail: string | null
  /** The run it was for: the due time it fired for, or the catch-up slot. */
  slot: string | null
  job_id: string | null
  created_at: string
}

export interface DedupeHitsTable {
  id: AutoId
  /** The existing job the enqueue was deduplicated against. */
  job_id: string
  plugin: string
  command: string
  dedupe_key: string | null
  submitted_by: string
  reason: string
  created_at: string
}

export interface CircuitBreakerTransitionsTable {
  id: string
  plugin: string
  command: string
  from_state: string | null
  to_state: string
  failure_count: Defaulted<number>
  reason: string
  job_id: string | null
  created_at: string
}

export interface ScheduleEntriesTable {
  plugin: string
  schedule_id: string
  command: string
  status: Defaulted<string>
  reason: string | null
  last_fired_at: string | null
  last_success_job_id: string | null
  last_success_at: string | null
  next_run_at: string | null
  updated_at: string
  spec: string | null
  interval_ms: number | null
}

export interface JobStopwatchTable {
  id: AutoId
  job_id: string
  plugin: string
  pipeline: string | null
  step_id: string | null
  pipeline_instance_id: string | null
  attempt: number
  enter_wall_ns: number
  exit_wall_ns: number
  dur_ns: number
  runtime_pre_ns: number
  runtime_post_ns: number
  status: string
  subs_json: Defaulted<string>
  recorded_at: string
}

export interface SchemaMigrationsTable {
  version: number
  name: string
  applied_at: string
}

export interface Database {
  engines: EnginesTable
  job_queue: JobQueueTable
  job_transitions: JobTransitionsTable
  job_attempts: JobAttemptsTable
  config_snapshots: ConfigSnapshotsTable
  plugin_state: PluginStateTable
  storage_sequences: StorageSequencesTable
  plugin_facts: PluginFactsTable
  event_context: EventContextTable
  job_log: JobLogTable
  circuit_breakers: CircuitBreakersTable
  circuit_breaker_transitions: CircuitBreakerTransitionsTable
  schedule_decisions: ScheduleDecisionsTable
  dedupe_hits: DedupeHitsTable
  schedule_entries: ScheduleEntriesTable
  job_stopwatch: JobStopwatchTable
  schema_migrations: SchemaMigrationsTable
}

export type Job = Selectable<JobQueueTable>
export type NewJob = Insertable<JobQueueTable>
export type JobUpdate = Updateable<JobQueueTable>
export type JobTransition = Selectable<JobTransitionsTable>
export type JobAttempt = Selectable<JobAttemptsTable>
export type JobLogRow = Selectable<JobLogTable>
export type NewJobLogRow = Insertable<JobLogTable>
export type PluginFact = Selectable<PluginFactsTable>
export type PluginStateRow = Selectable<PluginStateTable>
export type EventContextRow = Selectable<EventContextTable>
export type CircuitBreaker = Selectable<CircuitBreakersTable>
export type BreakerTransition = Selectable<CircuitBreakerTransitionsTable>
export type ScheduleEntry = Selectable<ScheduleEntriesTable>
export type ScheduleDecision = Selectable<ScheduleDecisionsTable>
export type DedupeHit = Selectable<DedupeHitsTable>
export type ConfigSnapshot = Selectable<ConfigSnapshotsTable>
export type EngineRow = Selectable<EnginesTable>
