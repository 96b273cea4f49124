import type {PluginInstance} from '../plugins/discover.js'
import {findBreaker, insertBreakerTransition, saveBreaker} from '../queries/breakers.js'
import {latestCompletedJob} from '../queries/schedules.js'
import type {Db} from '../schema/db.js'
import type {CircuitBreaker} from '../schema/types.js'
import type {Logger} from './log.js'

/**
 * Circuit breakers of scheduled work, one per plugin and command: each new completion of a scheduled job
 * moves the breaker (a success closes it, the threshold-th failure in a row opens it), and the scheduler
 * half-opens an open one once its cooldown has passed. What changes is written with a transition row.
 */

/** The newest finished scheduled job of a plugin and command (what the breaker judges). */
export interface Completion {
  id: string
  status: string
  completed_at: string | null
}

/** A breaker after one more completion, and why its state changed (null: it did not). Pure. */
export function nextBreaker(
  prev: CircuitBreaker,
  latest: Completion,
  threshold: number,
  now: string,
): {next: CircuitBreaker; reason: 'success' | 'failure_threshold' | null} {
  const next: CircuitBreaker = {...prev, last_job_id: latest.id, updated_at: now}
  if (latest.status === 'succeeded') {
    return {next: {...next, state: 'closed', failure_count: 0, opened_at: null, last_failure_at: null}, reason: prev.state === 'closed' ? null : 'success'}
  }
  next.failure_count = prev.failure_count + 1
  next.last_failure_at = latest.completed_at
  if (next.failure_count >= threshold) {
    next.state = 'open'
    next.opened_at = latest.completed_at
    return {next, reason: prev.state === 'open' ? null : 'failure_threshold'}
  }
  next.state = 'closed'
  return {next, reason: null}
}

/** A breaker that changed state (told after its transition row is committed). */
export interface BreakerChange {
  plugin: string
  command: string
  from: CircuitBreaker['state'] | null
  to: CircuitBreaker['state']
  reason: string
  failureCount: number
  at: string
}

export class CircuitBreakers {
  constructor(
    private readonly db: Db,
    private readonly logger: Logger,
    private readonly submittedBy: string,
    private readonly onChange: (c: BreakerChange) => void = () => {},
  ) {}

  /** Bring the breaker up to date with the newest completion; returns that completion (or undefined). */
  reconcile(p: PluginInstance, command: string, now: string): Completion | undefined {
    const db = this.db
    const latest = latestCompletedJob(db, p.name, command, this.submittedBy)
    if (!latest) return latest
    const b = findBreaker(db, p.name, command)
    if (b && b.last_job_id === latest.id) return latest
    const prev: CircuitBreaker = b ?? {
      plugin: p.name,
      command,
      state: 'closed',
      failure_count: 0,
      opened_at: null,
      last_failure_at: null,
      last_job_id: null,
      updated_at: now,
    }
    const {next, reason} = nextBreaker(prev, latest, p.config.circuit_breaker.threshold, now)
    db.tx(() => {
      saveBreaker(db, next)
      if (reason) {
        const from = b ? prev.state : null
        insertBreakerTransition(db, {plugin: p.name, command, from, to: next.state, failureCount: next.failure_count, reason, jobId: latest.id, now})
      }
    })
    if (next.state !== prev.state) {
      this.logger.info('circuit breaker', {plugin: p.name, command, from: prev.state, to: next.state, failures: next.failure_count})
      this.onChange({
        plugin: p.name,
        command,
        from: b ? prev.state : null,
        to: next.state,
        reason: reason ?? 'failure',
        failureCount: next.failure_count,
        at: now,
      })
    }
    return latest
  }

  /** An open breaker whose cooldown passed lets one probe through. */
  halfOpen(b: CircuitBreaker, now: string): void {
    const to = 'half_open'
    const reason = 'cooldown_elapsed'
    this.db.tx(() => {
      saveBreaker(this.db, {...b, state: to, updated_at: now})
      insertBreakerTransition(this.db, {
        plugin: b.plugin,
        command: b.command,
        from: b.state,
        to,
        failureCount: b.failure_count,
        reason,
        jobId: b.last_job_id,
        now,
      })
    })
    this.logger.info('circuit breaker', {plugin: b.plugin, command: b.command, from: b.state, to, reason})
    this.onChange({plugin: b.plugin, command: b.command, from: b.state, to, reason, failureCount: b.failure_count, at: now})
  }
}
