import type {Db} from '../schema/db.js'
import {uuidv7} from '../schema/ids.js'
import type {BreakerTransition, CircuitBreaker} from '../schema/types.js'
import {SCHEDULER_KEY} from './schedules.js'

/** Circuit breakers: the current row per (plugin, command) and the append-only transitions. */

/** Reference: "Identify plugins with active circuit breakers" (every breaker with `all`). */
export function listBreakers(db: Db, opts: {all?: boolean} = {}): CircuitBreaker[] {
  let q = db.k.selectFrom('circuit_breakers').selectAll()
  if (!opts.all) q = q.where('state', '!=', 'closed')
  return db.all(q.orderBy('plugin').orderBy('command'))
}

export function findBreaker(db: Db, plugin: string, command: string): CircuitBreaker | undefined {
  return db.get(db.k.selectFrom('circuit_breakers').selectAll().where('plugin', '=', plugin).where('command', '=', command))
}

/** Reference: "Show recent breaker transitions", newest first. */
export function listBreakerTransitions(db: Db, plugin: string, command: string, limit: number): BreakerTransition[] {
  return db.all(
    db.k
      .selectFrom('circuit_breaker_transitions')
      .selectAll()
      .where('plugin', '=', plugin)
      .where('command', '=', command)
      .orderBy('created_at', 'desc')
      .orderBy('id', 'desc')
      .limit(limit),
  )
}

/** Every breaker's latest transitions, newest first (the web's breakers page). */
export function recentBreakerTransitions(db: Db, limit: number): BreakerTransition[] {
  return db.all(db.k.selectFrom('circuit_breaker_transitions').selectAll().orderBy('created_at', 'desc').orderBy('id', 'desc').limit(limit))
}

export interface BreakerChange {
  plugin: string
  command: string
  from: string | null
  to: string
  failureCount: number
  reason: 'failure_threshold' | 'success' | 'cooldown_elapsed' | 'manual_reset'
  jobId: string | null
  now: string
}

/** Append a transition (the durable explanation of why a breaker changed). */
export function insertBreakerTransition(db: Db, c: BreakerChange): void {
  db.run(
    db.k.insertInto('circuit_breaker_transitions').values({
      id: uuidv7(),
      plugin: c.plugin,
      command: c.command,
      from_state: c.from,
      to_state: c.to,
      failure_count: c.failureCount,
      reason: c.reason,
      job_id: c.jobId,
      created_at: c.now,
    }),
  )
}

export function saveBreaker(db: Db, b: CircuitBreaker): void {
  db.run(
    db.k
      .insertInto('circuit_breakers')
      .values(b)
      .onConflict((oc) =>
        oc.columns(['plugin', 'command']).doUpdateSet({
          state: b.state,
          failure_count: b.failure_count,
          opened_at: b.opened_at,
          last_failure_at: b.last_failure_at,
          last_job_id: b.last_job_id,
          updated_at: b.updated_at,
        }),
      ),
  )
}

/**
 * Manual reset: closed, count 0, opened_at, last_failure_at and last_job_id cleared, and a
 * manual_reset transition from the previous state (NULL when there was no row). One short transaction.
 */
/** Close an existing breaker by hand; null (and nothing written) when there is none for that pair. */
export function resetBreaker(db: Db, plugin: string, command: string, now: string): {from: string} | null {
  return db.tx(() => {
    db.serialize(SCHEDULER_KEY)
    const prev = findBreaker(db, plugin, command)
    if (!prev) return null
    saveBreaker(db, {plugin, command, state: 'closed', failure_count: 0, opened_at: null, last_failure_at: null, last_job_id: null, updated_at: now})
    insertBreakerTransition(db, {plugin, command, from: prev.state, to: 'closed', failureCount: 0, reason: 'manual_reset', jobId: null, now})
    return {from: prev.state}
  })
}
