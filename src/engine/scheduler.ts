import type {Cron} from 'croner'

import {type NormalSchedule, type ScheduleConfig, inWindow, localParts, normalizeSchedule, parseDays, parseWindow} from '../config/schedule.js'
import type {Config} from '../config/types.js'
import {type PluginInstance, type PluginRegistry, hasCommand} from '../plugins/discover.js'
import {findBreaker} from '../queries/breakers.js'
import type {EnqueueResult, NewJobInput} from '../queries/queue.js'
import {cancelOutstandingJobs} from '../queries/queue.js'
import {
  SCHEDULER_KEY,
  countOutstanding,
  findSchedule,
  insertScheduleDecision,
  listScheduleDecisions,
  newScheduleEntry,
  saveSchedule,
} from '../queries/schedules.js'
import type {Db} from '../schema/db.js'
import {type Clock, formatTs, parseTs} from '../schema/time.js'
import type {ScheduleEntry} from '../schema/types.js'
import {type BreakerChange, CircuitBreakers} from './breakers.js'
import type {Logger} from './log.js'
import {errorMessage} from '../errors.js'

/**
 * The scheduler and circuit breakers. Each tick processes every schedule of every enabled
 * plugin, keeps schedule_entries true, and enqueues due jobs with submitted_by = service.name and dedupe key
 * `<plugin>:<command>:<schedule_id>`. Every decision not to fire has a reason. The clock is injected.
 */

export type SkipReason =
  | 'schedule_paused_manual'
  | 'schedule_exhausted'
  | 'invalid_schedule_config'
  | 'scheduled_handle_disallowed'
  | 'command_not_supported'
  | 'not_due'
  | 'outside_day_constraint'
  | 'outside_time_window'
  | 'circuit_open'
  | 'circuit_half_open_probe_running'
  | 'already_running'
  | 'outstanding_limit'
  | 'deduplicated'
  | 'missed_while_stopped'

export interface Decision {
  plugin: string
  schedule: string
  action: 'fired' | 'skipped' | 'catch_up'
  reason?: SkipReason
  jobId?: string
  detail?: string
  /** The run a fire was for: the due time, or the catch-up slot. */
  slot?: string | null
}

export interface SchedulerDeps {
  db: Db
  config: Config
  registry: PluginRegistry
  clock: Clock
  logger: Logger
  enqueue: (input: Omit<NewJobInput, 'now' | 'configSnapshotId'>) => EnqueueResult
  /** Stop the plugin of a job the scheduler cancelled (if_running: cancel). */
  killJob?: (jobId: string) => void
  /** Told when a circuit breaker changes state. */
  onBreakerChange?: (c: BreakerChange) => void
  random?: () => number
}

const ts = (ms: number) => formatTs(new Date(ms))

const wallFormat = new Map<string, Intl.DateTimeFormat>()
/** Local wall-clock date and time to the minute, in a zone (the host's when none). */
function wallClock(ms: number, zone?: string): string {
  const key = zone ?? ''
  let f = wallFormat.get(key)
  if (!f) {
    f = new Intl.DateTimeFormat('en-CA', {
      timeZone: zone,
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      hourCycle: 'h23',
    })
    wallFormat.set(key, f)
  }
  return f.format(new Date(ms))
}

/**
 * The next cron slot after a firing. When clocks fall back, the same local time comes round again an hour
 * later: that repeat is skipped, so a daily job runs once a day.
 */
function nextCronRun(cron: Cron, firedAt: number, zone?: string): number {
  let next = cronAfter(cron, firedAt)
  const firedWall = wallClock(Math.floor(firedAt / 60_000) * 60_000, zone)
  while (Number.isFinite(next) && wallClock(next, zone) === firedWall) next = cronAfter(cron, next)
  return next
}

/** The cron's next match after `ms`; Infinity when it has none (a year-bound pattern past its last year). */
function cronAfter(cron: Cron, ms: number): number {
  return cron.nextRun(new Date(ms))?.getTime() ?? Number.POSITIVE_INFINITY
}
const msOf = (t: string | null) => (t ? (parseTs(t)?.getTime() ?? null) : null)

export class Scheduler {
  private readonly d: SchedulerDeps
  private caughtUp = false
  /** The last recorded decision's signature per schedule (read from schedule_decisions on first use). */
  private readonly lastDecision = new Map<string, string | null>()
  private readonly random: () => number
  private readonly breakers: CircuitBreakers

  constructor(deps: SchedulerDeps) {
    this.d = deps
    this.random = deps.random ?? Math.random
    this.breakers = new CircuitBreakers(deps.db, deps.logger, deps.config.service.name, deps.onBreakerChange)
  }

  private get service() {
    return this.d.config.service
  }

  /** One pass over every schedule. Returns what it decided (tests and logs read it). */
  tick(): Decision[] {
    const decisions: Decision[] = []
    const plugins = [...this.d.registry.plugins.values()].filter((p) => p.config.schedules.length > 0).sort((a, b) => a.name.localeCompare(b.name))
    const first = !this.caughtUp
    this.caughtUp = true
    for (const p of plugins) {
      for (const s of p.config.schedules) {
        let d: Decision
        try {
          // One write transaction per schedule: the row is read, decided on and written back while no
          // operator's pause, resume or breaker reset can land in between and be overwritten.
          // On a shared database the engines' schedulers take turns (one advisory lock): a slot fires once.
          if (first) decisions.push(...this.decide(() => this.catchUp(p, s).map((c) => this.record(c))))
          d = this.decide(() => this.record(this.process(p, s)))
        } catch (err) {
          d = {plugin: p.name, schedule: s.id, action: 'skipped', detail: `scheduler error: ${errorMessage(err)}`}
          this.d.logger.error('schedule failed', {plugin: p.name, schedule: s.id, error: errorMessage(err)})
        }
        decisions.push(d)
        const fields = {plugin: d.plugin, schedule: d.schedule, reason: d.reason, job: d.jobId, detail: d.detail}
        if (d.action === 'fired') this.d.logger.info('schedule fired', fields)
        else this.d.logger.log(d.reason === 'not_due' ? 'debug' : 'info', 'schedule skipped', fields)
      }
    }
    return decisions
  }

  /** One schedule's decision in its own transaction, in turn with every other engine's scheduler. */
  private decide<T>(fn: () => T): T {
    const db = this.d.db
    return db.tx(() => {
      db.serialize(SCHEDULER_KEY)
      return fn()
    })
  }

  private load(row: ScheduleEntry | undefined, p: PluginInstance, s: ScheduleConfig, spec: string | null, intervalMs: number | null): ScheduleEntry {
    const now = ts(this.d.clock().getTime())
    const e: ScheduleEntry = row ? {...row} : newScheduleEntry(p.name, s.id, s.command, now, spec, intervalMs)
    if (e.command !== s.command) {
      e.command = s.command
      e.last_success_job_id = null
      e.last_success_at = null
      e.next_run_at = null
      if (e.status === 'paused_invalid') e.status = 'active'
    }
    if (spec !== null) e.spec = spec
    e.interval_ms = intervalMs
    return e
  }

  private save(before: string, e: ScheduleEntry): void {
    if (JSON.stringify(e) === before) return
    e.updated_at = ts(this.d.clock().getTime())
    saveSchedule(this.d.db, e)
  }

  private process(p: PluginInstance, s: ScheduleConfig): Decision {
    const now = this.d.clock().getTime()
    const base = {plugin: p.name, schedule: s.id}
    let norm: NormalSchedule | null = null
    let invalid: {reason: SkipReason; detail: string} | null = null
    try {
      norm = normalizeSchedule(s)
    } catch (e) {
      invalid = {reason: 'invalid_schedule_config', detail: errorMessage(e)}
    }
    if (!invalid && s.command === 'handle') invalid = {reason: 'scheduled_handle_disallowed', detail: 'handle needs an event and cannot be scheduled'}
    if (!invalid && !hasCommand(p, s.command)) invalid = {reason: 'command_not_supported', detail: `plugin ${p.manifest.name} has no command ${s.command}`}

    const row = findSchedule(this.d.db, p.name, s.id)
    const before = JSON.stringify(row ?? null)
    const e = this.load(row, p, s, norm?.spec ?? null, norm?.kind === 'every' ? norm.intervalMs : null)
    if (e.status === 'paused_manual') return this.skip(before, e, base, 'schedule_paused_manual', e.reason ?? undefined)
    if (e.status === 'exhausted') return this.skip(before, e, base, 'schedule_exhausted')
    if (invalid || !norm) {
      const why = invalid ?? {reason: 'invalid_schedule_config' as const, detail: 'the schedule did not parse'}
      e.status = 'paused_invalid'
      e.reason = why.reason
      return this.skip(before, e, base, why.reason, why.detail)
    }
    if (e.status === 'paused_invalid') {
      e.status = 'active'
      e.reason = null
    }

    const latest = this.breakers.reconcile(p, s.command, ts(now))

    // Due check.
    if (norm.kind === 'every') {
      const succeededAt = latest?.status === 'succeeded' && latest.id !== e.last_success_job_id ? msOf(latest.completed_at) : null
      if (latest && succeededAt !== null) {
        e.last_success_job_id = latest.id
        e.last_success_at = latest.completed_at
        e.next_run_at = ts(succeededAt + norm.intervalMs + this.jitter(s))
      }
      const next = msOf(e.next_run_at)
      if (next !== null && now < next) return this.skip(before, e, base, 'not_due')
    } else if (norm.kind === 'cron') {
      const minute = Math.floor(now / 60_000) * 60_000
      if (e.next_run_at === null) {
        const nextMatch = cronAfter(norm.cron, minute - 1)
        if (nextMatch !== minute) {
          e.next_run_at = Number.isFinite(nextMatch) ? ts(nextMatch) : null
          return this.skip(before, e, base, 'not_due')
        }
      } else if (minute < Math.floor((msOf(e.next_run_at) ?? 0) / 60_000) * 60_000) {
        return this.skip(before, e, base, 'not_due')
      }
    } else {
      if (e.next_run_at === null) e.next_run_at = ts(norm.kind === 'at' ? norm.atMs : now + norm.afterMs)
      if (now < (msOf(e.next_run_at) ?? 0)) return this.skip(before, e, base, 'not_due')
    }

    // Day and time-window constraints, in the schedule's zone or UTC.
    const zone = s.timezone ?? 'UTC'
    if (s.not_on || s.only_between) {
      const local = localParts(now, zone)
      if (s.not_on && parseDays(s.not_on).has(local.weekday)) return this.skip(before, e, base, 'outside_day_constraint')
      if (s.only_between && !inWindow(local.minute, parseWindow(s.only_between))) return this.skip(before, e, base, 'outside_time_window')
    }

    // Breaker and if_running.
    const breaker = findBreaker(this.d.db, p.name, s.command)
    const outstanding = countOutstanding(this.d.db, p.name, s.command, this.service.name)
    if (breaker?.state === 'open') {
      const opened = msOf(breaker.opened_at)
      if (opened !== null && now < opened + p.config.circuit_breaker.reset_after_ms) return this.skip(before, e, base, 'circuit_open')
      this.breakers.halfOpen(breaker, ts(now))
    } else if (breaker?.state === 'half_open' && outstanding > 0) {
      return this.skip(before, e, base, 'circuit_half_open_probe_running')
    }
    if (s.if_running === 'skip' && outstanding > 0) return this.skip(before, e, base, 'already_running')
    if (s.if_running === 'queue' && outstanding >= Math.max(1, p.config.max_outstanding_polls)) return this.skip(before, e, base, 'outstanding_limit')
    if (s.if_running === 'cancel' && outstanding > 0) {
      const nowTs = ts(now)
      const cancelled = cancelOutstandingJobs(this.d.db, p.name, s.command, this.service.name, nowTs, 'cancelled by scheduler (if_running=cancel)')
      for (const id of cancelled) this.d.killJob?.(id)
    }

    // Fire.
    const slot = e.next_run_at
    const ttl = norm.kind === 'every' ? norm.intervalMs : this.service.tick_interval_ms
    const r = this.enqueueFor(p, s, `${p.name}:${s.command}:${s.id}`, ttl, s.if_running !== 'queue')
    e.last_fired_at = ts(now)
    if (norm.kind === 'cron') {
      const next = nextCronRun(norm.cron, now, s.timezone)
      e.next_run_at = Number.isFinite(next) ? ts(next) : null
    }
    if (norm.kind === 'at' || norm.kind === 'after') {
      e.status = 'exhausted'
      e.reason = 'one_shot_exhausted'
      e.next_run_at = null
    }
    if (r.status !== 'enqueued') {
      if (norm.kind === 'every') e.next_run_at = ts(now + norm.intervalMs + this.jitter(s))
      return this.skip(before, e, base, 'deduplicated', r.reason)
    }
    this.save(before, e)
    return {...base, action: 'fired', jobId: r.job.id, slot}
  }

  /**
   * Keep a decision as a fact (schedule_decisions) when it says something new: every fire and catch-up, and a
   * skip whose reason differs from the schedule's last recorded decision. 'not_due' is never recorded: it is
   * every idle tick, and next_run_at says it. The last decision per schedule is remembered, read once.
   */
  private record(d: Decision): Decision {
    if (d.action === 'skipped' && (d.reason === 'not_due' || !d.reason)) return d
    const key = `${d.plugin}\0${d.schedule}`
    const sig = `${d.action}|${d.reason ?? ''}|${d.detail ?? ''}`
    if (!this.lastDecision.has(key)) {
      const [last] = listScheduleDecisions(this.d.db, d.plugin, d.schedule, 1)
      this.lastDecision.set(key, last ? `${last.decision}|${last.reason ?? ''}|${last.detail ?? ''}` : null)
    }
    if (d.action === 'skipped' && this.lastDecision.get(key) === sig) return d
    insertScheduleDecision(this.d.db, {
      plugin: d.plugin,
      schedule_id: d.schedule,
      decision: d.action,
      reason: d.reason ?? null,
      detail: d.detail ?? null,
      slot: d.slot ?? null,
      job_id: d.jobId ?? null,
      created_at: ts(this.d.clock().getTime()),
    })
    this.lastDecision.set(key, sig)
    return d
  }

  /** A scheduler job: submitted_by = service.name, the plugin's max attempts, the schedule's payload. */
  private enqueueFor(p: PluginInstance, s: ScheduleConfig, dedupeKey: string, dedupeTtlMs: number, dedupeOutstanding: boolean): EnqueueResult {
    return this.d.enqueue({
      plugin: p.name,
      command: s.command,
      payload: s.payload,
      submittedBy: this.service.name,
      maxAttempts: p.config.retry.max_attempts,
      dedupeKey,
      dedupeTtlMs,
      dedupeOutstanding,
    })
  }

  private skip(before: string, e: ScheduleEntry, base: {plugin: string; schedule: string}, reason: SkipReason, detail?: string): Decision {
    this.save(before, e)
    return {...base, action: 'skipped', reason, detail}
  }

  private jitter(s: ScheduleConfig): number {
    return s.jitter_ms > 0 ? Math.floor(this.random() * s.jitter_ms) : 0
  }

  /**
   * Breaker reconcile: the newest completed scheduler job for (plugin, command) decides.
   * Returns that job (the every-schedule due check reads it too).
   */
  /**
   * Startup catch-up for every-schedules with catch_up run_once or run_all: jobs for the slots
   * missed while no engine ran, at most 100, without breaker, if_running or window checks.
   */
  private catchUp(p: PluginInstance, s: ScheduleConfig): Decision[] {
    if (s.every === undefined) return []
    let interval: number
    try {
      const norm = normalizeSchedule(s)
      if (norm.kind !== 'every') return []
      interval = norm.intervalMs
    } catch {
      return []
    }
    const e = findSchedule(this.d.db, p.name, s.id)
    if (e?.status !== 'active') return []
    const ref = msOf(e.last_fired_at) ?? msOf(e.last_success_at)
    if (ref === null) return []
    const now = this.d.clock().getTime()
    const missed = now < ref + interval ? 0 : Math.floor((now - (ref + interval)) / interval) + 1
    if (missed === 0) return []
    // Skipped by policy: said once, as a decision (explain schedule tells why those runs never happened).
    if (s.catch_up === 'skip')
      return [
        {
          plugin: p.name,
          schedule: s.id,
          action: 'skipped',
          reason: 'missed_while_stopped',
          detail: `${missed} runs due since its last fire were not caught up at engine start (catch_up: skip)`,
        },
      ]
    const count = s.catch_up === 'run_once' ? 1 : Math.min(missed, 100)
    const out: Decision[] = []
    for (let i = 1; i <= count; i++) {
      const slot = new Date(ref + interval * i).toISOString().replace(/\.\d{3}Z$/, 'Z')
      const r = this.enqueueFor(p, s, `${p.name}:${s.command}:${s.id}:catchup:${slot}`, interval, true)
      out.push({
        plugin: p.name,
        schedule: s.id,
        action: 'catch_up',
        jobId: r.status === 'enqueued' ? r.job.id : undefined,
        detail: `slot ${slot}`,
        slot: formatTs(new Date(ref + interval * i)),
      })
    }
    const before = JSON.stringify(e)
    const fired = s.catch_up === 'run_once' ? now : ref + interval * count
    e.last_fired_at = ts(fired)
    const next = msOf(e.next_run_at)
    if (next === null || next < fired + interval) e.next_run_at = ts(fired + interval)
    this.save(before, e)
    this.d.logger.info('schedule catch-up', {plugin: p.name, schedule: s.id, missed, enqueued: count})
    return out
  }
}
