import {parseTs} from '../schema/time.js'
import type {Job, JobLogRow} from '../schema/types.js'
import {parseJsonOr} from '../lib/json.js'

/**
 * The original's wire format (spec decision 18): its field names (`job_id`, `status`, `plugin`, …), times as
 * RFC 3339 UTC with milliseconds, converted here from the stored layout; results as JSON when they are JSON.
 */

/** `2026-11-30 14:20:52.081` → `2026-11-30T14:20:52.081Z`; null stays null. */
export function rfc3339(ts: string | null | undefined): string | null {
  return parseTs(ts)?.toISOString() ?? null
}

/** A stored result (a plugin's stdout): its JSON, or the text when it is not JSON. */
export function resultOf(text: string | null | undefined): unknown {
  if (text == null) return null
  return parseJsonOr<unknown>(text, text)
}

export interface WireJob {
  job_id: string
  parent_job_id: string | null
  plugin: string
  command: string
  status: string
  attempt: number
  /** null for a job known only from job_log. */
  max_attempts: number | null
  submitted_by: string
  created_at: string | null
  started_at: string | null
  completed_at: string | null
  next_retry_at: string | null
  last_error: string | null
  result?: unknown
}

export function wireJob(j: Job, log?: JobLogRow, withResult = true): WireJob {
  return {
    job_id: j.id,
    parent_job_id: j.parent_job_id,
    plugin: j.plugin,
    command: j.command,
    status: j.status,
    attempt: j.attempt,
    max_attempts: j.max_attempts,
    submitted_by: j.submitted_by,
    created_at: rfc3339(j.created_at),
    started_at: rfc3339(j.started_at),
    completed_at: rfc3339(j.completed_at),
    next_retry_at: rfc3339(j.next_retry_at),
    last_error: j.last_error,
    ...(withResult ? {result: resultOf(log?.result)} : {}),
  }
}

/** A job known only from job_log (pruned from the queue): its newest attempt. */
export function wireLoggedJob(l: JobLogRow): WireJob {
  return {
    job_id: l.job_id ?? l.id,
    parent_job_id: l.parent_job_id,
    plugin: l.plugin,
    command: l.command,
    status: l.status,
    attempt: l.attempt,
    max_attempts: null,
    submitted_by: l.submitted_by,
    created_at: rfc3339(l.created_at),
    started_at: rfc3339(l.started_at),
    completed_at: rfc3339(l.completed_at),
    next_retry_at: null,
    last_error: l.last_error,
    result: resultOf(l.result),
  }
}

export function wireLog(l: JobLogRow, withResult: boolean) {
  return {
    log_id: l.id,
    job_id: l.job_id,
    plugin: l.plugin,
    command: l.command,
    status: l.status,
    attempt: l.attempt,
    submitted_by: l.submitted_by,
    created_at: rfc3339(l.created_at),
    started_at: rfc3339(l.started_at),
    completed_at: rfc3339(l.completed_at),
    last_error: l.last_error,
    stderr: l.stderr,
    ...(withResult ? {result: resultOf(l.result)} : {}),
  }
}
