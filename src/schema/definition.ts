/**
 * The schema as data: one source for the DDL that migrations run and for what `db check` validates.
 * Our schema is a superset of the original Go Ductile's: every original table, column and
 * index, plus what we add. Every column we add is nullable or has a default.
 */

export interface ColumnDef {
  name: string
  type: 'TEXT' | 'INTEGER' | 'JSON'
  notNull?: boolean
  default?: string
  /** A timestamp column: rewritten from the original's RFC 3339 layout by `db migrate`. */
  ts?: boolean
  /** Added by us (not in the original schema). */
  ours?: boolean
}

export interface TableDef {
  name: string
  columns: ColumnDef[]
  /** Column list of the primary key; a single INTEGER key named here becomes AUTOINCREMENT when `autoincrement`. */
  primaryKey: string[]
  autoincrement?: boolean
  unique?: string[][]
  /** Created on fresh databases, not required on existing ones (the original's "soft" tables). */
  soft?: boolean
  ours?: boolean
}

export interface IndexDef {
  name: string
  table: string
  columns: string[]
  unique?: boolean
  where?: string
  ours?: boolean
}

const c = (name: string, type: ColumnDef['type'], opts: Omit<ColumnDef, 'name' | 'type'> = {}): ColumnDef => ({
  name,
  type,
  ...opts,
})
const NN = {notNull: true}
const TS = {ts: true}
const TSNN = {ts: true, notNull: true}

export const TERMINAL_STATUSES = ['succeeded', 'skipped', 'failed', 'timed_out', 'dead'] as const
export const JOB_STATUSES = ['queued', 'running', ...TERMINAL_STATUSES] as const
export type JobStatus = (typeof JOB_STATUSES)[number]
export type TerminalStatus = (typeof TERMINAL_STATUSES)[number]

export const TABLES: TableDef[] = [
  {
    name: 'storage_sequences',
    primaryKey: ['name'],
    columns: [c('name', 'TEXT'), c('value', 'INTEGER', {notNull: true, default: '0'})],
  },
  {
    name: 'job_queue',
    primaryKey: ['id'],
    columns: [
      c('id', 'TEXT'),
      c('plugin', 'TEXT', NN),
      c('command', 'TEXT', NN),
      c('payload', 'JSON'),
      c('status', 'TEXT', NN),
      c('attempt', 'INTEGER', {notNull: true, default: '1'}),
      c('max_attempts', 'INTEGER', {notNull: true, default: '4'}),
      c('submitted_by', 'TEXT', NN),
      c('dedupe_key', 'TEXT'),
      c('created_at', 'TEXT', TSNN),
      c('started_at', 'TEXT', TS),
      c('completed_at', 'TEXT', TS),
      c('next_retry_at', 'TEXT', TS),
      c('last_error', 'TEXT'),
      c('parent_job_id', 'TEXT'),
      c('source_event_id', 'TEXT'),
      c('event_context_id', 'TEXT'),
      c('enqueued_config_snapshot_id', 'TEXT'),
      c('started_config_snapshot_id', 'TEXT'),
    ],
  },
  {
    name: 'job_transitions',
    primaryKey: ['id'],
    autoincrement: true,
    columns: [
      c('id', 'INTEGER'),
      c('job_id', 'TEXT', NN),
      c('from_status', 'TEXT'),
      c('to_status', 'TEXT', NN),
      c('reason', 'TEXT'),
      c('created_at', 'TEXT', TSNN),
    ],
  },
  {
    name: 'job_attempts',
    primaryKey: ['id'],
    autoincrement: true,
    unique: [['job_id', 'attempt']],
    columns: [
      c('id', 'INTEGER'),
      c('job_id', 'TEXT', NN),
      c('attempt', 'INTEGER', NN),
      c('created_at', 'TEXT', TSNN),
      // Liveness of the attempt (ours): which engine ran it and which plugin process, with the process's
      // start time so a reused PID is not mistaken for the plugin.
      c('engine_pid', 'INTEGER', {ours: true}),
      c('plugin_pid', 'INTEGER', {ours: true}),
      c('plugin_started_at', 'TEXT', {ours: true}),
      // The engine (engines.id) that claimed the attempt: on a shared database, recovery is by engine.
      c('engine_id', 'TEXT', {ours: true}),
    ],
  },
  {
    name: 'config_snapshots',
    primaryKey: ['id'],
    columns: [
      c('id', 'TEXT'),
      c('config_hash', 'TEXT', NN),
      c('source_hash', 'TEXT'),
      c('source_path', 'TEXT'),
      c('source', 'TEXT'),
      c('reason', 'TEXT', NN),
      c('loaded_at', 'TEXT', TSNN),
      c('ductile_version', 'TEXT'),
      c('binary_path', 'TEXT'),
      c('snapshot_format', 'INTEGER', {notNull: true, default: '1'}),
      c('semantics', 'JSON'),
      c('plugin_fingerprints', 'JSON'),
      c('sanitized_config', 'JSON'),
      c('secret_fingerprints', 'JSON'),
    ],
  },
  {
    name: 'plugin_state',
    primaryKey: ['plugin_name'],
    columns: [c('plugin_name', 'TEXT'), c('state', 'JSON', {notNull: true, default: "'{}'"}), c('updated_at', 'TEXT', TS)],
  },
  {
    name: 'plugin_facts',
    primaryKey: ['id'],
    columns: [
      c('id', 'TEXT'),
      c('seq', 'INTEGER'),
      c('plugin_name', 'TEXT', NN),
      c('fact_type', 'TEXT', NN),
      c('job_id', 'TEXT', NN),
      c('command', 'TEXT', NN),
      c('fact_json', 'JSON', NN),
      c('created_at', 'TEXT', TSNN),
    ],
  },
  {
    name: 'event_context',
    primaryKey: ['id'],
    columns: [
      c('id', 'TEXT'),
      c('parent_id', 'TEXT'),
      c('pipeline_name', 'TEXT'),
      c('step_id', 'TEXT'),
      c('accumulated_json', 'JSON', NN),
      c('created_at', 'TEXT', TSNN),
    ],
  },
  {
    name: 'job_log',
    primaryKey: ['id'],
    columns: [
      c('id', 'TEXT'),
      c('job_id', 'TEXT'),
      c('plugin', 'TEXT', NN),
      c('command', 'TEXT', NN),
      c('status', 'TEXT', NN),
      c('result', 'TEXT'),
      c('attempt', 'INTEGER', NN),
      c('submitted_by', 'TEXT', NN),
      c('created_at', 'TEXT', TSNN),
      c('completed_at', 'TEXT', TSNN),
      c('last_error', 'TEXT'),
      c('stderr', 'TEXT'),
      c('parent_job_id', 'TEXT'),
      c('source_event_id', 'TEXT'),
      c('event_context_id', 'TEXT'),
      c('enqueued_config_snapshot_id', 'TEXT'),
      c('started_config_snapshot_id', 'TEXT'),
      c('started_at', 'TEXT', {ts: true, ours: true}),
    ],
  },
  {
    name: 'circuit_breakers',
    primaryKey: ['plugin', 'command'],
    columns: [
      c('plugin', 'TEXT', NN),
      c('command', 'TEXT', NN),
      c('state', 'TEXT', {notNull: true, default: "'closed'"}),
      c('failure_count', 'INTEGER', {notNull: true, default: '0'}),
      c('opened_at', 'TEXT', TS),
      c('last_failure_at', 'TEXT', TS),
      c('last_job_id', 'TEXT'),
      c('updated_at', 'TEXT', TSNN),
    ],
  },
  {
    name: 'circuit_breaker_transitions',
    primaryKey: ['id'],
    columns: [
      c('id', 'TEXT'),
      c('plugin', 'TEXT', NN),
      c('command', 'TEXT', NN),
      c('from_state', 'TEXT'),
      c('to_state', 'TEXT', NN),
      c('failure_count', 'INTEGER', {notNull: true, default: '0'}),
      c('reason', 'TEXT', NN),
      c('job_id', 'TEXT'),
      c('created_at', 'TEXT', TSNN),
    ],
  },
  {
    // Ours: the scheduler's decisions as facts (explain schedule). A row when a schedule fires, and when its
    // reason not to fire changes; never one per idle tick ('not due' is not recorded: next_run_at says it).
    name: 'schedule_decisions',
    primaryKey: ['id'],
    autoincrement: true,
    ours: true,
    columns: [
      c('id', 'INTEGER'),
      c('plugin', 'TEXT', NN),
      c('schedule_id', 'TEXT', NN),
      c('decision', 'TEXT', NN),
      c('reason', 'TEXT'),
      c('detail', 'TEXT'),
      c('slot', 'TEXT', TS),
      c('job_id', 'TEXT'),
      c('created_at', 'TEXT', TSNN),
    ],
  },
  {
    // Ours: an enqueue deduplicated against an existing job, as a fact (explain job). Append-only.
    name: 'dedupe_hits',
    primaryKey: ['id'],
    autoincrement: true,
    ours: true,
    columns: [
      c('id', 'INTEGER'),
      c('job_id', 'TEXT', NN),
      c('plugin', 'TEXT', NN),
      c('command', 'TEXT', NN),
      c('dedupe_key', 'TEXT'),
      c('submitted_by', 'TEXT', NN),
      c('reason', 'TEXT', NN),
      c('created_at', 'TEXT', TSNN),
    ],
  },
  {
    name: 'schedule_entries',
    primaryKey: ['plugin', 'schedule_id'],
    columns: [
      c('plugin', 'TEXT', NN),
      c('schedule_id', 'TEXT', NN),
      c('command', 'TEXT', NN),
      c('status', 'TEXT', {notNull: true, default: "'active'"}),
      c('reason', 'TEXT'),
      c('last_fired_at', 'TEXT', TS),
      c('last_success_job_id', 'TEXT'),
      c('last_success_at', 'TEXT', TS),
      c('next_run_at', 'TEXT', TS),
      c('updated_at', 'TEXT', TSNN),
      // Ours: what the schedule is ("every 15m", "cron */5 * * * * Europe/Paris") and its nominal interval,
      // so `schedules list` and `doctor` can judge lateness without the config file.
      c('spec', 'TEXT', {ours: true}),
      c('interval_ms', 'INTEGER', {ours: true}),
    ],
  },
  {
    // Ours: the engines that run against this database, each with a heartbeat. On PostgreSQL, where many
    // engines on many hosts share one queue, an engine whose heartbeat is older than the lease is dead and a
    // live one recovers its running jobs. stopped_at is set by a clean stop (or by the engine that found it
    // dead); the row stays for `doctor` and `explain` until prune removes it.
    name: 'engines',
    primaryKey: ['id'],
    ours: true,
    columns: [
      c('id', 'TEXT'),
      c('host', 'TEXT', NN),
      c('pid', 'INTEGER', NN),
      // The PID namespace of the process (/proc/self/ns/pid): a PID is judged alive only from the same one
      // (two containers may share a host name).
      c('pid_namespace', 'TEXT'),
      c('started_at', 'TEXT', TSNN),
      c('heartbeat_at', 'TEXT', TSNN),
      c('version', 'TEXT', NN),
      c('stopped_at', 'TEXT', TS),
      c('stop_reason', 'TEXT'),
    ],
  },
  // The original's soft tables: created on fresh databases, not required on existing ones.
  {
    name: 'job_stopwatch',
    soft: true,
    primaryKey: ['id'],
    autoincrement: true,
    columns: [
      c('id', 'INTEGER'),
      c('job_id', 'TEXT', NN),
      c('plugin', 'TEXT', NN),
      c('pipeline', 'TEXT'),
      c('step_id', 'TEXT'),
      c('pipeline_instance_id', 'TEXT'),
      c('attempt', 'INTEGER', NN),
      c('enter_wall_ns', 'INTEGER', NN),
      c('exit_wall_ns', 'INTEGER', NN),
      c('dur_ns', 'INTEGER', NN),
      c('runtime_pre_ns', 'INTEGER', NN),
      c('runtime_post_ns', 'INTEGER', NN),
      c('status', 'TEXT', NN),
      c('subs_json', 'TEXT', {notNull: true, default: "'[]'"}),
      c('recorded_at', 'TEXT', TSNN),
    ],
  },
  {
    name: 'job_stopwatch_rollup_daily',
    soft: true,
    primaryKey: ['id'],
    autoincrement: true,
    unique: [['plugin', 'pipeline', 'step_id', 'status', 'day_utc']],
    columns: [
      c('id', 'INTEGER'),
      c('plugin', 'TEXT', NN),
      c('pipeline', 'TEXT', {notNull: true, default: "''"}),
      c('step_id', 'TEXT', {notNull: true, default: "''"}),
      c('status', 'TEXT', NN),
      c('day_utc', 'TEXT', NN),
      c('sample_count', 'INTEGER', NN),
      c('sum_dur_ns', 'INTEGER', NN),
      c('min_dur_ns', 'INTEGER', NN),
      c('max_dur_ns', 'INTEGER', NN),
      c('p50_dur_ns', 'INTEGER', NN),
      c('p90_dur_ns', 'INTEGER', NN),
      c('p99_dur_ns', 'INTEGER', NN),
      c('created_at', 'TEXT', TSNN),
    ],
  },
  {
    name: 'janitor_heartbeat',
    soft: true,
    primaryKey: ['name'],
    columns: [
      c('name', 'TEXT'),
      c('last_run_at', 'TEXT', TSNN),
      c('last_status', 'TEXT', NN),
      c('last_error', 'TEXT', {notNull: true, default: "''"}),
      c('rows_rolled_up', 'INTEGER', {notNull: true, default: '0'}),
      c('rows_deleted', 'INTEGER', {notNull: true, default: '0'}),
    ],
  },
  {
    name: 'vault_audit',
    soft: true,
    primaryKey: ['id'],
    autoincrement: true,
    columns: [
      c('id', 'INTEGER'),
      c('op', 'TEXT', NN),
      c('principal', 'TEXT'),
      c('secret_name', 'TEXT'),
      c('actor', 'TEXT'),
      c('outcome', 'TEXT', NN),
      c('detail', 'TEXT'),
      c('created_at', 'TEXT', TSNN),
    ],
  },
]

/** The terminal statuses as an SQL list, for partial-index predicates. */
export const TERMINAL_IN_SQL = `(${TERMINAL_STATUSES.map((s) => `'${s}'`).join(', ')})`

export const REQUIRED_TABLES = TABLES.filter((t) => !t.soft).map((t) => t.name)

export function tableDef(name: string): TableDef {
  const t = TABLES.find((x) => x.name === name)
  if (!t) throw new Error(`unknown table ${name}`)
  return t
}

export function columnDdl(col: ColumnDef): string {
  let s = `${col.name} ${col.type}`
  if (col.notNull) s += ' NOT NULL'
  if (col.default !== undefined) s += ` DEFAULT ${col.default}`
  return s
}

export function createTableSql(t: TableDef): string {
  const parts: string[] = []
  for (const col of t.columns) {
    const isPk = t.primaryKey.length === 1 && t.primaryKey[0] === col.name
    const pk = isPk ? ` PRIMARY KEY${t.autoincrement ? ' AUTOINCREMENT' : ''}` : ''
    parts.push(columnDdl(col).replace(`${col.name} ${col.type}`, `${col.name} ${col.type}${pk}`))
  }
  if (t.primaryKey.length > 1) parts.push(`PRIMARY KEY (${t.primaryKey.join(', ')})`)
  for (const u of t.unique ?? []) parts.push(`UNIQUE (${u.join(', ')})`)
  return `CREATE TABLE IF NOT EXISTS ${t.name} (\n  ${parts.join(',\n  ')}\n)`
}

/** A column added to an existing table must be nullable or carry a default (SQLite's ALTER TABLE rule). */
export function addColumnSql(table: string, col: ColumnDef): string {
  const def = col.notNull && col.default === undefined ? {...col, default: col.type === 'INTEGER' ? '0' : "''"} : col
  return `ALTER TABLE ${table} ADD COLUMN ${columnDdl(def)}`
}
