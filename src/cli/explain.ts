import {DEFAULT_RETRY} from '../config/defaults.js'
import {isMap, parseJsonOr} from '../lib/json.js'
import type {BreakerRecord, JobRecord, ScheduleRecord} from '../queries/explain.js'
import {formatTs, parseDuration, parseTs} from '../schema/time.js'
import type {JobLogRow, JobTransition} from '../schema/types.js'

/**
 * A job's story, told only from its rows (so it works on a copied file, after the engine is gone): who
 * enqueued it and why, each attempt and how it ended, the gaps between retries, crash recovery, and one
 * sentence at the top. Pure: `explain job` reads the rows (queries/explain.ts) and this tells them.
 */

/** One step of the story and the rows it is told from (`table#id`). */
export interface ExplainEvent {
  at: string
  kind: 'enqueued' | 'config' | 'started' | 'retry' | 'recovered' | 'succeeded' | 'failed' | 'timed_out' | 'dead' | 'cancelled' | 'skipped' | 'deduplicated'
  text: string
  rows: string[]
}

export interface JobExplanation {
  job_id: string
  plugin: string | null
  command: string | null
  status: string | null
  summary: string
  events: ExplainEvent[]
}

/** 250 ms, 1.5 s, 30 s, 90 s, 4 min 10 s, 2 h 5 min. */
export function duration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '?'
  if (ms < 1000) return `${Math.round(ms)} ms`
  if (ms < 10_000) return `${(ms / 1000).toFixed(1).replace(/\.0$/, '')} s`
  const s = Math.round(ms / 1000)
  if (s < 120) return `${s} s`
  const m = Math.floor(s / 60)
  if (m < 60) return s % 60 ? `${m} min ${s % 60} s` : `${m} min`
  return m % 60 ? `${Math.floor(m / 60)} h ${m % 60} min` : `${Math.floor(m / 60)} h`
}

const between = (a: string | null | undefined, b: string | null | undefined): number =>
  (parseTs(b)?.getTime() ?? Number.NaN) - (parseTs(a)?.getTime() ?? Number.NaN)

/** "a", "a and b", "a, b and c". */
function list(items: string[]): string {
  return items.length <= 1 ? (items[0] ?? '') : `${items.slice(0, -1).join(', ')} and ${items[items.length - 1]}`
}

const INTERRUPTED = /^interrupted: /

function origin(r: JobRecord, submittedBy: string, at: string): ExplainEvent {
  const rows: string[] = []
  if (r.job) rows.push(`job_queue#${r.id}`)
  const first = r.transitions[0]
  if (first) rows.push(`job_transitions#${first.id}`)
  else if (r.logs[0]) rows.push(`job_log#${r.logs[0].id}`)
  const p = r.parent
  const parentText = p ? `job ${p.id} (${p.plugin} ${p.command}, ${p.status})` : null
  const leaf = r.lineage[r.lineage.length - 1]
  let text: string
  if (submittedBy === 'route' && leaf?.pipeline_name) {
    rows.push(`event_context#${leaf.id}`)
    const baggage = Object.keys(safeJson(leaf.accumulated_json) ?? {})
    text = `enqueued as step ${leaf.step_id || '?'} of pipeline ${leaf.pipeline_name}${parentText ? `, by an event of ${parentText}` : ''}${baggage.length ? `; baggage: ${baggage.join(', ')}` : ''}`
  } else if (submittedBy === 'route') text = `enqueued by an event${parentText ? ` of ${parentText}` : ''}`
  else if (submittedBy === 'hook') text = `enqueued by a lifecycle hook${parentText ? ` when ${parentText} ended` : ''}`
  else if (submittedBy === 'cli')
    text = p ? `enqueued by an operator as a retry of ${parentText} (ductile jobs retry)` : 'enqueued by an operator (ductile jobs enqueue)'
  else if (submittedBy === 'api' && leaf?.pipeline_name) {
    rows.push(`event_context#${leaf.id}`)
    text = `enqueued over the HTTP API as step ${leaf.step_id || '?'} of pipeline ${leaf.pipeline_name} (POST /pipeline/${leaf.pipeline_name})`
  } else if (submittedBy === 'api') text = 'enqueued over the HTTP API'
  else if (submittedBy.startsWith('webhook:')) text = `enqueued by a signed delivery to webhook ${submittedBy.slice('webhook:'.length)}`
  else if (r.fired) {
    rows.push(`schedule_decisions#${r.fired.id}`)
    text = `enqueued by schedule ${r.fired.schedule_id} of engine "${submittedBy}"${r.fired.decision === 'catch_up' ? ', catching up a run missed while no engine ran' : ''}${r.fired.slot ? `, for the run due at ${r.fired.slot}` : ''}`
  } else text = `enqueued by the scheduler of engine "${submittedBy}"`
  return {at, kind: 'enqueued', text, rows}
}

/** A stored JSON object (baggage, a snapshot's config), or null. */
function safeJson(text: string | null | undefined): Record<string, unknown> | null {
  const v = parseJsonOr(text, null)
  return isMap(v) ? v : null
}

/** The retry backoff base the job's retries were planned with: its plugin's in the config snapshot, else the default. */
function backoffBase(r: JobRecord): {ms: number; from: string} | null {
  const snap = r.snapshots.started ?? r.snapshots.enqueued
  const plugin = r.job?.plugin ?? r.logs[0]?.plugin
  if (!snap || !plugin) return null
  const plugins = safeJson(snap.sanitized_config)?.plugins as Record<string, {retry?: {backoff_base?: unknown}}> | undefined
  const base = plugins?.[plugin]?.retry?.backoff_base
  if (base === undefined) return {ms: DEFAULT_RETRY.backoff_base_ms, from: `the default (config snapshot ${snap.id} sets none)`}
  try {
    return {ms: parseDuration(base as string | number), from: `config snapshot ${snap.id}`}
  } catch {
    return null
  }
}

/** How the delay before the retry after `attempt` was planned (the engine's retryDelay). */
function planned(r: JobRecord, attempt: number): string {
  const base = backoffBase(r)
  if (!base) return ''
  return ` (planned: backoff ${duration(base.ms)} × 2^${attempt - 1} = ${duration(base.ms * 2 ** (attempt - 1))}, plus up to ${duration(base.ms / 4)} of jitter; retry.backoff_base from ${base.from})`
}

/** The job_log row of an attempt, if it has one. */
function logOf(r: JobRecord, attempt: number): JobLogRow | undefined {
  return r.logs.find((l) => l.attempt === attempt)
}

/** The attempt a transition out of running ended (the attempts in order; the Nth `→ running` starts attempt N's run). */
function endEvent(r: JobRecord, t: JobTransition, attempt: number, nextStart: JobTransition | undefined): ExplainEvent {
  const log = logOf(r, attempt)
  const rows = [`job_transitions#${t.id}`, ...(log ? [`job_log#${log.id}`] : [])]
  const ran = log?.started_at ? ` after ${duration(between(log.started_at, log.completed_at))}` : ''
  const why = t.reason ?? log?.last_error ?? null
  const at = t.created_at
  switch (t.to_status) {
    case 'succeeded':
      return {at, kind: 'succeeded', text: `attempt ${attempt} succeeded${ran}`, rows}
    case 'queued':
      if (why && INTERRUPTED.test(why))
        return {
          at,
          kind: 'recovered',
          text: `attempt ${attempt} was interrupted: the engine stopped while it ran, and the next engine start put the job back in the queue`,
          rows,
        }
      return {
        at,
        kind: 'retry',
        text: `attempt ${attempt} failed${ran}: ${why ?? 'no error recorded'}; retried${nextStart ? ` ${duration(between(at, nextStart.created_at))} later` : ''}${planned(r, attempt)}`,
        rows,
      }
    case 'timed_out':
      return {at, kind: 'timed_out', text: `attempt ${attempt} timed out${ran}: ${why ?? 'no error recorded'}`, rows}
    case 'dead':
      return {at, kind: 'dead', text: `attempt ${attempt} ended dead: ${why ?? 'no reason recorded'}`, rows}
    case 'skipped':
      return {at, kind: 'skipped', text: `skipped without running its plugin: ${why ?? 'no reason recorded'}`, rows}
    default:
      return {at, kind: 'failed', text: `attempt ${attempt} failed${ran}: ${why ?? 'no error recorded'}`, rows}
  }
}

/** The story of one job from its rows. */
export function explainJob(r: JobRecord): JobExplanation {
  const j = r.job
  const last = r.logs[r.logs.length - 1]
  const plugin = j?.plugin ?? last?.plugin ?? null
  const command = j?.command ?? last?.command ?? null
  const lastT = r.transitions[r.transitions.length - 1]
  const status = j?.status ?? lastT?.to_status ?? last?.status ?? null
  const maxAttempts = j?.max_attempts ?? null
  const events: ExplainEvent[] = []
  const createdAt = j?.created_at ?? r.transitions[0]?.created_at ?? last?.created_at ?? ''
  events.push(origin(r, j?.submitted_by ?? last?.submitted_by ?? '?', createdAt))
  const {enqueued, started} = r.snapshots
  if (enqueued)
    events.push({
      at: createdAt,
      kind: 'config',
      text: `enqueued under config snapshot ${enqueued.id} (${enqueued.reason}, ${enqueued.loaded_at})`,
      rows: [`config_snapshots#${enqueued.id}`],
    })
  // Walk the transitions: each `→ running` starts the next attempt; what leaves running ends it.
  let attempt = 0
  const gaps: number[] = []
  const errors: string[] = []
  for (let i = 0; i < r.transitions.length; i++) {
    const t = r.transitions[i] as JobTransition
    if (t.to_status === 'running') {
      attempt++
      const a = r.attempts.find((x) => x.attempt === attempt)
      const pids = [a?.engine_pid ? `engine PID ${a.engine_pid}` : null, a?.plugin_pid ? `plugin PID ${a.plugin_pid}` : null].filter(Boolean)
      const who = pids.length ? ` (${pids.join(', ')})` : ''
      events.push({
        at: t.created_at,
        kind: 'started',
        text: `attempt ${attempt}${maxAttempts ? ` of ${maxAttempts}` : ''} started${who}`,
        rows: [`job_transitions#${t.id}`, ...(a ? [`job_attempts#${a.id}`] : [])],
      })
      continue
    }
    if (t.from_status === 'running') {
      const nextStart = r.transitions.slice(i + 1).find((x) => x.to_status === 'running')
      const e = endEvent(r, t, attempt, nextStart)
      events.push(e)
      if (e.kind === 'retry' && nextStart) gaps.push(between(t.created_at, nextStart.created_at))
      if (e.kind !== 'succeeded' && e.kind !== 'recovered' && e.kind !== 'skipped')
        errors.push(t.reason ?? logOf(r, attempt)?.last_error ?? 'no error recorded')
      continue
    }
    if (t.from_status === 'queued' && t.to_status === 'dead')
      events.push({
        at: t.created_at,
        kind: 'cancelled',
        text: `cancelled before it ran again: ${t.reason ?? j?.last_error ?? 'no reason recorded'}`,
        rows: [`job_transitions#${t.id}`],
      })
  }
  // Pruned history (transitions are kept 30 days, like job_log, but a copied or trimmed file may lack them):
  // the attempts as job_log recorded them.
  if (r.transitions.length === 0) {
    for (const [i, l] of r.logs.entries()) {
      attempt = l.attempt
      const ran = l.started_at ? ` after ${duration(between(l.started_at, l.completed_at))}` : ''
      const next = r.logs[i + 1]
      const kind: ExplainEvent['kind'] =
        l.status === 'succeeded' || l.status === 'skipped' || l.status === 'timed_out' || l.status === 'dead' ? l.status : next ? 'retry' : 'failed'
      const text =
        kind === 'succeeded'
          ? `attempt ${l.attempt} succeeded${ran}`
          : kind === 'skipped'
            ? `skipped without running its plugin: ${l.last_error ?? 'no reason recorded'}`
            : `attempt ${l.attempt} ${kind === 'timed_out' ? 'timed out' : kind === 'dead' ? 'ended dead' : 'failed'}${ran}: ${l.last_error ?? 'no error recorded'}${next?.started_at ? `; retried ${duration(between(l.completed_at, next.started_at))} later` : ''}`
      events.push({at: l.completed_at, kind, text, rows: [`job_log#${l.id}`]})
      if (kind !== 'succeeded' && kind !== 'skipped') errors.push(l.last_error ?? 'no error recorded')
      if (next?.started_at) gaps.push(between(l.completed_at, next.started_at))
    }
  }
  for (const d of r.dedupeHits)
    events.push({
      at: d.created_at,
      kind: 'deduplicated',
      text: `an enqueue by ${d.submitted_by === 'cli' ? 'an operator' : d.submitted_by === 'route' ? 'a pipeline event' : d.submitted_by} was deduplicated against this job${d.dedupe_key ? ` (dedupe key ${d.dedupe_key})` : ''}: no new job`,
      rows: [`dedupe_hits#${d.id}`],
    })
  // started_config_snapshot_id is the snapshot of the engine that started the latest attempt.
  if (started && started.id !== enqueued?.id) {
    const lastStart = [...r.transitions].reverse().find((t) => t.to_status === 'running')
    const since = !enqueued ? '' : started.config_hash === enqueued.config_hash ? ' (another snapshot of the same config)' : ': the config changed in between'
    events.push({
      at: lastStart?.created_at ?? j?.started_at ?? createdAt,
      kind: 'config',
      text: `${attempt > 1 ? `attempt ${attempt} ` : ''}started under ${enqueued ? 'a different config snapshot' : 'config snapshot'} ${started.id} (${started.reason}, ${started.loaded_at})${since}`,
      rows: [`config_snapshots#${started.id}`],
    })
  }
  // In time order (a stable sort: what happened at one instant keeps the order it was told in).
  events.sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0))
  return {job_id: r.id, plugin, command, status, summary: summarise(r, status, attempt, maxAttempts, errors, gaps, events), events}
}

function summarise(
  r: JobRecord,
  status: string | null,
  attempts: number,
  max: number | null,
  errors: string[],
  gaps: number[],
  events: ExplainEvent[],
): string {
  const of = max ? ` of ${max}` : ''
  const distinct = [...new Set(errors)]
  const why = distinct.length === 0 ? '' : distinct.length === 1 && errors.length > 1 ? `: ${distinct[0]} each time` : `: ${errors[errors.length - 1] ?? ''}`
  const apart = gaps.length ? `; retries were ${list(gaps.map(duration))} apart` : ''
  const recovered = events.some((e) => e.kind === 'recovered') ? '; an engine stop interrupted an attempt, and the next start requeued it' : ''
  const j = r.job
  switch (status) {
    case 'succeeded':
      return attempts <= 1
        ? `succeeded on the first attempt${recovered}`
        : `succeeded on attempt ${attempts}${of}${errors.length ? ` after ${errors.length} failed${why}` : ''}${apart}${recovered}`
    case 'failed':
    case 'timed_out': {
      const verb = status === 'timed_out' ? 'timed out' : 'failed'
      const early = max && attempts < max ? ` (not retried: the error was not retryable, or retries were off)` : ''
      return `${verb} after ${attempts}${of} attempts${why}${apart}${early}${recovered}`
    }
    case 'dead': {
      const cancelled = events.find((e) => e.kind === 'cancelled')
      if (cancelled) return `dead: ${cancelled.text}`
      return `dead after ${attempts}${of} attempts: ${j?.last_error ?? errors[errors.length - 1] ?? 'no reason recorded'}${recovered}`
    }
    case 'skipped':
      return events.find((e) => e.kind === 'skipped')?.text ?? 'skipped'
    case 'queued':
      if (attempts === 0) return `queued since ${j?.created_at ?? '?'}, not started yet`
      return `waiting to retry: attempt ${attempts + 1}${of}${j?.next_retry_at ? ` at ${j.next_retry_at}` : ''}${why}${apart}${recovered}`
    case 'running':
      return `running attempt ${attempts}${of} since ${j?.started_at ?? '?'}${recovered}`
    default:
      return `${status ?? 'unknown'} after ${attempts} attempts`
  }
}

/** A breaker's state and why, told from its rows. */
export interface BreakerExplanation {
  plugin: string
  command: string
  state: string
  summary: string
  threshold: number
  reset_after_ms: number
  /** When the scheduler lets a probe through (open breakers only). */
  probe_after: string | null
  events: ExplainEvent[]
}

/** The threshold and cooldown in force: from the config snapshot's plugin entry, else the defaults. */
function breakerConfig(r: BreakerRecord, defaults: {threshold: number; reset_after_ms: number}): {threshold: number; reset_after_ms: number; from: string} {
  const cfg = safeJson(r.snapshot?.sanitized_config)
  const plugins = cfg?.plugins as Record<string, {circuit_breaker?: {threshold?: unknown; reset_after?: unknown}}> | undefined
  const cb = plugins?.[r.plugin]?.circuit_breaker
  let reset = defaults.reset_after_ms
  try {
    if (cb?.reset_after !== undefined) reset = parseDuration(cb.reset_after as string | number)
  } catch {
    // a snapshot the engine accepted has a valid one; keep the default otherwise
  }
  const threshold = typeof cb?.threshold === 'number' ? cb.threshold : defaults.threshold
  const from = r.snapshot ? (cb ? `config snapshot ${r.snapshot.id}` : `the default (config snapshot ${r.snapshot.id} sets none)`) : 'the default'
  return {threshold, reset_after_ms: reset, from}
}

const TRANSITION_TEXT: Record<string, string> = {
  failure_threshold: 'opened: the failures in a row reached the threshold',
  cooldown_elapsed: 'half-opened: the cooldown passed, the next scheduled run is the probe',
  success: 'closed: a run succeeded',
  manual_reset: 'closed by an operator (ductile breakers reset)',
}

/** Why a breaker is in its state now. `now` decides whether a probe is due. */
export function explainBreaker(r: BreakerRecord, defaults: {threshold: number; reset_after_ms: number}, now: Date = new Date()): BreakerExplanation {
  const {threshold, reset_after_ms, from} = breakerConfig(r, defaults)
  const b = r.breaker
  const events: ExplainEvent[] = r.transitions.map((t) => ({
    at: t.created_at,
    kind: t.to_state === 'open' ? 'failed' : t.to_state === 'closed' ? 'succeeded' : 'retry',
    text: `${t.from_state ?? 'closed'} → ${t.to_state}: ${TRANSITION_TEXT[t.reason] ?? t.reason} (${t.failure_count} failures${t.job_id ? `, job ${t.job_id}` : ''})`,
    rows: [`circuit_breaker_transitions#${t.id}`],
  }))
  for (const f of [...r.counted].reverse())
    events.push({
      at: f.completed_at,
      kind: 'failed',
      text: `a failure that counts: job ${f.job_id} ${f.status}: ${f.last_error ?? 'no error recorded'}`,
      rows: [`job_log#${f.id}`],
    })
  events.sort((x, y) => (x.at < y.at ? -1 : x.at > y.at ? 1 : 0))
  const state = b?.state ?? 'closed'
  const opened = b?.opened_at ? parseTs(b.opened_at) : null
  const probeAfter = state === 'open' && opened ? new Date(opened.getTime() + reset_after_ms) : null
  const probe_after = probeAfter ? formatTs(probeAfter) : null
  const failures = r.counted.map((f) => `job ${f.job_id}${f.last_error ? ` (${f.last_error})` : ''}`)
  const last = r.transitions[r.transitions.length - 1]
  let summary: string
  if (!b) summary = `closed: it never tripped (threshold ${threshold} failures in a row, from ${from})`
  else if (state === 'open')
    summary = `open since ${b.opened_at}: ${b.failure_count} failures in a row reached the threshold of ${threshold} (from ${from})${failures.length ? `: ${list(failures)}` : ''}; ${
      probeAfter && probeAfter.getTime() <= now.getTime()
        ? `its cooldown of ${duration(reset_after_ms)} has passed: the next tick lets one probe through`
        : `one probe may run after ${probe_after} (cooldown ${duration(reset_after_ms)})`
    }`
  else if (state === 'half_open')
    summary = `half open since ${last?.created_at ?? b.updated_at}: the cooldown passed; the next scheduled run is the probe (a success closes it, a failure opens it again)`
  else if (last?.reason === 'manual_reset') summary = `closed: reset by an operator (ductile breakers reset) at ${last.created_at}`
  else if (last?.reason === 'success')
    summary = `closed at ${last.created_at}: job ${last.job_id ?? '?'} succeeded${b.failure_count ? `; ${b.failure_count} failures in a row since (threshold ${threshold})` : ''}`
  else summary = `closed: ${b.failure_count} failures in a row so far, threshold ${threshold} (from ${from})`
  return {plugin: r.plugin, command: r.command, state, summary, threshold, reset_after_ms, probe_after, events}
}

/** Why a schedule fired when it did, or why it has not since. */
export interface ScheduleExplanation {
  plugin: string
  schedule_id: string
  status: string
  summary: string
  events: ExplainEvent[]
}

/** A recorded reason not to fire, as an operator reads it. */
const SKIP_TEXT: Record<string, string> = {
  schedule_paused_manual: 'paused by an operator (ductile schedules pause)',
  schedule_exhausted: 'a one-shot schedule that has run',
  invalid_schedule_config: 'its config is invalid',
  scheduled_handle_disallowed: 'handle cannot be scheduled',
  command_not_supported: 'the plugin has no such command',
  outside_day_constraint: 'a not_on day',
  outside_time_window: 'outside its only_between window',
  circuit_open: 'its circuit breaker is open',
  circuit_half_open_probe_running: "its breaker's probe is still running",
  already_running: 'its previous job is still running (if_running: skip)',
  outstanding_limit: 'max_outstanding_polls jobs are already queued (if_running: queue)',
  deduplicated: 'the job it enqueued was a duplicate',
  missed_while_stopped: 'runs due before the engine started were not caught up (catch_up: skip)',
}

export function explainSchedule(r: ScheduleRecord, now: Date = new Date()): ScheduleExplanation {
  const e = r.entry
  const events: ExplainEvent[] = r.decisions.map((d) => ({
    at: d.created_at,
    kind: d.decision === 'skipped' ? 'skipped' : 'started',
    text:
      d.decision === 'skipped'
        ? `skipped: ${SKIP_TEXT[d.reason ?? ''] ?? d.reason ?? 'no reason recorded'}${d.detail ? ` (${d.detail})` : ''}`
        : `${d.decision === 'catch_up' ? 'caught up a missed run' : 'fired'}${d.slot ? ` for ${d.slot}` : ''}${d.job_id ? `: job ${d.job_id}` : ''}`,
    rows: [`schedule_decisions#${d.id}`],
  }))
  const last = r.decisions[r.decisions.length - 1]
  const lastFire = [...r.decisions].reverse().find((d) => d.decision !== 'skipped')
  const fired = e.last_fired_at
    ? `last fired at ${e.last_fired_at}${r.lastJob ? ` (job ${r.lastJob.id}, ${r.lastJob.status}${r.lastJob.last_error ? `: ${r.lastJob.last_error}` : ''})` : ''}`
    : 'never fired'
  // An every-schedule without a success has no next_run_at: it is due at every tick until something stops it.
  const next = e.next_run_at
    ? (parseTs(e.next_run_at)?.getTime() ?? 0) <= now.getTime()
      ? 'due now'
      : `next run at ${e.next_run_at}`
    : e.interval_ms
      ? 'due now'
      : 'no next run'
  let summary: string
  if (e.status === 'paused_manual')
    summary = `paused by an operator (ductile schedules pause) since ${e.updated_at}${e.reason ? `: ${e.reason}` : ''}; ${fired}`
  else if (e.status === 'exhausted') summary = `exhausted: a one-shot schedule that ran; ${fired}`
  else if (e.status === 'paused_invalid')
    summary = `not running: ${SKIP_TEXT[e.reason ?? ''] ?? e.reason ?? 'invalid'}${last?.detail ? ` (${last.detail})` : ''}; ${fired}`
  else {
    const since = last && last.decision === 'skipped' && (!lastFire || last.id > lastFire.id) ? last : null
    const why = since
      ? `; not fired since ${since.created_at}: ${SKIP_TEXT[since.reason ?? ''] ?? since.reason}${since.reason?.startsWith('circuit') ? ` (ductile explain breaker ${e.plugin}${e.command !== 'poll' ? ` --command ${e.command}` : ''})` : ''}`
      : ''
    const breaker = r.breaker && r.breaker.state !== 'closed' && !why ? `; its breaker is ${r.breaker.state}` : ''
    const unsucceeded =
      e.interval_ms && e.last_fired_at && (!e.last_success_at || e.last_success_at < e.last_fired_at) && r.lastJob && r.lastJob.status !== 'succeeded'
        ? '; its last run has not succeeded, and an every-schedule counts its interval from the last success'
        : ''
    summary = `${fired}${why}${breaker}${unsucceeded}; ${next}`
  }
  return {plugin: e.plugin, schedule_id: e.schedule_id, status: e.status, summary, events}
}
