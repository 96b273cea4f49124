import type {Insertable, Selectable} from 'kysely'

import type {Db} from '../../src/schema/db.js'
import {uuidv7} from '../../src/schema/ids.js'
import {formatTs} from '../../src/schema/time.js'
import type {Database} from '../../src/schema/types.js'

/**
 * Fixture factories (conventions 12): each returns a named row with every column set, inserted into a
 * real database. Times are given as offsets from now in ms (negative = past) so the reference's
 * datetime('now', …) queries see them the way the commands do.
 */

export const ago = (ms: number, base = Date.now()): string => formatTs(new Date(base - ms))
export const MIN = 60_000
export const HOUR = 3_600_000
export const DAY = 86_400_000

type Row<T extends keyof Database> = Selectable<Database[T]>

function insert<T extends keyof Database>(db: Db, table: T, row: Insertable<Database[T]>): void {
  db.run(db.k.insertInto(table).values(row as never))
}

export function insertJob(db: Db, o: Partial<Row<'job_queue'>> = {}): Row<'job_queue'> {
  const row: Row<'job_queue'> = {
    id: uuidv7(),
    plugin: 'my-plugin',
    command: 'poll',
    payload: '{}',
    status: 'queued',
    attempt: 1,
    max_attempts: 4,
    submitted_by: 'ductile',
    dedupe_key: null,
    created_at: ago(10 * MIN),
    started_at: null,
    completed_at: null,
    next_retry_at: null,
    last_error: null,
    parent_job_id: null,
    source_event_id: null,
    event_context_id: null,
    enqueued_config_snapshot_id: null,
    started_config_snapshot_id: null,
    ...o,
  }
  insert(db, 'job_queue', row)
  return row
}

export function insertTransition(db: Db, o: Partial<Row<'job_transitions'>> & {job_id: string}): Row<'job_transitions'> {
  const row = {from_status: null, to_status: 'queued', reason: null, created_at: ago(0), ...o}
  const {id: _ignored, ...values} = row as Row<'job_transitions'>
  const r = db.get(db.k.insertInto('job_transitions').values(values).returning('id'))
  return {...(values as Row<'job_transitions'>), id: Number(r?.id)}
}

export function insertAttempt(db: Db, o: Partial<Row<'job_attempts'>> & {job_id: string}): Row<'job_attempts'> {
  const row = {attempt: 1, created_at: ago(0), engine_pid: null, plugin_pid: null, plugin_started_at: null, engine_id: null, ...o}
  const {id: _ignored, ...values} = row as Row<'job_attempts'>
  const r = db.get(db.k.insertInto('job_attempts').values(values).returning('id'))
  return {...(values as Row<'job_attempts'>), id: Number(r?.id)}
}

export function insertLog(db: Db, o: Partial<Row<'job_log'>> = {}): Row<'job_log'> {
  const jobId = o.job_id ?? uuidv7()
  const attempt = o.attempt ?? 1
  const completed = o.completed_at ?? ago(5 * MIN)
  const row: Row<'job_log'> = {
    id: `${jobId}-${attempt}`,
    job_id: jobId,
    plugin: 'my-plugin',
    command: 'poll',
    status: 'succeeded',
    result: '{"status":"ok","result":"done"}',
    attempt,
    submitted_by: 'ductile',
    created_at: ago(10 * MIN),
    completed_at: completed,
    last_error: null,
    stderr: '',
    parent_job_id: null,
    source_event_id: null,
    event_context_id: null,
    enqueued_config_snapshot_id: null,
    started_config_snapshot_id: null,
    started_at: ago(6 * MIN),
    ...o,
  }
  insert(db, 'job_log', row)
  return row
}

export function insertFact(db: Db, o: Partial<Row<'plugin_facts'>> = {}): Row<'plugin_facts'> {
  const row: Row<'plugin_facts'> = {
    id: uuidv7(),
    seq: 1,
    plugin_name: 'file_watch',
    fact_type: 'file_watch.snapshot',
    job_id: uuidv7(),
    command: 'poll',
    fact_json: '{"files":1}',
    created_at: ago(MIN),
    ...o,
  }
  insert(db, 'plugin_facts', row)
  return row
}

export function insertState(db: Db, o: Partial<Row<'plugin_state'>> = {}): Row<'plugin_state'> {
  const row: Row<'plugin_state'> = {plugin_name: 'my-plugin', state: '{"cursor":42}', updated_at: ago(MIN), ...o}
  insert(db, 'plugin_state', row)
  return row
}

export function insertBreaker(db: Db, o: Partial<Row<'circuit_breakers'>> = {}): Row<'circuit_breakers'> {
  const row: Row<'circuit_breakers'> = {
    plugin: 'my-plugin',
    command: 'poll',
    state: 'open',
    failure_count: 3,
    opened_at: ago(5 * MIN),
    last_failure_at: ago(5 * MIN),
    last_job_id: uuidv7(),
    updated_at: ago(5 * MIN),
    ...o,
  }
  insert(db, 'circuit_breakers', row)
  return row
}

export function insertBreakerTransition(db: Db, o: Partial<Row<'circuit_breaker_transitions'>> = {}): Row<'circuit_breaker_transitions'> {
  const row: Row<'circuit_breaker_transitions'> = {
    id: uuidv7(),
    plugin: 'my-plugin',
    command: 'poll',
    from_state: 'closed',
    to_state: 'open',
    failure_count: 3,
    reason: 'failure_threshold',
    job_id: uuidv7(),
    created_at: ago(5 * MIN),
    ...o,
  }
  insert(db, 'circuit_breaker_transitions', row)
  return row
}

export function insertSchedule(db: Db, o: Partial<Row<'schedule_entries'>> = {}): Row<'schedule_entries'> {
  const row: Row<'schedule_entries'> = {
    plugin: 'my-plugin',
    schedule_id: 'default',
    command: 'poll',
    status: 'active',
    reason: null,
    last_fired_at: ago(10 * MIN),
    last_success_job_id: uuidv7(),
    last_success_at: ago(9 * MIN),
    next_run_at: ago(-5 * MIN),
    updated_at: ago(9 * MIN),
    spec: 'every 15m',
    interval_ms: 15 * MIN,
    ...o,
  }
  insert(db, 'schedule_entries', row)
  return row
}

export function insertContext(db: Db, o: Partial<Row<'event_context'>> = {}): Row<'event_context'> {
  const row: Row<'event_context'> = {
    id: uuidv7(),
    parent_id: null,
    pipeline_name: 'weather-alert',
    step_id: '',
    accumulated_json: '{"ductile":{"pipeline_instance_id":"p1","route_depth":0}}',
    created_at: ago(MIN),
    ...o,
  }
  insert(db, 'event_context', row)
  return row
}
