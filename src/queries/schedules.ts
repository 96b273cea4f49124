import type {Db} from '../schema/db.js'
import type {ScheduleDecision, ScheduleEntry} from '../schema/types.js'

/** schedule_entries: the scheduler's persistent state. */

/** Reference: "See upcoming scheduled runs" (status active, by next_run_at); every status with `all`. */
export function listSchedules(db: Db, opts: {all?: boolean; plugin?: string} = {}): ScheduleEntry[] {
  let q = db.k.selectFrom('schedule_entries').selectAll()
  if (!opts.all) q = q.where('status', '=', 'active')
  if (opts.plugin) q = q.where('plugin', '=', opts.plugin)
  if (opts.all) q = q.orderBy('plugin').orderBy('schedule_id')
  else q = q.orderBy('next_run_at', 'asc').orderBy('plugin').orderBy('schedule_id')
  return db.all(q)
}

export function findSchedule(db: Db, plugin: string, scheduleId: string): ScheduleEntry | undefined {
  return db.get(db.k.selectFrom('schedule_entries').selectAll().where('plugin', '=', plugin).where('schedule_id', '=', scheduleId))
}

/** Insert or replace the scheduler's row for one schedule. */
/** The row of a schedule that has never run: active, nothing fired, nothing due yet. */
export function newScheduleEntry(
  plugin: string,
  scheduleId: string,
  command: string,
  now: string,
  spec: string | null = null,
  intervalMs: number | null = null,
): ScheduleEntry {
  return {
    plugin,
    schedule_id: scheduleId,
    command,
    status: 'active',
    reason: null,
    last_fired_at: null,
    last_success_job_id: null,
    last_success_at: null,
    next_run_at: null,
    updated_at: now,
    spec,
    interval_ms: intervalMs,
  }
}

export function saveSchedule(db: Db, e: ScheduleEntry): void {
  db.run(
    db.k
      .insertInto('schedule_entries')
      .values(e)
      .onConflict((oc) =>
        oc.columns(['plugin', 'schedule_id']).doUpdateSet({
          command: e.command,
          status: e.status,
          reason: e.reason,
          last_fired_at: e.last_fired_at,
          last_success_job_id: e.last_success_job_id,
          last_success_at: e.last_success_at,
          next_run_at: e.next_run_at,
          updated_at: e.updated_at,
          spec: e.spec,
          interval_ms: e.interval_ms,
        }),
      ),
  )
}

/** Operator pause/resume: only the status and its reason change (short write, safe while the engine runs). */
export function setScheduleStatus(db: Db, plugin: string, scheduleId: string, status: string, reason: string | null, now: string): number {
  return Number(
    db.run(db.k.updateTable('schedule_entries').set({status, reason, updated_at: now}).where('plugin', '=', plugin).where('schedule_id', '=', scheduleId))
      .changes,
  )
}

/** Queued or running jobs a submitter has for (plugin, command). */
export function countOutstanding(db: Db, plugin: string, command: string, submittedBy: string): number {
  const row = db.get(
    db.k
      .selectFrom('job_queue')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('plugin', '=', plugin)
      .where('command', '=', command)
      .where('status', 'in', ['queued', 'running'])
      .where('submitted_by', '=', submittedBy),
  )
  return Number(row?.n ?? 0)
}

/** The newest completed job a submitter has for (plugin, command); skipped jobs do not count (a skipped step says nothing about the plugin's health). */
export function latestCompletedJob(db: Db, plugin: string, command: string, submittedBy: string) {
  return db.get(
    db.k
      .selectFrom('job_queue')
      .select(['id', 'status', 'completed_at'])
      .where('plugin', '=', plugin)
      .where('command', '=', command)
      .where('status', 'in', ['succeeded', 'failed', 'timed_out', 'dead'])
      .where('submitted_by', '=', submittedBy)
      .orderBy('completed_at', 'desc')
      .orderBy('id', 'desc')
      .limit(1),
  )
}

export interface ScheduleChange {
  plugin: string
  schedule_id: string
  from: string
  to: string
}

/**
 * The key the schedulers of every engine, and the operator's pause, resume and breaker reset, serialize on
 * (Db.serialize): on a shared database a decision is never made on a row another one is changing.
 */
export const SCHEDULER_KEY = 'ductile:scheduler'

/**
 * Operator pause (paused_manual with a reason) or resume (active) of a plugin's schedules, one or all, in
 * one short transaction. `configured` lists schedules the engine has not recorded yet (never run): a pause
 * creates their rows so it holds from the engine's first tick.
 */
export function changeScheduleStatus(
  db: Db,
  o: {plugin: string; scheduleId?: string; to: 'paused_manual' | 'active'; reason: string | null; now: string; configured?: {id: string; command: string}[]},
): ScheduleChange[] {
  return db.tx(() => {
    db.serialize(SCHEDULER_KEY)
    let rows = listSchedules(db, {all: true, plugin: o.plugin}).filter((r) => !o.scheduleId || r.schedule_id === o.scheduleId)
    if (rows.length === 0 && o.to === 'paused_manual') {
      rows = (o.configured ?? [])
        .filter((s) => !o.scheduleId || s.id === o.scheduleId)
        .map((s) => {
          const row = newScheduleEntry(o.plugin, s.id, s.command, o.now)
          saveSchedule(db, row)
          return row
        })
    }
    const out: ScheduleChange[] = []
    for (const r of rows) {
      if (o.to === 'active' && r.status !== 'paused_manual') continue
      setScheduleStatus(db, o.plugin, r.schedule_id, o.to, o.reason, o.now)
      out.push({plugin: o.plugin, schedule_id: r.schedule_id, from: r.status, to: o.to})
    }
    return out
  })
}

/** A scheduler decision to record (schedule_decisions). */
export interface NewScheduleDecision {
  plugin: string
  schedule_id: string
  decision: 'fired' | 'skipped' | 'catch_up'
  reason: string | null
  detail: string | null
  slot: string | null
  job_id: string | null
  created_at: string
}

export function insertScheduleDecision(db: Db, d: NewScheduleDecision): void {
  db.run(db.k.insertInto('schedule_decisions').values(d))
}

/** A schedule's decisions, newest first. */
export function listScheduleDecisions(db: Db, plugin: string, scheduleId: string, limit: number): ScheduleDecision[] {
  return db.all(
    db.k.selectFrom('schedule_decisions').selectAll().where('plugin', '=', plugin).where('schedule_id', '=', scheduleId).orderBy('id', 'desc').limit(limit),
  )
}
