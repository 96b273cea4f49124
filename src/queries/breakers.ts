import type {Db} from '../schema/db.js'
import type {BreakerTransition, CircuitBreaker} from '../schema/types.js'

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
