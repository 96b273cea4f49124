import {sql} from 'kysely'

import {DEFAULT_ENGINE_LEASE_MS} from '../config/defaults.js'
import {liveLockHolder, readLock} from '../lib/lock.js'
import {processAlive} from '../lib/proc.js'
import type {Db} from '../schema/db.js'
import type {JobStatus} from '../schema/definition.js'
import {formatTs, parseTs} from '../schema/time.js'
import type {CircuitBreaker, ScheduleEntry} from '../schema/types.js'
import {type StatusCount, countJobsByStatus, listRunningJobs} from './jobs.js'
import {listLiveEngines} from './engines.js'

/** One frame of Overwatch (`ductile watch`): everything an operator looks at, read in one snapshot. */

export interface Completion {
  id: string
  job_id: string | null
  plugin: string
  command: string
  status: string
  attempt: number
  completed_at: string
  duration_ms: number | null
  last_error: string | null
}

export interface RunningView {
  id: string
  plugin: string
  command: string
  attempt: number
  started_at: string | null
  elapsed_ms: number | null
  plugin_pid: number | null
  alive: boolean | null
}

export interface Overview {
  at: string
  counts: StatusCount[]
  running: RunningView[]
  latest: Completion[]
  breakers: CircuitBreaker[]
  schedules: ScheduleEntry[]
  /**
   * SQLite: the lock's holder. PostgreSQL: the engine with the newest heartbeat, how many beat within the lease
   * (`count`), and how many are registered running but silent past it (`silent`: dead hosts no live engine
   * has declared dead yet). `silent` as a state: registered engines, none beating.
   */
  engine: {pid: number | null; state: 'running' | 'stale lock' | 'stopped' | 'silent'; host: string | null; count: number; silent: number}
}

export interface OverviewFilter {
  plugin?: string
  status?: JobStatus
  latest?: number
  schedules?: number
  /** How long an engine's heartbeat counts (service.engine_lease; default 30 s). */
  engineLeaseMs?: number
}

export function latestCompletions(db: Db, f: OverviewFilter): Completion[] {
  let q = db.k
    .selectFrom('job_log')
    .select(['id', 'job_id', 'plugin', 'command', 'status', 'attempt', 'completed_at', db.dialect.durationMsExpr().as('duration_ms'), 'last_error'])
  if (f.plugin) q = q.where('plugin', '=', f.plugin)
  // A literal, as in searchJobLogs: the partial status index needs to see which status.
  if (f.status) q = q.where('status', '=', sql.lit(f.status))
  return db.all(
    q
      .orderBy('completed_at', 'desc')
      .orderBy('id', 'desc')
      .limit(f.latest ?? 10),
  )
}

export function readOverview(db: Db, f: OverviewFilter = {}, now = new Date()): Overview {
  return db.read(() => {
    const running = listRunningJobs(db)
      .filter((r) => !f.plugin || r.plugin === f.plugin)
      .map((r) => ({
        id: r.id,
        plugin: r.plugin,
        command: r.command,
        attempt: r.attempt,
        started_at: r.started_at,
        elapsed_ms: r.started_at ? now.getTime() - (parseTs(r.started_at)?.getTime() ?? now.getTime()) : null,
        plugin_pid: r.plugin_pid,
        // A PID on a shared database may be another host's: unknown from here.
        alive: r.plugin_pid && db.kind === 'sqlite' ? processAlive(r.plugin_pid, r.plugin_started_at) : null,
      }))
    const breakers = db.all(db.k.selectFrom('circuit_breakers').selectAll().where('state', '!=', 'closed').orderBy('plugin').orderBy('command'))
    let sq = db.k.selectFrom('schedule_entries').selectAll().where('status', '=', 'active')
    if (f.plugin) sq = sq.where('plugin', '=', f.plugin)
    const schedules = db.all(sq.orderBy('next_run_at').limit(f.schedules ?? 5))
    return {
      at: now.toISOString(),
      counts: countJobsByStatus(db, {plugin: f.plugin}),
      running: f.status && f.status !== 'running' ? [] : running,
      latest: latestCompletions(db, f),
      breakers: breakers.filter((b) => !f.plugin || b.plugin === f.plugin),
      schedules,
      engine: engineStatus(db, now, f.engineLeaseMs ?? DEFAULT_ENGINE_LEASE_MS),
    }
  })
}

function engineStatus(db: Db, now: Date, leaseMs: number): Overview['engine'] {
  if (db.kind === 'sqlite') {
    const live = liveLockHolder(db.path)
    const lock = live ?? readLock(db.path)
    return {pid: lock?.pid ?? null, state: live ? 'running' : lock ? 'stale lock' : 'stopped', host: lock?.host ?? null, count: live ? 1 : 0, silent: 0}
  }
  const cutoff = formatTs(new Date(now.getTime() - leaseMs))
  const registered = listLiveEngines(db)
  const beating = registered.filter((e) => e.heartbeat_at >= cutoff)
  const silent = registered.length - beating.length
  const newest = beating.at(-1)
  return {
    pid: newest?.pid ?? null,
    state: newest ? 'running' : silent ? 'silent' : 'stopped',
    host: newest?.host ?? null,
    count: beating.length,
    silent,
  }
}

/**
 * A mark that changes when anything the Overwatch shows changes: the newest job transition, breaker
 * transition and schedule decision, and the engines registered running. Each from a primary key or a small
 * table: cheap enough to read every second for every open page at once.
 */
export function changeMark(db: Db): string {
  const r = db.query(
    `SELECT (SELECT MAX(id) FROM job_transitions) AS t, (SELECT MAX(id) FROM circuit_breaker_transitions) AS b,
            (SELECT MAX(id) FROM schedule_decisions) AS d, (SELECT MAX(updated_at) FROM schedule_entries) AS s,
            (SELECT COUNT(*) FROM engines WHERE stopped_at IS NULL) AS e`,
  )[0]
  return JSON.stringify(r ?? {})
}
